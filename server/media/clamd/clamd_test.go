package clamd_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"relais/server/media/clamd"
	"relais/server/media/clamd/clamdtest"
)

func TestParse(t *testing.T) {
	good := []struct {
		in, network, addr string
	}{
		{"unix:///run/clamav/clamd.ctl", "unix", "/run/clamav/clamd.ctl"},
		{"tcp://127.0.0.1:3310", "tcp", "127.0.0.1:3310"},
		{"tcp://[::1]:3310", "tcp", "[::1]:3310"},
		{"tcp://clamav.internal:3310", "tcp", "clamav.internal:3310"},
	}
	for _, tc := range good {
		c, err := clamd.Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if c.Network != tc.network || c.Address != tc.addr {
			t.Errorf("Parse(%q) = %s %s, want %s %s", tc.in, c.Network, c.Address, tc.network, tc.addr)
		}
		if c.String() != tc.in {
			t.Errorf("Parse(%q).String() = %q", tc.in, c.String())
		}
	}
	bad := []string{
		"", "/run/clamav/clamd.ctl", "unix://run/clamd.ctl", "unix:relative.sock",
		"unix:///run/../etc/clamd.ctl", "tcp://127.0.0.1", "tcp://:3310",
		"tcp://127.0.0.1:3310/path", "http://127.0.0.1:3310", "tcp://u:p@127.0.0.1:3310",
		"unix:///run/clamd.ctl?x=1", "unix:///run/a%00b", "unix:///run/a%3Fb",
	}
	for _, in := range bad {
		if c, err := clamd.Parse(in); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", in, c)
		}
	}
}

