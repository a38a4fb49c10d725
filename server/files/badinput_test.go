package files_test

import (
	"bytes"
	"compress/zlib"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/client"
	"relais/server/config"
	"relais/server/media"
	"relais/server/proto"
)

// Uploads that go wrong: each is a clear error and leaves nothing behind.
func TestBadUploads(t *testing.T) {
	n := startNode(t, nil, nodetest.WithConfig(func(c *config.Config) { c.MaxUpload = 10 << 20 }))
	alice := newPeer(t, n, "Alice Martin")
	bob := newPeer(t, n, "Bob Durand")
	carol := newPeer(t, n, "Carol Petit")
	room := forum(t, alice, bob)
	private := group(t, alice, false, bob)
	c := alice.c
	ctx := ctxT(t)
	content := tinyPDF("Délibération", 30<<10)

	begin := func(name string, size int64) proto.UploadState {
		t.Helper()
		up, err := c.BeginUpload(ctx, proto.UploadRequest{Room: room, Name: name, Size: size})
		if err != nil {
			t.Fatalf("begin %q: %v", name, err)
		}
		return up
	}
	gone := func(what, id string) {
		t.Helper()
		_, err := c.UploadStatus(ctx, id)
		wantCode(t, what+": upload still exists", err, proto.CodeNotFound, http.StatusNotFound)
	}

	t.Run("truncated then finished", func(t *testing.T) {
		up := begin("court.pdf", int64(len(content)))
		if _, err := c.PutChunk(ctx, up.ID, 0, bytes.NewReader(content[:1000]), 1000); err != nil {
			t.Fatal(err)
		}
		_, err := c.FinishUpload(ctx, up.ID)
		wantCode(t, "finishing a short upload", err, proto.CodeIncomplete, http.StatusConflict)
		// It resumes from where it stands and completes.
		st, err := c.UploadStatus(ctx, up.ID)
		if err != nil || st.Offset != 1000 || st.Size != int64(len(content)) {
			t.Fatalf("status %+v %v", st, err)
		}
		if _, err := c.PutChunk(ctx, up.ID, 1000, bytes.NewReader(content[1000:]), int64(len(content)-1000)); err != nil {
			t.Fatal(err)
		}
		if f, err := c.FinishUpload(ctx, up.ID); err != nil || f.Size != int64(len(content)) {
			t.Fatalf("finish after resuming: %+v %v", f, err)
		}
	})

	t.Run("chunk replays, overlaps and gaps", func(t *testing.T) {
		up := begin("rejoue.pdf", int64(len(content)))
		if _, err := c.PutChunk(ctx, up.ID, 0, bytes.NewReader(content[:4096]), 4096); err != nil {
			t.Fatal(err)
		}
		for _, off := range []int64{0, 2048, 8192} {
			at, err := c.PutChunk(ctx, up.ID, off, bytes.NewReader(content[off:off+1024]), 1024)
			wantCode(t, "chunk at "+itoa(int(off)), err, proto.CodeOffsetMismatch, http.StatusConflict)
			if at != 4096 {
				t.Fatalf("Upload-Offset %d, want 4096", at)
			}
		}
		c.AbortUpload(ctx, up.ID)
		gone("aborted", up.ID)
	})

	t.Run("more bytes than declared", func(t *testing.T) {
		up := begin("menteur.pdf", 1000)
		_, err := c.PutChunk(ctx, up.ID, 0, bytes.NewReader(content[:2000]), 2000)
		wantCode(t, "a chunk longer than declared", err, proto.CodeTooLarge, http.StatusRequestEntityTooLarge)
		gone("over the declared size (Content-Length)", up.ID)

		up = begin("menteur2.pdf", 1000)
		_, err = c.PutChunk(ctx, up.ID, 0, io.MultiReader(bytes.NewReader(content[:600]), bytes.NewReader(content[600:1500])), -1)
		wantCode(t, "a streamed chunk longer than declared", err, proto.CodeTooLarge, http.StatusRequestEntityTooLarge)
		gone("over the declared size (streamed)", up.ID)
	})

	t.Run("bad offsets", func(t *testing.T) {
		up := begin("offset.pdf", 10)
		for _, q := range []string{"", "-1", "+0", "01", "1e3", "0x10", "99999999999999999999", "1,2"} {
			req, _ := http.NewRequest("PUT", c.URL()+"/api/v1/media/uploads/"+up.ID+"?offset="+q, strings.NewReader("x"))
			req.Header.Set("Authorization", "Bearer "+c.Token())
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("offset %q: status %d", q, resp.StatusCode)
			}
		}
		c.AbortUpload(ctx, up.ID)
	})

	t.Run("path tricks in names", func(t *testing.T) {
		long := strings.Repeat("é", 3000)[:1000] + ".pdf"
		for _, tc := range []struct{ name, want string }{
			{"../../etc/passwd", "passwd"},
			{`..\..\x.pdf`, "x.pdf"},
			{"a\x00b\x01.pdf", "ab.pdf"},
			{"/", media.FallbackName},
			{"CON.pdf", "_CON.pdf"},
			{"\u202eexe.pdf", "exe.pdf"},
			{long, ""},
		} {
			f := upload(t, c, room, tc.name, content, 0)
			switch {
			case tc.want != "" && f.Name != tc.want:
				t.Errorf("name %q became %q, want %q", tc.name, f.Name, tc.want)
			case len(f.Name) > media.MaxNameBytes || !strings.HasSuffix(f.Name, ".pdf") && tc.want == "":
				t.Errorf("long name became %q", f.Name)
			}
			alice.postFile(room, f.ID, "")
			fileState(t, bob.c, f.ID, proto.FileClean)
			resp, err := bob.c.Download(ctx, f.ID, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if cd := resp.Header.Get("Content-Disposition"); strings.ContainsAny(cd, "/\\\x00") || !strings.HasPrefix(cd, "attachment;") {
				t.Errorf("Content-Disposition %q", cd)
			}
		}
		data := filepath.Dir(n.Files.Blobs().Dir())
		for _, p := range []string{"etc/passwd", "../etc/passwd", "passwd", "../x.pdf", "media/x.pdf"} {
			if exists(filepath.Join(data, p)) {
				t.Errorf("%s exists", p)
			}
		}
		for _, p := range mediaFiles(t, n, "") {
			if !strings.HasPrefix(p, "blobs/") || len(filepath.Base(p)) != 64 {
				t.Errorf("unexpected file in the media directory: %s", p)
			}
		}
	})

	t.Run("100 MB to a 10 MB limit", func(t *testing.T) {
		_, err := c.BeginUpload(ctx, proto.UploadRequest{Room: room, Name: "gros.bin", Size: 100 << 20})
		wantCode(t, "declaring 100 MB", err, proto.CodeTooLarge, http.StatusRequestEntityTooLarge)

		for _, known := range []bool{true, false} {
			up := begin("gros.bin", 10<<20)
			src := &countingReader{n: 100 << 20}
			length := int64(-1)
			if known {
				length = 100 << 20
			}
			_, err := c.PutChunk(ctx, up.ID, 0, src, length)
			// The node answers 413 and closes; the client may see the
			// answer or only the broken connection.
			if code, _ := codeOfAny(err); code != proto.CodeTooLarge && err != nil && !isConnError(err) {
				t.Fatalf("streaming 100 MB (length known: %v): %v", known, err)
			}
			if sent := src.read.Load(); sent > 20<<20 {
				t.Fatalf("the client wrote %d MB before being stopped (length known: %v)", sent>>20, known)
			} else {
				t.Logf("length known: %v: stopped after the client wrote %.1f MB", known, float64(sent)/(1<<20))
			}
			nodetest.CheckFor(t, 5*time.Second, func() error {
				if left := mediaFiles(t, n, "uploads"); len(left) != 0 {
					return fmt.Errorf("bytes left under media/uploads: %v", left)
				}
				return nil
			})
			gone("stopped upload", up.ID)
		}
	})

	t.Run("decompression bomb picture", func(t *testing.T) {
		before := mediaFiles(t, n, "")
		bomb := bombPNG(t, 12000, 12000)
		t.Logf("bomb: %d bytes for 12000×12000 pixels", len(bomb))
		_, err := c.UploadFile(ctx, uploadReq(room, "photo.png"), bomb, 0)
		wantCode(t, "a bomb PNG", err, proto.CodeImageTooLarge, http.StatusUnprocessableEntity)
		if after := mediaFiles(t, n, ""); len(after) != len(before) {
			t.Fatalf("media files: before %v, after %v", before, after)
		}
	})

	t.Run("picture thumbnail", func(t *testing.T) {
		pic := picturePNG(t, 900, 600)
		f := upload(t, c, room, "plan.png", pic, 0)
		if f.Width != 900 || f.Height != 600 || !f.Thumb || f.Mime != "image/png" {
			t.Fatalf("picture = %+v", f)
		}
		alice.postFile(room, f.ID, "")
		fileState(t, bob.c, f.ID, proto.FileClean)
		resp, err := bob.c.Download(ctx, f.ID, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		cfg, format, err := image.DecodeConfig(resp.Body)
		if err != nil || cfg.Width != 320 || cfg.Height != 213 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "image/"+format) {
			t.Fatalf("thumbnail %s %+v %v (%s)", format, cfg, err, resp.Header.Get("Content-Type"))
		}
	})

	t.Run("blocked types", func(t *testing.T) {
		_, err := c.BeginUpload(ctx, proto.UploadRequest{Room: room, Name: "setup.exe", Size: 10})
		wantCode(t, "an .exe by name", err, proto.CodeBlockedType, http.StatusUnsupportedMediaType)
		before := mediaFiles(t, n, "")
		elf := append([]byte("\x7fELF\x02\x01\x01\x00"), make([]byte, 200)...)
		_, err = c.UploadFile(ctx, uploadReq(room, "rapport.pdf"), elf, 0)
		wantCode(t, "a program named .pdf", err, proto.CodeBlockedType, http.StatusUnsupportedMediaType)
		if after := mediaFiles(t, n, ""); len(after) != len(before) {
			t.Fatalf("media files: before %v, after %v", before, after)
		}
	})

	t.Run("outsiders", func(t *testing.T) {
		_, err := carol.c.BeginUpload(ctx, proto.UploadRequest{Room: room, Name: "x.pdf", Size: 10})
		wantCode(t, "uploading into a forum one has not joined", err, proto.CodeNotMember, http.StatusForbidden)
		_, err = carol.c.BeginUpload(ctx, proto.UploadRequest{Room: private, Name: "x.pdf", Size: 10})
		wantCode(t, "uploading into someone else's group", err, proto.CodeNotFound, http.StatusNotFound)

		f := upload(t, c, private, "interne.pdf", content, 0)
		_, err = bob.c.Download(ctx, f.ID, false, nil)
		wantCode(t, "a member downloading a file not posted yet", err, proto.CodeNotFound, http.StatusNotFound)
		alice.postFile(private, f.ID, "")
		fileState(t, bob.c, f.ID, proto.FileClean)
		download(t, bob.c, f.ID)
		_, err = carol.c.Download(ctx, f.ID, false, nil)
		wantCode(t, "an outsider downloading", err, proto.CodeNotFound, http.StatusNotFound)
		_, err = carol.c.FileState(ctx, f.ID)
		wantCode(t, "an outsider asking the state", err, proto.CodeNotFound, http.StatusNotFound)
		_, err = carol.c.UploadStatus(ctx, "0123456789abcdef0123456789abcdef")
		wantCode(t, "someone else's upload", err, proto.CodeNotFound, http.StatusNotFound)
		_, err = bob.c.Download(ctx, "f-../../etc/passwd", false, nil)
		wantCode(t, "a malformed file id", err, proto.CodeNotFound, http.StatusNotFound)
		anon := n.Client()
		_, err = anon.Download(ctx, f.ID, false, nil)
		wantCode(t, "no session", err, proto.CodeUnauthorized, http.StatusUnauthorized)

		// A file goes with one message, in its room, by its uploader.
		g := upload(t, c, room, "forum.pdf", content, 0)
		if _, code := alice.send(map[string]any{"room": private, "type": "file", "file": map[string]any{"id": g.ID}}); code != proto.CodeBadRequest {
			t.Fatalf("posting in another room: %q", code)
		}
		if _, code := bob.send(map[string]any{"room": room, "type": "file", "file": map[string]any{"id": g.ID}}); code != proto.CodeNotFound {
			t.Fatalf("posting someone else's file: %q", code)
		}
		alice.postFile(room, g.ID, "")
		if _, code := alice.send(map[string]any{"room": room, "type": "file", "file": map[string]any{"id": g.ID}}); code != proto.CodeConflict {
			t.Fatalf("posting twice: %q", code)
		}
	})

	t.Run("malformed requests", func(t *testing.T) {
		for _, body := range []string{
			`{"room":"r-x","name":"a","size":1}`,
			`{"room":"` + room + `","name":"a","size":-1}`,
			`{"room":"` + room + `","name":"a","size":1,"extra":1}`,
			`{"room":"` + room + `","name":"a","size":1}{}`,
			`{"room":"` + room + `","name":"a","size":1,"encrypted":{"enc":"AA==","sealed":"AA=="}}`,
		} {
			req, _ := http.NewRequest("POST", c.URL()+"/api/v1/media/uploads", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+c.Token())
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s: status %d", body, resp.StatusCode)
			}
		}
	})
}

