package tlsmgr

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/mholt/acmez/v3/acme"
)

// testACME is a pebble ACME CA running in the test process.
type testACME struct {
	dirURL   string         // ACME directory
	rootFile string         // PEM of the directory's HTTPS certificate (Config.ACMECARoot)
	roots    *x509.CertPool // pebble's issuing root, for clients of the node
}

// startPebble starts pebble with its validation authority dialing
// httpPort (HTTP-01) and tlsPort (TLS-ALPN-01) on the challenged name's
// address. Validation is real: PEBBLE_VA_ALWAYS_VALID is not set.
func startPebble(t *testing.T, httpPort, tlsPort int) *testACME {
	t.Helper()
	t.Setenv("PEBBLE_VA_NOSLEEP", "1")
	t.Setenv("PEBBLE_WFE_NONCEREJECT", "0")
	t.Setenv("PEBBLE_VA_ALWAYS_VALID", "0")
	logger := log.New(newTestWriter(t), "pebble ", 0)
	store := db.NewMemoryStore()
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, map[string]ca.Profile{
		"default": {Description: "default profile"},
	})
	validator := va.New(logger, httpPort, tlsPort, false, "", store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	srv := httptest.NewTLSServer(front.Handler())
	srv.Config.ErrorLog = discardLog()
	t.Cleanup(srv.Close)

	rootFile := filepath.Join(t.TempDir(), "acme-ca-root.pem")
	rootPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	if err := os.WriteFile(rootFile, rootPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(authority.GetRootCert(0).Cert)
	return &testACME{dirURL: srv.URL + "/dir", rootFile: rootFile, roots: roots}
}

// acmeNode is a node's two listeners serving a Manager, with counters of
// the challenges they answered.
type acmeNode struct {
	httpLns, tlsLns []net.Listener
	httpChallenges  atomic.Int32
	alpnChallenges  atomic.Int32
}

func newACMENode(t *testing.T) *acmeNode {
	return &acmeNode{httpLns: listenLoopback(t), tlsLns: listenLoopback(t)}
}

func (n *acmeNode) config(pebble *testACME, dataDir string) Config {
	return Config{
		Mode:           ModeACME,
		Domains:        []string{"localhost"},
		DataDir:        dataDir,
		ACMECA:         pebble.dirURL,
		ACMECARoot:     pebble.rootFile,
		AltHTTPPort:    port(n.httpLns[0]),
		AltTLSALPNPort: port(n.tlsLns[0]),
		disableARI:     true, // see its comment: a pebble quirk
	}
}

// serve serves m on the node's listeners the way the node does.
func (n *acmeNode) serve(t *testing.T, m *Manager) {
	h := m.HTTPHandler()
	serveHTTP(t, n.httpLns, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
			n.httpChallenges.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	cfg := m.TLSConfig()
	get := cfg.GetCertificate
	cfg.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if len(hello.SupportedProtos) == 1 && hello.SupportedProtos[0] == "acme-tls/1" {
			n.alpnChallenges.Add(1)
		}
		return get(hello)
	}
	serveHTTPS(t, n.tlsLns, cfg, m.HSTS(okHandler()))
}

func (n *acmeNode) tlsAddr() string { return n.tlsLns[0].Addr().String() }

// waitCA waits until the node serves a certificate for localhost that
// chains to the test CA's root, and returns it.
func waitCA(t *testing.T, n *acmeNode, pebble *testACME, notSerial string) *x509.Certificate {
	t.Helper()
	var leaf *x509.Certificate
	waitFor(t, 20*time.Second, func() string {
		c, err := servedLeaf(n.tlsAddr(), "localhost", pebble.roots)
		if err != nil {
			return fmt.Sprintf("no certificate from the CA served: %v", err)
		}
		if c.SerialNumber.Text(16) == notSerial {
			return "still serving certificate " + notSerial
		}
		leaf = c
		return ""
	})
	return leaf
}

func TestACMEIssueServeRenew(t *testing.T) {
	n := newACMENode(t)
	pebble := startPebble(t, port(n.httpLns[0]), port(n.tlsLns[0]))
	dataDir := t.TempDir()
	cfg := n.config(pebble, dataDir)
	m := newManager(t, cfg)
	n.serve(t, m)

	start := time.Now()
	leaf := waitCA(t, n, pebble, "")
	t.Logf("certificate issued in %v (http-01: %d, tls-alpn-01: %d)", time.Since(start).Round(time.Millisecond),
		n.httpChallenges.Load(), n.alpnChallenges.Load())
	if n.httpChallenges.Load()+n.alpnChallenges.Load() == 0 {
		t.Error("no challenge reached the node's listeners")
	}
	if !strings.Contains(leaf.Issuer.CommonName, "Pebble") || len(leaf.DNSNames) != 1 || leaf.DNSNames[0] != "localhost" {
		t.Errorf("served certificate: issuer %q names %v", leaf.Issuer.CommonName, leaf.DNSNames)
	}
	waitFor(t, 5*time.Second, func() string {
		st := m.Status()
		if st.Temporary || st.LastError != "" || st.Serial != leaf.SerialNumber.Text(16) {
			return fmt.Sprintf("status %+v", st)
		}
		return ""
	})

	// HTTPS responses: h2 negotiated, HSTS set.
	client := &http.Client{Transport: &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pebble.roots},
		ForceAttemptHTTP2: true,
	}}
	defer client.CloseIdleConnections()
	resp, err := client.Get(fmt.Sprintf("https://localhost:%d/", port(n.tlsLns[0])))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.Header.Get("Strict-Transport-Security") != HSTSHeader {
		t.Errorf("response %s, HSTS %q", resp.Proto, resp.Header.Get("Strict-Transport-Security"))
	}

	// Forced renewal: a new certificate is served without a restart.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := m.Renew(ctx); err != nil {
		t.Fatalf("Renew: %v", err)
	}
	renewed := waitCA(t, n, pebble, leaf.SerialNumber.Text(16))
	if renewed.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
		t.Fatal("same certificate after renewal")
	}
	if st := m.Status(); st.Serial != renewed.SerialNumber.Text(16) {
		t.Errorf("status serial %s, served %s", st.Serial, renewed.SerialNumber.Text(16))
	}

	// A restarted node serves the stored certificate from the start.
	m.Close()
	m2 := newManager(t, cfg)
	if st := m2.Status(); st.Temporary || st.Serial != renewed.SerialNumber.Text(16) {
		t.Errorf("after restart: %+v, want serial %s", st, renewed.SerialNumber.Text(16))
	}
}

