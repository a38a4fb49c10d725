package tlsmgr

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// signWithCAKey plays a thief of the local CA's key (or a node operator
// gone rogue): it signs a server certificate for names with that key.
func signWithCAKey(t *testing.T, ca *localCA, dnsNames []string, ips []net.IP) *x509.Certificate {
	t.Helper()
	der, _ := signTest(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "forged"},
		NotBefore:   time.Now().Add(-time.Hour),
		NotAfter:    time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    dnsNames,
		IPAddresses: ips,
	}, ca.cert, ca.key)
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestLocalCACannotVouchForOtherSites: whoever holds the local CA's key
// (or a user who installed the CA) cannot make a certificate for another
// website that verifies against the CA: the CA carries critical name
// constraints limited to the node's own names.
func TestLocalCACannotVouchForOtherSites(t *testing.T) {
	dataDir := t.TempDir()
	m := newManager(t, Config{DataDir: dataDir, Domains: []string{"relais.mairie.fr"}, Mode: ModeLocal, HostNames: []string{"192.0.2.7"}})
	ca, err := loadLocalCA(filepath.Join(dataDir, "tls", "local"))
	if err != nil {
		t.Fatal(err)
	}
	if m.CAFingerprint() != ca.fingerprint() {
		t.Fatal("loaded another CA than the manager's")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	for _, tc := range []struct {
		name   string
		dns    []string
		ips    []net.IP
		verify string
		ok     bool
	}{
		{"outside name", []string{"www.impots.gouv.fr"}, nil, "www.impots.gouv.fr", false},
		{"outside name beside an own one", []string{"relais.mairie.fr", "www.impots.gouv.fr"}, nil, "www.impots.gouv.fr", false},
		{"parent of an own name", []string{"mairie.fr"}, nil, "mairie.fr", false},
		{"outside public address", nil, []net.IP{net.ParseIP("203.0.113.9")}, "203.0.113.9", false},
		{"outside address beside loopback", nil, []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("198.51.100.1")}, "198.51.100.1", false},
		{"own domain", []string{"relais.mairie.fr"}, nil, "relais.mairie.fr", true},
		{"localhost", []string{"localhost"}, nil, "localhost", true},
		{"own address", nil, []net.IP{net.ParseIP("192.0.2.7")}, "192.0.2.7", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forged := signWithCAKey(t, ca, tc.dns, tc.ips)
			_, err := forged.Verify(x509.VerifyOptions{Roots: roots, DNSName: tc.verify})
			if tc.ok && err != nil {
				t.Fatalf("own name refused: %v", err)
			}
			if !tc.ok && err == nil {
				t.Fatalf("a certificate for %v %v signed with the local CA's key verifies against the CA", tc.dns, tc.ips)
			}
		})
	}
	if !ca.cert.PermittedDNSDomainsCritical {
		t.Error("name constraints not marked critical: clients that ignore them would accept any name")
	}
}

// TestLocalLeafCoversDomain: --tls local --domain NAME serves a
// certificate for NAME, which a client trusting the CA accepts.
func TestLocalLeafCoversDomain(t *testing.T) {
	m := newManager(t, Config{DataDir: t.TempDir(), Mode: ModeLocal, Domains: []string{"Relais.Mairie.fr"}})
	lns := listenLoopback(t)
	serveHTTPS(t, lns, m.TLSConfig(), okHandler())
	roots, err := pemCertPool(m.CACertPEM())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := servedLeaf(lns[0].Addr().String(), "relais.mairie.fr", roots); err != nil {
		t.Fatalf("client asking for the --domain name: %v", err)
	}
}

