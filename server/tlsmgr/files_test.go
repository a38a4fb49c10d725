package tlsmgr

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// filesNode is a Manager in files mode serving TLS on loopback.
type filesNode struct {
	m                 *Manager
	addr              string
	certFile, keyFile string
}

func newFilesNode(t *testing.T, poll time.Duration) (*filesNode, string) {
	dir := t.TempDir()
	n := &filesNode{certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem")}
	a, aKey := genPair(t, time.Now().Add(90*24*time.Hour))
	n.write(t, a, aKey)
	cfg := Config{Mode: ModeFiles, CertFile: n.certFile, KeyFile: n.keyFile, pollInterval: poll}
	n.m = newManager(t, cfg)
	lns := listenLoopback(t)
	serveHTTPS(t, lns, n.m.TLSConfig(), okHandler())
	n.addr = lns[0].Addr().String()
	return n, serialOf(t, a)
}

// write replaces the files in place, the certificate first, as an operator
// copying files would.
func (n *filesNode) write(t *testing.T, certPEM, keyPEM []byte) {
	t.Helper()
	if err := os.WriteFile(n.certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(n.keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
}

func (n *filesNode) served(t *testing.T) string {
	t.Helper()
	c, err := servedLeaf(n.addr, "localhost", nil)
	if err != nil {
		t.Fatal(err)
	}
	return c.SerialNumber.Text(16)
}

func TestFilesReload(t *testing.T) {
	n, a := newFilesNode(t, time.Hour) // the watcher stays out of the way
	if got := n.served(t); got != a {
		t.Fatalf("served %s, want A %s", got, a)
	}

	b, bKey := genPair(t, time.Now().Add(90*24*time.Hour))
	n.write(t, b, bKey)
	if err := n.m.Reload(); err != nil {
		t.Fatalf("Reload B: %v", err)
	}
	if got := n.served(t); got != serialOf(t, b) {
		t.Fatalf("served %s after reload, want B %s", got, serialOf(t, b))
	}

	// Unusable replacements keep B in service and say why.
	c, cKey := genPair(t, time.Now().Add(90*24*time.Hour))
	expired, expiredKey := genPair(t, time.Now().Add(-time.Hour))
	for _, tc := range []struct {
		name      string
		cert, key []byte
		want      string
	}{
		{name: "mismatched key", cert: c, key: bKey, want: "private key does not match"},
		{name: "garbage", cert: []byte("not a certificate"), key: cKey, want: "failed to find any PEM data"},
		{name: "expired", cert: expired, key: expiredKey, want: "expired on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n.write(t, tc.cert, tc.key)
			err := n.m.Reload()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Reload: %v, want %q", err, tc.want)
			}
			if got := n.served(t); got != serialOf(t, b) {
				t.Errorf("served %s, want B kept", got)
			}
			st := n.m.Status()
			if !strings.Contains(st.LastError, tc.want) || !strings.Contains(st.LastError, "still serving the previous certificate") {
				t.Errorf("last_error %q", st.LastError)
			}
		})
	}

	// A good pair again clears the error.
	n.write(t, c, cKey)
	if err := n.m.Reload(); err != nil {
		t.Fatal(err)
	}
	if st := n.m.Status(); st.LastError != "" || st.Serial != serialOf(t, c) {
		t.Errorf("status %+v", st)
	}
}

func TestFilesWatch(t *testing.T) {
	n, a := newFilesNode(t, 20*time.Millisecond)
	if got := n.served(t); got != a {
		t.Fatalf("served %s, want A %s", got, a)
	}
	b, bKey := genPair(t, time.Now().Add(90*24*time.Hour))
	n.write(t, b, bKey)
	waitFor(t, 10*time.Second, func() string {
		if got := n.served(t); got != serialOf(t, b) {
			return fmt.Sprintf("served %s, want B %s", got, serialOf(t, b))
		}
		if st := n.m.Status(); st.LastError != "" {
			return "last_error " + st.LastError
		}
		return ""
	})

	// An invalid pair: B stays, the error shows.
	c, _ := genPair(t, time.Now().Add(90*24*time.Hour))
	n.write(t, c, bKey)
	waitFor(t, 10*time.Second, func() string {
		if st := n.m.Status(); !strings.Contains(st.LastError, "private key does not match") {
			return "no error for the mismatched pair: " + st.LastError
		}
		return ""
	})
	if got := n.served(t); got != serialOf(t, b) {
		t.Errorf("served %s, want B kept", got)
	}
}

func TestFilesStartErrors(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	c, _ := genPair(t, time.Now().Add(time.Hour))
	_, otherKey := genPair(t, time.Now().Add(time.Hour))
	os.WriteFile(certFile, c, 0o644)
	os.WriteFile(keyFile, otherKey, 0o600)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"missing file", Config{Mode: ModeFiles, CertFile: filepath.Join(dir, "none"), KeyFile: keyFile}, "no such file"},
		{"mismatch", Config{Mode: ModeFiles, CertFile: certFile, KeyFile: keyFile}, "does not match"},
		{"no files", Config{Mode: ModeFiles}, "give both"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Logger = testLogger(t)
			m, err := New(t.Context(), tc.cfg)
			if err == nil {
				m.Close()
				t.Fatal("New succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want %q", err, tc.want)
			}
		})
	}
}
