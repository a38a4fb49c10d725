package api

import (
	"bytes"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

// csp is the web client's Content-Security-Policy: scripts, styles and
// connections only from the node itself; no inline script, no eval, no
// framing.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; " +
	"media-src 'self' blob:; connect-src 'self'; font-src 'self'; worker-src 'self'; manifest-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// static serves the built web client. Files under assets/ have content
// hashes in their names and are cached for a year; everything else is
// revalidated. Paths that are not files are the client's own routes and
// get index.html. A precompressed .gz sibling is served to clients that
// accept gzip.
type static struct {
	fsys    fs.FS
	modTime time.Time
}

func newStatic(fsys fs.FS) *static { return &static{fsys: fsys, modTime: time.Now()} }

func (s *static) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if name == "" {
		name = "index.html"
	}
	data, err := fs.ReadFile(s.fsys, name)
	if err != nil || strings.HasSuffix(name, ".gz") {
		if strings.HasPrefix(name, "assets/") || path.Ext(name) != "" {
			http.NotFound(w, r)
			return
		}
		name = "index.html"
		if data, err = fs.ReadFile(s.fsys, name); err != nil {
			http.Error(w, "web client not built", http.StatusServiceUnavailable)
			return
		}
	}
	hd := w.Header()
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	hd.Set("Content-Type", ctype)
	if strings.HasPrefix(name, "assets/") {
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		hd.Set("Cache-Control", "no-cache")
	}
	if strings.HasPrefix(ctype, "text/html") {
		hd.Set("Content-Security-Policy", csp)
	}
	hd.Add("Vary", "Accept-Encoding")
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		if gz, err := fs.ReadFile(s.fsys, name+".gz"); err == nil {
			hd.Set("Content-Encoding", "gzip")
			data = gz
		}
	}
	http.ServeContent(w, r, "", s.modTime, bytes.NewReader(data))
}
