package tlsmgr

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// testWriter collects log lines and shows them when the test fails (and
// as they come with -v). It stops when the test's cleanup runs, so that
// goroutines outliving the test (certmagic's, pebble's) cannot log to a
// finished test.
type testWriter struct {
	t     testing.TB
	mu    sync.Mutex
	lines []string
	done  bool
}

func newTestWriter(t testing.TB) *testWriter {
	w := &testWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.done = true
		if t.Failed() && !testing.Verbose() {
			t.Log("logs:\n" + strings.Join(w.lines, "\n"))
		}
	})
	return w
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(p), nil
	}
	line := strings.TrimRight(string(p), "\n")
	if testing.Verbose() {
		w.t.Log(line)
	} else {
		w.lines = append(w.lines, line)
	}
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(newTestWriter(t), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// newManager starts a Manager closed by the test's cleanup.
func newManager(t testing.TB, cfg Config) *Manager {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m, err := New(ctx, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// listenLoopback listens on a random port of 127.0.0.1 and, when IPv6 is
// available, on the same port of ::1 (a resolver may give ::1 for
// localhost first). The listeners are closed by the test's cleanup.
func listenLoopback(t testing.TB) []net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lns := []net.Listener{ln}
	if ln6, err := net.Listen("tcp", fmt.Sprintf("[::1]:%d", port(ln))); err == nil {
		lns = append(lns, ln6)
	}
	for _, l := range lns {
		t.Cleanup(func() { l.Close() })
	}
	return lns
}

func port(ln net.Listener) int { return ln.Addr().(*net.TCPAddr).Port }

// serveHTTP serves h on lns until the test ends.
func serveHTTP(t testing.TB, lns []net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, ErrorLog: discardLog()}
	for _, ln := range lns {
		go srv.Serve(ln)
	}
	t.Cleanup(func() { srv.Close() })
}

// serveHTTPS serves h over TLS with cfg on lns until the test ends, the way
// the node does (ServeTLS with the certificate in the config).
func serveHTTPS(t testing.TB, lns []net.Listener, cfg *tls.Config, h http.Handler) {
	srv := &http.Server{Handler: h, TLSConfig: cfg, ReadHeaderTimeout: 5 * time.Second, ErrorLog: discardLog()}
	for _, ln := range lns {
		go srv.ServeTLS(ln, "", "")
	}
	t.Cleanup(func() { srv.Close() })
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }

// servedLeaf connects to addr with serverName and returns the certificate
// the server presents. With roots nil, the chain is not verified.
func servedLeaf(addr, serverName string, roots *x509.CertPool) (*x509.Certificate, error) {
	cfg := &tls.Config{ServerName: serverName, RootCAs: roots, InsecureSkipVerify: roots == nil}
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// waitFor polls cond until it returns "" or the deadline passes; cond
// returns why it is not yet satisfied.
func waitFor(t testing.TB, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", timeout, why)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func isUnknownAuthority(err error) bool {
	var ua x509.UnknownAuthorityError
	return errors.As(err, &ua)
}

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "ok %s", r.Proto)
	})
}

func tlsClientConfig(roots *x509.CertPool) *tls.Config {
	return &tls.Config{RootCAs: roots}
}

// genPair returns a self-signed certificate for localhost valid until
// notAfter, and its key, in PEM.
func genPair(t testing.TB, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	der, key := signTest(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		NotBefore:   notAfter.Add(-48 * time.Hour),
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, nil, nil)
	keyPEM, err := marshalKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM
}

// signTest gives tmpl a new key and a random serial and signs it with
// parent's key, or self-signs it when parent is nil.
func signTest(t testing.TB, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = randomSerial()
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	return der, key
}

func serialOf(t testing.TB, certPEM []byte) string {
	t.Helper()
	b, _ := pem.Decode(certPEM)
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.Text(16)
}
