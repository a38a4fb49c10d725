package backup

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"relais/server/store"
)

// Errors of a restore, with stable wording. They wrap the archive's errors
// when the archive is the cause.
var (
	// ErrNotEmpty: the data directory holds something and --force is not given.
	ErrNotEmpty = errors.New("restore: the data directory is not empty: add --force to restore over it (the current one is then kept aside)")
	// ErrRunning: a node answers on the data directory's admin socket.
	ErrRunning = errors.New("restore: a node is running on this data directory: stop it first")
	// ErrInconsistent: the archive's store fails the consistency check.
	ErrInconsistent = errors.New("restore: the archive's store fails its consistency check")
)

// openPayload reads an archive's header from r and returns the payload
// reader: r itself for a plain archive, the opener of an encrypted one.
// passphrase is called only for an encrypted archive.
func openPayload(r io.Reader, passphrase func() ([]byte, error)) (io.Reader, bool, error) {
	h, err := readHeader(r)
	if err != nil {
		return nil, false, err
	}
	if !h.encrypted {
		return r, false, nil
	}
	if passphrase == nil {
		return nil, true, ErrNeedPassphrase
	}
	pass, err := passphrase()
	if err != nil {
		return nil, true, err
	}
	key, err := h.open(pass)
	if err != nil {
		return nil, true, err
	}
	o, err := newOpener(r, key)
	return o, true, err
}

// Checked is what a verified archive holds.
type Checked struct {
	About     About
	Manifest  Manifest
	Encrypted bool
	// Legacy is set for a bare store file, as `relais backup` wrote them
	// before archives: it has no media files.
	Legacy bool
}

// Blobs is the number of blob files in the archive.
func (c Checked) Blobs() int {
	n := 0
	for _, f := range c.Manifest.Files {
		if len(f.Path) > len(blobsDir) && f.Path[:len(blobsDir)] == blobsDir {
			n++
		}
	}
	return n
}

// unpack reads the archive at file and writes it under dir: every file
// when all is set, only relais.db otherwise. It checks every file against
// the manifest, then the store: bbolt's page check, the migrations and the
// consistency check, with every blob the store names present in the
// archive (or listed as missing at the source). On any error, what it
// wrote under dir is the caller's to remove.
func unpack(ctx context.Context, file, dir string, all bool, passphrase func() ([]byte, error), prog *Progress) (Checked, error) {
	var c Checked
	f, err := os.Open(file)
	if err != nil {
		return c, fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && prog != nil {
		prog.SetTotal(fi.Size())
	}
	var in io.Reader = bufio.NewReaderSize(f, 1<<20)
	if prog != nil {
		in = prog.Reader(in)
	}
	payload, enc, err := openPayload(in, passphrase)
	c.Encrypted = enc
	if errors.Is(err, ErrNotArchive) && isBoltFile(file) {
		return unpackLegacy(file, dir)
	}
	if err != nil {
		return c, err
	}
	sizes := map[string]int64{}
	var about About
	c.Manifest, err = readPayload(payload, func(name string, size int64, r io.Reader) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if name == aboutName {
			if size > 1<<20 {
				return fmt.Errorf("%w: %s of %d bytes", ErrDamaged, name, size)
			}
			b, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			if err := json.Unmarshal(b, &about); err != nil {
				return fmt.Errorf("%w: %s: %v", ErrDamaged, name, err)
			}
			if about.Format > formatVersion {
				return ErrVersion
			}
			return writeFile(filepath.Join(dir, name), b)
		}
		sizes[name] = size
		if !all && name != storeName {
			_, err := io.Copy(io.Discard, r)
			return err
		}
		return copyTo(filepath.Join(dir, filepath.FromSlash(name)), r)
	})
	c.About = about
	if err != nil {
		return c, err
	}
	missing := map[string]bool{}
	for _, h := range c.Manifest.Missing {
		missing[h] = true
	}
	return c, checkStore(filepath.Join(dir, storeName), func(hash string, size int64) error {
		got, ok := sizes[blobPath(hash)]
		switch {
		case !ok && missing[hash]:
			return nil
		case !ok:
			return errors.New("content missing from the archive")
		case size > 0 && got != size:
			return fmt.Errorf("content of %d bytes, the record says %d", got, size)
		}
		return nil
	})
}

