package blob

import (
	"bytes"
	"errors"
	"image"
	"image/png"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDedupAndRemove(t *testing.T) {
	s := openStore(t, Options{})
	content := []byte("%PDF-1.4 same content")
	a := upload(t, s, content, 5)
	b := upload(t, s, content, 100)
	if a.Hash != b.Hash || a.Reused || !b.Reused {
		t.Fatalf("dedup: %+v then %+v", a, b)
	}
	if a.ContentType != "application/pdf" {
		t.Errorf("ContentType = %q", a.ContentType)
	}
	n := 0
	s.Walk(func(hash string, size int64, _ time.Time) error {
		n++
		if hash != a.Hash || size != int64(len(content)) {
			t.Errorf("Walk: %s %d", hash, size)
		}
		return nil
	})
	if n != 1 {
		t.Errorf("Walk saw %d blobs", n)
	}
	if err := s.Remove(a.Hash); err != nil {
		t.Fatal(err)
	}
	if s.Exists(a.Hash) {
		t.Error("blob still exists after Remove")
	}
	if err := s.Remove(a.Hash); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	for _, bad := range []string{"", "../etc/passwd", strings.Repeat("A", 64), a.Hash[:63], a.Hash + "0"} {
		if s.Exists(bad) {
			t.Errorf("Exists(%q)", bad)
		}
		if _, err := s.Path(bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("Path(%q) = %v", bad, err)
		}
		if err := s.Remove(bad); !errors.Is(err, ErrNotFound) {
			t.Errorf("Remove(%q) = %v", bad, err)
		}
	}
	assertEmpty(t, filepath.Join(s.Dir(), "uploads"))
}

func TestSniffType(t *testing.T) {
	odt := append([]byte("PK\x03\x04\x0a\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x27\x00\x00\x00\x27\x00\x00\x00\x08\x00\x00\x00mimetype"),
		"application/vnd.oasis.opendocument.text"...)
	docx := "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	cases := []struct {
		head     []byte
		declared string
		want     string
	}{
		{[]byte("\x89PNG\r\n\x1a\n0000"), "text/html", "image/png"},
		{[]byte("<html><script>alert(1)</script>"), "image/png", "text/html; charset=utf-8"},
		{[]byte("<svg xmlns='http://www.w3.org/2000/svg'>"), "image/svg+xml", "text/plain; charset=utf-8"},
		{[]byte("<?xml version='1.0'?><svg>"), "image/svg+xml", "text/xml; charset=utf-8"},
		{odt, "", "application/vnd.oasis.opendocument.text"},
		{[]byte("PK\x03\x04rest"), docx, docx},
		{[]byte("PK\x03\x04rest"), "text/html", "application/zip"},
		{[]byte("just text"), docx, "text/plain; charset=utf-8"},
	}
	for _, tc := range cases {
		if got := sniffType(tc.head, tc.declared); got != tc.want {
			t.Errorf("sniffType(%q, %q) = %q, want %q", tc.head[:min(len(tc.head), 20)], tc.declared, got, tc.want)
		}
	}
}

func TestPut(t *testing.T) {
	s := openStore(t, Options{MaxFileSize: 1000})
	var png bytes.Buffer
	if err := pngEncode(&png); err != nil {
		t.Fatal(err)
	}
	thumb := png.Bytes()
	b, err := s.Put(bytes.NewReader(thumb))
	if err != nil || b.Hash != sha(thumb) || b.ContentType != "image/png" || b.Reused {
		t.Fatalf("Put = %+v, %v", b, err)
	}
	if b2, err := s.Put(bytes.NewReader(thumb)); err != nil || !b2.Reused {
		t.Fatalf("second Put = %+v, %v", b2, err)
	}
	if _, err := s.Put(io.LimitReader(&countingZeros{}, 1001)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Put(too large) = %v", err)
	}
	assertEmpty(t, filepath.Join(s.Dir(), "uploads"))
}

// pngEncode writes a small PNG picture, content a node would Put itself.
func pngEncode(w io.Writer) error {
	img := image.NewNRGBA(image.Rect(0, 0, 8, 8))
	for i := range img.Pix {
		img.Pix[i] = byte(i)
	}
	return png.Encode(w, img)
}
