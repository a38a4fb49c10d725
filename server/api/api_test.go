package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"relais/cluster/nodetest"
	"relais/server/client"
	"relais/server/config"
	"relais/server/mail/smtptest"
	"relais/server/node"
	"relais/server/proto"
)

// waitMail returns the next message to an address whose text contains
// want, skipping earlier ones.
func waitMail(t *testing.T, relay *smtptest.Server, to, want string) smtptest.Received {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		msg, err := relay.WaitMessage(ctx, to)
		if err != nil {
			t.Fatalf("no mail to %s containing %q: %v", to, want, err)
		}
		if strings.Contains(msg.Text, want) {
			return msg
		}
	}
}

// tokenIn returns the token of the first link in a mail.
func tokenIn(t *testing.T, msg smtptest.Received) string {
	t.Helper()
	m := linkRE.FindStringSubmatch(msg.Text)
	if m == nil {
		t.Fatalf("no link in:\n%s", msg.Text)
	}
	tok, _ := url.QueryUnescape(m[1])
	return tok
}

var linkRE = regexp.MustCompile(`https?://\S+\?token=([A-Za-z0-9_%-]+)`)

func TestRegisterVerifyLoginDevicesLogout(t *testing.T) {
	relay, opt := nodetest.WithMailRelay(t)
	n := nodetest.Start(t, opt)
	ctx := context.Background()
	c := n.Client()
	status, err := c.Register(ctx, "Jeanne.Martin@agents.gouv.fr", "Velours-Cuivre-42", "")
	if err != nil || status != "verification_sent" {
		t.Fatalf("register: %q %v", status, err)
	}
	msg, err := relay.WaitMessage(ctx, "jeanne.martin@agents.gouv.fr")
	if err != nil {
		t.Fatal(err)
	}
	if !msg.TLS || msg.User != "relais" {
		t.Fatalf("mail not sent over TLS with login: tls=%v user=%q", msg.TLS, msg.User)
	}
	m := linkRE.FindStringSubmatch(msg.Text)
	if m == nil || !strings.Contains(msg.Text, n.URL()+"/verify?token=") {
		t.Fatalf("no verification link in:\n%s", msg.Text)
	}
	// Not verified yet: the right password gets account_inactive, a wrong
	// one bad_credentials (no hint either way without the password).
	if err := c.Login(ctx, "jeanne.martin@agents.gouv.fr", "Velours-Cuivre-42"); code(err) != proto.CodeAccountInactive {
		t.Fatalf("login before verification: %v", err)
	}
	token, _ := url.QueryUnescape(m[1])
	if err := c.Verify(ctx, "forged-token", "Velours-Cuivre-42"); code(err) != proto.CodeInvalidToken {
		t.Fatalf("forged token: %v", err)
	}
	if err := c.Verify(ctx, token, "Velours-Cuivre-42"); err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(ctx, token, "Velours-Cuivre-42"); code(err) != proto.CodeInvalidToken {
		t.Fatalf("token used twice: %v", err)
	}
	if err := c.Login(ctx, "jeanne.martin@agents.gouv.fr", "Velours-Cuivre-42"); err != nil {
		t.Fatal(err)
	}
	if c.Me.Name != "Jeanne Martin" || c.Me.Org != "agents.gouv.fr" {
		t.Fatalf("me = %+v", c.Me)
	}
	second := n.Client()
	if err := second.Login(ctx, "jeanne.martin@agents.gouv.fr", "Velours-Cuivre-42"); err != nil {
		t.Fatal(err)
	}
	var devs struct {
		Devices []struct {
			ID      string `json:"id"`
			Current bool   `json:"current"`
		} `json:"devices"`
	}
	if err := c.Do(ctx, "GET", "/api/v1/devices", nil, &devs); err != nil || len(devs.Devices) != 2 {
		t.Fatalf("devices: %+v %v", devs, err)
	}
	// Revoking the second device closes its websocket at once.
	conn, err := second.Dial(ctx, 16)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "DELETE", "/api/v1/devices/"+second.Me.Device, nil, nil); err != nil {
		t.Fatal(err)
	}
	nodetest.ClosedWith(t, conn, 4001, 5*time.Second, "the revoked device's connection")
	if err := second.Do(ctx, "GET", "/api/v1/me", nil, nil); code(err) != proto.CodeUnauthorized {
		t.Fatalf("revoked token still works: %v", err)
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "GET", "/api/v1/me", nil, nil); code(err) != proto.CodeUnauthorized {
		t.Fatalf("token works after logout: %v", err)
	}
}