// checkStore runs the page check, opens the store (migrating it) and runs
// the consistency check.
func checkStore(path string, blob func(string, int64) error) error {
	if err := store.Check(path); err != nil {
		return fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	db, err := store.Open(path, store.Options{Timeout: 5 * time.Second})
	if err != nil {
		return fmt.Errorf("restore: the archive's store does not open: %w", err)
	}
	defer db.Close()
	if err := db.CheckConsistency(blob); err != nil {
		return fmt.Errorf("%w: %v", ErrInconsistent, err)
	}
	return nil
}

// isBoltFile reports whether path starts like a bbolt file: the magic of
// its first meta page.
func isBoltFile(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [20]byte
	if _, err := io.ReadFull(f, b[:]); err != nil {
		return false
	}
	return binary.LittleEndian.Uint32(b[16:]) == 0xED0CDAED
}

// unpackLegacy takes a bare store file, as `relais backup` wrote before
// archives.
func unpackLegacy(file, dir string) (Checked, error) {
	c := Checked{Legacy: true}
	in, err := os.Open(file)
	if err != nil {
		return c, fmt.Errorf("backup: %w", err)
	}
	defer in.Close()
	if err := copyTo(filepath.Join(dir, storeName), in); err != nil {
		return c, err
	}
	// Its blobs were never in the file: only the records are checked.
	return c, checkStore(filepath.Join(dir, storeName), nil)
}

// Verify reads the whole archive at file and checks it as a restore
// would, without restoring anything.
func Verify(ctx context.Context, file string, passphrase func() ([]byte, error)) (Checked, error) {
	tmp, err := os.MkdirTemp("", "relais-verify-")
	if err != nil {
		return Checked{}, fmt.Errorf("backup: %w", err)
	}
	defer os.RemoveAll(tmp)
	return unpack(ctx, file, tmp, false, passphrase, nil)
}

// RestoreOptions configures Restore.
type RestoreOptions struct {
	// File is the archive.
	File string
	// Data is the data directory to restore into.
	Data string
	// Force restores over a data directory that is not empty, which is
	// renamed to Data.before-restore-<time>.
	Force bool
	// Passphrase is asked for an encrypted archive only.
	Passphrase func() ([]byte, error)
	// Progress, if not nil, reports the bytes read.
	Progress *Progress
}

// Restored says what Restore did.
type Restored struct {
	Checked
	// Aside is where the previous data directory now is, if it held
	// anything.
	Aside string
}

// Restore unpacks and checks the archive into a new directory next to
// Data, then swaps it in: the previous directory, if not empty, is
// renamed aside. A Data that is a mount point is restored inside itself
// (see swapInside). Nothing changes in Data unless the archive checks out.
func Restore(ctx context.Context, o RestoreOptions) (Restored, error) {
	var out Restored
	data, err := filepath.Abs(o.Data)
	if err != nil {
		return out, fmt.Errorf("restore: %w", err)
	}
	// A data directory reached through a symbolic link (systemd's
	// DynamicUser links /var/lib/relais to /var/lib/private/relais) is
	// restored where the link points, so that the link stays.
	if real, err := filepath.EvalSymlinks(data); err == nil {
		data = real
	}
	if running(data) {
		return out, ErrRunning
	}
	// A data directory that is a mount point cannot be renamed: the swap
	// then happens inside it, entry by entry.
	mounted := isMountPoint(data)
	empty, exists, err := isEmptyDir(data, mounted)
	if err != nil {
		return out, fmt.Errorf("restore: %w", err)
	}
	if !empty && !o.Force {
		return out, ErrNotEmpty
	}
	parent := filepath.Dir(data)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return out, fmt.Errorf("restore: %w", err)
	}
	var tmp string
	if mounted {
		tmp, err = os.MkdirTemp(data, restoringPrefix)
	} else {
		tmp, err = os.MkdirTemp(parent, filepath.Base(data)+restoringPrefix)
	}
	if err != nil {
		return out, fmt.Errorf("restore: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			os.RemoveAll(tmp)
		}
	}()
	out.Checked, err = unpack(ctx, o.File, tmp, true, o.Passphrase, o.Progress)
	if o.Progress != nil {
		o.Progress.Done()
	}
	if err != nil {
		return out, err
	}
	os.Remove(filepath.Join(tmp, aboutName))
	if err := os.Chmod(tmp, 0o700); err != nil {
		return out, fmt.Errorf("restore: %w", err)
	}
	if exists {
		// Run as root for a node that runs as its own user, the restored
		// files must be that user's, as the directory they replace was.
		if err := chownLike(tmp, data); err != nil {
			return out, fmt.Errorf("restore: give the restored files the data directory's owner: %w", err)
		}
	}
	// A node started between the check above and now would hold the
	// directory's store: look again just before swapping.
	if running(data) {
		return out, ErrRunning
	}
	stamp := time.Now().UTC().Format("20060102-150405")
	if mounted {
		if out.Aside, err = swapInside(data, tmp, stamp); err != nil {
			return out, err
		}
		keep = true
		syncDir(data)
		return out, nil
	}
	switch {
	case exists && empty:
		if err := os.Remove(data); err != nil {
			return out, fmt.Errorf("restore: %w", err)
		}
	case exists:
		out.Aside = data + ".before-restore-" + stamp
		if err := os.Rename(data, out.Aside); err != nil {
			return out, fmt.Errorf("restore: keep the current directory aside: %w", err)
		}
	}
	if err := os.Rename(tmp, data); err != nil {
		if out.Aside != "" {
			os.Rename(out.Aside, data)
		} else if exists {
			os.Mkdir(data, 0o700)
		}
		return out, fmt.Errorf("restore: put the restored directory in place: %w", err)
	}
	keep = true
	syncDir(parent)
	return out, nil
}

