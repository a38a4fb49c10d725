package media

import (
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"relais/server/blob"
)

// inlineTypes are the only content types a browser may display in place of
// a download: raster images and plain audio and video, none of which can
// run script. Everything else, PDF included (PDF viewers run JavaScript), is
// an attachment.
var inlineTypes = map[string]bool{
	"image/png":  true,
	"image/jpeg": true,
	"image/gif":  true,
	"image/webp": true,
	"audio/mpeg": true,
	"audio/wave": true,
	"video/mp4":  true,
	"video/webm": true,
}

// keptTypes are served with their own type, as attachments. Any type not
// here or in inlineTypes — HTML, SVG, XML, JavaScript, CSS and anything
// unknown — is served as application/octet-stream.
var keptTypes = map[string]bool{
	"text/plain":         true,
	"text/csv":           true,
	"application/pdf":    true,
	"application/zip":    true,
	"application/x-gzip": true,
	"application/gzip":   true,
	"application/ogg":    true,
	"image/bmp":          true,
	"image/tiff":         true,
	"audio/aiff":         true,
	"audio/midi":         true,
	"audio/ogg":          true,
	"video/avi":          true,
}

// ServeType returns the Content-Type to send for a stored (sniffed) content
// type and whether the content may be shown inline.
func ServeType(contentType string) (ctype string, inline bool) {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return "application/octet-stream", false
	}
	switch {
	case inlineTypes[mt]:
		return mt, true
	case keptTypes[mt], blob.OfficeType(mt):
		if cs, ok := params["charset"]; ok && strings.HasPrefix(mt, "text/") {
			return mime.FormatMediaType(mt, map[string]string{"charset": cs}), false
		}
		return mt, false
	}
	return "application/octet-stream", false
}

// ServeContent writes content as a download answering range requests
// (http.ServeContent). contentType must be the type sniffed from the bytes
// (Blob.ContentType), never the one a client declared; name is offered to
// the browser after SanitizeName. Only the types of ServeType's inline list
// are sent inline; HTML, SVG, XML, scripts and unknown types are sent as
// application/octet-stream attachments. Every response carries
// X-Content-Type-Options: nosniff and a sandboxing Content-Security-Policy,
// so even an inline response cannot run script on the site's origin.
//
// A Cache-Control or ETag header already set by the caller is kept; the
// default is "private, no-cache": browsers revalidate each time, so a user
// who lost access to a file does not keep reading it from a shared cache.
func ServeContent(w http.ResponseWriter, r *http.Request, content io.ReadSeeker, name, contentType string) {
	ctype, inline := ServeType(contentType)
	disposition := "attachment"
	if inline {
		disposition = "inline"
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", contentDisposition(disposition, SanitizeName(name)))
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	if h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "private, no-cache")
	}
	http.ServeContent(w, r, "", time.Time{}, content)
}

// ServeBlob serves the blob hash of blobs with ServeContent, with the
// hash as ETag. It returns an error wrapping blob.ErrNotFound, before
// writing anything, when the blob does not exist. The caller has checked
// that the user may read it (and, for a file still pending its scan, that
// the user uploaded it).
func ServeBlob(w http.ResponseWriter, r *http.Request, blobs *blob.Store, hash, name, contentType string) error {
	f, err := blobs.Open(hash)
	if err != nil {
		return err
	}
	defer f.Close()
	if w.Header().Get("Etag") == "" {
		w.Header().Set("Etag", `"`+hash+`"`)
	}
	ServeContent(w, r, f, name, contentType)
	return nil
}