func TestVerifyByCode(t *testing.T) {
	relay, opt := nodetest.WithMailRelay(t)
	n := nodetest.Start(t, opt)
	ctx := context.Background()
	c := n.Client()
	if _, err := c.Register(ctx, "paul.code@agents.gouv.fr", "Velours-Cuivre-42", "Paul"); err != nil {
		t.Fatal(err)
	}
	msg, err := relay.WaitMessage(ctx, "paul.code@agents.gouv.fr")
	if err != nil {
		t.Fatal(err)
	}
	right := mailCode(t, msg)
	wrong := "0000000000"
	if right == wrong {
		wrong = "1111111111"
	}
	if err := c.VerifyCode(ctx, "paul.code@agents.gouv.fr", wrong, "Velours-Cuivre-42"); code(err) != proto.CodeInvalidToken {
		t.Fatalf("wrong code: %v", err)
	}
	// The address in another case, the code typed in groups.
	if err := c.VerifyCode(ctx, "Paul.Code@agents.gouv.fr", right[:5]+" "+right[5:], "Velours-Cuivre-42"); err != nil {
		t.Fatal(err)
	}
	if err := c.Login(ctx, "paul.code@agents.gouv.fr", "Velours-Cuivre-42"); err != nil {
		t.Fatal(err)
	}
}

func TestRegistrationDoesNotRevealAccounts(t *testing.T) {
	relay, opt := nodetest.WithMailRelay(t)
	n := nodetest.Start(t, opt)
	ctx := context.Background()
	n.NewUserEmail("deja.la@agents.gouv.fr", "Déjà Là")
	c := n.Client()
	s1, err1 := c.Register(ctx, "deja.la@agents.gouv.fr", "Autre-Mot-De-Passe-7", "")
	s2, err2 := c.Register(ctx, "nouveau.venu@agents.gouv.fr", "Autre-Mot-De-Passe-7", "")
	if err1 != nil || err2 != nil || s1 != s2 {
		t.Fatalf("existing %q %v, new %q %v: the answers differ", s1, err1, s2, err2)
	}
	// The owner of the existing address is told, not the requester.
	waitMail(t, relay, "deja.la@agents.gouv.fr", "/reset?token=")
	// Login: unknown address and wrong password give the same answer.
	e1 := c.Login(ctx, "deja.la@agents.gouv.fr", "Mauvais-Mot-De-Passe-1")
	e2 := c.Login(ctx, "personne@agents.gouv.fr", "Mauvais-Mot-De-Passe-1")
	if code(e1) != proto.CodeBadCredentials || code(e2) != proto.CodeBadCredentials || e1.Error() != e2.Error() {
		t.Fatalf("login errors differ: %v / %v", e1, e2)
	}
}

func TestRefusedRegistrations(t *testing.T) {
	n := nodetest.Start(t)
	cases := []struct {
		email, password, code string
	}{
		{"x@gmail.com@agents.gouv.fr", "Velours-Cuivre-42", proto.CodeEmailInvalid},
		{"agent@gmail.com", "Velours-Cuivre-42", proto.CodeEmailNotAllowed},
		{"agent@agents.gouv.fr.evil.com", "Velours-Cuivre-42", proto.CodeEmailNotAllowed},
		{"agent@evil-agents.gouv.fr", "Velours-Cuivre-42", proto.CodeEmailNotAllowed},
		{"agent@agents.gouv.fr", "court", proto.CodeWeakPassword},
		{"agent@agents.gouv.fr", "azertyuiop", proto.CodeWeakPassword},
	}
	for _, c := range cases {
		_, err := n.Client().Register(context.Background(), c.email, c.password, "")
		if code(err) != c.code {
			t.Errorf("register %q: %v, want %s", c.email, err, c.code)
		}
	}
	users, _ := n.Accounts.Users()
	if len(users) != 0 {
		t.Fatalf("refused registrations stored %d users", len(users))
	}
}

