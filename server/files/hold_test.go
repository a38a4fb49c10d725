package files_test

import (
	"fmt"
	"testing"
	"time"

	"relais/cluster/nodetest"
)

// TestBackupHoldKeepsDeletedContent: while a backup holds removals, the
// content of a file deleted after the backup's snapshot stays on disk for
// the backup to copy; the release removes it.
func TestBackupHoldKeepsDeletedContent(t *testing.T) {
	n := startNode(t, nil)
	alice := newPeer(t, n, "Alice Martin")
	room := forum(t, alice)
	f := upload(t, alice.c, room, "odj.pdf", tinyPDF("Ordre du jour", 8<<10), 0)
	hash := blobOf(t, n, f.ID)
	ack := alice.postFile(room, f.ID, "")

	release := n.Files.HoldRemovals()
	second := n.Files.HoldRemovals()
	if _, code := alice.send(map[string]any{"room": room, "type": "delete", "target": ack.Seq}); code != "" {
		t.Fatalf("delete: %s", code)
	}
	// The deletion is committed once acked; its removal is queued to the
	// remover and, held, must not happen. A housekeeping sweep (which
	// removes blobs without records) must not remove it either.
	if err := n.Files.Housekeep(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if !exists(blobPath(n, hash)) {
		t.Fatal("content removed while a backup holds removals")
	}
	release()
	release() // a second call of one release is harmless
	if !exists(blobPath(n, hash)) {
		t.Fatal("content removed while a second backup still holds removals")
	}
	second()
	nodetest.CheckFor(t, 5*time.Second, func() error {
		if exists(blobPath(n, hash)) {
			return fmt.Errorf("the content of the deleted file is still on disk after the release")
		}
		return nil
	})
}
