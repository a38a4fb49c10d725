package files_test

import (
	"testing"

	"relais/server/media/clamd/clamdtest"
	"relais/server/proto"
)

// An outsider guesses a file that exists in a private group they are not
// in and uploads the same bytes into their own room: the answer must be
// the one of new content (checked and scanned again), not "clean" or
// "quarantined" at once, which would confirm the file exists elsewhere.
// The antivirus is held down during the guesses so that a fresh scan
// cannot end before the answer.
func TestGuessedFileInAnotherRoomIsNotAnsweredAtOnce(t *testing.T) {
	av := clamdtest.Start(t, clamdtest.Options{})
	n := startNode(t, av)
	alice := newPeer(t, n, "Alice Martin")
	bob := newPeer(t, n, "Bob Durand")
	private := group(t, alice, false, bob)
	mallory := newPeer(t, n, "Mallory Curieux")
	own := group(t, mallory, false)

	secret := tinyPDF("Liste des agents mutés en 2027", 16<<10)
	f := upload(t, alice.c, private, "mutations.pdf", secret, 0)
	fileState(t, alice.c, f.ID, proto.FileClean)
	e := upload(t, alice.c, private, "eicar.com.txt", clamdtest.EICAR(), 0)
	fileState(t, alice.c, e.ID, proto.FileQuarantined)

	av.Stop()
	for _, tc := range []struct {
		name    string
		content []byte
	}{
		{"clean file of another room", secret},
		{"quarantined file of another room", clamdtest.EICAR()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mallory.c.UploadFile(ctxT(t), uploadReq(own, "devine.bin"), tc.content, 0)
			if err != nil {
				t.Fatalf("the guess is answered %v, not as new content", err)
			}
			if got.State != proto.FilePending {
				t.Fatalf("the guess is answered %q at once, want %q as any new content", got.State, proto.FilePending)
			}
		})
	}
	// Within one room the content is still shared and not scanned again.
	again := upload(t, bob.c, private, "copie.pdf", secret, 0)
	if again.State != proto.FileClean || blobOf(t, n, again.ID) != blobOf(t, n, f.ID) {
		t.Fatalf("same content in the same room: %q, shared %v", again.State, blobOf(t, n, again.ID) == blobOf(t, n, f.ID))
	}
}