// TestBadInput sends malformed requests: each gets a clear 4xx JSON error
// and changes nothing.
func TestBadInput(t *testing.T) {
	n := nodetest.Start(t)
	good := `{"email":"a.b@agents.gouv.fr","password":"Velours-Cuivre-42"}`
	cases := []struct {
		name, method, path, ctype, body string
		status                          int
		code                            string
	}{
		{"malformed JSON", "POST", "/api/v1/register", "application/json", `{"email":`, 400, proto.CodeBadRequest},
		{"not an object", "POST", "/api/v1/register", "application/json", `["x"]`, 400, proto.CodeBadRequest},
		{"unknown field", "POST", "/api/v1/register", "application/json", `{"email":"a@agents.gouv.fr","password":"x","admin":true}`, 400, proto.CodeBadRequest},
		{"trailing data", "POST", "/api/v1/register", "application/json", good + `{}`, 400, proto.CodeBadRequest},
		{"wrong content type", "POST", "/api/v1/register", "text/plain", good, 415, proto.CodeUnsupportedMedia},
		{"form post", "POST", "/api/v1/login", "application/x-www-form-urlencoded", "email=a&password=b", 415, proto.CodeUnsupportedMedia},
		{"oversized body", "POST", "/api/v1/register", "application/json", `{"email":"` + strings.Repeat("a", 100<<10) + `"}`, 413, proto.CodeTooLarge},
		{"forged session", "GET", "/api/v1/me", "", "", 401, proto.CodeUnauthorized},
		{"expired setup token", "POST", "/api/v1/setup", "application/json", `{"token":"nope","email":"a@agents.gouv.fr","password":"Velours-Cuivre-42"}`, 400, proto.CodeInvalidToken},
		{"bad reset token", "POST", "/api/v1/password/reset/confirm", "application/json", `{"token":"nope","password":"Velours-Cuivre-42"}`, 400, proto.CodeInvalidToken},
		{"unknown endpoint", "GET", "/api/v1/nothing", "", "", 404, proto.CodeNotFound},
		{"wrong method", "GET", "/api/v1/login", "", "", 404, proto.CodeNotFound},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(c.method, n.URL()+c.path, strings.NewReader(c.body))
			if c.ctype != "" {
				req.Header.Set("Content-Type", c.ctype)
			}
			req.Header.Set("Authorization", "Bearer forged")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatalf("answer is not JSON: %v", err)
			}
			if resp.StatusCode != c.status || body.Error.Code != c.code || body.Error.Message == "" {
				t.Fatalf("got %d %+v, want %d %s", resp.StatusCode, body.Error, c.status, c.code)
			}
		})
	}
	if users, _ := n.Accounts.Users(); len(users) != 0 {
		t.Fatalf("bad input stored %d users", len(users))
	}
}

