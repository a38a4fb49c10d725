package blob

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"relais/server/media/mediatest"
)

func openStore(t *testing.T, opts Options) *Store {
	t.Helper()
	s, err := Open(t.TempDir(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// testUpload is a partial upload and the declared size its caller (the
// files service) would keep in its record.
type testUpload struct {
	ID   string
	size int64
}

// begin starts a partial upload of size bytes in scope.
func begin(s *Store, size int64, scope string) (testUpload, error) {
	p, err := s.Begin(NewUploadID(), scope)
	return testUpload{ID: p.ID, size: size}, err
}

// upload sends content in chunks of size chunk and finishes.
func upload(t *testing.T, s *Store, content []byte, chunk int) Blob {
	t.Helper()
	u, err := begin(s, int64(len(content)), "")
	if err != nil {
		t.Fatalf("Begin: %v", err)
	}
	off := int64(0)
	for off < int64(len(content)) || len(content) == 0 {
		end := min(off+int64(chunk), int64(len(content)))
		off, err = s.WriteChunk(t.Context(), u.ID, off, u.size, bytes.NewReader(content[off:end]))
		if err != nil {
			t.Fatalf("WriteChunk: %v", err)
		}
		if len(content) == 0 {
			break
		}
	}
	b, err := s.Finish(u.ID, u.size, "")
	if err != nil {
		t.Fatalf("Finish: %v", err)
	}
	return b
}

// entries lists the paths under dir, relative to it.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	if e := entries(t, dir); len(e) > 0 {
		t.Fatalf("%s not empty: %v", dir, e)
	}
}

func TestUploadRoundTrip(t *testing.T) {
	s := openStore(t, Options{})
	for _, tc := range []struct {
		name  string
		size  int
		chunk int
	}{
		{"empty", 0, 1},
		{"one byte", 1, 1},
		{"one chunk", 1000, 4096},
		{"many chunks", 300_000, 70_001},
		{"buffer-sized chunks", 3 * chunkBufSize, chunkBufSize},
	} {
		t.Run(tc.name, func(t *testing.T) {
			content := mediatest.Random(tc.size, uint64(tc.size))
			b := upload(t, s, content, tc.chunk)
			if b.Hash != sha(content) || b.Size != int64(tc.size) || b.Reused {
				t.Fatalf("Finish = %+v, want hash %s size %d", b, sha(content), tc.size)
			}
			p, _ := s.Path(b.Hash)
			got, err := os.ReadFile(p)
			if err != nil || !bytes.Equal(got, content) {
				t.Fatalf("blob content differs (%v)", err)
			}
			fi, _ := os.Stat(p)
			di, _ := os.Stat(filepath.Dir(p))
			if fi.Mode().Perm() != 0o600 || di.Mode().Perm() != 0o700 {
				t.Errorf("modes %v %v, want 0600 and 0700", fi.Mode(), di.Mode())
			}
			if !s.Exists(b.Hash) {
				t.Error("Exists = false")
			}
		})
	}
	assertEmpty(t, filepath.Join(s.Dir(), "uploads"))
}

// TestHostileUploadIDs: an id that is not one of NewUploadID's is just
// unknown, and Begin refuses to create it.
func TestHostileUploadIDs(t *testing.T) {
	s := openStore(t, Options{})
	for _, id := range []string{"../blobs", "..", "", "/etc", strings.Repeat("a", 32) + "/..", strings.Repeat("A", 32)} {
		if _, err := s.Status(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Status(%q) = %v", id, err)
		}
		if _, err := s.WriteChunk(t.Context(), id, 0, 1, strings.NewReader("x")); !errors.Is(err, ErrNotFound) {
			t.Errorf("WriteChunk(%q) = %v", id, err)
		}
		if _, err := s.Begin(id, ""); !errors.Is(err, ErrBadRequest) {
			t.Errorf("Begin(%q) = %v", id, err)
		}
	}
	assertEmpty(t, filepath.Join(s.Dir(), "uploads"))
}

func TestChunkReplayAndResume(t *testing.T) {
	s := openStore(t, Options{})
	content := mediatest.Random(100_000, 7)
	u, err := begin(s, int64(len(content)), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	off, err := s.WriteChunk(ctx, u.ID, 0, u.size, bytes.NewReader(content[:40_000]))
	if err != nil || off != 40_000 {
		t.Fatalf("first chunk: %d, %v", off, err)
	}
	// Replay, overlap and gap are refused with the offset to resume from.
	for _, start := range []int64{0, 20_000, 39_999, 40_001, 90_000} {
		off, err := s.WriteChunk(ctx, u.ID, start, u.size, bytes.NewReader(content[start:min(start+20_000, 100_000)]))
		var oe *OffsetError
		if !errors.As(err, &oe) || oe.Offset != 40_000 || off != 40_000 || Code(err) != "offset_mismatch" || !errors.Is(err, ErrOffset) {
			t.Fatalf("chunk at %d: %d, %v; want OffsetError at 40000", start, off, err)
		}
	}
	// A chunk cut by the network keeps what arrived.
	cut := &failingReader{r: bytes.NewReader(content[40_000:70_000]), after: 12_345}
	off, err = s.WriteChunk(ctx, u.ID, 40_000, u.size, cut)
	if !errors.Is(err, ErrInterrupted) || Code(err) != "interrupted" || off != 52_345 {
		t.Fatalf("cut chunk: %d, %v; want ErrInterrupted at 52345", off, err)
	}
	st, err := s.Status(u.ID)
	if err != nil || st.Offset != 52_345 {
		t.Fatalf("Status = %+v, %v", st, err)
	}
	// Finishing early is refused and keeps the upload.
	if _, err := s.Finish(u.ID, u.size, ""); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("early Finish = %v", err)
	}
	off, err = s.WriteChunk(ctx, u.ID, st.Offset, u.size, bytes.NewReader(content[st.Offset:]))
	if err != nil || off != 100_000 {
		t.Fatalf("resumed chunk: %d, %v", off, err)
	}
	b, err := s.Finish(u.ID, u.size, "")
	if err != nil || b.Hash != sha(content) {
		t.Fatalf("Finish = %+v, %v; want %s", b, err, sha(content))
	}
	// The finished upload is gone; a replay after Finish is not found.
	if _, err := s.WriteChunk(ctx, u.ID, 0, u.size, bytes.NewReader(content)); !errors.Is(err, ErrNotFound) {
		t.Errorf("chunk after Finish = %v", err)
	}
	if _, err := s.Finish(u.ID, u.size, ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Finish = %v", err)
	}
}

type failingReader struct {
	r     io.Reader
	after int
	n     int
}

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n >= f.after {
		return 0, io.ErrUnexpectedEOF
	}
	p = p[:min(len(p), f.after-f.n)]
	n, err := f.r.Read(p)
	f.n += n
	return n, err
}