// TestACMEChallengeTypes proves each challenge type alone, answered by the
// node's own listeners.
func TestACMEChallengeTypes(t *testing.T) {
	for _, tc := range []struct {
		name             string
		noHTTP, noTLS    bool
		wantHTTP, wantTL bool
	}{
		{name: "http-01", noTLS: true, wantHTTP: true},
		{name: "tls-alpn-01", noHTTP: true, wantTL: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newACMENode(t)
			pebble := startPebble(t, port(n.httpLns[0]), port(n.tlsLns[0]))
			cfg := n.config(pebble, t.TempDir())
			cfg.disableHTTPChallenge, cfg.disableTLSALPNChallenge = tc.noHTTP, tc.noTLS
			m := newManager(t, cfg)
			n.serve(t, m)
			waitCA(t, n, pebble, "")
			if got := n.httpChallenges.Load() > 0; got != tc.wantHTTP {
				t.Errorf("http-01 requests: %d", n.httpChallenges.Load())
			}
			if got := n.alpnChallenges.Load() > 0; got != tc.wantTL {
				t.Errorf("tls-alpn-01 handshakes: %d", n.alpnChallenges.Load())
			}
		})
	}
}

// TestACMEUnreachable: the CA cannot reach the node; the operator is told
// what to fix and the node serves its local CA's certificate meanwhile.
func TestACMEUnreachable(t *testing.T) {
	n := newACMENode(t)
	// The CA validates on ports where nothing listens.
	closed := listenLoopback(t)
	closed2 := listenLoopback(t)
	deadHTTP, deadTLS := port(closed[0]), port(closed2[0])
	for _, l := range append(closed, closed2...) {
		l.Close()
	}
	pebble := startPebble(t, deadHTTP, deadTLS)
	dataDir := t.TempDir()
	m := newManager(t, n.config(pebble, dataDir))
	n.serve(t, m)

	var st Status
	waitFor(t, 20*time.Second, func() string {
		st = m.Status()
		if st.LastError == "" {
			return fmt.Sprintf("no error reported: %+v", st)
		}
		return ""
	})
	t.Logf("last_error: %s", st.LastError)
	for _, want := range []string{
		"could not obtain a certificate for localhost from " + pebble.dirURL,
		"urn:ietf:params:acme:error:", // the CA's own words
		"make ports 80 (HTTP-01) and 443 (TLS-ALPN-01) reachable",
		"temporary certificate from its local CA",
	} {
		if !strings.Contains(st.LastError, want) {
			t.Errorf("last_error lacks %q", want)
		}
	}
	if !st.Temporary {
		t.Error("status not temporary")
	}

	// Still serving: the local CA's certificate, which verifies against it.
	caPEM, err := os.ReadFile(filepath.Join(dataDir, "tls", "local", localCACertFile))
	if err != nil {
		t.Fatal(err)
	}
	localRoots := x509.NewCertPool()
	localRoots.AppendCertsFromPEM(caPEM)
	leaf, err := servedLeaf(n.tlsAddr(), "localhost", localRoots)
	if err != nil {
		t.Fatalf("fallback certificate: %v", err)
	}
	if !strings.HasPrefix(leaf.Issuer.CommonName, "Relais local CA") {
		t.Errorf("fallback issuer %q", leaf.Issuer.CommonName)
	}
}

