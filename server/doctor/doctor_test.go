package doctor

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/config"
	"relais/server/mail/smtptest"
	"relais/server/media/clamd/clamdtest"
)

// only runs the one check called name.
func only(t *testing.T, name string, cfg config.Config, opts Options) []Finding {
	t.Helper()
	opts.defaults()
	e := &env{cfg: cfg, opts: opts}
	for _, c := range checks {
		if c.name == name {
			return c.run(context.Background(), e)
		}
	}
	t.Fatalf("no check %q", name)
	return nil
}

// expect fails unless the findings hold a problem whose text contains
// want (or, with want "", no problem at all).
func expect(t *testing.T, fs []Finding, want string) {
	t.Helper()
	var b strings.Builder
	Print(&b, fs)
	problems := 0
	found := false
	for _, f := range fs {
		if f.Problem {
			problems++
			if want != "" && strings.Contains(f.What+" "+f.Fix, want) {
				found = true
			}
		}
	}
	switch {
	case want == "" && problems > 0:
		t.Errorf("problems found where none should be:\n%s", b.String())
	case want != "" && !found:
		t.Errorf("no problem mentioning %q:\n%s", want, b.String())
	}
}

func baseConfig(t *testing.T) config.Config {
	cfg := config.Defaults()
	cfg.Data = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.TLS = "off"
	return cfg
}

// TestDoctorPorts: a free port is fine, one held by another program is a
// problem, one held while a node runs on the data directory is the node's.
func TestDoctorPorts(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	nodeData := t.TempDir()
	node := nodetest.Start(t, nodetest.WithConfig(func(c *config.Config) { c.Data = nodeData }))
	for _, tc := range []struct {
		name string
		edit func(*config.Config)
		want string
	}{
		{"free", func(*config.Config) {}, ""},
		{"held by another program", func(c *config.Config) { c.Listen = held.Addr().String() }, "already in use by another program"},
		{"metrics port held", func(c *config.Config) { c.MetricsListen = held.Addr().String() }, "--metrics-listen"},
		{"held by the node of this data directory", func(c *config.Config) { c.Data = nodeData; c.Listen = node.Addr() }, ""},
		{"not an address", func(c *config.Config) { c.Listen = "nowhere:http:x" }, "cannot be bound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(t)
			tc.edit(&cfg)
			fs := Run(context.Background(), cfg, Options{})
			var ports []Finding
			for _, f := range fs {
				if f.Check == "ports" {
					ports = append(ports, f)
				}
			}
			expect(t, ports, tc.want)
		})
	}
}

// TestDoctorDNS: a name that resolves is fine, one that cannot (.invalid
// never does, RFC 2606) is a problem.
func TestDoctorDNS(t *testing.T) {
	for _, tc := range []struct {
		domains config.List
		want    string
	}{
		{nil, ""},
		{config.List{"localhost"}, ""},
		{config.List{"localhost", "relais.mairie.invalid"}, "relais.mairie.invalid does not resolve"},
	} {
		t.Run(fmt.Sprint(tc.domains), func(t *testing.T) {
			cfg := baseConfig(t)
			cfg.Domains = tc.domains
			expect(t, only(t, "dns", cfg, Options{Timeout: 5 * time.Second}), tc.want)
		})
	}
}

// writeCert writes a certificate for names valid over [from, until] and
// its key as PEM files in dir.
func writeCert(t *testing.T, dir, name string, from, until time.Time, names ...string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: from, NotAfter: until, DNSNames: names}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestDoctorCertificates: files mode checks the pair, the names and the
// dates; the certificates a node stores under its data directory are
// checked for their dates.
func TestDoctorCertificates(t *testing.T) {
	now := time.Now()
	day := 24 * time.Hour
	dir := t.TempDir()
	good, goodKey := writeCert(t, dir, "good", now.Add(-day), now.Add(90*day), "relais.mairie.fr")
	_, otherKey := writeCert(t, dir, "other", now.Add(-day), now.Add(90*day), "relais.mairie.fr")
	expired, expiredKey := writeCert(t, dir, "expired", now.Add(-90*day), now.Add(-day), "relais.mairie.fr")
	soon, soonKey := writeCert(t, dir, "soon", now.Add(-80*day), now.Add(5*day), "relais.mairie.fr")
	future, futureKey := writeCert(t, dir, "future", now.Add(3*day), now.Add(90*day), "relais.mairie.fr")
	notPEM := filepath.Join(dir, "garbage.crt")
	os.WriteFile(notPEM, []byte("not a certificate"), 0o644)

	files := func(cert, key string, domains ...string) func(*config.Config) {
		return func(c *config.Config) { c.TLS, c.TLSCert, c.TLSKey, c.Domains = "files", cert, key, domains }
	}
	for _, tc := range []struct {
		name string
		edit func(*config.Config)
		want string
	}{
		{"tls off", func(*config.Config) {}, ""},
		{"files: good", files(good, goodKey, "relais.mairie.fr"), ""},
		{"files: key of another certificate", files(good, otherKey), "are not a pair"},
		{"files: domain not covered", files(good, goodKey, "chat.mairie.fr"), "does not cover chat.mairie.fr"},
		{"files: expired", files(expired, expiredKey), "expired on"},
		{"files: expires soon", files(soon, soonKey), "expires in 4 days"},
		{"files: valid only in the future", files(future, futureKey), "valid only from"},
		{"files: not PEM", files(notPEM, goodKey), "holds no PEM certificate"},
		{"files: missing key", files(good, ""), "without --tls-cert or --tls-key"},
		{"local: none stored yet", func(c *config.Config) { c.TLS = "local" }, ""},
		{"local: an expired stored certificate", func(c *config.Config) {
			c.TLS = "local"
			d := filepath.Join(c.Data, "tls", "local")
			os.MkdirAll(d, 0o700)
			writeCert(t, d, "node", now.Add(-90*day), now.Add(-day), "localhost")
		}, "restart the node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(t)
			tc.edit(&cfg)
			expect(t, only(t, "certificates", cfg, Options{}), tc.want)
		})
	}

	// The certificates a real node stores are valid.
	cfg := baseConfig(t)
	cfg.TLS = "local"
	nodetest.Start(t, nodetest.WithConfig(func(c *config.Config) { c.Data, c.TLS = cfg.Data, "local" }))
	fs := only(t, "certificates", cfg, Options{})
	expect(t, fs, "")
	if len(fs) < 2 {
		t.Errorf("the local CA and the node's certificate were not both checked: %+v", fs)
	}
}

