package backup

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"relais/server/store"
)

// TestRestoreRefusesAnInconsistentStore: an archive whose every file
// matches its manifest but whose store names content the archive lacks
// (a backup made by hand, or by a broken writer) is refused, with nothing
// changed.
func TestRestoreRefusesAnInconsistentStore(t *testing.T) {
	db, err := store.Open(filepath.Join(t.TempDir(), "relais.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sum := sha256.Sum256([]byte("content"))
	hash := hex.EncodeToString(sum[:])
	err = db.Update(context.Background(), func(tx *store.Tx) error {
		if err := tx.CreateBlob(store.Blob{Hash: hash, Size: 7, State: store.BlobClean, Created: time.Now()}); err != nil {
			return err
		}
		return tx.CreateFile(store.File{ID: "f1", Owner: "u1", Room: "r1", Name: "a.pdf", Size: 7, Hash: hash, Created: time.Now()})
	})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.Write(append([]byte(magic), formatVersion, modePlain))
	aw := &archiveWriter{tw: tar.NewWriter(&buf), now: time.Now()}
	about, _ := json.Marshal(About{Format: 1, Node: db.Node(), Schema: store.SchemaVersion()})
	if err := aw.file(aboutName, int64(len(about)), bytes.NewReader(about)); err != nil {
		t.Fatal(err)
	}
	err = db.Snapshot(func(s *store.Snapshot) error { return aw.write(storeName, s.Size(), s.WriteTo) })
	if err != nil {
		t.Fatal(err)
	}
	m, _ := json.Marshal(Manifest{Files: aw.entries})
	aw.file(manifestName, int64(len(m)), bytes.NewReader(m))
	aw.tw.Close()
	file := filepath.Join(t.TempDir(), "hand-made.backup")
	os.WriteFile(file, buf.Bytes(), 0o600)

	parent := t.TempDir()
	_, err = Restore(context.Background(), RestoreOptions{File: file, Data: filepath.Join(parent, "data")})
	if !errors.Is(err, ErrInconsistent) || !strings.Contains(err.Error(), "blob "+hash+": content missing from the archive") {
		t.Fatalf("got %v", err)
	}
	if left, _ := os.ReadDir(parent); len(left) != 0 {
		t.Fatalf("a refused restore left %v", left)
	}
}
