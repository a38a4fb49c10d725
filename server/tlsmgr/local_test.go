package tlsmgr

import (
	"crypto/x509"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"
)

func TestLocalCA(t *testing.T) {
	dataDir := t.TempDir()
	cfg := Config{DataDir: dataDir, HostNames: []string{"relais.mairie.lan", "192.0.2.7"}}
	m := newManager(t, cfg)
	if m.Mode() != ModeLocal {
		t.Fatalf("mode %q, want local by default", m.Mode())
	}
	fp := m.CAFingerprint()
	if !regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(fp) {
		t.Fatalf("fingerprint %q", fp)
	}
	lns := listenLoopback(t)
	serveHTTPS(t, lns, m.TLSConfig(), m.HSTS(okHandler()))
	addr := lns[0].Addr().String()

	trusting := x509.NewCertPool()
	if !trusting.AppendCertsFromPEM(m.CACertPEM()) {
		t.Fatal("CACertPEM holds no certificate")
	}
	for _, name := range []string{"localhost", "relais.mairie.lan"} {
		if _, err := servedLeaf(addr, name, trusting); err != nil {
			t.Errorf("client trusting the local CA, name %s: %v", name, err)
		}
	}
	// An IP address SAN: no SNI, verified against the IP.
	if _, err := servedLeaf(addr, "127.0.0.1", trusting); err != nil {
		t.Errorf("client trusting the local CA, by IP: %v", err)
	}
	system, err := x509.SystemCertPool()
	if err != nil {
		system = x509.NewCertPool()
	}
	if _, err := servedLeaf(addr, "localhost", system); !isUnknownAuthority(err) {
		t.Errorf("client with system roots: err %v, want unknown authority", err)
	}

	// HSTS over TLS.
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsClientConfig(trusting)}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("https://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Strict-Transport-Security"); got != HSTSHeader {
		t.Errorf("HSTS %q", got)
	}

	st := m.Status()
	leaf, _ := servedLeaf(addr, "localhost", trusting)
	if st.CAFingerprint != fp || st.Serial != leaf.SerialNumber.Text(16) || st.LastError != "" ||
		!slices.Contains(st.Names, "relais.mairie.lan") || !slices.Contains(st.Names, "192.0.2.7") {
		t.Errorf("status %+v", st)
	}
	if leaf.NotAfter.Sub(leaf.NotBefore) > 397*24*time.Hour {
		t.Errorf("leaf valid for %v", leaf.NotAfter.Sub(leaf.NotBefore))
	}

	// Files: private directory, private keys.
	for path, want := range map[string]os.FileMode{
		filepath.Join(dataDir, "tls"):                            0o700,
		filepath.Join(dataDir, "tls", "local"):                   0o700,
		filepath.Join(dataDir, "tls", "local", localCAKeyFile):   0o600,
		filepath.Join(dataDir, "tls", "local", localLeafKeyFile): 0o600,
	} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
	m.Close()

	// Restarts reuse the CA; the node certificate is re-issued only when due.
	for _, tc := range []struct {
		name      string
		cfg       Config
		newSerial bool
	}{
		{name: "same names", cfg: cfg, newSerial: false},
		{name: "names changed", cfg: Config{DataDir: dataDir, HostNames: []string{"relais.mairie.lan"}}, newSerial: true},
		{name: "near expiry", cfg: Config{DataDir: dataDir, HostNames: []string{"relais.mairie.lan"},
			Now: func() time.Time { return time.Now().Add(370 * 24 * time.Hour) }}, newSerial: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := leafSerial(t, dataDir)
			m := newManager(t, tc.cfg)
			defer m.Close()
			if m.CAFingerprint() != fp {
				t.Errorf("fingerprint changed: %s", m.CAFingerprint())
			}
			if got := m.Status().Serial != before; got != tc.newSerial {
				t.Errorf("new certificate: %v, want %v", got, tc.newSerial)
			}
		})
	}

	// Renew issues a new node certificate from the same CA.
	m2 := newManager(t, Config{DataDir: dataDir, HostNames: []string{"relais.mairie.lan"}})
	before := m2.Status().Serial
	if err := m2.Renew(t.Context()); err != nil {
		t.Fatal(err)
	}
	if after := m2.Status().Serial; after == before || m2.CAFingerprint() != fp {
		t.Errorf("after Renew: serial %s (was %s), fingerprint %s", after, before, m2.CAFingerprint())
	}
}

func leafSerial(t *testing.T, dataDir string) string {
	t.Helper()
	ca, err := loadLocalCA(filepath.Join(dataDir, "tls", "local"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.loadLeaf()
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf.SerialNumber.Text(16)
}
