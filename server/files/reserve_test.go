package files

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"relais/server/blob"
	"relais/server/id"
	"relais/server/media"
	"relais/server/proto"
	"relais/server/store"
	"relais/server/store/storetest"
)

// uploadsOnly is the part of a Service that records uploads: a real bbolt
// store and a real blob store, no chat, no accounts.
func uploadsOnly(t *testing.T, quota, maxFile int64) *Service {
	t.Helper()
	db := storetest.Open(t)
	b, err := blob.Open(filepath.Join(t.TempDir(), "media"), blob.Options{MaxFileSize: maxFile})
	if err != nil {
		t.Fatal(err)
	}
	return &Service{db: db, blobs: b, policy: &media.Policy{}, cfg: Config{UserQuota: quota}, log: slog.New(slog.DiscardHandler)}
}

// TestCheckUploadRefuses: what Begin refuses before it records anything
// (moved here with the checks from media.Store.Begin), with its code.
func TestCheckUploadRefuses(t *testing.T) {
	s := uploadsOnly(t, 0, 10<<20)
	for _, c := range []struct {
		name string
		req  proto.UploadRequest
		code string
	}{
		{"negative size", proto.UploadRequest{Name: "a.txt", Size: -1}, proto.CodeBadRequest},
		{"over the limit", proto.UploadRequest{Name: "a.txt", Size: 100 << 20}, proto.CodeTooLarge},
		{"bad declared type", proto.UploadRequest{Name: "a.txt", Size: 1, Type: "text/"}, proto.CodeBadRequest},
		{"executable name", proto.UploadRequest{Name: "setup.exe", Size: 1}, proto.CodeBlockedType},
		{"double extension", proto.UploadRequest{Name: "facture.pdf.exe", Size: 1}, proto.CodeBlockedType},
		{"trailing dot and space", proto.UploadRequest{Name: "run.bat. .", Size: 1}, proto.CodeBlockedType},
		{"bidi override hides .exe", proto.UploadRequest{Name: "factu\u202Eexe.pdf\u202C.exe", Size: 1}, proto.CodeBlockedType},
		{"path to a script", proto.UploadRequest{Name: `C:\Users\x\evil.VBS`, Size: 1}, proto.CodeBlockedType},
		{"blocked declared type", proto.UploadRequest{Name: "a.txt", Size: 1, Type: "application/x-msdownload"}, proto.CodeBlockedType},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := s.checkUpload(c.req, false)
			if code := codeOf(err); code != c.code {
				t.Fatalf("checkUpload: %v (code %q), want code %q", err, code, c.code)
			}
		})
	}
	// An encrypted room's declared type is the ciphertext's: dropped, so a
	// blocked one is no reason to refuse, and none is kept.
	if _, declared, err := s.checkUpload(proto.UploadRequest{Name: "a.bin", Size: 1, Type: "application/x-msdownload"}, true); err != nil || declared != "" {
		t.Fatalf("encrypted room: type %q, %v", declared, err)
	}
	if entries := s.blobs.Partials(); len(entries) != 0 {
		t.Fatalf("refusals left partial uploads: %v", entries)
	}
}

// codeOf reads the stable code of an error as the HTTP layer does.
func codeOf(err error) string {
	if pe := proto.AsError(wireError(err)); pe != nil {
		return pe.Code
	}
	return ""
}