func TestACMEHints(t *testing.T) {
	const ca = "https://acme.example.gouv.fr/directory"
	problem := func(typ, detail string) error {
		return fmt.Errorf("[chat.mairie.fr] solving challenges: %w", acme.Problem{Type: typ, Detail: detail, Status: 403})
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"dns", problem(acme.ProblemTypeDNS, "NXDOMAIN"), "could not resolve chat.mairie.fr"},
		{"connection", problem(acme.ProblemTypeConnection, "Timeout during connect (likely firewall problem)"), "make ports 80 (HTTP-01) and 443 (TLS-ALPN-01) reachable"},
		{"unauthorized connect", problem(acme.ProblemTypeUnauthorized, "Failed to connect to 192.0.2.1:443"), "make ports 80 (HTTP-01) and 443 (TLS-ALPN-01) reachable"},
		{"wrong server", problem(acme.ProblemTypeUnauthorized, "Invalid response from http://chat.mairie.fr/.well-known/acme-challenge/x: 404"), "did not answer its challenge"},
		{"caa", problem(acme.ProblemTypeCAA, "CAA record prevents issuance"), "CAA record"},
		{"rate limited", problem(acme.ProblemTypeRateLimited, "too many certificates"), "rate-limits"},
		{"rejected", problem(acme.ProblemTypeRejectedIdentifier, "forbidden"), "refuses to issue"},
		{"untrusted CA", fmt.Errorf("fetching directory: %w", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), "--acme-ca-root"},
		{"CA unreachable", fmt.Errorf("fetching directory: %w", &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}), "cannot reach the ACME CA"},
		{"unknown", fmt.Errorf("something else"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := acmeHint("chat.mairie.fr", ca, tc.err)
			if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
				t.Errorf("hint %q, want %q", got, tc.want)
			}
		})
	}
	if h := dnsHint(t.Context(), "localhost"); h != "" {
		t.Errorf("localhost resolves here, hint %q", h)
	}
}

// TestACMEUntrustedCA: an internal CA whose HTTPS root was not given.
func TestACMEUntrustedCA(t *testing.T) {
	n := newACMENode(t)
	pebble := startPebble(t, port(n.httpLns[0]), port(n.tlsLns[0]))
	cfg := n.config(pebble, t.TempDir())
	cfg.ACMECARoot = ""
	m := newManager(t, cfg)
	n.serve(t, m)
	waitFor(t, 20*time.Second, func() string {
		if st := m.Status(); !strings.Contains(st.LastError, "give its root certificate with --acme-ca-root") {
			return "last_error: " + st.LastError
		}
		return ""
	})
	t.Logf("last_error: %s", m.Status().LastError)
}
