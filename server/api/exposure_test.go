package api_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"relais/cluster/nodetest"
	"relais/server/admin"
	"relais/server/client"
	"relais/server/config"
	"relais/server/httpx"
	"relais/server/node"
)

// captureHandler keeps every log record, of every level, as text.
type captureHandler struct {
	mu      *sync.Mutex
	records *[]string
	attrs   []slog.Attr
}

func newCapture() *captureHandler {
	return &captureHandler{mu: new(sync.Mutex), records: new([]string)}
}

func (h *captureHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *captureHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	add := func(a slog.Attr) bool { b.WriteString(" " + a.Key + "=" + a.Value.String()); return true }
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	h.mu.Lock()
	*h.records = append(*h.records, b.String())
	h.mu.Unlock()
	return nil
}

func (h *captureHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &captureHandler{mu: h.mu, records: h.records, attrs: append(slices.Clone(h.attrs), as...)}
}

func (h *captureHandler) WithGroup(string) slog.Handler { return h }

// take returns the records logged since the last take.
func (h *captureHandler) take() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := *h.records
	*h.records = nil
	return out
}

// rawLogin signs in through a bare HTTP request and returns the answer,
// to read its Set-Cookie as a browser would.
func rawLogin(t *testing.T, base, email string) *http.Response {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"email": email, "password": nodetest.Password})
	resp, err := http.Post(base+"/api/v1/login", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: %s", resp.Status)
	}
	return resp
}

// TestSessionCookieSecureBehindHTTPSProxy: a node with --tls off on
// loopback behind a local HTTPS proxy (--public-url https://…) must mark its
// session cookie Secure, or a browser would send it over plain HTTP to
// anyone who lures it to http://the-name/.
func TestSessionCookieSecureBehindHTTPSProxy(t *testing.T) {
	for _, tc := range []struct {
		name      string
		publicURL string
		secure    bool
	}{
		{"https public URL", "https://relais.mairie.fr", true},
		{"http public URL on loopback (development)", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := nodetest.Start(t, nodetest.WithConfig(func(c *config.Config) { c.PublicURL = tc.publicURL }))
			email := "agent.cookie@" + nodetest.Domain
			// The proxy's name does not resolve here: talk to the listener.
			if _, err := client.New("http://"+n.Addr()).Register(context.Background(), email, nodetest.Password, ""); err != nil {
				t.Fatal(err)
			}
			if err := n.Accounts.Approve(context.Background(), email); err != nil {
				t.Fatal(err)
			}
			resp := rawLogin(t, "http://"+n.Addr(), email)
			var found bool
			for _, c := range resp.Cookies() {
				if c.Name == httpx.CookieName {
					found = true
					if c.Secure != tc.secure {
						t.Errorf("cookie %s Secure=%v, want %v (public URL %q)", c.Name, c.Secure, tc.secure, n.URL())
					}
				}
			}
			if !found {
				t.Fatalf("no session cookie in %v", resp.Header["Set-Cookie"])
			}
		})
	}
}

// TestSetupLinkNotLoggedOnceAdminExists: the one-time setup link is logged
// once by a node without administrator, and never again once the first
// administrator exists (restarts, admin socket), at any level.
func TestSetupLinkNotLoggedOnceAdminExists(t *testing.T) {
	logs := newCapture()
	data := t.TempDir()
	n := nodetest.Start(t, nodetest.WithConfig(func(c *config.Config) { c.Data = data }),
		nodetest.WithOptions(func(o *node.Options) { o.Logger = slog.New(logs) }))
	ctx := context.Background()
	var links []string
	for _, r := range logs.take() {
		if strings.Contains(r, "token=") {
			links = append(links, r)
		}
	}
	if len(links) != 1 {
		t.Fatalf("want the setup link logged once at first start, got %d records: %q", len(links), links)
	}
	_, raw, _ := strings.Cut(links[0], "setup=")
	u, err := url.Parse(strings.Fields(raw)[0])
	if err != nil {
		t.Fatal(err)
	}
	tok := u.Query().Get("token")
	body := map[string]any{"token": tok, "email": "maire@" + nodetest.Domain, "password": nodetest.Password}
	if err := n.Client().Do(ctx, "POST", "/api/v1/setup", body, nil); err != nil {
		t.Fatalf("setup with the logged link: %v", err)
	}
	// The used link once more, then a restart, then the admin socket.
	n.Client().Do(ctx, "POST", "/api/v1/setup", body, nil)
	n.Restart()
	admin.Dial(data).Do(ctx, "POST", "/setup-link", nil, nil)
	for _, r := range logs.take() {
		if strings.Contains(r, tok) || strings.Contains(r, "token=") {
			t.Errorf("a setup token is logged after the first administrator exists: %s", r)
		}
	}
}