// The quota counts finished files and unfinished uploads.
func TestQuota(t *testing.T) {
	n := startNode(t, nil, nodetest.WithConfig(func(c *config.Config) { c.UserQuota = 100 << 10 }))
	alice := newPeer(t, n, "Alice Martin")
	room := forum(t, alice)
	ctx := ctxT(t)
	upload(t, alice.c, room, "a.pdf", tinyPDF("A", 40<<10), 0)
	up, err := alice.c.BeginUpload(ctx, proto.UploadRequest{Room: room, Name: "b.pdf", Size: 40 << 10})
	if err != nil {
		t.Fatal(err)
	}
	_, err = alice.c.BeginUpload(ctx, proto.UploadRequest{Room: room, Name: "c.pdf", Size: 40 << 10})
	ce := wantCode(t, "over the quota with an upload in progress", err, proto.CodeQuotaExceeded, http.StatusRequestEntityTooLarge)
	if ce.Message == "" {
		t.Fatal("no message")
	}
	alice.c.AbortUpload(ctx, up.ID)
	upload(t, alice.c, room, "c.pdf", tinyPDF("C", 40<<10), 0)
}

// countingReader yields n zero bytes and counts what was read.
type countingReader struct {
	n    int64
	read atomic.Int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	left := r.n - r.read.Load()
	if left <= 0 {
		return 0, io.EOF
	}
	k := int(min(int64(len(p)), left))
	clear(p[:k])
	r.read.Add(int64(k))
	return k, nil
}