// TestDoctorSMTP: the right credentials pass; a wrong password, a relay
// without STARTTLS and an unreachable relay are each named.
func TestDoctorSMTP(t *testing.T) {
	relay := smtptest.Start(t, smtptest.WithStartTLS(), smtptest.WithAuth("relais", "s3cret"))
	plain := smtptest.Start(t, smtptest.WithAuth("relais", "s3cret"))
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	smtp := func(s *smtptest.Server, port int, password string) func(*config.Config) {
		return func(c *config.Config) {
			c.SMTPHost, c.SMTPPort, c.SMTPUser, c.SMTPPassword, c.SMTPFrom = "127.0.0.1", port, "relais", password, "no-reply@agents.gouv.fr"
		}
	}
	for _, tc := range []struct {
		name string
		edit func(*config.Config)
		want string
	}{
		{"no relay", func(*config.Config) {}, ""},
		{"right password", smtp(relay, relay.Port, "s3cret"), ""},
		{"wrong password", smtp(relay, relay.Port, "wrong"), "refused the credentials"},
		{"no STARTTLS", smtp(plain, plain.Port, "s3cret"), "--smtp-security"},
		{"nobody listening", smtp(relay, closedPort, "s3cret"), "firewall"},
		{"no sender", func(c *config.Config) { smtp(relay, relay.Port, "s3cret")(c); c.SMTPFrom = "" }, "sender address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(t)
			tc.edit(&cfg)
			fs := only(t, "smtp", cfg, Options{SMTPTLS: relay.ClientTLSConfig(), Timeout: 10 * time.Second})
			expect(t, fs, tc.want)
			for _, f := range fs {
				if strings.Contains(f.What+f.Fix, "s3cret") || strings.Contains(f.What+f.Fix, "wrong") {
					t.Errorf("a password is printed: %+v", f)
				}
			}
		})
	}
}

// TestDoctorClamd: a running clamd passes; a stopped one and a bad
// address are problems.
func TestDoctorClamd(t *testing.T) {
	up := clamdtest.Start(t, clamdtest.Options{})
	down := clamdtest.Start(t, clamdtest.Options{})
	down.Stop()
	for _, tc := range []struct {
		name, clamd, want string
	}{
		{"none", "", ""},
		{"running", up.UnixURL(), ""},
		{"stopped", down.UnixURL(), "does not answer"},
		{"bad address", "ftp://clamd", "--clamd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(t)
			cfg.Clamd = tc.clamd
			expect(t, only(t, "clamd", cfg, Options{}), tc.want)
		})
	}
}

// TestDoctorDiskThreshold: free space under the threshold is a problem.
func TestDoctorDiskThreshold(t *testing.T) {
	for _, tc := range []struct {
		name    string
		minFree func(uint64) uint64
		want    string
	}{
		{"room", func(uint64) uint64 { return 1 }, ""},
		{"full", func(total uint64) uint64 { return total + 1 }, "free of"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(t)
			cfg.Data = filepath.Join(cfg.Data, "not", "yet")
			expect(t, only(t, "disk", cfg, Options{MinFree: tc.minFree}), tc.want)
		})
	}
}

