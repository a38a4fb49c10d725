package media

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"relais/server/blob"
	"relais/server/media/clamd"
	"relais/server/media/clamd/clamdtest"
	"relais/server/media/mediatest"
)

// tinyPDF returns a valid one-page PDF saying text.
func tinyPDF(text string) []byte { return mediatest.PDF(text, 0) }

// pendingSet is the caller's side of the Retryer in tests: the states it
// would keep in its database.
type pendingSet struct {
	mu       sync.Mutex
	pending  map[string]bool
	resolved map[string]Outcome
}

func (p *pendingSet) add(hash string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pending[hash] = true
}

func (p *pendingSet) list(context.Context) ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var ids []string
	for id := range p.pending {
		ids = append(ids, id)
	}
	return ids, nil
}

func (p *pendingSet) resolve(_ context.Context, id string, o Outcome) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.pending, id)
	p.resolved[id] = o
	return nil
}

func (p *pendingSet) outcome(id string) (Outcome, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	o, ok := p.resolved[id]
	return o, ok
}

func TestPipelineWithClamd(t *testing.T) {
	srv := clamdtest.Start(t, clamdtest.Options{StreamMaxLength: 2 << 20})
	c := srv.Client()
	c.Timeout = 5 * time.Second
	s := openBlobs(t)
	p := &Pipeline{Clamd: c}
	ctx := t.Context()
	eicar := clamdtest.EICAR()

	scan := func(t *testing.T, name string, content []byte) (blob.Blob, Outcome) {
		t.Helper()
		b := putBlob(t, s, content)
		path, _ := s.Path(b.Hash)
		o, err := p.Scan(ctx, path)
		if err != nil {
			t.Fatalf("Scan(%s): %v", name, err)
		}
		return b, o
	}

	t.Run("eicar is quarantined", func(t *testing.T) {
		b, o := scan(t, "test.txt", eicar)
		if o.State != Quarantined || o.Code != CodeInfected || !strings.HasPrefix(o.Signature, clamdtest.SigEICARFile) {
			t.Fatalf("outcome %+v", o)
		}
		if s.Exists(b.Hash) {
			t.Error("quarantined blob still on disk")
		}
	})
	t.Run("eicar inside a zip is quarantined", func(t *testing.T) {
		b, o := scan(t, "archive.zip", zipOf(t, "docs/readme.txt", "hello", "docs/test.txt", eicar))
		if o.State != Quarantined || o.Code != CodeInfected {
			t.Fatalf("outcome %+v", o)
		}
		if s.Exists(b.Hash) {
			t.Error("quarantined blob still on disk")
		}
	})
	t.Run("clean pdf passes", func(t *testing.T) {
		b, o := scan(t, "compte-rendu.pdf", tinyPDF("Compte rendu du conseil municipal"))
		if o.State != Clean || b.ContentType != "application/pdf" {
			t.Fatalf("outcome %+v, blob %+v", o, b)
		}
		if !s.Exists(b.Hash) {
			t.Error("clean blob deleted")
		}
	})
	t.Run("policy refuses before clamd", func(t *testing.T) {
		_, o := scan(t, "facture.pdf", pe())
		if o.State != Quarantined || o.Code != CodeBlockedType {
			t.Fatalf("outcome %+v", o)
		}
	})
	t.Run("larger than clamd accepts", func(t *testing.T) {
		_, o := scan(t, "big.bin", mediatest.Random(3<<20, 5))
		if o.State != Quarantined || o.Code != CodeTooLarge {
			t.Fatalf("outcome %+v", o)
		}
	})

	t.Run("clamd down, then back", func(t *testing.T) {
		srv.Stop()
		set := &pendingSet{pending: map[string]bool{}, resolved: map[string]Outcome{}}
		clean, o := scan(t, "rapport.pdf", tinyPDF("Rapport annuel"))
		if o.State != Pending {
			t.Fatalf("clean file with clamd down: %+v", o)
		}
		set.add(clean.Hash)
		infected, o := scan(t, "notes.txt", append([]byte("notes\n"), eicar...))
		if o.State != Pending {
			t.Fatalf("infected file with clamd down: %+v", o)
		}
		set.add(infected.Hash)

		r := &Retryer{Pipeline: p, Blobs: s, Pending: set.list, Resolved: set.resolve, Every: 20 * time.Millisecond}
		if n, err := r.Pass(ctx); n != 0 || err != nil {
			t.Fatalf("Pass with clamd down = %d, %v", n, err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan error)
		go func() { done <- r.Run(rctx) }()
		defer func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		}()

		srv.Restart()
		r.Kick()
		deadline := time.Now().Add(20 * time.Second)
		for {
			oc, ok1 := set.outcome(clean.Hash)
			oi, ok2 := set.outcome(infected.Hash)
			if ok1 && ok2 {
				if oc.State != Clean {
					t.Errorf("clean file after clamd returned: %+v", oc)
				}
				if oi.State != Quarantined || oi.Code != CodeInfected || !strings.HasPrefix(oi.Signature, clamdtest.SigEICARBody) {
					t.Errorf("infected file after clamd returned: %+v", oi)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("pending files not resolved after clamd returned")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if !s.Exists(clean.Hash) || s.Exists(infected.Hash) {
			t.Errorf("after retry: clean exists %v, infected exists %v", s.Exists(clean.Hash), s.Exists(infected.Hash))
		}
	})

	t.Run("clamd down with reject", func(t *testing.T) {
		down := &clamd.Client{Network: "unix", Address: filepath.Join(t.TempDir(), "none.sock"), Timeout: time.Second}
		pr := &Pipeline{Clamd: down, OnClamdDown: Reject}
		b := putBlob(t, s, tinyPDF("rejected"))
		path, _ := s.Path(b.Hash)
		o, err := pr.Scan(ctx, path)
		if err != nil || o.State != Quarantined || o.Code != CodeScannerUnavailable {
			t.Fatalf("Scan = %+v, %v", o, err)
		}
		if s.Exists(b.Hash) {
			t.Error("rejected blob kept")
		}
	})

	t.Run("encrypted room", func(t *testing.T) {
		key, err := OpenScannerKey(filepath.Join(s.Dir(), ScannerKeyFile))
		if err != nil {
			t.Fatal(err)
		}
		encrypt := func(plain []byte) ([]byte, []byte, []byte) {
			fileKey := NewFileKey()
			var ct bytes.Buffer
			if err := EncryptFile(&ct, bytes.NewReader(plain), fileKey); err != nil {
				t.Fatal(err)
			}
			enc, sealed, err := SealFileKey(key.PublicKey(), fileKey)
			if err != nil {
				t.Fatal(err)
			}
			return ct.Bytes(), enc, sealed
		}
		// EICAR in the middle of a 300 KB file, across chunk boundaries.
		plain := append(append(bytes.Repeat([]byte("a"), 65530), eicar...), bytes.Repeat([]byte("b"), 240_000)...)
		ct, enc, sealed := encrypt(plain)
		b := putBlob(t, s, ct)
		path, _ := s.Path(b.Hash)
		o, err := p.ScanSealed(ctx, path, key, enc, sealed)
		if err != nil || o.State != Quarantined || o.Code != CodeInfected {
			t.Fatalf("encrypted EICAR: %+v, %v", o, err)
		}
		if s.Exists(b.Hash) {
			t.Error("quarantined encrypted blob kept")
		}

		ct, enc, sealed = encrypt(tinyPDF("Document confidentiel"))
		b = putBlob(t, s, ct)
		path, _ = s.Path(b.Hash)
		if o, err := p.ScanSealed(ctx, path, key, enc, sealed); err != nil || o.State != Clean {
			t.Fatalf("encrypted PDF: %+v, %v", o, err)
		}

		// A program inside is refused by the policy on the plaintext.
		ct, enc, sealed = encrypt(pe())
		b = putBlob(t, s, ct)
		path, _ = s.Path(b.Hash)
		if o, err := p.ScanSealed(ctx, path, key, enc, sealed); err != nil || o.Code != CodeBlockedType {
			t.Fatalf("encrypted PE: %+v, %v", o, err)
		}

		// A sealed key that is not for this file, or garbage.
		ct, _, _ = encrypt([]byte("hello"))
		_, enc2, sealed2 := encrypt([]byte("other"))
		b = putBlob(t, s, ct)
		path, _ = s.Path(b.Hash)
		if o, err := p.ScanSealed(ctx, path, key, enc2, sealed2); err != nil || o.Code != CodeUndecryptable {
			t.Fatalf("wrong key: %+v, %v", o, err)
		}
		b = putBlob(t, s, ct)
		path, _ = s.Path(b.Hash)
		if o, err := p.ScanSealed(ctx, path, key, enc2[:10], sealed2); err != nil || o.Code != CodeUndecryptable {
			t.Fatalf("garbage sealed key: %+v, %v", o, err)
		}

		// No plaintext reached the disk.
		filepath.WalkDir(s.Dir(), func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, _ := os.ReadFile(p)
			if bytes.Contains(b, eicar) || bytes.Contains(b, []byte("Document confidentiel")) {
				t.Errorf("plaintext found in %s", p)
			}
			return nil
		})
	})
}

func TestPipelineWithoutClamd(t *testing.T) {
	s := openBlobs(t)
	p := &Pipeline{}
	b := putBlob(t, s, []byte("texte"))
	path, _ := s.Path(b.Hash)
	if o, err := p.Scan(t.Context(), path); err != nil || o.State != Clean {
		t.Fatalf("Scan = %+v, %v", o, err)
	}
	if _, err := p.Scan(t.Context(), path+"x"); err == nil {
		t.Error("Scan(missing) = nil error")
	}
}