// countingZeros yields zeros forever and counts what was read.
type countingZeros struct{ n int64 }

func (c *countingZeros) Read(p []byte) (int, error) {
	clear(p)
	c.n += int64(len(p))
	return len(p), nil
}

func TestWrongDeclaredSizes(t *testing.T) {
	const limit = 10 << 20
	s := openStore(t, Options{MaxFileSize: limit})
	ctx := t.Context()
	uploads := filepath.Join(s.Dir(), "uploads")

	t.Run("100 MB stream to a 10 MB limit", func(t *testing.T) {
		// Declared over the limit: refused before a byte is read (the
		// files service refuses it before recording the upload).
		over, err := begin(s, 100<<20, "")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.WriteChunk(ctx, over.ID, 0, over.size, &countingZeros{}); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("WriteChunk(declared 100 MB) = %v", err)
		}
		// Declared under the limit, then 100 MB sent: stopped one byte
		// past the declaration, the upload deleted.
		u, err := begin(s, limit, "")
		if err != nil {
			t.Fatal(err)
		}
		src := &countingZeros{}
		_, err = s.WriteChunk(ctx, u.ID, 0, u.size, io.LimitReader(src, 100<<20))
		if !errors.Is(err, ErrTooLarge) || Code(err) != "too_large" {
			t.Fatalf("WriteChunk(100 MB) = %v", err)
		}
		if src.n > limit+chunkBufSize {
			t.Errorf("read %d bytes from a 100 MB stream with a %d limit", src.n, limit)
		}
		assertEmpty(t, uploads)
		if _, err := s.Status(u.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("Status after too_large = %v", err)
		}
	})

	t.Run("more than declared over two chunks", func(t *testing.T) {
		u, _ := begin(s, 10, "")
		if _, err := s.WriteChunk(ctx, u.ID, 0, u.size, strings.NewReader("12345678")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.WriteChunk(ctx, u.ID, 8, u.size, strings.NewReader("9AB")); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("overflowing chunk = %v", err)
		}
		assertEmpty(t, uploads)
	})

	t.Run("fewer than declared", func(t *testing.T) {
		u, _ := begin(s, 10, "")
		if _, err := s.WriteChunk(ctx, u.ID, 0, u.size, strings.NewReader("12345")); err != nil {
			t.Fatal(err)
		}
		_, err := s.Finish(u.ID, u.size, "")
		if !errors.Is(err, ErrIncomplete) || Code(err) != "incomplete" {
			t.Fatalf("Finish = %v", err)
		}
		if err := s.Abort(u.ID); err != nil {
			t.Fatal(err)
		}
		assertEmpty(t, uploads)
		assertEmpty(t, filepath.Join(s.Dir(), "blobs"))
	})

	t.Run("truncated upload expires", func(t *testing.T) {
		u, _ := begin(s, 1000, "")
		_, err := s.WriteChunk(ctx, u.ID, 0, u.size, &failingReader{r: strings.NewReader(strings.Repeat("x", 1000)), after: 300})
		if !errors.Is(err, ErrInterrupted) {
			t.Fatalf("truncated chunk = %v", err)
		}
		if n, err := s.ExpireUploads(time.Hour); n != 0 || err != nil {
			t.Fatalf("ExpireUploads(1h) = %d, %v", n, err)
		}
		if n, err := s.ExpireUploads(0); n != 1 || err != nil {
			t.Fatalf("ExpireUploads(0) = %d, %v", n, err)
		}
		assertEmpty(t, uploads)
		if _, err := s.Status(u.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("Status after expiry = %v", err)
		}
	})
}

func TestResumeAfterRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	content := mediatest.Random(200_000, 3)
	u, err := begin(s, int64(len(content)), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.WriteChunk(t.Context(), u.ID, 0, u.size, bytes.NewReader(content[:120_000])); err != nil {
		t.Fatal(err)
	}
	// A chunk interrupted by a crash left bytes that were never committed.
	f, _ := os.OpenFile(filepath.Join(dir, "uploads", u.ID, "data"), os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte("garbage from a crash"))
	f.Close()
	// And a damaged upload is discarded.
	damaged := filepath.Join(dir, "uploads", strings.Repeat("0", 32))
	os.Mkdir(damaged, 0o700)
	os.WriteFile(filepath.Join(damaged, "state"), []byte("{not json"), 0o600)

	s2, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s2.Status(u.ID)
	if err != nil || st.Offset != 120_000 {
		t.Fatalf("Status after restart = %+v, %v", st, err)
	}
	if _, err := os.Stat(damaged); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("damaged upload kept: %v", err)
	}
	if _, err := s2.WriteChunk(t.Context(), u.ID, 120_000, u.size, bytes.NewReader(content[120_000:])); err != nil {
		t.Fatal(err)
	}
	b, err := s2.Finish(u.ID, u.size, "")
	if err != nil || b.Hash != sha(content) {
		t.Fatalf("Finish = %+v, %v; want %s", b, err, sha(content))
	}

	// A lost hash state is rebuilt from the data.
	u2, _ := begin(s2, int64(len(content)), "")
	s2.WriteChunk(t.Context(), u2.ID, 0, u2.size, bytes.NewReader(content[:50_000]))
	statePath := filepath.Join(dir, "uploads", u2.ID, "state")
	raw, _ := os.ReadFile(statePath)
	raw = bytes.Replace(raw, []byte(`"sha256_state":"`), []byte(`"sha256_state":"AAAA`), 1)
	os.WriteFile(statePath, raw, 0o600)
	s3, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s3.WriteChunk(t.Context(), u2.ID, 50_000, u2.size, bytes.NewReader(content[50_000:]))
	if b, err := s3.Finish(u2.ID, u2.size, ""); err != nil || b.Hash != sha(content) {
		t.Fatalf("Finish after rehash = %+v, %v", b, err)
	}
}

