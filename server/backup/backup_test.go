package backup_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/backup"
	"relais/server/client"
	"relais/server/config"
	"relais/server/media/mediatest"
	"relais/server/proto"
	"relais/server/store"
)

const passphrase = "Bureau-du-maire-2026"

// served is a node with content: a forum with messages and a file.
type served struct {
	n     *nodetest.Node
	alice *client.Client
	room  string
	file  proto.File
	msgs  []string
}

func serve(t *testing.T) *served {
	t.Helper()
	ctx := context.Background()
	s := &served{n: nodetest.Start(t)}
	s.alice = s.n.NewUser("Alice Martin")
	conn := nodetest.Synced(t, ctx, s.alice)
	s.room = nodetest.Forum(t, ctx, conn, "Conseil municipal")
	for i := range 30 {
		body := fmt.Sprintf("point %d de l'ordre du jour", i)
		if _, err := conn.Send(ctx, conn.NextID(), s.room, body); err != nil {
			t.Fatal(err)
		}
		s.msgs = append(s.msgs, body)
	}
	var err error
	s.file, err = s.alice.UploadFile(ctx, proto.UploadRequest{Room: s.room, Name: "odj.pdf", Type: "application/pdf"}, mediatest.PDF("Ordre du jour", 200<<10), 0)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *served) data() string { return filepath.Dir(s.n.DB.Path()) }

func create(t *testing.T, data, file string, pass string) backup.Checked {
	t.Helper()
	var key []byte
	if pass != "" {
		key = []byte(pass)
	}
	var progress bytes.Buffer
	c, err := backup.Create(context.Background(), backup.CreateOptions{Data: data, File: file, Passphrase: key, WorkFactor: 10,
		Progress: backup.NewProgress(&progress, false, "backup", 0)})
	if err != nil {
		t.Fatalf("backup: %v", err)
	}
	if !strings.Contains(progress.String(), "backup: ") {
		t.Errorf("no progress reported: %q", progress.String())
	}
	return c
}

func restore(file, data string, force bool, pass string) (backup.Restored, error) {
	return backup.Restore(context.Background(), backup.RestoreOptions{File: file, Data: data, Force: force,
		Passphrase: func() ([]byte, error) { return []byte(pass), nil }})
}

