package files_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/config"
	"relais/server/media"
	"relais/server/media/clamd/clamdtest"
	"relais/server/mls"
	"relais/server/mls/mlsframe"
	"relais/server/proto"
)

// Files of end-to-end encrypted rooms, on a node that scans them: the
// client encrypts the file ("relais file v1") and seals its key to the
// node's scanner key; the node opens it in memory only, quarantines EICAR,
// passes a clean file, and keeps no plaintext anywhere in its data.
func TestEncryptedRoomScanning(t *testing.T) {
	av := clamdtest.Start(t, clamdtest.Options{})
	n := startNode(t, av, nodetest.WithConfig(func(c *config.Config) { c.ScanEncrypted = true }))
	alice := newPeer(t, n, "Alice Martin")
	bob := newPeer(t, n, "Bob Durand")
	room := mlsGroup(t, alice, bob)
	ctx := ctxT(t)

	key, err := alice.c.ScannerKey(ctx)
	if err != nil || !key.Enabled || len(key.PublicKey) != 1216 || key.Suite.KEM != 0x647a || key.Suite.KDF != 1 || key.Suite.AEAD != 2 {
		t.Fatalf("scanner key: %+v %v", key, err)
	}
	// seal encrypts plain with a fresh file key and seals that key (or,
	// when wrong, another one) to the scanner key.
	seal := func(plain []byte, wrong bool) ([]byte, *proto.SealedKey, []byte) {
		fileKey := media.NewFileKey()
		var ct bytes.Buffer
		if err := media.EncryptFile(&ct, bytes.NewReader(plain), fileKey); err != nil {
			t.Fatal(err)
		}
		sealedKey := fileKey
		if wrong {
			sealedKey = media.NewFileKey()
		}
		enc, sealed, err := media.SealFileKey(key.PublicKey, sealedKey)
		if err != nil {
			t.Fatal(err)
		}
		return ct.Bytes(), &proto.SealedKey{Enc: enc, Sealed: sealed}, fileKey
	}
	send := func(name string, ct []byte, sk *proto.SealedKey) (proto.File, error) {
		return alice.c.UploadFile(ctx, proto.UploadRequest{Room: room, Name: name, Encrypted: sk}, ct, 64<<10)
	}

	marker := unique("texte en clair")
	plain := tinyPDF(string(marker), 150<<10)
	ct, sk, fileKey := seal(plain, false)
	f, err := send("fichier", ct, sk)
	if err != nil {
		t.Fatal(err)
	}
	if f.State != proto.FilePending || f.Name != "" || f.Mime != "" || f.Size != int64(len(ct)) {
		t.Fatalf("encrypted file = %+v", f)
	}
	// Posted inside an MLS application message, with the file's id in
	// clear so that the node can report the scan and keep the file.
	ack, code := alice.send(map[string]any{"room": room, "type": "encrypted",
		"data": b64(mlsframe.Application(room, 1, []byte("ciphertext"))), "file": map[string]any{"id": f.ID}})
	if code != "" {
		t.Fatalf("posting the encrypted file: %s", code)
	}
	ev := bob.event("the encrypted file event", room, func(ev proto.Event) bool { return ev.Seq == ack.Seq })
	if ev.File == nil || ev.File.ID != f.ID || ev.File.Name != "" {
		t.Fatalf("event %+v", ev)
	}
	fileState(t, bob.c, f.ID, proto.FileClean)
	if ev.File.State == proto.FilePending {
		bob.event("file_state clean", room, func(e proto.Event) bool {
			return e.Type == proto.EvFileState && e.Target == ack.Seq && e.File.State == proto.FileClean
		})
	}
	got := download(t, bob.c, f.ID)
	var dec bytes.Buffer
	if err := media.DecryptFile(&dec, bytes.NewReader(got), int64(len(got)), fileKey); err != nil || !bytes.Equal(dec.Bytes(), plain) {
		t.Fatalf("bob's copy does not decrypt to the file: %v", err)
	}

	// Deleting an encrypted message deletes the file it referred to.
	gct, gsk, _ := seal(tinyPDF(string(marker), 2<<10), false)
	g, err := send("fichier", gct, gsk)
	if err != nil {
		t.Fatal(err)
	}
	gblob := blobPath(n, blobOf(t, n, g.ID))
	gack, code := alice.send(map[string]any{"room": room, "type": "encrypted",
		"data": b64(mlsframe.Application(room, 1, []byte("ciphertext"))), "file": map[string]any{"id": g.ID}})
	if code != "" {
		t.Fatalf("posting: %s", code)
	}
	if _, code := alice.send(map[string]any{"room": room, "type": "delete", "target": gack.Seq}); code != "" {
		t.Fatalf("deleting the encrypted message: %s", code)
	}
	_, err = bob.c.FileState(ctx, g.ID)
	wantCode(t, "the file of a deleted encrypted message", err, proto.CodeNotFound, http.StatusNotFound)
	nodetest.CheckFor(t, 5*time.Second, func() error {
		if exists(gblob) {
			return fmt.Errorf("the encrypted blob is still on disk: %s", gblob)
		}
		return nil
	})

	// EICAR inside an encrypted file.
	ect, esk, _ := seal(clamdtest.EICAR(), false)
	e, err := send("fichier", ect, esk)
	if err != nil {
		t.Fatal(err)
	}
	alice.frame("the EICAR verdict", proto.TFileState, func(raw json.RawMessage) bool {
		var fr proto.FileStateFrame
		json.Unmarshal(raw, &fr)
		return fr.File.ID == e.ID && fr.File.State == proto.FileQuarantined && fr.File.Code == proto.CodeInfected
	})
	_, err = alice.c.Download(ctx, e.ID, false, nil)
	wantCode(t, "the encrypted EICAR", err, proto.CodeQuarantined, http.StatusGone)

	// A key that opens but does not decrypt the file: quarantined.
	wct, wsk, _ := seal(tinyPDF(string(unique("mauvaise clé")), 1<<10), true)
	w, err := send("fichier", wct, wsk)
	if err != nil {
		t.Fatal(err)
	}
	if info := fileState(t, alice.c, w.ID, proto.FileQuarantined); info.File.Code != proto.CodeUndecryptable {
		t.Fatalf("wrong key: %+v", info.File)
	}

	// Refused at once: a sealed key that does not open, no sealed key,
	// a file in clear.
	_, err = send("fichier", ct, &proto.SealedKey{Enc: bytes.Repeat([]byte{1}, 1120), Sealed: bytes.Repeat([]byte{2}, 48)})
	wantCode(t, "a sealed key that does not open", err, proto.CodeUndecryptable, http.StatusUnprocessableEntity)
	_, err = send("fichier", ct, nil)
	wantCode(t, "no sealed key", err, proto.CodeBadRequest, http.StatusBadRequest)
	clear := append([]byte(nil), plain...)
	_, err = send("fichier.pdf", clear, sk)
	wantCode(t, "a file in clear", err, proto.CodeNotEncrypted, http.StatusBadRequest)

	// Nothing the node keeps holds plaintext: not the media directory, not
	// the store, not the scanner's leftovers.
	data := filepath.Dir(n.Files.Blobs().Dir())
	n.Stop() // the store file is complete on disk
	checked := 0
	err = filepath.WalkDir(data, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		for _, secret := range [][]byte{marker, clamdtest.EICAR(), plain[:64]} {
			if bytes.Contains(b, secret) {
				t.Errorf("%s holds plaintext %.20q", path, secret)
			}
		}
		return nil
	})
	if err != nil || checked < 3 || !bytes.Contains(plain, marker) {
		t.Fatalf("checked %d files: %v", checked, err)
	}
}