const (
	restoringPrefix = ".restoring-"
	// lostFound is the directory of fsck at the root of a file system:
	// a mounted data directory has it, and it stays where it is.
	lostFound = "lost+found"
)

// isMountPoint reports whether dir is on another file system than its
// parent.
func isMountPoint(dir string) bool {
	a, err1 := os.Stat(dir)
	b, err2 := os.Stat(filepath.Dir(dir))
	if err1 != nil || err2 != nil {
		return false
	}
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Dev != sb.Dev
}

// swapInside swaps the restored tmp (inside data) in, for a data
// directory that is a mount point: the current entries move into
// data/before-restore-<stamp>, then tmp's entries into data. On an error
// the moves are undone.
func swapInside(data, tmp, stamp string) (aside string, err error) {
	old, err := os.ReadDir(data)
	if err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	var moved [][2]string
	undo := func() {
		for i := len(moved) - 1; i >= 0; i-- {
			os.Rename(moved[i][1], moved[i][0])
		}
	}
	move := func(from, to string) error {
		if err := os.Rename(from, to); err != nil {
			undo()
			return fmt.Errorf("restore: %w", err)
		}
		moved = append(moved, [2]string{from, to})
		return nil
	}
	for _, e := range old {
		if e.Name() == filepath.Base(tmp) || e.Name() == lostFound {
			continue
		}
		if aside == "" {
			aside = filepath.Join(data, "before-restore-"+stamp)
			if err := os.Mkdir(aside, 0o700); err != nil {
				return "", fmt.Errorf("restore: keep the current files aside: %w", err)
			}
		}
		if err := move(filepath.Join(data, e.Name()), filepath.Join(aside, e.Name())); err != nil {
			os.Remove(aside)
			return "", err
		}
	}
	restored, err := os.ReadDir(tmp)
	if err != nil {
		undo()
		return "", fmt.Errorf("restore: %w", err)
	}
	for _, e := range restored {
		if err := move(filepath.Join(tmp, e.Name()), filepath.Join(data, e.Name())); err != nil {
			if aside != "" {
				os.Remove(aside)
			}
			return "", err
		}
	}
	os.Remove(tmp)
	return aside, nil
}

// running reports whether a node answers on the admin socket of data. A
// socket left by a killed node refuses connections.
func running(data string) bool {
	c, err := net.DialTimeout("unix", filepath.Join(data, "admin.sock"), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// chownLike gives every file under dir the owner of like, when the
// process may (root) and they differ.
func chownLike(dir, like string) error {
	fi, err := os.Stat(like)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() != 0 || (int(st.Uid) == os.Geteuid() && int(st.Gid) == os.Getegid()) {
		return nil
	}
	return filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, int(st.Uid), int(st.Gid))
	})
}

// isEmptyDir reports whether dir has no entry (besides lost+found when
// ignoreLostFound) and whether it exists.
func isEmptyDir(dir string, ignoreLostFound bool) (empty, exists bool, err error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true, false, nil
	}
	if err != nil {
		return false, false, err
	}
	for _, e := range entries {
		if !(ignoreLostFound && e.Name() == lostFound) {
			return false, true, nil
		}
	}
	return true, true, nil
}

// copyTo writes r into a new file at path (mode 0600, directories 0700)
// and syncs it.
func copyTo(path string, r io.Reader) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	_, err = io.Copy(f, r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func writeFile(path string, b []byte) error {
	return copyTo(path, bytes.NewReader(b))
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