// TestBackupAndRestoreOfAServingNode: an encrypted backup of a serving
// node restores into a node that has its accounts, messages and files.
func TestBackupAndRestoreOfAServingNode(t *testing.T) {
	s := serve(t)
	file := filepath.Join(t.TempDir(), "relais.backup")
	c := create(t, s.data(), file, passphrase)
	if !c.Encrypted || c.Blobs() != 1 || c.About.Node != s.n.DB.Node() || c.About.Schema != store.SchemaVersion() {
		t.Fatalf("archive: encrypted %v, %d blobs, about %+v", c.Encrypted, c.Blobs(), c.About)
	}
	if _, err := os.Stat(file + ".partial"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the partial file is left: %v", err)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	r, err := restore(file, restored, false, passphrase)
	if err != nil {
		t.Fatal(err)
	}
	if r.Aside != "" {
		t.Errorf("a new directory was put aside: %s", r.Aside)
	}
	if fi, err := os.Stat(restored); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("restored directory: %v %v", fi, err)
	}

	m := nodetest.Start(t, nodetest.WithConfig(func(c *config.Config) { c.Data = restored }))
	if m.DB.Node() != s.n.DB.Node() {
		t.Errorf("the restored node is %s, not %s", m.DB.Node(), s.n.DB.Node())
	}
	if err := m.DB.CheckConsistency(nil); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	alice := m.Client()
	if err := alice.Login(ctx, s.alice.Me.Email, nodetest.Password); err != nil {
		t.Fatalf("login on the restored node: %v", err)
	}
	conn := nodetest.Synced(t, ctx, alice)
	var page struct {
		Events []struct {
			Body string `json:"body"`
		} `json:"events"`
	}
	if err := conn.Call(ctx, proto.THistory, map[string]any{"room": s.room, "after": 0, "limit": 100}, &page); err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, e := range page.Events {
		if e.Body != "" {
			bodies = append(bodies, e.Body)
		}
	}
	if strings.Join(bodies, "|") != strings.Join(s.msgs, "|") {
		t.Fatalf("restored messages:\n%q\nwant\n%q", bodies, s.msgs)
	}
	resp, err := alice.Download(ctx, s.file.ID, false, nil)
	if err != nil {
		t.Fatalf("download the file on the restored node: %v", err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, mediatest.PDF("Ordre du jour", 200<<10)) {
		t.Fatalf("the restored file has %d bytes, not the uploaded ones", len(got))
	}
}

// TestEncryptedBackupRefusesWrongPassphraseAndChanges: a wrong passphrase,
// a flipped byte anywhere and a cut file are each refused with their
// error, and the restore changes nothing.
func TestEncryptedBackupRefusesWrongPassphraseAndChanges(t *testing.T) {
	s := serve(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "relais.backup")
	create(t, s.data(), file, passphrase)
	good, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	variant := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	flip := func(at int) []byte {
		b := bytes.Clone(good)
		b[at] ^= 0x20
		return b
	}
	cases := []struct {
		name string
		file string
		pass string
		want error
	}{
		{"wrong passphrase", file, "Bureau-du-maire-2025", backup.ErrWrongPassphrase},
		{"no passphrase", file, "", backup.ErrNeedPassphrase},
		{"flipped salt", variant("salt", flip(20)), passphrase, backup.ErrWrongPassphrase},
		{"flipped first chunk", variant("first", flip(100)), passphrase, backup.ErrDamaged},
		{"flipped middle", variant("middle", flip(len(good)/2)), passphrase, backup.ErrDamaged},
		{"flipped last byte", variant("last", flip(len(good)-1)), passphrase, backup.ErrDamaged},
		{"cut", variant("cut", good[:len(good)-len(good)%(64<<10+16)-1]), passphrase, backup.ErrDamaged},
		{"cut at a chunk boundary", variant("cut-boundary", good[:77+2*(64<<10+16)]), passphrase, backup.ErrTruncated},
		{"header only", variant("header", good[:77]), passphrase, backup.ErrTruncated},
		{"not an archive", variant("other", []byte("%PDF-1.7 not a backup")), passphrase, backup.ErrNotArchive},
	}
	parent := t.TempDir()
	target := filepath.Join(parent, "data")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var pass func() ([]byte, error)
			if c.pass != "" {
				pass = func() ([]byte, error) { return []byte(c.pass), nil }
			} else {
				pass = func() ([]byte, error) { return nil, backup.ErrNeedPassphrase }
			}
			_, err := backup.Restore(context.Background(), backup.RestoreOptions{File: c.file, Data: target, Passphrase: pass})
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			// Nothing changed: no data directory, no leftover.
			if left, _ := os.ReadDir(parent); len(left) != 0 {
				t.Fatalf("a refused restore left %v", left)
			}
			if _, err := backup.Verify(context.Background(), c.file, pass); !errors.Is(err, c.want) {
				t.Fatalf("Verify: got %v, want %v", err, c.want)
			}
		})
	}
}