func codeOfAny(err error) (string, int) {
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Code, ce.Status
	}
	return "", 0
}

func isConnError(err error) bool {
	s := err.Error()
	return strings.Contains(s, "connection reset") || strings.Contains(s, "broken pipe") || strings.Contains(s, "EOF") ||
		strings.Contains(s, "connection closed")
}

// bombPNG returns a greyscale PNG of w×h black pixels whose image data
// inflates to (w+1)×h zero bytes from about a 160th of that: one fixed
// Huffman deflate block of back-references, written by hand because
// compressing hundreds of megabytes would make the test slow.
func bombPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	buf.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(typ string, data []byte) {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(data)))
		buf.Write(l[:])
		crc := crc32.NewIEEE()
		crc.Write([]byte(typ))
		crc.Write(data)
		buf.WriteString(typ)
		buf.Write(data)
		binary.BigEndian.PutUint32(l[:], crc.Sum32())
		buf.Write(l[:])
	}
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 8, 0 // 8-bit greyscale
	chunk("IHDR", ihdr)

	total := int64(w+1) * int64(h) // a filter byte and w pixels per row, all zero
	z := []byte{0x78, 0x01}        // zlib header
	var acc uint64
	var nacc uint
	bits := func(v uint64, n uint) { // deflate packs bits LSB first
		acc |= v << nacc
		for nacc += n; nacc >= 8; nacc -= 8 {
			z = append(z, byte(acc))
			acc >>= 8
		}
	}
	code := func(c uint64, n uint) { // Huffman codes go MSB first
		var r uint64
		for i := range n {
			r |= (c >> i & 1) << (n - 1 - i)
		}
		bits(r, n)
	}
	bits(1, 1)            // final block
	bits(1, 2)            // fixed Huffman codes
	code(0x30, 8)         // literal 0
	match := uint64(0xc5) // length 258 (code 285), then distance 1 (code 0, 5 bits)
	for range (total - 1) / 258 {
		code(match<<5, 13)
	}
	for range (total - 1) % 258 {
		code(0x30, 8)
	}
	code(0, 7) // end of block
	if nacc > 0 {
		bits(0, 8-nacc)
	}
	z = binary.BigEndian.AppendUint32(z, uint32(total%65521)<<16|1) // Adler-32 of zeros
	chunk("IDAT", z)
	chunk("IEND", nil)
	b := buf.Bytes()
	if cfg, err := png.DecodeConfig(bytes.NewReader(b)); err != nil || cfg.Width != w {
		t.Fatalf("bomb PNG: %+v %v", cfg, err)
	}
	// The stream inflates to exactly the image's bytes.
	zr, err := zlib.NewReader(bytes.NewReader(z))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(io.Discard, io.LimitReader(zr, 1<<20)); err != nil || n != min(total, 1<<20) {
		t.Fatalf("bomb PNG data: %d %v", n, err)
	}
	return b
}

// picturePNG returns an opaque w×h gradient.
func picturePNG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.NRGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
