package backup

import (
	"bytes"
	"errors"
	"fmt"
	"os"
)

// EnvPassphrase is the environment variable a passphrase may come from.
const EnvPassphrase = "RELAIS_BACKUP_PASSPHRASE"

// minPassphrase is the shortest passphrase a new archive accepts: scrypt
// slows guessing, it does not make a short secret long.
const minPassphrase = 12

// Passphrase says where an archive's passphrase comes from, in this
// order: the first line of File, the value of RELAIS_BACKUP_PASSPHRASE
// (Env), a prompt on the terminal when Prompt is set.
type Passphrase struct {
	File   string
	Env    string
	Prompt bool
}

// Given reports whether a passphrase comes from a file or the environment.
func (p Passphrase) Given() bool { return p.File != "" || p.Env != "" }

// Get returns the passphrase. confirm asks twice at the prompt (for a new
// archive).
func (p Passphrase) Get(confirm bool) ([]byte, error) {
	var pass []byte
	switch {
	case p.File != "":
		b, err := os.ReadFile(p.File)
		if err != nil {
			return nil, fmt.Errorf("backup: passphrase file: %w", err)
		}
		line, _, _ := bytes.Cut(b, []byte("\n"))
		pass = trimLine(line)
	case p.Env != "":
		pass = []byte(p.Env)
	case p.Prompt:
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil {
			return nil, ErrNeedPassphrase
		}
		defer tty.Close()
		fmt.Fprint(tty, "passphrase: ")
		pass, err = readSecret(tty)
		fmt.Fprintln(tty)
		if err != nil {
			return nil, err
		}
		if confirm {
			fmt.Fprint(tty, "passphrase again: ")
			again, err := readSecret(tty)
			fmt.Fprintln(tty)
			if err != nil {
				return nil, err
			}
			if !bytes.Equal(pass, again) {
				return nil, errors.New("backup: the two passphrases differ")
			}
		}
	default:
		return nil, ErrNeedPassphrase
	}
	if len(pass) == 0 {
		return nil, errors.New("backup: empty passphrase")
	}
	if confirm && len([]rune(string(pass))) < minPassphrase {
		return nil, fmt.Errorf("backup: a passphrase of at least %d characters, please", minPassphrase)
	}
	return pass, nil
}

func trimLine(b []byte) []byte { return bytes.TrimRight(b, "\r\n") }