// TestDaemon runs every case against one real clamd, over its unix socket
// and over TCP.
func TestDaemon(t *testing.T) {
	const limit = 1 << 20
	srv := clamdtest.Start(t, clamdtest.Options{TCP: true, StreamMaxLength: limit})
	eicar := clamdtest.EICAR()
	clean := bytes.Repeat([]byte("Relais: contenu sain. "), 20000) // ~440 KB
	embedded := append(append(bytes.Repeat([]byte{'a'}, 300<<10), eicar...), bytes.Repeat([]byte{'b'}, 300<<10)...)

	for _, addr := range []string{srv.UnixURL(), srv.TCPURL()} {
		c, err := clamd.Parse(addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Timeout = 10 * time.Second
		c.ChunkSize = 16 << 10
		t.Run(c.Network, func(t *testing.T) {
			ctx := t.Context()
			if err := c.Ping(ctx); err != nil {
				t.Fatalf("Ping: %v", err)
			}
			v, err := c.Version(ctx)
			if err != nil || !strings.HasPrefix(v, "ClamAV ") {
				t.Fatalf("Version = %q, %v", v, err)
			}
			cases := []struct {
				name    string
				content []byte
				clean   bool
				sig     string
			}{
				{"eicar", eicar, false, clamdtest.SigEICARFile},
				{"eicar inside larger file", embedded, false, clamdtest.SigEICARBody},
				{"clean", clean, true, ""},
				{"empty", nil, true, ""},
				{"exactly the limit", bytes.Repeat([]byte{'x'}, limit), true, ""},
			}
			for _, tc := range cases {
				res, err := c.Scan(ctx, bytes.NewReader(tc.content))
				if err != nil {
					t.Errorf("%s: Scan: %v", tc.name, err)
					continue
				}
				if res.Clean != tc.clean || !strings.HasPrefix(res.Signature, tc.sig) {
					t.Errorf("%s: Scan = %+v, want clean=%v signature %q…", tc.name, res, tc.clean, tc.sig)
				}
			}

			// Longer than StreamMaxLength: clamd replies and hangs up while
			// the client is still writing.
			for _, size := range []int{limit + 1, 8 * limit} {
				_, err = c.Scan(ctx, io.LimitReader(zeros{}, int64(size)))
				if !errors.Is(err, clamd.ErrSizeLimit) {
					t.Errorf("Scan(%d bytes) error = %v, want ErrSizeLimit", size, err)
				}
			}

			// An error from the content is the caller's, not clamd's.
			boom := errors.New("disk read failed")
			_, err = c.Scan(ctx, io.MultiReader(bytes.NewReader(clean[:1000]), errReader{boom}))
			if !errors.Is(err, boom) || errors.Is(err, clamd.ErrUnavailable) {
				t.Errorf("Scan(failing reader) error = %v, want the reader's error", err)
			}

			// The daemon is still fine afterwards.
			if err := c.Ping(ctx); err != nil {
				t.Fatalf("Ping after errors: %v", err)
			}
		})
	}

	t.Run("concurrent", func(t *testing.T) {
		c := srv.Client()
		errs := make(chan error, 8)
		for i := range 8 {
			go func() {
				content := clean
				if i%2 == 0 {
					content = embedded
				}
				res, err := c.Scan(t.Context(), bytes.NewReader(content))
				if err == nil && res.Clean != (i%2 == 1) {
					err = errors.New("wrong verdict " + res.Signature)
				}
				errs <- err
			}()
		}
		for range 8 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("stopped", func(t *testing.T) {
		srv.Stop()
		c := srv.Client()
		if err := c.Ping(t.Context()); !errors.Is(err, clamd.ErrUnavailable) {
			t.Errorf("Ping on stopped clamd = %v, want ErrUnavailable", err)
		}
		if _, err := c.Scan(t.Context(), bytes.NewReader(eicar)); !errors.Is(err, clamd.ErrUnavailable) {
			t.Errorf("Scan on stopped clamd = %v, want ErrUnavailable", err)
		}
		srv.Restart()
		if res, err := c.Scan(t.Context(), bytes.NewReader(eicar)); err != nil || res.Clean {
			t.Errorf("Scan after restart = %+v, %v", res, err)
		}
	})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

func TestUnavailable(t *testing.T) {
	ctx := t.Context()
	missing := &clamd.Client{Network: "unix", Address: filepath.Join(t.TempDir(), "none.sock"), Timeout: time.Second}
	if err := missing.Ping(ctx); !errors.Is(err, clamd.ErrUnavailable) {
		t.Errorf("Ping(missing socket) = %v, want ErrUnavailable", err)
	}

	// A closed TCP port.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := &clamd.Client{Network: "tcp", Address: l.Addr().String(), Timeout: time.Second}
	l.Close()
	if _, err := closed.Scan(ctx, strings.NewReader("x")); !errors.Is(err, clamd.ErrUnavailable) {
		t.Errorf("Scan(closed port) = %v, want ErrUnavailable", err)
	}

	// A daemon that accepts and never answers: the timeout applies.
	hang, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hang.Close()
	go func() {
		for {
			c, err := hang.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	slow := &clamd.Client{Network: "tcp", Address: hang.Addr().String(), Timeout: 200 * time.Millisecond}
	start := time.Now()
	if _, err := slow.Scan(ctx, strings.NewReader("x")); !errors.Is(err, clamd.ErrUnavailable) {
		t.Errorf("Scan(silent daemon) = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Scan(silent daemon) took %v", d)
	}

	// Cancelling the context returns the context's error, not
	// ErrUnavailable.
	cctx, cancel := context.WithCancel(ctx)
	slow.Timeout = time.Minute
	go func() { time.Sleep(100 * time.Millisecond); cancel() }()
	if err := slow.Ping(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Ping(cancelled) = %v, want context.Canceled", err)
	}

	// A reply that is not clamd's.
	odd, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer odd.Close()
	go func() {
		for {
			c, err := odd.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n"))
			c.Close()
		}
	}()
	strange := &clamd.Client{Network: "tcp", Address: odd.Addr().String(), Timeout: time.Second}
	if err := strange.Ping(ctx); !errors.Is(err, clamd.ErrUnavailable) {
		t.Errorf("Ping(not clamd) = %v, want ErrUnavailable", err)
	}
}