func TestCrossSiteRequestsRefused(t *testing.T) {
	n := nodetest.Start(t)
	u := n.NewUser("Cible Csrf")
	// A state-changing request from another site is refused even with a
	// valid session.
	req, _ := http.NewRequest("POST", n.URL()+"/api/v1/logout", nil)
	req.Header.Set("Authorization", "Bearer "+u.Token())
	req.Header.Set("Origin", "https://evil.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 403 {
		t.Fatalf("cross-site logout: %d", resp.StatusCode)
	}
	// Websocket: a cookie from a foreign origin, or without an origin, is
	// refused; the same origin is accepted.
	cookie := &http.Cookie{Name: "relais_session", Value: u.Token()}
	for _, c := range []struct {
		origin string
		ok     bool
	}{{"https://evil.example", false}, {"", false}, {n.URL(), true}} {
		h := http.Header{}
		h.Set("Cookie", cookie.String())
		if c.origin != "" {
			h.Set("Origin", c.origin)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, resp, err := websocket.Dial(ctx, strings.Replace(n.URL(), "http", "ws", 1)+"/api/v1/ws", &websocket.DialOptions{HTTPHeader: h})
		cancel()
		if c.ok != (err == nil) {
			t.Fatalf("origin %q: err %v", c.origin, err)
		}
		if err == nil {
			conn.CloseNow()
		} else if resp == nil || resp.StatusCode != 403 {
			t.Fatalf("origin %q: refused without a 403: %v", c.origin, resp)
		}
	}
}

func TestPasswordChangeAndReset(t *testing.T) {
	relay, opt := nodetest.WithMailRelay(t)
	n := nodetest.Start(t, opt)
	ctx := context.Background()
	a := n.NewUserEmail("claude.reset@agents.gouv.fr", "Claude")
	b := n.Client()
	if err := b.Login(ctx, "claude.reset@agents.gouv.fr", nodetest.Password); err != nil {
		t.Fatal(err)
	}
	if err := a.Do(ctx, "POST", "/api/v1/password", map[string]string{"current": "wrong", "new": "Nouveau-Secret-88"}, nil); code(err) != proto.CodeWrongPassword {
		t.Fatalf("wrong current password: %v", err)
	}
	if err := a.Do(ctx, "POST", "/api/v1/password", map[string]string{"current": nodetest.Password, "new": "Nouveau-Secret-88"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Do(ctx, "GET", "/api/v1/me", nil, nil); err != nil {
		t.Fatalf("the device that changed the password was signed out: %v", err)
	}
	if err := b.Do(ctx, "GET", "/api/v1/me", nil, nil); code(err) != proto.CodeUnauthorized {
		t.Fatalf("other device still signed in after a password change: %v", err)
	}
	// Reset by e-mail signs every device out.
	if err := n.Client().Do(ctx, "POST", "/api/v1/password/reset", map[string]string{"email": "claude.reset@agents.gouv.fr"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := n.Client().Do(ctx, "POST", "/api/v1/password/reset", map[string]string{"email": "inconnu@agents.gouv.fr"}, nil); err != nil {
		t.Fatalf("reset of an unknown address must look the same: %v", err)
	}
	tok := tokenIn(t, waitMail(t, relay, "claude.reset@agents.gouv.fr", "/reset?token="))
	if err := n.Client().Do(ctx, "POST", "/api/v1/password/reset/confirm", map[string]string{"token": tok, "password": "Encore-Autre-Secret-5"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Do(ctx, "GET", "/api/v1/me", nil, nil); code(err) != proto.CodeUnauthorized {
		t.Fatalf("device still signed in after a reset: %v", err)
	}
	if err := n.Client().Login(ctx, "claude.reset@agents.gouv.fr", "Encore-Autre-Secret-5"); err != nil {
		t.Fatal(err)
	}
}

func TestDeactivationAndExpiry(t *testing.T) {
	relay, opt := nodetest.WithMailRelay(t)
	n := nodetest.Start(t, opt, nodetest.WithConfig(func(c *config.Config) { c.AccountValidity = config.Duration(time.Hour) }))
	ctx := context.Background()
	a := n.NewUserEmail("quitte.service@agents.gouv.fr", "Quitte")
	conn, err := a.Dial(ctx, 16)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Accounts.SetActive(ctx, "quitte.service@agents.gouv.fr", false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-conn.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("deactivated account still connected")
	}
	if err := n.Client().Login(ctx, "quitte.service@agents.gouv.fr", nodetest.Password); code(err) != proto.CodeAccountInactive {
		t.Fatalf("deactivated login: %v", err)
	}
	if err := n.Accounts.SetActive(ctx, "quitte.service@agents.gouv.fr", true); err != nil {
		t.Fatal(err)
	}
	// Expiry: restart the node one day later (its clock), sign-in is
	// refused and a renewal link is mailed; renewing lets the user in.
	b := n.Client()
	n.Restart(nodetest.WithOptions(func(o *node.Options) {
		o.Now = func() time.Time { return time.Now().Add(25 * time.Hour) }
	}))
	before := len(relay.Messages())
	if err := b.Login(ctx, "quitte.service@agents.gouv.fr", nodetest.Password); code(err) != proto.CodeAccountExpired {
		t.Fatalf("expired login: %v", err)
	}
	// Each renewal mail replaces the previous link: take the one the
	// refused sign-in sent.
	nodetest.CheckFor(t, 10*time.Second, func() error {
		if got := len(relay.Messages()); got <= before {
			return fmt.Errorf("no renewal mail: %d mails, %d before the request", got, before)
		}
		return nil
	})
	all := relay.Messages()
	tok := tokenIn(t, all[len(all)-1])
	if err := b.Do(ctx, "POST", "/api/v1/renew", map[string]string{"token": tok}, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Login(ctx, "quitte.service@agents.gouv.fr", nodetest.Password); err != nil {
		t.Fatalf("login after renewal: %v", err)
	}
}

func TestSetupCreatesFirstAdministrator(t *testing.T) {
	n := nodetest.Start(t)
	ctx := context.Background()
	link, err := n.Accounts.SetupLink(ctx)
	if err != nil || link == "" {
		t.Fatal(link, err)
	}
	u, _ := url.Parse(link)
	tok := u.Query().Get("token")
	c := n.Client()
	var st struct {
		Needed bool `json:"needed"`
	}
	c.Do(ctx, "GET", "/api/v1/setup", nil, &st)
	if !st.Needed {
		t.Fatal("setup not needed on a new node")
	}
	body := map[string]any{"token": tok, "email": "maire@mairie-exemple.fr", "password": "Velours-Cuivre-42", "domains": []string{"mairie-exemple.fr"}}
	if err := c.Do(ctx, "POST", "/api/v1/setup", body, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Do(ctx, "POST", "/api/v1/setup", body, nil); code(err) != proto.CodeInvalidToken && code(err) != proto.CodeSetupDone {
		t.Fatalf("second setup: %v", err)
	}
	if err := c.Login(ctx, "maire@mairie-exemple.fr", "Velours-Cuivre-42"); err != nil || !c.Me.Admin {
		t.Fatalf("admin login: %+v %v", c.Me, err)
	}
	// The new domain is allowed for registration now.
	if _, err := n.Client().Register(ctx, "secretaire@mairie-exemple.fr", "Velours-Cuivre-42", ""); err != nil {
		t.Fatal(err)
	}
	if l, _ := n.Accounts.SetupLink(ctx); l != "" {
		t.Fatal("a setup link after setup")
	}
}

func TestRateLimits(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithConfig(func(c *config.Config) { c.RateLimits = true }))
	ctx := context.Background()
	var last error
	for i := range 30 {
		last = n.Client().Login(ctx, "someone@agents.gouv.fr", "Mauvais-Mot-De-Passe-"+string(rune('a'+i)))
		if code(last) == proto.CodeRateLimited {
			break
		}
	}
	var ce *client.Error
	if !errors.As(last, &ce) || ce.Code != proto.CodeRateLimited || ce.Status != 429 || ce.RetryAfter < 1 {
		t.Fatalf("no 429 after 30 failed logins: %v", last)
	}
	// The answer carries Retry-After.
	req, _ := http.NewRequest("POST", n.URL()+"/api/v1/login", bytes.NewReader([]byte(`{"email":"someone@agents.gouv.fr","password":"x"}`)))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("status %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
}

func code(err error) string {
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Code
	}
	if err != nil {
		return "other: " + err.Error()
	}
	return ""
}
