package chat_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"relais/server/bus"
	"relais/server/chat"
	"relais/server/proto"
	"relais/server/store"
)

func openService(t *testing.T) *chat.Service {
	t.Helper()
	db, err := store.Open(filepath.Join(t.TempDir(), "relais.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return chat.New(db, bus.Discard{}, chat.Options{})
}

func codeOf(err error) string {
	if pe := proto.AsError(err); pe != nil {
		return pe.Code
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

func TestBackupLimits(t *testing.T) {
	s := openService(t)
	ctx := context.Background()
	const alice, bob = "u-nabcdefgh-aaaaaaaaaaaaaaaa", "u-nabcdefgh-bbbbbbbbbbbbbbbb"

	for _, c := range []struct {
		name string
		data []byte
		want string
	}{
		{"", []byte("x"), proto.CodeBadRequest},
		{".hidden", []byte("x"), proto.CodeBadRequest},
		{"a/b", []byte("x"), proto.CodeBadRequest},
		{"nul\x00", []byte("x"), proto.CodeBadRequest},
		{string(bytes.Repeat([]byte("n"), 101)), []byte("x"), proto.CodeBadRequest},
		{"empty", nil, proto.CodeBadRequest},
		{"too-big", make([]byte, chat.MaxBackupSize+1), proto.CodeTooLarge},
		{"biggest", make([]byte, chat.MaxBackupSize), ""},
		{"groups_v1.state-2", []byte("ciphertext"), ""},
	} {
		if got := codeOf(s.PutBackup(ctx, alice, c.name, c.data)); got != c.want {
			t.Errorf("put %q (%d bytes): %q, want %q", c.name, len(c.data), got, c.want)
		}
	}
	// Replacing a backup replaces it; other users do not see it.
	if err := s.PutBackup(ctx, alice, "groups_v1.state-2", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if b, err := s.Backup(alice, "groups_v1.state-2"); err != nil || string(b) != "v2" {
		t.Fatalf("read back %q %v", b, err)
	}
	if _, err := s.Backup(bob, "groups_v1.state-2"); codeOf(err) != proto.CodeNotFound {
		t.Fatalf("bob reads alice's backup: %v", err)
	}
	// The total per person is bounded: alice has one full-size backup and
	// 2 bytes, and full-size ones fit until the total would pass.
	fit := (chat.MaxBackupTotal - chat.MaxBackupSize - 2) / chat.MaxBackupSize
	for i := range fit + 1 {
		err := s.PutBackup(ctx, alice, fmt.Sprintf("big-%d", i), make([]byte, chat.MaxBackupSize))
		if (err == nil) != (i < fit) || err != nil && codeOf(err) != proto.CodeTooLarge {
			t.Fatalf("full-size backup %d of %d that fit: %v", i+1, fit, err)
		}
	}
	// So is the number of backups.
	for i := range chat.MaxBackups {
		err := s.PutBackup(ctx, bob, fmt.Sprintf("k%d", i), []byte("c"))
		if err != nil {
			t.Fatalf("backup %d: %v", i, err)
		}
	}
	if err := s.PutBackup(ctx, bob, "one-more", []byte("c")); codeOf(err) != proto.CodeTooLarge {
		t.Fatalf("backup %d: %v", chat.MaxBackups+1, err)
	}
	if err := s.PutBackup(ctx, bob, "k7", []byte("replaced")); err != nil {
		t.Fatalf("replacing at the limit: %v", err)
	}
	list, err := s.Backups(bob)
	if err != nil || len(list) != chat.MaxBackups {
		t.Fatalf("%d backups listed, %v", len(list), err)
	}
	if err := s.DeleteBackup(ctx, bob, "k7"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteBackup(ctx, bob, "k7"); codeOf(err) != proto.CodeNotFound {
		t.Fatalf("deleting twice: %v", err)
	}
	if err := s.PutBackup(ctx, bob, "one-more", []byte("c")); err != nil {
		t.Fatalf("after a deletion: %v", err)
	}
}
