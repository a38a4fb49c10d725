package api

import (
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"relais/server/proto"
)

// BodyDeadlines bound how long a request body may take to arrive, so that
// connections trickling bytes (slow loris) cannot pile up. Headers are
// bounded by the server's ReadHeaderTimeout; websockets have no body, and
// their connection loses every deadline when it is hijacked.
type BodyDeadlines struct {
	// Timeout is the whole body's deadline on other endpoints than
	// uploads (JSON bodies of at most 64 KiB); default 30 s.
	Timeout time.Duration
	// Uploads (file chunks, key backups) may take as long as they need on
	// a slow but honest link: their deadline is UploadGrace (default 30 s)
	// plus the time the bytes received so far take at UploadMinRate
	// bytes per second (default 1024: 8 kbit/s).
	UploadGrace   time.Duration
	UploadMinRate float64
}

func (d *BodyDeadlines) defaults() {
	if d.Timeout == 0 {
		d.Timeout = 30 * time.Second
	}
	if d.UploadGrace == 0 {
		d.UploadGrace = 30 * time.Second
	}
	if d.UploadMinRate == 0 {
		d.UploadMinRate = 1024
	}
}

// isUpload tells the endpoints whose bodies are uploads.
func isUpload(r *http.Request) bool {
	return r.Method == http.MethodPut &&
		(strings.HasPrefix(r.URL.Path, "/api/v1/media/uploads/") || strings.HasPrefix(r.URL.Path, "/api/v1/backups/"))
}

// withBodyDeadline puts r's body, if it has one, under its deadline.
func (h *Handler) withBodyDeadline(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody {
		return
	}
	b := &deadlineBody{body: r.Body, rc: http.NewResponseController(w), start: time.Now(), grace: h.cfg.Bodies.Timeout}
	if isUpload(r) {
		b.grace, b.rate = h.cfg.Bodies.UploadGrace, h.cfg.Bodies.UploadMinRate
	}
	r.Body = b
}

// deadlineBody sets the connection's read deadline before each read:
// start + grace, plus n/rate for the n bytes read so far. At the end of
// the body the deadline is lifted, so that the server's background read
// (which watches for the client going away) does not cancel a handler
// still at work; on a timeout it stays, and the connection is closed.
type deadlineBody struct {
	body  io.ReadCloser
	rc    *http.ResponseController
	start time.Time
	grace time.Duration
	rate  float64 // bytes per second; 0: a fixed deadline
	n     int64
	set   time.Time // the deadline last set
	ended bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	if !b.ended {
		d := b.start.Add(b.grace)
		if b.rate > 0 {
			d = d.Add(time.Duration(float64(b.n) / b.rate * float64(time.Second)))
		}
		// Moved by less than a tenth of a second: not worth a call.
		if d.Sub(b.set) > 100*time.Millisecond || d.Before(b.set) {
			b.rc.SetReadDeadline(d)
			b.set = d
		}
	}
	n, err := b.body.Read(p)
	b.n += int64(n)
	if errors.Is(err, io.EOF) && !b.ended {
		b.ended = true
		b.rc.SetReadDeadline(time.Time{})
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		err = proto.Errorf(proto.CodeRequestTimeout, "the request body arrived too slowly")
	}
	return n, err
}

func (b *deadlineBody) Close() error { return b.body.Close() }