// TestLocalLifetimes bounds the CA's and the leaf's validity: a stolen
// leaf key is worth at most a month, the CA at most two years.
func TestLocalLifetimes(t *testing.T) {
	m := newManager(t, Config{DataDir: t.TempDir()})
	ca := m.local.Load()
	if d := ca.cert.NotAfter.Sub(ca.cert.NotBefore); d > 2*365*24*time.Hour+localBackdate {
		t.Errorf("CA valid for %v, want at most 2 years", d)
	}
	leaf := m.cert.Load().Leaf
	if d := leaf.NotAfter.Sub(leaf.NotBefore); d > 30*24*time.Hour+localBackdate {
		t.Errorf("leaf valid for %v, want at most 30 days", d)
	}
}

// TestLocalLeafRenewedByRunningNode: the running manager replaces its
// node certificate before it expires, without a restart, and keeps its
// key so that an SPKI pin stays valid.
func TestLocalLeafRenewedByRunningNode(t *testing.T) {
	var offset atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	m := newManager(t, Config{DataDir: t.TempDir(), Now: now, localCheck: 20 * time.Millisecond})
	lns := listenLoopback(t)
	serveHTTPS(t, lns, m.TLSConfig(), okHandler())
	addr := lns[0].Addr().String()
	first, err := servedLeaf(addr, "localhost", nil)
	if err != nil {
		t.Fatal(err)
	}
	pin := m.SPKIPin()
	if want := pinOf(first); pin != want {
		t.Fatalf("SPKIPin %q, served leaf's %q", pin, want)
	}
	// 25 days later the 30-day certificate is within its renewal window.
	offset.Store(int64(25 * 24 * time.Hour))
	waitFor(t, 10*time.Second, func() string {
		c, err := servedLeaf(addr, "localhost", nil)
		if err != nil {
			return err.Error()
		}
		if c.SerialNumber.Cmp(first.SerialNumber) == 0 {
			return "still serving the first certificate, which expires " + first.NotAfter.String()
		}
		if !c.NotAfter.After(now().Add(localLeafRenewal)) {
			return "renewed certificate expires too soon: " + c.NotAfter.String()
		}
		if !bytes.Equal(c.RawSubjectPublicKeyInfo, first.RawSubjectPublicKeyInfo) {
			return "renewal changed the key: SPKI pins would break"
		}
		return ""
	})
}

func pinOf(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return "sha256//" + base64.StdEncoding.EncodeToString(sum[:])
}

// TestLocalCAWithoutConstraintsReplaced: a CA left by an older version
// (no name constraints, ten years) is replaced on start, and the log tells
// the operator that users must remove the old one and trust the new one.
func TestLocalCAWithoutConstraintsReplaced(t *testing.T) {
	dataDir := t.TempDir()
	dir := filepath.Join(dataDir, "tls", "local")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	old := writeUnconstrainedCA(t, dir)
	var logs bytes.Buffer
	m := newManager(t, Config{DataDir: dataDir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if m.CAFingerprint() == old {
		t.Fatal("the unconstrained CA is still in use")
	}
	if ca := m.local.Load(); !ca.cert.PermittedDNSDomainsCritical || len(ca.cert.PermittedDNSDomains) == 0 {
		t.Fatal("the new CA has no name constraints")
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), old) || !strings.Contains(logs.String(), m.CAFingerprint()) {
		t.Fatalf("no warning naming the old and the new CA:\n%s", logs.String())
	}
	// The next start keeps the new CA.
	m.Close()
	m2 := newManager(t, Config{DataDir: dataDir})
	if m2.CAFingerprint() != m.CAFingerprint() {
		t.Fatal("the constrained CA was replaced again")
	}
}

// writeUnconstrainedCA writes a CA the way versions before name
// constraints did, and returns its fingerprint.
func writeUnconstrainedCA(t *testing.T, dir string) string {
	t.Helper()
	der, key := signTest(t, &x509.Certificate{
		Subject:   pkix.Name{CommonName: "Relais local CA old"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true, IsCA: true, MaxPathLenZero: true,
	}, nil, nil)
	keyPEM, err := marshalKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, localCAKeyFile), keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, localCACertFile), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return fingerprint(der)
}
