//go:build !linux

package backup

import (
	"errors"
	"os"
)

// IsTerminal reports whether f is a terminal; off Linux, never.
func IsTerminal(f *os.File) bool { return false }

func readSecret(tty *os.File) ([]byte, error) {
	return nil, errors.New("backup: no passphrase prompt on this system: use --passphrase-file or RELAIS_BACKUP_PASSPHRASE")
}