// TestRestoreKeepsANonEmptyDirectory: a restore over a directory that
// holds something is refused without --force and, with it, keeps the
// directory aside as it was.
func TestRestoreKeepsANonEmptyDirectory(t *testing.T) {
	s := serve(t)
	file := filepath.Join(t.TempDir(), "plain.backup")
	create(t, s.data(), file, "")
	target := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(filepath.Join(target, "media"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "relais.db"), []byte("the town's old store"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := restore(file, target, false, ""); !errors.Is(err, backup.ErrNotEmpty) {
		t.Fatalf("restore over a non-empty directory without --force: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(target, "relais.db")); string(b) != "the town's old store" {
		t.Fatalf("the refused restore changed the directory: %q", b)
	}
	if left, _ := os.ReadDir(filepath.Dir(target)); len(left) != 1 {
		t.Fatalf("the refused restore left %v", left)
	}
	r, err := restore(file, target, true, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.Aside, target+".before-restore-") {
		t.Fatalf("kept aside as %q", r.Aside)
	}
	if b, _ := os.ReadFile(filepath.Join(r.Aside, "relais.db")); string(b) != "the town's old store" {
		t.Fatalf("the directory kept aside is not the old one: %q", b)
	}
	if err := store.Check(filepath.Join(target, "relais.db")); err != nil {
		t.Fatalf("the restored store: %v", err)
	}
	if _, err := os.Stat(filepath.Join(target, "media", "blobs", s.blobHash()[:2], s.blobHash())); err != nil {
		t.Fatalf("the restored media file: %v", err)
	}

	// A restore into the directory of a running node is refused even
	// with --force.
	if _, err := restore(file, s.data(), true, ""); !errors.Is(err, backup.ErrRunning) {
		t.Fatalf("restore over a running node: %v", err)
	}
}

func (s *served) blobHash() string {
	var h string
	s.n.DB.View(func(tx *store.Tx) error {
		f, err := tx.File(s.file.ID)
		h = f.Hash
		return err
	})
	return h
}

// TestPlainArchiveChecksEveryFile: a plain archive has no MAC, but every
// file's content is checked against the manifest, and the manifest must
// be there.
func TestPlainArchiveChecksEveryFile(t *testing.T) {
	s := serve(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "plain.backup")
	create(t, s.data(), file, "")
	good, _ := os.ReadFile(file)
	pdf := mediatest.PDF("Ordre du jour", 200<<10)
	at := bytes.Index(good, pdf[:64])
	if at < 0 {
		t.Fatal("the media file is not in the plain archive")
	}
	altered := bytes.Clone(good)
	altered[at+1000] ^= 1
	os.WriteFile(filepath.Join(dir, "altered"), altered, 0o600)
	os.WriteFile(filepath.Join(dir, "cut"), good[:at+1000], 0o600)
	os.WriteFile(filepath.Join(dir, "appended"), append(bytes.Clone(good), "and more"...), 0o600)
	for name, want := range map[string]error{"altered": backup.ErrDamaged, "cut": backup.ErrTruncated, "appended": backup.ErrDamaged} {
		if _, err := backup.Verify(context.Background(), filepath.Join(dir, name), nil); !errors.Is(err, want) {
			t.Errorf("%s: got %v, want %v", name, err, want)
		}
	}
}

// TestRestoreOfABareStoreFile: the bare store files that `relais backup`
// wrote before archives still restore.
func TestRestoreOfABareStoreFile(t *testing.T) {
	s := serve(t)
	file := filepath.Join(t.TempDir(), "old.db")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.n.DB.Backup(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	target := filepath.Join(t.TempDir(), "data")
	r, err := restore(file, target, false, "")
	if err != nil || !r.Legacy {
		t.Fatalf("restore of a bare store file: %+v %v", r, err)
	}
	db, err := store.Open(filepath.Join(target, "relais.db"), store.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Node() != s.n.DB.Node() {
		t.Fatal("another store")
	}
}

// TestRestoreGivesFilesTheDirectorysOwner: restored as root over the
// directory of a node that runs as its own user, the files are that
// user's, or the node could not open them.
func TestRestoreGivesFilesTheDirectorysOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		// The test machines run as root (as the packaging and doctor
		// tests need too): not being root is a broken setup, not a skip.
		t.Fatal("this test needs root: only root changes owners")
	}
	s := serve(t)
	file := filepath.Join(t.TempDir(), "plain.backup")
	create(t, s.data(), file, "")
	target := filepath.Join(t.TempDir(), "data")
	os.Mkdir(target, 0o700)
	os.WriteFile(filepath.Join(target, "relais.db"), []byte("old"), 0o600)
	const uid, gid = 4242, 4343
	if err := os.Chown(target, uid, gid); err != nil {
		t.Fatal(err)
	}
	if _, err := restore(file, target, true, ""); err != nil {
		t.Fatal(err)
	}
	n := 0
	filepath.WalkDir(target, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, _ := d.Info()
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != uid || st.Gid != gid {
			t.Errorf("%s belongs to %d:%d", p, st.Uid, st.Gid)
		}
		n++
		return nil
	})
	if n < 4 {
		t.Fatalf("only %d files restored", n)
	}
}

// TestBackupOfANodeMissingAFile: content already lost from the node's disk
// does not make every backup fail: the archive lists it as missing, and a
// restore accepts its absence (and only its).
func TestBackupOfANodeMissingAFile(t *testing.T) {
	s := serve(t)
	h := s.blobHash()
	if err := os.Remove(filepath.Join(s.data(), "media", "blobs", h[:2], h)); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "relais.backup")
	c := create(t, s.data(), file, "")
	if len(c.Manifest.Missing) != 1 || c.Manifest.Missing[0] != h || c.Blobs() != 0 {
		t.Fatalf("missing %v, %d blobs", c.Manifest.Missing, c.Blobs())
	}
	if _, err := restore(file, filepath.Join(t.TempDir(), "data"), false, ""); err != nil {
		t.Fatal(err)
	}
}

// TestRestoredNodeKeepsItsCertificateAuthority: the local CA is in the
// backup, so that the devices that trust or pin it keep reaching the
// restored node.
func TestRestoredNodeKeepsItsCertificateAuthority(t *testing.T) {
	local := nodetest.WithConfig(func(c *config.Config) { c.TLS = "local" })
	n := nodetest.Start(t, local)
	file := filepath.Join(t.TempDir(), "relais.backup")
	c := create(t, filepath.Dir(n.DB.Path()), file, passphrase)
	tlsFiles := 0
	for _, f := range c.Manifest.Files {
		if strings.HasPrefix(f.Path, "tls/") {
			tlsFiles++
		}
	}
	if tlsFiles == 0 {
		t.Fatalf("no TLS file in the archive: %+v", c.Manifest.Files)
	}
	restored := filepath.Join(t.TempDir(), "restored")
	if _, err := restore(file, restored, false, passphrase); err != nil {
		t.Fatal(err)
	}
	m := nodetest.Start(t, local, nodetest.WithConfig(func(c *config.Config) { c.Data = restored }))
	if m.TLS.CAFingerprint() != n.TLS.CAFingerprint() || m.TLS.SPKIPin() != n.TLS.SPKIPin() {
		t.Fatalf("the restored node's CA %s (pin %s) is not the original's %s (pin %s)",
			m.TLS.CAFingerprint(), m.TLS.SPKIPin(), n.TLS.CAFingerprint(), n.TLS.SPKIPin())
	}
}

// TestScannerKeyTravels: the antivirus's key for encrypted files is in the
// backup: without it the restored node could not scan the files sealed to
// it.
func TestScannerKeyTravels(t *testing.T) {
	s := serve(t)
	key := []byte("stands for the HPKE private key")
	if err := os.WriteFile(filepath.Join(s.data(), "media", "scanner.key"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "relais.backup")
	create(t, s.data(), file, "")
	restored := filepath.Join(t.TempDir(), "restored")
	if _, err := restore(file, restored, false, ""); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(restored, "media", "scanner.key")); err != nil || !bytes.Equal(b, key) {
		t.Fatalf("restored scanner key %q %v", b, err)
	}
}

// TestRestoreIntoAMountPoint: a data directory that is a file system of
// its own (a disk mounted at /var/lib/relais) cannot be renamed: the
// restore swaps the entries inside it and keeps the old ones in
// DIR/before-restore-<time>, leaving lost+found alone.
func TestRestoreIntoAMountPoint(t *testing.T) {
	s := serve(t)
	file := filepath.Join(t.TempDir(), "relais.backup")
	create(t, s.data(), file, "")
	target := filepath.Join(t.TempDir(), "data")
	os.Mkdir(target, 0o700)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64m", "relais-test", target).CombinedOutput(); err != nil {
		t.Fatalf("mounting a tmpfs (needs root, as the doctor test): %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", target).Run() })
	os.Mkdir(filepath.Join(target, "lost+found"), 0o700)
	if _, err := restore(file, target, false, ""); err != nil {
		t.Fatalf("restore into an empty mounted directory (but lost+found): %v", err)
	}
	if err := store.Check(filepath.Join(target, "relais.db")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(target, "relais.db"), []byte("the town's old store"), 0o600)
	if _, err := restore(file, target, false, ""); !errors.Is(err, backup.ErrNotEmpty) {
		t.Fatalf("without --force: %v", err)
	}
	r, err := restore(file, target, true, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.Aside, filepath.Join(target, "before-restore-")) {
		t.Fatalf("kept aside as %q", r.Aside)
	}
	if b, _ := os.ReadFile(filepath.Join(r.Aside, "relais.db")); string(b) != "the town's old store" {
		t.Fatalf("kept aside: %q", b)
	}
	if err := store.Check(filepath.Join(target, "relais.db")); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(target)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "before-restore-"+strings.TrimPrefix(r.Aside, filepath.Join(target, "before-restore-"))+" lost+found media relais.db" {
		t.Fatalf("the mounted directory holds %v", names)
	}
	var in, parent syscall.Stat_t
	syscall.Stat(target, &in)
	syscall.Stat(filepath.Dir(target), &parent)
	if in.Dev == parent.Dev {
		t.Fatal("the data directory is no longer the mount point")
	}
}
