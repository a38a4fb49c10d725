package media

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"relais/server/blob"
	"relais/server/media/mediatest"
)

func TestServeBlob(t *testing.T) {
	s := openBlobs(t)
	png := append([]byte("\x89PNG\r\n\x1a\n"), mediatest.Random(5000, 1)...)
	cases := []struct {
		name        string
		content     []byte
		file        string
		ctype       string // served Content-Type
		disposition string
	}{
		{"png inline", png, "photo.png", "image/png", "inline"},
		{"html forced to download", []byte("<!DOCTYPE html><script>alert(document.cookie)</script>"), "page.html", "application/octet-stream", "attachment"},
		{"svg forced to download", []byte("<?xml version='1.0'?><svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>"), "logo.svg", "application/octet-stream", "attachment"},
		{"pdf as attachment", []byte("%PDF-1.4\n%âãÏÓ\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"), "doc.pdf", "application/pdf", "attachment"},
		{"text as attachment", []byte("bonjour\n"), "note.txt", "text/plain; charset=utf-8", "attachment"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := putBlob(t, s, tc.content)
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/media/"+b.Hash, nil)
			if err := ServeBlob(rec, req, s, b.Hash, tc.file, b.ContentType); err != nil {
				t.Fatal(err)
			}
			h := rec.Result().Header
			if rec.Code != 200 || h.Get("Content-Type") != tc.ctype || !strings.HasPrefix(h.Get("Content-Disposition"), tc.disposition+"; filename=") {
				t.Fatalf("%d %q %q", rec.Code, h.Get("Content-Type"), h.Get("Content-Disposition"))
			}
			if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Security-Policy") != "sandbox; default-src 'none'" {
				t.Errorf("headers %v", h)
			}
			if rec.Body.String() != string(tc.content) {
				t.Error("body differs")
			}
		})
	}

	t.Run("range and etag", func(t *testing.T) {
		content := mediatest.Random(10_000, 9)
		b := putBlob(t, s, content)
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Range", "bytes=100-199")
		rec := httptest.NewRecorder()
		ServeBlob(rec, req, s, b.Hash, "../../data.bin", b.ContentType)
		res := rec.Result()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusPartialContent || string(body) != string(content[100:200]) || res.Header.Get("Content-Range") != "bytes 100-199/10000" {
			t.Fatalf("range: %d %q", res.StatusCode, res.Header.Get("Content-Range"))
		}
		if res.Header.Get("Content-Disposition") != `attachment; filename="data.bin"` {
			t.Errorf("Content-Disposition %q", res.Header.Get("Content-Disposition"))
		}
		req = httptest.NewRequest("GET", "/", nil)
		req.Header.Set("If-None-Match", `"`+b.Hash+`"`)
		rec = httptest.NewRecorder()
		ServeBlob(rec, req, s, b.Hash, "data.bin", b.ContentType)
		if rec.Code != http.StatusNotModified {
			t.Errorf("If-None-Match: %d", rec.Code)
		}
		req = httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Range", "bytes=20000-")
		rec = httptest.NewRecorder()
		ServeBlob(rec, req, s, b.Hash, "data.bin", b.ContentType)
		if rec.Code != http.StatusRequestedRangeNotSatisfiable {
			t.Errorf("range beyond the end: %d", rec.Code)
		}
	})

	t.Run("missing", func(t *testing.T) {
		rec := httptest.NewRecorder()
		err := ServeBlob(rec, httptest.NewRequest("GET", "/", nil), s, strings.Repeat("0", 64), "x", "text/plain")
		if !errors.Is(err, blob.ErrNotFound) || len(rec.Header()) != 0 || rec.Body.Len() != 0 {
			t.Errorf("missing blob: %v, wrote %v", err, rec.Header())
		}
	})
}

func TestServeType(t *testing.T) {
	cases := []struct {
		in, want string
		inline   bool
	}{
		{"image/png", "image/png", true},
		{"image/jpeg", "image/jpeg", true},
		{"image/webp", "image/webp", true},
		{"video/mp4", "video/mp4", true},
		{"application/pdf", "application/pdf", false},
		{"text/plain; charset=utf-8", "text/plain; charset=utf-8", false},
		{"text/html; charset=utf-8", "application/octet-stream", false},
		{"image/svg+xml", "application/octet-stream", false},
		{"text/xml; charset=utf-8", "application/octet-stream", false},
		{"application/xhtml+xml", "application/octet-stream", false},
		{"application/javascript", "application/octet-stream", false},
		{"text/javascript", "application/octet-stream", false},
		{"text/css", "application/octet-stream", false},
		{"application/x-shockwave-flash", "application/octet-stream", false},
		{"IMAGE/PNG", "image/png", true},
		{"garbage", "application/octet-stream", false},
		{"", "application/octet-stream", false},
		{"application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.text", false},
	}
	for _, tc := range cases {
		got, inline := ServeType(tc.in)
		if got != tc.want || inline != tc.inline {
			t.Errorf("ServeType(%q) = %q, %v; want %q, %v", tc.in, got, inline, tc.want, tc.inline)
		}
	}
}
