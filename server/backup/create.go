package backup

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"

	"relais/server/admin"
)

// CreateOptions configures Create.
type CreateOptions struct {
	// Data is the running node's data directory (its admin socket).
	Data string
	// File is the archive to write. It appears only once written and
	// checked: until then the bytes go to File.partial.
	File string
	// Passphrase encrypts the archive; nil writes it in plain.
	Passphrase []byte
	// WorkFactor is scrypt's log2(N); 0 means DefaultWorkFactor.
	WorkFactor int
	// Progress, if not nil, reports the payload's bytes.
	Progress *Progress
}

// Create asks the node running on o.Data for its backup payload, writes
// the archive, then reads it back and checks it as a restore would
// (Verify) before giving it its name.
func Create(ctx context.Context, o CreateOptions) (Checked, error) {
	head, key, err := newHeader(o.Passphrase, o.WorkFactor)
	if err != nil {
		return Checked{}, err
	}
	tmp := o.File + ".partial"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return Checked{}, fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp)
	err = write(ctx, f, o, head, key)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("backup: %w", cerr)
	}
	if err != nil {
		return Checked{}, err
	}
	c, err := Verify(ctx, tmp, func() ([]byte, error) { return o.Passphrase, nil })
	if err != nil {
		return c, fmt.Errorf("backup: the written archive does not check out, not kept: %w", err)
	}
	if err := os.Rename(tmp, o.File); err != nil {
		return c, fmt.Errorf("backup: %w", err)
	}
	return c, nil
}

func write(ctx context.Context, f *os.File, o CreateOptions, head, key []byte) error {
	bw := bufio.NewWriterSize(f, 1<<20)
	if _, err := bw.Write(head); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	var payload io.Writer = bw
	var seal *sealer
	if key != nil {
		var err error
		if seal, err = newSealer(bw, key); err != nil {
			return err
		}
		payload = seal
	}
	var size func(int64)
	if o.Progress != nil {
		payload = o.Progress.Writer(payload)
		size = o.Progress.SetTotal
	}
	if _, err := admin.Dial(o.Data).Backup(ctx, payload, size); err != nil {
		return err
	}
	if o.Progress != nil {
		o.Progress.Done()
	}
	if seal != nil {
		if err := seal.Close(); err != nil {
			return err
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}
