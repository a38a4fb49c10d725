package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"testing"
	"time"
)

func testHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestFilesReferenceCounting(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	blob, thumb := testHash("content"), testHash("thumb")
	t0 := time.Now().Add(-time.Hour)
	update := func(fn func(tx *Tx) error) {
		t.Helper()
		if err := db.Update(ctx, fn); err != nil {
			t.Fatal(err)
		}
	}
	update(func(tx *Tx) error {
		if err := tx.CreateBlob(Blob{Hash: blob, Size: 7, Mime: "image/png", State: BlobPending, Thumb: thumb, ThumbMime: "image/jpeg", Created: t0}); err != nil {
			return err
		}
		if err := tx.CreateBlob(Blob{Hash: blob}); !errors.Is(err, ErrExists) {
			t.Errorf("second CreateBlob: %v", err)
		}
		if err := tx.PutPendingScan(blob, nil); err != nil {
			return err
		}
		for i, owner := range []string{"u1", "u1", "u2"} {
			f := File{ID: "f" + string(rune('a'+i)), Owner: owner, Room: "r", Name: "x.png", Size: 7, Hash: blob, Created: t0.Add(time.Duration(i) * time.Minute)}
			if err := tx.CreateFile(f); err != nil {
				return err
			}
		}
		return nil
	})
	if err := db.Update(ctx, func(tx *Tx) error { return tx.CreateFile(File{ID: "fa", Owner: "u1", Hash: blob}) }); !errors.Is(err, ErrExists) {
		t.Fatalf("duplicate file: %v", err)
	}
	if err := db.Update(ctx, func(tx *Tx) error { return tx.CreateFile(File{ID: "fz", Owner: "u1", Hash: testHash("none")}) }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("file of a missing blob: %v", err)
	}

	db.View(func(tx *Tx) error {
		b, _ := tx.Blob(blob)
		tb, _ := tx.Blob(thumb)
		files, _ := tx.FilesOfBlob(blob)
		pending, _ := tx.PendingScans(10)
		unposted, _ := tx.UnpostedFiles(t0.Add(90*time.Second), 10)
		switch {
		case b.Refs != 3 || tb.Refs != 1 || !tb.IsThumb || tb.State != BlobClean:
			t.Errorf("refs: blob %+v thumb %+v", b, tb)
		case len(files) != 3:
			t.Errorf("files of blob: %v", files)
		case tx.UserFileBytes("u1") != 14 || tx.UserFileBytes("u2") != 7 || tx.UserFileBytes("u") != 0:
			t.Errorf("usage %d %d", tx.UserFileBytes("u1"), tx.UserFileBytes("u2"))
		case !slices.Equal(pending, []string{blob}):
			t.Errorf("pending %v", pending)
		case !slices.Equal(unposted, []string{"fa", "fb"}):
			t.Errorf("unposted %v", unposted)
		}
		return nil
	})

	update(func(tx *Tx) error {
		if err := tx.PostFile("fa", 12); err != nil {
			return err
		}
		if err := tx.PostFile("fa", 13); !errors.Is(err, ErrExists) {
			t.Errorf("posting twice: %v", err)
		}
		return nil
	})
	db.View(func(tx *Tx) error {
		f, _ := tx.File("fa")
		unposted, _ := tx.UnpostedFiles(time.Now(), 10)
		if f.Seq != 12 || !slices.Equal(unposted, []string{"fb", "fc"}) {
			t.Errorf("posted %+v, unposted %v", f, unposted)
		}
		return nil
	})

	var freed []string
	update(func(tx *Tx) error {
		var err error
		for _, id := range []string{"fa", "fb"} {
			if freed, err = tx.DeleteFile(id); err != nil || freed != nil {
				t.Errorf("delete %s: %v %v", id, freed, err)
			}
		}
		freed, err = tx.DeleteFile("fc")
		return err
	})
	if !slices.Equal(freed, []string{blob, thumb}) {
		t.Fatalf("freed %v", freed)
	}
	db.View(func(tx *Tx) error {
		_, err1 := tx.Blob(blob)
		_, err2 := tx.Blob(thumb)
		_, err3 := tx.File("fc")
		pending, _ := tx.PendingScans(10)
		if !errors.Is(err1, ErrNotFound) || !errors.Is(err2, ErrNotFound) || !errors.Is(err3, ErrNotFound) || len(pending) != 0 || tx.UserFileBytes("u1") != 0 {
			t.Errorf("left: %v %v %v %v", err1, err2, err3, pending)
		}
		return nil
	})
}

func TestBlobQuarantine(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	blob, thumb := testHash("bad"), testHash("bad thumb")
	err := db.Update(ctx, func(tx *Tx) error {
		if err := tx.CreateBlob(Blob{Hash: blob, State: BlobPending, Thumb: thumb}); err != nil {
			return err
		}
		if err := tx.PutPendingScan(blob, &SealedKey{Enc: []byte{1}, Sealed: []byte{2}}); err != nil {
			return err
		}
		return tx.CreateFile(File{ID: "f1", Owner: "u1", Size: 100, Hash: blob})
	})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		k, err := tx.PendingScan(blob)
		if err != nil || string(k.Enc) != "\x01" || string(k.Sealed) != "\x02" {
			t.Errorf("sealed key %+v %v", k, err)
		}
		return nil
	})
	var freed []string
	err = db.Update(ctx, func(tx *Tx) error {
		var err error
		_, freed, err = tx.SetBlobState(blob, BlobQuarantined, "infected", "EICAR", false)
		return err
	})
	if err != nil || !slices.Equal(freed, []string{thumb}) {
		t.Fatalf("freed %v %v", freed, err)
	}
	db.View(func(tx *Tx) error {
		b, _ := tx.Blob(blob)
		_, perr := tx.PendingScan(blob)
		if b.State != BlobQuarantined || b.Code != "infected" || b.Thumb != "" || !errors.Is(perr, ErrNotFound) || tx.UserFileBytes("u1") != 0 {
			t.Errorf("after quarantine: %+v %v usage %d", b, perr, tx.UserFileBytes("u1"))
		}
		return nil
	})
	if err := db.Update(ctx, func(tx *Tx) error { _, err := tx.Blob("zz"); return err }); !errors.Is(err, ErrBadHash) {
		t.Fatalf("malformed hash: %v", err)
	}
}
