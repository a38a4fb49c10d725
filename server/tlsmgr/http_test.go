package tlsmgr

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestRedirect(t *testing.T) {
	names := []string{"chat.mairie.fr", "2001:db8::1", "192.0.2.1"}
	local := newManager(t, Config{DataDir: t.TempDir(), HostNames: names})
	alt := newManager(t, Config{DataDir: t.TempDir(), RedirectPort: 8443, HostNames: names})
	for _, tc := range []struct {
		name     string
		m        *Manager
		method   string
		target   string
		host     string
		code     int
		location string
	}{
		{"get keeps path and query", local, "GET", "/salons/a%20b?x=1&y=2", "chat.mairie.fr", 301, "https://chat.mairie.fr/salons/a%20b?x=1&y=2"},
		{"port 80 dropped", local, "GET", "/salons", "chat.mairie.fr:80", 301, "https://chat.mairie.fr/salons"},
		{"local mode: / guides to the trust page", local, "GET", "/", "chat.mairie.fr", 302, "/trust"},
		{"trust page refuses other methods", local, "POST", "/trust", "chat.mairie.fr", 308, "https://chat.mairie.fr/trust"},
		{"trust page only for own names", local, "GET", "/trust", "attacker.example", 421, ""},
		{"head", local, "HEAD", "/x", "chat.mairie.fr", 301, "https://chat.mairie.fr/x"},
		{"post keeps method", local, "POST", "/api/send?id=3", "chat.mairie.fr", 308, "https://chat.mairie.fr/api/send?id=3"},
		{"ipv6", local, "GET", "/x", "[2001:db8::1]:80", 301, "https://[2001:db8::1]/x"},
		{"redirect port", alt, "GET", "/x?q", "192.0.2.1:8080", 301, "https://192.0.2.1:8443/x?q"},
		{"redirect port ipv6", alt, "GET", "/x", "[::1]", 301, "https://[::1]:8443/x"},
		{"no host", local, "GET", "/", "", 400, ""},
		// An attacker's Host is not a place to send users (phishing through
		// the node's own port 80): only the node's names are redirected.
		{"unknown host", local, "GET", "/login", "relais-mairie.attacker.example", 421, ""},
		{"unknown host with port", alt, "POST", "/api/v1/login", "attacker.example:80", 421, ""},
		{"unknown address", local, "GET", "/", "203.0.113.9", 421, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(tc.method, tc.target, nil)
			r.Host = tc.host
			w := httptest.NewRecorder()
			tc.m.HTTPHandler().ServeHTTP(w, r)
			if w.Code != tc.code || w.Header().Get("Location") != tc.location {
				t.Errorf("got %d %q, want %d %q", w.Code, w.Header().Get("Location"), tc.code, tc.location)
			}
		})
	}
}

func TestHSTSOnlyOverTLS(t *testing.T) {
	m := newManager(t, Config{DataDir: t.TempDir()})
	h := m.HSTS(okHandler())
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "http://x/", nil))
	if got := w.Header().Get("Strict-Transport-Security"); got != "" {
		t.Errorf("HSTS over plain HTTP: %q", got)
	}
	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "https://x/", nil))
	if got := w.Header().Get("Strict-Transport-Security"); got != HSTSHeader {
		t.Errorf("HSTS over TLS: %q", got)
	}
}