// TestHealthzDetailsOnlyForAdmins: anyone may ask whether the node is up;
// its version, node id, sizes and certificate state (what an attacker
// picks exploits by) are for administrators and the admin socket only.
func TestHealthzDetailsOnlyForAdmins(t *testing.T) {
	data := t.TempDir()
	n := nodetest.Start(t, nodetest.WithConfig(func(c *config.Config) { c.Data = data }))
	ctx := context.Background()
	agent := n.NewUserEmail("agent.sante@"+nodetest.Domain, "Agent Santé")
	boss := n.NewUserEmail("admin.sante@"+nodetest.Domain, "Admin Santé")
	if err := n.Accounts.PromoteAdmin(ctx, "admin.sante@"+nodetest.Domain); err != nil {
		t.Fatal(err)
	}
	get := func(t *testing.T, do func(out any) error) map[string]any {
		t.Helper()
		var out map[string]any
		if err := do(&out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	anonymous := func(out any) error {
		resp, err := http.Get(n.URL() + "/healthz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return json.Unmarshal(b, out)
	}
	for _, tc := range []struct {
		name    string
		do      func(out any) error
		details bool
	}{
		{"anonymous", anonymous, false},
		{"agent session", func(out any) error { return agent.Do(ctx, "GET", "/healthz", nil, out) }, false},
		{"bad bearer token", func(out any) error {
			req, _ := http.NewRequest("GET", n.URL()+"/healthz", nil)
			req.Header.Set("Authorization", "Bearer forged")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			return json.NewDecoder(resp.Body).Decode(out)
		}, false},
		{"administrator session", func(out any) error { return boss.Do(ctx, "GET", "/healthz", nil, out) }, true},
		{"admin socket", func(out any) error { return admin.Dial(data).Do(ctx, "GET", "/health", nil, out) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := get(t, tc.do)
			if h["status"] != "ok" {
				t.Fatalf("status %v", h)
			}
			if tc.details {
				for _, k := range []string{"version", "node", "tls", "store_size"} {
					if _, ok := h[k]; !ok {
						t.Errorf("details lack %q: %v", k, h)
					}
				}
			} else if len(h) != 1 {
				t.Errorf("details given: %v", h)
			}
		})
	}
}

// TestMetricsNotOnPublicListener: behind a local reverse proxy every
// request comes from loopback, so a loopback check does not keep the
// metrics private: they are served only on --metrics-listen.
func TestMetricsNotOnPublicListener(t *testing.T) {
	n := nodetest.Start(t)
	resp, err := http.Get(n.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK || strings.Contains(string(b), "relais_") {
		t.Fatalf("the public listener serves metrics to a loopback client (a reverse proxy): %s\n%s", resp.Status, b)
	}

	m := nodetest.Start(t, nodetest.WithConfig(func(c *config.Config) { c.MetricsListen = "127.0.0.1:0" }))
	resp, err = http.Get("http://" + m.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "relais_sessions") {
		t.Fatalf("metrics listener: %s\n%s", resp.Status, b)
	}
	if resp, err := http.Get(m.URL() + "/metrics"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Fatal("with --metrics-listen the public listener still serves metrics")
		}
	}
}

// TestLocalTLSNodeWithDomain: a node run with --tls local --domain NAME
// serves a certificate for NAME that a client trusting only its CA
// accepts, prints the pin of its key, and its port-80 listener redirects
// NAME but refuses a Host an attacker chose.
func TestLocalTLSNodeWithDomain(t *testing.T) {
	logs := newCapture()
	n := nodetest.Start(t, nodetest.WithConfig(func(c *config.Config) {
		c.TLS, c.Domains, c.HTTPListen = "local", config.List{"relais.mairie.fr"}, "127.0.0.1:0"
	}), nodetest.WithOptions(func(o *node.Options) { o.Logger = slog.New(logs) }))
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(n.TLS.CACertPEM()) {
		t.Fatal("no CA")
	}
	conn, err := tls.Dial("tcp", n.Addr(), &tls.Config{ServerName: "relais.mairie.fr", RootCAs: roots})
	if err != nil {
		t.Fatalf("client trusting the CA, asking for the --domain name: %v", err)
	}
	leaf := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	pin := "sha256//" + base64.StdEncoding.EncodeToString(sum[:])
	if !slices.ContainsFunc(logs.take(), func(r string) bool { return strings.Contains(r, "spki_pin="+pin) }) {
		t.Errorf("the start does not print the served key's pin %s", pin)
	}

	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		host     string
		code     int
		location string
	}{
		{"relais.mairie.fr", http.StatusMovedPermanently, "https://relais.mairie.fr:" + portOf(n.Addr()) + "/login"},
		{"relais.mairie.fr.attacker.example", http.StatusMisdirectedRequest, ""},
		{"attacker.example", http.StatusMisdirectedRequest, ""},
	} {
		req, _ := http.NewRequest("GET", "http://"+n.RedirectAddr()+"/login", nil)
		req.Host = tc.host
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code || resp.Header.Get("Location") != tc.location {
			t.Errorf("Host %s: %d %q, want %d %q", tc.host, resp.StatusCode, resp.Header.Get("Location"), tc.code, tc.location)
		}
	}
}

func portOf(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
