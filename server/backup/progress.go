package backup

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Progress reports the bytes of a long copy: a bar redrawn in place on a
// terminal, a plain line every few seconds otherwise (logs, pipes).
type Progress struct {
	out   io.Writer
	tty   bool
	label string
	total int64

	mu    sync.Mutex
	n     int64
	start time.Time
	last  time.Time
}

// NewProgress returns a progress report on out for a copy of about total
// bytes (0 if unknown, or until SetTotal). tty says whether out is a
// terminal.
func NewProgress(out io.Writer, tty bool, label string, total int64) *Progress {
	now := time.Now()
	return &Progress{out: out, tty: tty, label: label, total: total, start: now, last: now}
}

// SetTotal sets the expected number of bytes.
func (p *Progress) SetTotal(total int64) {
	p.mu.Lock()
	p.total = total
	p.mu.Unlock()
}

// Writer counts what goes through w.
func (p *Progress) Writer(w io.Writer) io.Writer { return progressWriter{p, w} }

// Reader counts what is read through r.
func (p *Progress) Reader(r io.Reader) io.Reader { return progressReader{p, r} }

type progressWriter struct {
	p *Progress
	w io.Writer
}

func (pw progressWriter) Write(b []byte) (int, error) {
	n, err := pw.w.Write(b)
	pw.p.Add(int64(n))
	return n, err
}

type progressReader struct {
	p *Progress
	r io.Reader
}

func (pr progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.p.Add(int64(n))
	return n, err
}

// Add counts n more bytes and redraws when it is time to.
func (p *Progress) Add(n int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += n
	every := 5 * time.Second
	if p.tty {
		every = 100 * time.Millisecond
	}
	if now := time.Now(); now.Sub(p.last) >= every {
		p.last = now
		p.draw(false)
	}
}

// Done prints the final line.
func (p *Progress) Done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw(true)
}

func (p *Progress) draw(final bool) {
	elapsed := time.Since(p.start)
	rate := float64(p.n) / max(elapsed.Seconds(), 1e-3) / (1 << 20)
	mib := float64(p.n) / (1 << 20)
	if final {
		if p.tty {
			fmt.Fprint(p.out, "\r\033[K")
		}
		fmt.Fprintf(p.out, "%s: %.1f MiB in %s (%.1f MiB/s)\n", p.label, mib, elapsed.Round(time.Millisecond), rate)
		return
	}
	pct := -1.0
	if p.total > 0 {
		pct = min(100, 100*float64(p.n)/float64(p.total))
	}
	if !p.tty {
		if pct >= 0 {
			fmt.Fprintf(p.out, "%s: %.0f%%, %.1f of %.1f MiB, %.1f MiB/s\n", p.label, pct, mib, float64(p.total)/(1<<20), rate)
		} else {
			fmt.Fprintf(p.out, "%s: %.1f MiB, %.1f MiB/s\n", p.label, mib, rate)
		}
		return
	}
	const width = 30
	bar := strings.Repeat("·", width)
	if pct >= 0 {
		done := int(pct * width / 100)
		bar = strings.Repeat("█", done) + strings.Repeat("·", width-done)
		fmt.Fprintf(p.out, "\r\033[K%s [%s] %3.0f%% %.1f/%.1f MiB %.1f MiB/s", p.label, bar, pct, mib, float64(p.total)/(1<<20), rate)
		return
	}
	fmt.Fprintf(p.out, "\r\033[K%s [%s] %.1f MiB %.1f MiB/s", p.label, bar, mib, rate)
}
