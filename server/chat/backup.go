package chat

import (
	"context"
	"errors"

	"relais/server/proto"
	"relais/server/store"
)

// Encrypted key backups: opaque ciphertext that a user's devices store
// under names of their choosing, encrypted client-side with a key derived
// from the user's recovery key, so that a new device can recover its
// group states and history. The node stores and returns bytes; it cannot
// open them.
const (
	MaxBackupSize  = 8 << 20  // bytes in one backup
	MaxBackups     = 1000     // backups per user
	MaxBackupTotal = 64 << 20 // bytes of all of a user's backups
	maxBackupName  = 100
)

// BackupInfo describes one backup in a listing.
type BackupInfo struct {
	Name    string `json:"name"`
	Size    int    `json:"size"`
	Updated int64  `json:"updated"` // Unix ms
}

// ValidBackupName reports whether name is 1 to 100 characters of
// [A-Za-z0-9._-], not starting with a dot.
func ValidBackupName(name string) bool {
	if name == "" || len(name) > maxBackupName || name[0] == '.' {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func checkBackupName(name string) error {
	if !ValidBackupName(name) {
		return proto.Errorf(proto.CodeBadRequest, "a backup name is 1 to %d characters of A-Z a-z 0-9 . _ -", maxBackupName)
	}
	return nil
}

// PutBackup stores (or replaces) one of the user's encrypted backups,
// within the per-user limits.
func (s *Service) PutBackup(ctx context.Context, userID, name string, data []byte) error {
	if err := checkBackupName(name); err != nil {
		return err
	}
	if len(data) == 0 {
		return proto.Errorf(proto.CodeBadRequest, "a backup cannot be empty")
	}
	if len(data) > MaxBackupSize {
		return proto.Errorf(proto.CodeTooLarge, "a backup is at most %d bytes", MaxBackupSize)
	}
	return s.update(ctx, func(tx *store.Tx) error {
		count, total := 0, len(data)
		for _, b := range tx.Backups(userID) {
			if b.Name == name {
				continue // replaced
			}
			count++
			total += b.Size
		}
		if count >= MaxBackups {
			return proto.Errorf(proto.CodeTooLarge, "at most %d backups per person", MaxBackups)
		}
		if total > MaxBackupTotal {
			return proto.Errorf(proto.CodeTooLarge, "backups are limited to %d bytes per person", MaxBackupTotal)
		}
		return tx.PutBackup(userID, name, s.nowMS(), data)
	})
}

// Backup returns one of the user's encrypted backups.
func (s *Service) Backup(userID, name string) ([]byte, error) {
	if err := checkBackupName(name); err != nil {
		return nil, err
	}
	var data []byte
	err := s.db.View(func(tx *store.Tx) error {
		var err error
		data, _, err = tx.Backup(userID, name)
		if errors.Is(err, store.ErrNotFound) {
			return proto.Errorf(proto.CodeNotFound, "no such backup")
		}
		return err
	})
	return data, err
}

// Backups lists the user's encrypted backups.
func (s *Service) Backups(userID string) ([]BackupInfo, error) {
	out := []BackupInfo{}
	err := s.db.View(func(tx *store.Tx) error {
		for _, b := range tx.Backups(userID) {
			out = append(out, BackupInfo{Name: b.Name, Size: b.Size, Updated: b.Updated})
		}
		return nil
	})
	return out, err
}

// DeleteBackup deletes one of the user's encrypted backups.
func (s *Service) DeleteBackup(ctx context.Context, userID, name string) error {
	if err := checkBackupName(name); err != nil {
		return err
	}
	return s.update(ctx, func(tx *store.Tx) error {
		err := tx.DeleteBackup(userID, name)
		if errors.Is(err, store.ErrNotFound) {
			return proto.Errorf(proto.CodeNotFound, "no such backup")
		}
		return err
	})
}