// TestDoctorClock: a peer whose Date differs by more than the tolerance
// is a problem; without a peer, a certificate issued in the future is.
func TestDoctorClock(t *testing.T) {
	peer := func(offset time.Duration) *httptest.Server {
		s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Date", time.Now().Add(offset).UTC().Format(http.TimeFormat))
		}))
		t.Cleanup(s.Close)
		return s
	}
	now := time.Now()
	for _, tc := range []struct {
		name string
		peer *httptest.Server
		cert time.Time // NotBefore of a stored certificate, if not zero
		want string
	}{
		{"agrees", peer(0), time.Time{}, ""},
		{"ahead", peer(-10 * time.Minute), time.Time{}, "the clock is off by 10m"},
		{"behind", peer(10 * time.Minute), time.Time{}, "the clock is off by -10m"},
		{"no reference", nil, time.Time{}, ""},
		{"certificate from the future", nil, now.Add(2 * time.Hour), "the clock is behind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(t)
			var opts Options
			if tc.peer != nil {
				opts.TimeURL, opts.HTTP = tc.peer.URL, tc.peer.Client()
			}
			if !tc.cert.IsZero() {
				cfg.TLS = "local"
				d := filepath.Join(cfg.Data, "tls", "local")
				os.MkdirAll(d, 0o700)
				writeCert(t, d, "node", tc.cert, tc.cert.Add(90*24*time.Hour), "localhost")
			}
			expect(t, only(t, "clock", cfg, opts), tc.want)
		})
	}
}

// TestDoctorPermissions: the data directory must be 0700 and its secrets
// unreadable by others.
func TestDoctorPermissions(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(dir string)
		want string
	}{
		{"private", func(string) {}, ""},
		{"directory open to others", func(d string) { os.Chmod(d, 0o755) }, "chmod 700"},
		{"store readable by others", func(d string) { os.WriteFile(filepath.Join(d, "relais.db"), nil, 0o644) }, "chmod 600"},
		{"key readable by the group", func(d string) {
			os.MkdirAll(filepath.Join(d, "tls", "local"), 0o700)
			os.WriteFile(filepath.Join(d, "tls", "local", "node.key"), nil, 0o640)
		}, "node.key has mode 0640"},
		{"another owner", func(d string) { os.Chown(d, 12345, 12345) }, "belongs to uid 12345"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := baseConfig(t)
			os.Chmod(cfg.Data, 0o700)
			tc.edit(cfg.Data)
			expect(t, only(t, "permissions", cfg, Options{}), tc.want)
		})
	}
}

// mountTmpfs mounts a tmpfs of size bytes on a fresh directory, unmounted
// when the test ends. The tests run as root; a test that needs it fails
// without it.
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		t.Fatalf("mount a tmpfs (the test needs root): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// TestDoctorNamesEachProblem is the check of the issue: against a
// configuration with a wrong SMTP password (a real relay that refuses
// it), a stopped clamd and an almost-full disk (a small tmpfs), given as
// `relais serve` takes it (flags, environment, configuration file),
// doctor names each problem and exits non-zero; with those fixed it
// exits 0.
func TestDoctorNamesEachProblem(t *testing.T) {
	relay := smtptest.Start(t, smtptest.WithStartTLS(), smtptest.WithAuth("relais", "s3cret"))
	down := clamdtest.Start(t, clamdtest.Options{})
	down.Stop()
	up := clamdtest.Start(t, clamdtest.Options{})

	disk := mountTmpfs(t, 16<<20)
	fill, err := os.Create(filepath.Join(disk, "old-backup.tar"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fill.Write(make([]byte, 15<<20)); err != nil {
		t.Fatal(err)
	}
	fill.Close()
	full := filepath.Join(disk, "data")
	roomy := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(roomy, 0o700); err != nil {
		t.Fatal(err)
	}

	run := func(data, clamdURL, password string) (int, string) {
		t.Helper()
		conf := filepath.Join(t.TempDir(), "relais.conf")
		if err := os.WriteFile(conf, fmt.Appendf(nil, "# as /etc/relais/relais.conf\nclamd = %q\nsmtp-user = relais\nsmtp-from = no-reply@agents.gouv.fr\n", clamdURL), 0o600); err != nil {
			t.Fatal(err)
		}
		args := []string{"--config", conf, "--data", data, "--listen", "127.0.0.1:0", "--tls", "local",
			"--smtp-host", relay.Host, "--smtp-port", fmt.Sprint(relay.Port)}
		environ := []string{"RELAIS_SMTP_PASSWORD=" + password, "HOME=/root"}
		var stdout, stderr bytes.Buffer
		code := Main(context.Background(), args, environ, &stdout, &stderr, Options{SMTPTLS: relay.ClientTLSConfig()})
		return code, stdout.String() + stderr.String()
	}

	code, out := run(full, down.UnixURL(), "wrong")
	if code == 0 {
		t.Errorf("exit status 0 with three problems:\n%s", out)
	}
	for _, want := range []string{
		"PROBLEM smtp", "refused the credentials",
		"PROBLEM clamd", "does not answer",
		"PROBLEM disk", "free of 16.0 MiB",
		"3 problem(s) found",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "wrong") {
		t.Errorf("the password is printed:\n%s", out)
	}

	code, out = run(roomy, up.UnixURL(), "s3cret")
	if code != 0 || !strings.Contains(out, "no problem found") {
		t.Errorf("healthy configuration: exit status %d:\n%s", code, out)
	}

	var stderr bytes.Buffer
	if code := Main(context.Background(), []string{"--no-such-flag"}, nil, &bytes.Buffer{}, &stderr, Options{}); code != 2 {
		t.Errorf("usage error: exit status %d, want 2", code)
	}
}