// TestUploadNamesNeverReachTheDisk: whatever the name, the record keeps
// its sanitized form and the disk only random ids and content hashes.
func TestUploadNamesNeverReachTheDisk(t *testing.T) {
	s := uploadsOnly(t, 0, 0)
	for _, name := range []string{
		"../../../etc/passwd", `..\..\windows\system32\drivers\etc\hosts`, "/etc/shadow",
		"a/../../b.txt", "....//....//x.txt", "\x00.txt", "CON", "nul.txt", ".htaccess", "",
		"%2e%2e%2fpasswd", "uploads", "blobs",
	} {
		kept, _, err := s.checkUpload(proto.UploadRequest{Name: name, Size: 3}, false)
		if err != nil {
			t.Fatalf("checkUpload(%q): %v", name, err)
		}
		if strings.ContainsAny(kept, `/\`+"\x00") || kept == ".." || kept != media.SanitizeName(name) {
			t.Errorf("%q kept as %q", name, kept)
		}
	}
}

// TestUploadQuota: the quota and the number of unfinished uploads are
// checked in the transaction that records the upload, unfinished uploads
// counting by their declared size; a chunk is refused when the quota no
// longer holds what is stored and reserved.
func TestUploadQuota(t *testing.T) {
	s := uploadsOnly(t, 1000, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	node := s.db.Node()
	alice, bob := id.NewUser(node), id.NewUser(node)
	room := id.NewRoom(node)
	record := func(owner string, size int64) (store.Upload, error) {
		up := store.Upload{ID: blob.NewUploadID(), Owner: owner, Room: room, Name: "f.txt", Size: size, Created: time.Now()}
		return up, s.db.Update(ctx, func(tx *store.Tx) error {
			if err := reserve(tx, up, s.cfg.UserQuota); err != nil {
				return err
			}
			return tx.PutUpload(up)
		})
	}
	forget := func(up store.Upload) {
		t.Helper()
		if err := s.db.Update(ctx, func(tx *store.Tx) error { return tx.DeleteUpload(up.ID) }); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		name  string
		owner string
		size  int64
		code  string
	}{
		{"over the quota at once", alice, 1001, proto.CodeQuotaExceeded},
		{"within it", alice, 600, ""},
		{"unfinished uploads count by declared size", alice, 500, proto.CodeQuotaExceeded},
		{"what is left", alice, 400, ""},
		{"someone else's quota is theirs", bob, 1000, ""},
	}
	var ups []store.Upload
	for _, st := range steps {
		up, err := record(st.owner, st.size)
		if codeOf(err) != st.code {
			t.Fatalf("%s: %v, want code %q", st.name, err, st.code)
		}
		if err == nil {
			ups = append(ups, up)
		}
	}
	// A file finished since takes room: alice's next chunk is refused.
	content := []byte("0123456789")
	sum := sha256.Sum256(content)
	hash := hex.EncodeToString(sum[:])
	if err := s.db.Update(ctx, func(tx *store.Tx) error {
		if err := tx.CreateBlob(store.Blob{Hash: hash, Size: 10, State: store.BlobClean, Created: time.Now()}); err != nil {
			return err
		}
		return tx.CreateFile(store.File{ID: id.NewFile(node), Owner: alice, Room: room, Name: "x", Size: 10, Hash: hash, Created: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.checkQuota(alice); codeOf(err) != proto.CodeQuotaExceeded {
		t.Fatalf("chunk over a quota filled since: %v", err)
	}
	if err := s.checkQuota(bob); err != nil {
		t.Fatalf("bob's chunk: %v", err)
	}
	// Cancelled uploads give their room back.
	forget(ups[0])
	forget(ups[1])
	if _, err := record(alice, 990); err != nil {
		t.Fatalf("after cancelling: %v", err)
	}

	// Too many unfinished uploads, quota or not.
	s.cfg.UserQuota = 0
	carol := id.NewUser(node)
	for i := range maxUploadsPerOwner {
		if _, err := record(carol, 1); err != nil {
			t.Fatalf("upload %d: %v", i, err)
		}
	}
	if _, err := record(carol, 1); codeOf(err) != proto.CodeTooManyUploads {
		t.Fatalf("upload %d: %v, want too_many_uploads", maxUploadsPerOwner+1, err)
	}
}

// TestBytesWithoutRecordAreDropped: the record is the upload; bytes on
// disk that no record names (a crash, or a node from before records came
// first) are deleted when the service opens, and those that one names
// stay.
func TestBytesWithoutRecordAreDropped(t *testing.T) {
	s := uploadsOnly(t, 0, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	kept := store.Upload{ID: blob.NewUploadID(), Owner: id.NewUser(s.db.Node()), Room: id.NewRoom(s.db.Node()), Size: 3, Created: time.Now()}
	if err := s.db.Update(ctx, func(tx *store.Tx) error { return tx.PutUpload(kept) }); err != nil {
		t.Fatal(err)
	}
	orphan := blob.NewUploadID()
	for _, up := range []string{kept.ID, orphan} {
		if _, err := s.blobs.Begin(up, kept.Room); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.dropOrphanPartials(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.blobs.Status(orphan); codeOf(err) != proto.CodeNotFound {
		t.Fatalf("bytes without a record: %v", err)
	}
	if _, err := s.blobs.Status(kept.ID); err != nil {
		t.Fatalf("bytes with a record: %v", err)
	}
}