func TestOff(t *testing.T) {
	m := newManager(t, Config{Mode: ModeOff})
	if m.TLSConfig() != nil {
		t.Error("TLSConfig not nil")
	}
	w := httptest.NewRecorder()
	m.HSTS(okHandler()).ServeHTTP(w, httptest.NewRequest("GET", "https://x/", nil))
	if w.Header().Get("Strict-Transport-Security") != "" {
		t.Error("HSTS in off mode")
	}
	w = httptest.NewRecorder()
	m.HTTPHandler().ServeHTTP(w, httptest.NewRequest("GET", "http://x/", nil))
	if w.Code != http.StatusNotFound {
		t.Errorf("HTTPHandler: %d", w.Code)
	}
	if st := m.Status(); st.Mode != ModeOff || m.CAFingerprint() != "" || m.CACertPEM() != nil {
		t.Errorf("status %+v", st)
	}
	if err := m.Reload(); err != nil {
		t.Error(err)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080":  true,
		"127.1.2.3:80":    true,
		"[::1]:8080":      true,
		"localhost:8080":  true,
		"LOCALHOST:8080":  true,
		":8080":           false,
		"0.0.0.0:8080":    false,
		"[::]:8080":       false,
		"192.168.1.5:80":  false,
		"relais.lan:8080": false,
		"127.0.0.1":       false, // not host:port
	} {
		if got := LoopbackOnly(addr); got != want {
			t.Errorf("LoopbackOnly(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"unknown mode", Config{Mode: "tls13", DataDir: "x"}, `tls mode "tls13"`},
		{"acme without domain", Config{Mode: ModeACME, DataDir: t.TempDir()}, "no domain"},
		{"local without data dir", Config{Mode: ModeLocal}, "no data directory"},
		{"acme plain http CA", Config{Domains: []string{"chat.mairie.fr"}, DataDir: t.TempDir(), ACMECA: "http://ca.local/dir"}, "https://"},
		{"acme bad domain", Config{Domains: []string{"bad domain"}, DataDir: t.TempDir()}, "not a valid domain"},
		{"acme missing root", Config{Domains: []string{"chat.mairie.fr"}, DataDir: t.TempDir(), ACMECA: "https://ca.local/dir", ACMECARoot: "/nonexistent.pem"}, "acme CA root"},
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

func TestStatusJSON(t *testing.T) {
	m := newManager(t, Config{DataDir: t.TempDir()})
	b, err := json.Marshal(m.Status())
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.Unmarshal(b, &got)
	for _, k := range []string{"mode", "names", "not_after", "issuer", "serial", "ca_fingerprint"} {
		if _, ok := got[k]; !ok {
			t.Errorf("status JSON lacks %q: %s", k, b)
		}
	}
	for _, k := range []string{"last_error", "last_error_at", "temporary"} {
		if _, ok := got[k]; ok {
			t.Errorf("healthy status JSON has %q: %s", k, b)
		}
	}
}

func TestZapToSlog(t *testing.T) {
	var buf bytes.Buffer
	zl := newZapLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
	zl.Named("obtain").With(zap.String("identifier", "chat.mairie.fr")).Info("certificate obtained",
		zap.String("email", "maire@mairie.fr"), zap.Strings("contact", []string{"mailto:maire@mairie.fr"}), zap.Int("n", 3))
	zl.Debug("hidden")
	out := buf.String()
	for _, want := range []string{"level=INFO", `msg="certificate obtained"`, "logger=certmagic.obtain",
		"identifier=chat.mairie.fr", "email=[redacted]", "contact=[redacted]", "n=3"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q: %s", want, out)
		}
	}
	if strings.Contains(out, "maire@") || strings.Contains(out, "hidden") {
		t.Errorf("log leaks: %s", out)
	}
}

// FuzzRedirect: whatever the Host header, the port-80 handler redirects
// only to one of the node's names, or refuses.
func FuzzRedirect(f *testing.F) {
	for _, h := range []string{"chat.mairie.fr", "chat.mairie.fr:80", "[2001:db8::1]:80", "evil.example", "chat.mairie.fr.evil.example", "chat.mairie.fr@evil.example", "[::1", "", "CHAT.MAIRIE.FR."} {
		f.Add(h, "/x?y")
	}
	m := newManager(f, Config{DataDir: f.TempDir(), HostNames: []string{"chat.mairie.fr", "2001:db8::1"}, RedirectPort: 8443})
	h := m.HTTPHandler()
	f.Fuzz(func(t *testing.T, host, target string) {
		// net/http refuses request targets with control characters before
		// any handler runs.
		if !strings.HasPrefix(target, "/") || strings.ContainsFunc(target, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.URL.Path, r.URL.RawQuery, _ = strings.Cut(target, "?")
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		loc := w.Header().Get("Location")
		if loc == "" || loc == trustPath && w.Code == http.StatusFound {
			return
		}
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatalf("Host %q: Location %q does not parse: %v", host, loc, err)
		}
		if u.Scheme != "https" || u.User != nil || !m.ownName(u.Hostname()) || u.Port() != "8443" {
			t.Fatalf("Host %q: redirected to %q", host, loc)
		}
	})
}

// TestTrustPageGuidesThroughTheLocalCA: the plain-HTTP trust page shows the
// CA's fingerprint, offers exactly the CA for download, links to the
// node's HTTPS address, speaks French and English, and its one style is
// allowed by hash under a CSP that allows nothing else.
func TestTrustPageGuidesThroughTheLocalCA(t *testing.T) {
	m := newManager(t, Config{DataDir: t.TempDir(), RedirectPort: 8443, HostNames: []string{"relais.mairie.lan"}})
	get := func(target, lang string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", target, nil)
		r.Host = "relais.mairie.lan:8080"
		if lang != "" {
			r.Header.Set("Accept-Language", lang)
		}
		w := httptest.NewRecorder()
		m.HTTPHandler().ServeHTTP(w, r)
		return w
	}
	for _, tc := range []struct{ target, lang, want string }{
		{"/trust", "fr-FR,fr;q=0.9", "Comparez l'empreinte"},
		{"/trust", "en-GB,en;q=0.8", "Compare the fingerprint"},
		{"/trust?lang=en", "fr", "Compare the fingerprint"},
		{"/trust", "", "Comparez l'empreinte"},
	} {
		w := get(tc.target, tc.lang)
		body := w.Body.String()
		if w.Code != 200 || !strings.Contains(body, tc.want) && !strings.Contains(body, strings.ReplaceAll(tc.want, "'", "&#39;")) {
			t.Fatalf("%s (%s): %d, want 200 with %q:\n%s", tc.target, tc.lang, w.Code, tc.want, body)
		}
		if !strings.Contains(body, m.CAFingerprint()) || m.CAFingerprint() == "" {
			t.Errorf("%s: the page does not show the CA fingerprint %q", tc.target, m.CAFingerprint())
		}
		if !strings.Contains(body, `href="https://relais.mairie.lan:8443/"`) {
			t.Errorf("%s: no link to the node's HTTPS address", tc.target)
		}
		csp := w.Header().Get("Content-Security-Policy")
		start, end := strings.Index(body, "<style>")+len("<style>"), strings.Index(body, "</style>")
		if !strings.Contains(csp, "style-src 'sha256-"+styleHash(body[start:end])+"'") || !strings.HasPrefix(csp, "default-src 'none'") {
			t.Errorf("CSP %q does not allow exactly the page's style", csp)
		}
	}
	w := get("/trust/ca.crt", "")
	if w.Code != 200 || !bytes.Equal(w.Body.Bytes(), m.CACertPEM()) || w.Header().Get("Content-Type") != "application/x-x509-ca-cert" {
		t.Fatalf("ca.crt: %d %q, want the CA's PEM", w.Code, w.Header().Get("Content-Type"))
	}
}