func TestConcurrentChunks(t *testing.T) {
	s := openStore(t, Options{})
	u, _ := begin(s, 10, "")
	block := make(chan struct{})
	started := make(chan struct{})
	done := make(chan error)
	go func() {
		_, err := s.WriteChunk(context.Background(), u.ID, 0, u.size, &blockingReader{started: started, release: block})
		done <- err
	}()
	<-started
	if _, err := s.WriteChunk(t.Context(), u.ID, 0, u.size, strings.NewReader("x")); !errors.Is(err, ErrBusy) {
		t.Errorf("concurrent chunk = %v", err)
	}
	if _, err := s.Finish(u.ID, u.size, ""); !errors.Is(err, ErrBusy) {
		t.Errorf("Finish during a chunk = %v", err)
	}
	// Abort while the chunk is being written: forgotten at once, removed
	// when the chunk stops.
	if err := s.Abort(u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Status(u.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("Status after Abort = %v", err)
	}
	close(block)
	if err := <-done; !errors.Is(err, ErrNotFound) {
		t.Errorf("aborted chunk = %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(entries(t, filepath.Join(s.Dir(), "uploads"))) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("aborted upload not removed")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type blockingReader struct {
	started, release chan struct{}
	n                int
}

func (b *blockingReader) Read(p []byte) (int, error) {
	if b.n == 0 {
		b.n++
		p[0] = 'a'
		return 1, nil
	}
	if b.n == 1 {
		b.n++
		close(b.started)
		<-b.release
	}
	p[0] = 'b'
	return 1, nil
}

// The same bytes in two scopes are two blobs, also for an upload resumed
// after a restart whose hash state was lost; in one scope they are one.
func TestScopedDedup(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	content := mediatest.Random(100_000, 9)
	finish := func(s *Store, scope string, lose bool) string {
		t.Helper()
		u, err := begin(s, int64(len(content)), scope)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.WriteChunk(t.Context(), u.ID, 0, u.size, bytes.NewReader(content[:40_000])); err != nil {
			t.Fatal(err)
		}
		if lose {
			statePath := filepath.Join(dir, "uploads", u.ID, "state")
			raw, _ := os.ReadFile(statePath)
			os.WriteFile(statePath, bytes.Replace(raw, []byte(`"sha256_state":"`), []byte(`"sha256_state":"AAAA`), 1), 0o600)
			if s, err = Open(dir, Options{}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.WriteChunk(t.Context(), u.ID, 40_000, u.size, bytes.NewReader(content[40_000:])); err != nil {
			t.Fatal(err)
		}
		b, err := s.Finish(u.ID, u.size, "")
		if err != nil {
			t.Fatal(err)
		}
		return b.Hash
	}
	plain, a, a2, b := finish(s, "", false), finish(s, "r-a", false), finish(s, "r-a", true), finish(s, "r-b", false)
	if plain != sha(content) || a == plain || b == plain || a == b || a2 != a {
		t.Fatalf("hashes: plain %s, a %s, a again %s, b %s", plain, a, a2, b)
	}
	if _, err := begin(s, 1, "x\x00y"); !errors.Is(err, ErrBadRequest) {
		t.Fatalf("scope with a NUL: %v", err)
	}
}