// Without --scan-encrypted, files of encrypted rooms are not scanned (the
// node cannot open them): their state says so, and members download them.
func TestEncryptedRoomUnscanned(t *testing.T) {
	av := clamdtest.Start(t, clamdtest.Options{})
	n := startNode(t, av)
	alice := newPeer(t, n, "Alice Martin")
	room := group(t, alice, true)
	ctx := ctxT(t)
	if key, err := alice.c.ScannerKey(ctx); err != nil || key.Enabled || key.PublicKey != nil {
		t.Fatalf("scanner key: %+v %v", key, err)
	}
	var ct bytes.Buffer
	media.EncryptFile(&ct, bytes.NewReader(clamdtest.EICAR()), media.NewFileKey())
	f, err := alice.c.UploadFile(ctx, proto.UploadRequest{Room: room, Name: "fichier"}, ct.Bytes(), 0)
	if err != nil || f.State != proto.FileUnscanned {
		t.Fatalf("upload: %+v %v", f, err)
	}
	if got := download(t, alice.c, f.ID); !bytes.Equal(got, ct.Bytes()) {
		t.Fatal("download differs")
	}
	if exists(filepath.Join(n.Files.Blobs().Dir(), "scanner.key")) {
		t.Fatal("a scanner key was created although scanning is off")
	}
}

// mlsGroup creates an encrypted group of owner with the members joined
// and publishes its MLS group (epoch 1), with messages whose framing is
// valid and cryptography random (mlsframe).
func mlsGroup(t testing.TB, owner *peer, members ...*peer) string {
	t.Helper()
	const suite = mls.CipherSuiteXWingAES256GCMSHA512Ed25519
	room := group(t, owner, true, members...)
	var users []string
	for _, p := range append([]*peer{owner}, members...) {
		ident, sig := proto.DeviceIdentity(p.id(), p.c.Me.Device), mlsframe.SignatureKey()
		var kps []string
		for range 3 {
			kps = append(kps, b64(mlsframe.ValidKeyPackage(suite, ident, sig)))
		}
		p.call("key_packages", map[string]any{"key_packages": kps[1:], "last_resort": kps[0]}, nil)
		if p != owner {
			users = append(users, p.id())
		}
	}
	fields := map[string]any{"room": room, "data": b64(mlsframe.PrivateCommit(room, 0)),
		"group_info": b64(mlsframe.GroupInfo(suite, room, 1))}
	if len(users) > 0 {
		var claim proto.Claim
		owner.call("claim_keys", map[string]any{"users": users}, &claim)
		var refs [][]byte
		for _, k := range claim.KeyPackages {
			kp, _ := base64.StdEncoding.DecodeString(k.KeyPackage)
			refs = append(refs, mlsframe.KeyPackageRef(kp))
		}
		fields["welcome"] = b64(mlsframe.Welcome(suite, refs...))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := owner.s.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := owner.s.NewID()
	fields["t"], fields["id"] = "mls", id
	if _, err := conn.Request(ctx, id, fields); err != nil {
		t.Fatalf("publishing the MLS group: %v", err)
	}
	return room
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
