package files_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/files"
	"relais/server/node"
	"relais/server/proto"
	"relais/server/store"
)

// Deleting the message of a file deletes the file, and its content once no
// other file shares it; the same content uploaded several times is stored
// once.
func TestDeletingMessagesReleasesFiles(t *testing.T) {
	n := startNode(t, nil)
	alice := newPeer(t, n, "Alice Martin")
	bob := newPeer(t, n, "Bob Durand")
	room := forum(t, alice, bob)
	content := tinyPDF("Ordre du jour", 8<<10)

	f1 := upload(t, alice.c, room, "odj.pdf", content, 0)
	f2 := upload(t, alice.c, room, "odj (2).pdf", content, 0)
	f3 := upload(t, bob.c, room, "odj.pdf", content, 0)
	hash := blobOf(t, n, f1.ID)
	if blobOf(t, n, f2.ID) != hash || blobOf(t, n, f3.ID) != hash || len(mediaFiles(t, n, "blobs")) != 1 {
		t.Fatalf("the same content is not shared: %v", mediaFiles(t, n, "blobs"))
	}
	if used := usage(t, n, alice.id()); used != 2*int64(len(content)) {
		t.Fatalf("alice's usage %d", used)
	}
	a1 := alice.postFile(room, f1.ID, "")
	a2 := alice.postFile(room, f2.ID, "")
	a3 := bob.postFile(room, f3.ID, "")

	del := func(p *peer, seq uint64) {
		t.Helper()
		if _, code := p.send(map[string]any{"room": room, "type": "delete", "target": seq}); code != "" {
			t.Fatalf("delete %d: %s", seq, code)
		}
	}
	del(alice, a1.Seq)
	_, err := bob.c.FileState(ctxT(t), f1.ID)
	wantCode(t, "the file of a deleted message", err, proto.CodeNotFound, http.StatusNotFound)
	fileState(t, bob.c, f2.ID, proto.FileClean)
	if got := download(t, bob.c, f2.ID); len(got) != len(content) || !exists(blobPath(n, hash)) {
		t.Fatal("deleting one message removed content another file has")
	}
	if used := usage(t, n, alice.id()); used != int64(len(content)) {
		t.Fatalf("alice's usage after the deletion %d", used)
	}
	del(alice, a2.Seq)
	del(bob, a3.Seq)
	nodetest.CheckFor(t, 5*time.Second, func() error {
		if exists(blobPath(n, hash)) {
			return fmt.Errorf("the blob of deleted messages is still on disk: %s", blobPath(n, hash))
		}
		return nil
	})
	if h := bob.history(room)[a3.Seq]; !h.Deleted || h.File != nil {
		t.Fatalf("tombstone %+v", h)
	}

	// A picture's thumbnail goes with it.
	pic := upload(t, alice.c, room, "photo.png", picturePNG(t, 400, 300), 0)
	if !pic.Thumb || len(mediaFiles(t, n, "blobs")) != 2 {
		t.Fatalf("picture %+v, blobs %v", pic, mediaFiles(t, n, "blobs"))
	}
	ap := alice.postFile(room, pic.ID, "")
	del(alice, ap.Seq)
	nodetest.CheckFor(t, 5*time.Second, func() error {
		if left := mediaFiles(t, n, "blobs"); len(left) != 0 {
			return fmt.Errorf("blobs left: %v", left)
		}
		return nil
	})
}

// The retention sweep deletes files never posted, abandoned uploads and
// content without a record; the sweep at start catches what a crash left.
func TestHousekeeping(t *testing.T) {
	n := startNode(t, nil, nodetest.WithOptions(func(o *node.Options) {
		o.Files = files.Tuning{UnpostedTTL: 200 * time.Millisecond, UploadTTL: 200 * time.Millisecond}
	}))
	alice := newPeer(t, n, "Alice Martin")
	room := forum(t, alice)
	ctx := ctxT(t)

	unposted := upload(t, alice.c, room, "brouillon.pdf", tinyPDF("Brouillon", 1<<10), 0)
	posted := upload(t, alice.c, room, "final.pdf", tinyPDF("Final", 1<<10), 0)
	alice.postFile(room, posted.ID, "")
	up, err := alice.c.BeginUpload(ctx, proto.UploadRequest{Room: room, Name: "abandon.pdf", Size: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.c.PutChunk(ctx, up.ID, 0, bytesReader(make([]byte, 100)), 100); err != nil {
		t.Fatal(err)
	}
	unpostedBlob := blobPath(n, blobOf(t, n, unposted.ID))

	nodetest.CheckFor(t, 10*time.Second, func() error {
		if err := n.Files.Housekeep(context.Background()); err != nil {
			t.Fatal(err)
		}
		_, err := alice.c.FileState(ctx, unposted.ID)
		code, _ := codeOf(t, err)
		_, err = alice.c.UploadStatus(ctx, up.ID)
		code2, _ := codeOf(t, err)
		if code != proto.CodeNotFound || code2 != proto.CodeNotFound {
			return fmt.Errorf("the unposted file answers %q, the abandoned upload %q: want both %q", code, code2, proto.CodeNotFound)
		}
		return nil
	})
	_, err = alice.c.UploadStatus(ctx, up.ID)
	wantCode(t, "an abandoned upload", err, proto.CodeNotFound, http.StatusNotFound)
	if exists(unpostedBlob) || len(mediaFiles(t, n, "uploads")) != 0 || uploadRecords(t, n) != 0 {
		t.Fatalf("left behind: blob %v, uploads %v, %d upload records", exists(unpostedBlob), mediaFiles(t, n, "uploads"), uploadRecords(t, n))
	}
	fileState(t, alice.c, posted.ID, proto.FileClean)

	// Content written to disk whose record never committed (a crash
	// between the two) is removed by the sweep at start.
	orphan := []byte("contenu orphelin")
	sum := sha256.Sum256(orphan)
	hash := hex.EncodeToString(sum[:])
	p := blobPath(n, hash)
	os.MkdirAll(filepath.Dir(p), 0o700)
	if err := os.WriteFile(p, orphan, 0o600); err != nil {
		t.Fatal(err)
	}
	n.Restart()
	nodetest.CheckFor(t, 5*time.Second, func() error {
		if exists(p) {
			return fmt.Errorf("the orphaned blob survived the restart: %s", p)
		}
		return nil
	})
	if got := download(t, alice.c, posted.ID); len(got) == 0 {
		t.Fatal("the posted file is gone")
	}
}

func usage(t testing.TB, n *nodetest.Node, user string) int64 {
	var used int64
	n.DB.View(func(tx *store.Tx) error { used = tx.UserFileBytes(user); return nil })
	return used
}

func uploadRecords(t testing.TB, n *nodetest.Node) int {
	var ups []store.Upload
	if err := n.DB.View(func(tx *store.Tx) error {
		var err error
		ups, err = tx.Uploads()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return len(ups)
}
