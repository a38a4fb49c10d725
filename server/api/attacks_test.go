package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/client"
	"relais/server/config"
	"relais/server/mail"
	"relais/server/mail/smtptest"
	"relais/server/node"
	"relais/server/proto"
)

// verifyCodeRE finds the code of a verification mail (10 digits).
var verifyCodeRE = regexp.MustCompile(`\b(\d{10})\b`)

func mailCode(t *testing.T, msg smtptest.Received) string {
	t.Helper()
	m := verifyCodeRE.FindStringSubmatch(msg.Text)
	if m == nil {
		t.Fatalf("no code in:\n%s", msg.Text)
	}
	return m[1]
}

// TestRegisterThreeTimesFirstCodeFails: each registration of a pending
// address replaces its code and link; the earlier ones are dead.
func TestRegisterThreeTimesFirstCodeFails(t *testing.T) {
	relay, opt := nodetest.WithMailRelay(t)
	n := nodetest.Start(t, opt)
	ctx := context.Background()
	const addr, pw = "trois.fois@agents.gouv.fr", "Pirate-Secret-991"
	var codes, links []string
	for range 3 {
		if _, err := n.Client().Register(ctx, addr, pw, ""); err != nil {
			t.Fatal(err)
		}
		msg := waitMail(t, relay, addr, "")
		codes, links = append(codes, mailCode(t, msg)), append(links, tokenIn(t, msg))
	}
	c := n.Client()
	if err := c.VerifyCode(ctx, addr, codes[0], pw); code(err) != proto.CodeInvalidToken {
		t.Fatalf("first code after two more registrations: %v", err)
	}
	if err := c.Verify(ctx, links[1], pw); code(err) != proto.CodeInvalidToken {
		t.Fatalf("second link after a third registration: %v", err)
	}
	if err := c.Login(ctx, addr, pw); code(err) != proto.CodeAccountInactive {
		t.Fatalf("an old code verified the account: %v", err)
	}
	if err := c.VerifyCode(ctx, addr, codes[2], pw); err != nil {
		t.Fatalf("the last code: %v", err)
	}
}

// TestWrongGuessesBurnCode: after 5 wrong guesses the right code no longer
// works.
func TestWrongGuessesBurnCode(t *testing.T) {
	relay, opt := nodetest.WithMailRelay(t)
	n := nodetest.Start(t, opt)
	ctx := context.Background()
	const addr, pw = "devine.code@agents.gouv.fr", "Pirate-Secret-992"
	if _, err := n.Client().Register(ctx, addr, pw, ""); err != nil {
		t.Fatal(err)
	}
	right := mailCode(t, waitMail(t, relay, addr, ""))
	c := n.Client()
	for i := range 5 {
		wrong := []byte(right)
		wrong[i] = '0' + (wrong[i]-'0'+1)%10
		if err := c.VerifyCode(ctx, addr, string(wrong), pw); code(err) != proto.CodeInvalidToken {
			t.Fatalf("wrong guess %d: %v", i, err)
		}
	}
	if err := c.VerifyCode(ctx, addr, right, pw); code(err) != proto.CodeInvalidToken {
		t.Fatalf("the right code after 5 wrong guesses: %v", err)
	}
	if err := c.Login(ctx, addr, pw); code(err) != proto.CodeAccountInactive {
		t.Fatalf("account activated after the code was burnt: %v", err)
	}
}

// TestVictimCannotCompleteAttackerRegistration: an attacker registers the
// victim's address with the attacker's password. The victim, following
// the mail, cannot activate the account with the attacker's password: the
// code (or link) alone completes nothing, the registration's password is
// needed too. A new registration by the victim then works with the
// victim's own password only.
func TestVictimCannotCompleteAttackerRegistration(t *testing.T) {
	relay, opt := nodetest.WithMailRelay(t)
	n := nodetest.Start(t, opt)
	ctx := context.Background()
	const victim, attackerPW, victimPW = "victime.reelle@agents.gouv.fr", "Pirate-Secret-993", "Velours-Cuivre-42"
	if _, err := n.Client().Register(ctx, victim, attackerPW, "Victime"); err != nil {
		t.Fatal(err)
	}
	msg := waitMail(t, relay, victim, "")
	v := n.Client()
	// The victim types the code from the mail with the password they
	// know, their own; the link the same.
	if err := v.VerifyCode(ctx, victim, mailCode(t, msg), victimPW); code(err) != proto.CodeInvalidToken {
		t.Fatalf("victim completing the attacker's registration by code: %v", err)
	}
	if err := v.Verify(ctx, tokenIn(t, msg), victimPW); code(err) != proto.CodeInvalidToken {
		t.Fatalf("victim completing the attacker's registration by link: %v", err)
	}
	// Without a password, nothing completes either.
	if err := v.Verify(ctx, tokenIn(t, msg), ""); err == nil {
		t.Fatal("a link alone completed a registration")
	}
	if err := n.Client().Login(ctx, victim, attackerPW); code(err) != proto.CodeAccountInactive {
		t.Fatalf("the attacker's registration is not pending any more: %v", err)
	}
	// The victim registers for real; the attacker's password never works.
	if _, err := v.Register(ctx, victim, victimPW, "Victime"); err != nil {
		t.Fatal(err)
	}
	msg = waitMail(t, relay, victim, "")
	if err := n.Client().VerifyCode(ctx, victim, mailCode(t, msg), attackerPW); code(err) != proto.CodeInvalidToken {
		t.Fatalf("the victim's code with the attacker's password: %v", err)
	}
	if err := v.VerifyCode(ctx, victim, mailCode(t, msg), victimPW); err != nil {
		t.Fatal(err)
	}
	if err := n.Client().Login(ctx, victim, attackerPW); code(err) != proto.CodeBadCredentials {
		t.Fatalf("attacker's password after the victim verified: %v", err)
	}
	if err := n.Client().Login(ctx, victim, victimPW); err != nil {
		t.Fatal(err)
	}
}

// fromAddr returns a client whose connections leave from a given loopback
// address, so that the node sees another client network.
func fromAddr(n *nodetest.Node, ip string) *client.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
	return client.New(n.URL(), client.WithDialer(d.DialContext))
}

// TestSignInFailuresFromOneNetworkDoNotLockOutAnother: an attacker
// failing to sign in as someone, from one network, until refused, does
// not keep that person out when they sign in from another network.
func TestSignInFailuresFromOneNetworkDoNotLockOutAnother(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithConfig(func(c *config.Config) { c.RateLimits = true }))
	ctx := context.Background()
	n.NewUserEmail("cible.verrou@agents.gouv.fr", "Cible")
	attacker := fromAddr(n, "127.0.0.2")
	limited := false
	for i := range 40 {
		err := attacker.Login(ctx, "cible.verrou@agents.gouv.fr", "Mauvais-Mot-De-Passe-"+string(rune('a'+i)))
		if code(err) == proto.CodeRateLimited {
			limited = true
			break
		}
		if code(err) != proto.CodeBadCredentials {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if !limited {
		t.Fatal("40 failed sign-ins from one network were never limited")
	}
	if err := fromAddr(n, "127.0.0.3").Login(ctx, "cible.verrou@agents.gouv.fr", nodetest.Password); err != nil {
		t.Fatalf("the real user, from another network, is locked out: %v", err)
	}
}

// TestSuccessfulSignInsDoNotCount: signing in successfully, many times,
// and registering, use no sign-in budget.
func TestSuccessfulSignInsDoNotCount(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithConfig(func(c *config.Config) { c.RateLimits = true }))
	ctx := context.Background()
	n.NewUserEmail("souvent.la@agents.gouv.fr", "Souvent")
	c := fromAddr(n, "127.0.0.4")
	for i := range 3 {
		if _, err := c.Register(ctx, "autre.personne@agents.gouv.fr", "Velours-Cuivre-4"+string(rune('0'+i)), ""); err != nil {
			t.Fatalf("registration %d: %v", i, err)
		}
	}
	for i := range 30 {
		if err := c.Login(ctx, "souvent.la@agents.gouv.fr", nodetest.Password); err != nil {
			t.Fatalf("successful sign-in %d refused: %v", i, err)
		}
	}
}

// slowSender delays every message, as a slow SMTP relay would.
type slowSender struct {
	mail.Sender
	delay time.Duration
}

func (s slowSender) Send(ctx context.Context, m mail.Message) error {
	time.Sleep(s.delay)
	return s.Sender.Send(ctx, m)
}

// TestResetRequestSameForUnknownAndKnown: a reset request gets byte for
// byte the same answer whether the address has an active account, a
// pending one or none, and the answer does not wait for the mail (a slow
// relay would otherwise tell accounts apart by time).
func TestResetRequestSameForUnknownAndKnown(t *testing.T) {
	relay, opt := nodetest.WithMailRelay(t)
	slow := nodetest.WithOptions(func(o *node.Options) {
		o.Mailer = slowSender{Sender: o.Mailer, delay: 3 * time.Second}
	})
	n := nodetest.Start(t, opt, slow)
	n.NewUserEmail("existe.bien@agents.gouv.fr", "Existe")
	post := func(email string) (int, string, time.Duration) {
		start := time.Now()
		req, _ := http.NewRequest("POST", n.URL()+"/api/v1/password/reset", bytes.NewReader([]byte(`{"email":"`+email+`"}`)))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), time.Since(start)
	}
	s1, b1, d1 := post("existe.bien@agents.gouv.fr")
	s2, b2, d2 := post("personne.ici@agents.gouv.fr")
	if s1 != s2 || b1 != b2 {
		t.Fatalf("known %d %q, unknown %d %q", s1, b1, s2, b2)
	}
	// The known address's answer came before the relay took the mail:
	// sending happens after the answer, from a queue.
	if d1 > 2*time.Second || d2 > 2*time.Second {
		t.Fatalf("the answer waited for the relay: known %v, unknown %v", d1, d2)
	}
	waitMail(t, relay, "existe.bien@agents.gouv.fr", "/reset?token=")
}

// TestResetLinkDeadAfterPasswordChange: a reset link no longer works once
// the password changed, by the user or by another reset.
func TestResetLinkDeadAfterPasswordChange(t *testing.T) {
	relay, opt := nodetest.WithMailRelay(t)
	n := nodetest.Start(t, opt)
	ctx := context.Background()
	a := n.NewUserEmail("lien.mort@agents.gouv.fr", "Lien")
	reset := func() string {
		if err := n.Client().Do(ctx, "POST", "/api/v1/password/reset", map[string]string{"email": "lien.mort@agents.gouv.fr"}, nil); err != nil {
			t.Fatal(err)
		}
		return tokenIn(t, waitMail(t, relay, "lien.mort@agents.gouv.fr", "/reset?token="))
	}
	confirm := func(tok, pw string) error {
		return n.Client().Do(ctx, "POST", "/api/v1/password/reset/confirm", map[string]string{"token": tok, "password": pw}, nil)
	}
	old := reset()
	if err := a.Do(ctx, "POST", "/api/v1/password", map[string]string{"current": nodetest.Password, "new": "Nouveau-Secret-88"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := confirm(old, "Pirate-Secret-994"); code(err) != proto.CodeInvalidToken {
		t.Fatalf("reset link after a password change: %v", err)
	}
	// An operator's reset link dies when the password changes too.
	link, err := n.Accounts.AdminResetLink(ctx, "lien.mort@agents.gouv.fr")
	if err != nil {
		t.Fatal(err)
	}
	if err := confirm(reset(), "Encore-Autre-Secret-5"); err != nil {
		t.Fatal(err)
	}
	if err := confirm(tokenOf(t, link), "Pirate-Secret-995"); code(err) != proto.CodeInvalidToken {
		t.Fatalf("operator's reset link after another reset: %v", err)
	}
	if err := n.Client().Login(ctx, "lien.mort@agents.gouv.fr", "Encore-Autre-Secret-5"); err != nil {
		t.Fatal(err)
	}
}

func tokenOf(t *testing.T, link string) string {
	t.Helper()
	m := linkRE.FindStringSubmatch(link)
	if m == nil {
		t.Fatalf("no token in %q", link)
	}
	return m[1]
}

// TestSessionUnusedPastLifetimeRefused: a session unused for longer than
// --session-lifetime is refused on HTTP and on the websocket; the
// --session-max-age bounds even a session in use.
func TestSessionUnusedPastLifetimeRefused(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithConfig(func(c *config.Config) {
		c.SessionLifetime = config.Duration(time.Hour)
		c.SessionMaxAge = config.Duration(2 * time.Hour)
	}))
	ctx := context.Background()
	a := n.NewUser("Session Oubliee")
	b := n.NewUser("Session Active")
	for _, step := range []time.Duration{50 * time.Minute, 100 * time.Minute} {
		n.Restart(nodetest.WithOptions(func(o *node.Options) {
			o.Now = func() time.Time { return time.Now().Add(step) }
		}))
		if err := b.Do(ctx, "GET", "/api/v1/me", nil, nil); err != nil {
			t.Fatalf("session used every 50 minutes refused at %v: %v", step, err)
		}
		// The use is recorded in the background: wait for it.
		nodetest.CheckFor(t, 10*time.Second, func() error {
			devs, err := n.Accounts.Devices(b.Me.ID)
			if err != nil {
				return fmt.Errorf("devices: %w", err)
			}
			if len(devs) != 1 {
				return fmt.Errorf("the use of the session was not recorded: %d devices, want 1", len(devs))
			}
			if ahead := time.Until(devs[0].LastSeen); ahead <= step-time.Minute {
				return fmt.Errorf("the use of the session was not recorded: last seen %v from now, want more than %v", ahead, step-time.Minute)
			}
			return nil
		})
	}
	// a was last used at the start, 100 minutes ago.
	if err := a.Do(ctx, "GET", "/api/v1/me", nil, nil); code(err) != proto.CodeUnauthorized {
		t.Fatalf("session unused past the lifetime: %v", err)
	}
	if conn, err := a.Dial(ctx, 16); err == nil {
		conn.Close()
		t.Fatal("websocket with a session unused past the lifetime")
	}
	// b was used 50 minutes ago, but opened 150 minutes ago: past the
	// maximum age even a session in use is refused.
	n.Restart(nodetest.WithOptions(func(o *node.Options) {
		o.Now = func() time.Time { return time.Now().Add(150 * time.Minute) }
	}))
	if err := b.Do(ctx, "GET", "/api/v1/me", nil, nil); code(err) != proto.CodeUnauthorized {
		t.Fatalf("session past the maximum age: %v", err)
	}
	if conn, err := b.Dial(ctx, 16); err == nil {
		conn.Close()
		t.Fatal("websocket with a session past the maximum age")
	}
}

// TestOpenWebsocketClosedAtMaximumAge: a websocket opened while its
// session was valid is closed once the session passes its maximum age.
func TestOpenWebsocketClosedAtMaximumAge(t *testing.T) {
	var offset atomic.Int64
	n := nodetest.Start(t, nodetest.WithConfig(func(c *config.Config) { c.SessionMaxAge = config.Duration(time.Hour) }),
		nodetest.WithOptions(func(o *node.Options) {
			o.Now = func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		}))
	ctx := context.Background()
	a := n.NewUser("Connexion Longue")
	conn, err := a.Dial(ctx, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	if err := n.Accounts.ExpireSessions(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case <-conn.Done():
		t.Fatal("a valid session's websocket was closed")
	case <-time.After(200 * time.Millisecond):
	}
	offset.Store(int64(61 * time.Minute))
	if err := n.Accounts.ExpireSessions(ctx); err != nil {
		t.Fatal(err)
	}
	nodetest.ClosedWith(t, conn, 4001, 5*time.Second, "a websocket past its session's maximum age")
}

// TestDisplayNamesWithInvisibleCharactersRefused: names that hide
// characters or reorder the text around them are refused, at
// registration and when changed, with name_invalid, and nothing is kept.
func TestDisplayNamesWithInvisibleCharactersRefused(t *testing.T) {
	n := nodetest.Start(t)
	ctx := context.Background()
	u := n.NewUser("Nom Correct")
	cases := []struct{ name, given string }{
		{"right-to-left override", "Jean \u202Egpj.exe"},
		{"left-to-right embedding", "Jean \u202ADupont"},
		{"first strong isolate", "Jean \u2068Dupont\u2069"},
		{"zero-width space", "Jean\u200BDupont"},
		{"zero-width joiner", "Jean\u200DDupont"},
		{"right-to-left mark", "Jean Dupont\u200F"},
		{"word joiner", "Jean\u2060Dupont"},
		{"byte order mark", "\uFEFFJean Dupont"},
		{"C0 control", "Jean\x07Dupont"},
		{"C1 control", "Jean\u009BDupont"},
		{"private use", "Jean \uE000"},
		{"too long", strings.Repeat("a", 101)},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := n.Client().Register(ctx, "nom"+string(rune('a'+i))+"@agents.gouv.fr", "Velours-Cuivre-42", c.given)
			if code(err) != proto.CodeNameInvalid {
				t.Errorf("registration: %v", err)
			}
			if err := u.Do(ctx, "PATCH", "/api/v1/me", map[string]string{"display_name": c.given}, nil); code(err) != proto.CodeNameInvalid {
				t.Errorf("change of name: %v", err)
			}
		})
	}
	if users, _ := n.Accounts.Users(); len(users) != 1 || users[0].Name != "Nom Correct" {
		t.Fatalf("refused names changed the accounts: %+v", users)
	}
	// Accents, apostrophes, hyphens and non-Latin scripts stay allowed.
	for _, ok := range []string{"Zoé L’Hôte-Brière", "Αθηνά Παππά", "محمد علي"} {
		if err := u.Do(ctx, "PATCH", "/api/v1/me", map[string]string{"display_name": ok}, nil); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
}

// TestNamesakesDisambiguated: two agents of one administration with the
// same name come out of the directory with different tags, and nothing
// in the answer is an e-mail address.
func TestNamesakesDisambiguated(t *testing.T) {
	n := nodetest.Start(t)
	ctx := context.Background()
	n.NewUserEmail("marie.dupont@agents.gouv.fr", "Marie Dupont")
	n.NewUserEmail("m.dupont@agents.gouv.fr", "Marie Dupont")
	c := n.NewUser("Chercheur")
	conn, err := c.Dial(ctx, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if _, err := conn.Sync(ctx, nil); err != nil {
		t.Fatal(err)
	}
	var raw json.RawMessage
	if err := conn.Call(ctx, proto.TDirectory, map[string]any{"q": "marie dupont"}, &raw); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("@")) || bytes.Contains(raw, []byte("m.dupont")) {
		t.Fatalf("the directory shows addresses: %s", raw)
	}
	var res struct {
		Users []map[string]any `json:"users"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Users) != 2 {
		t.Fatalf("directory: %s", raw)
	}
	t1, _ := res.Users[0]["tag"].(string)
	t2, _ := res.Users[1]["tag"].(string)
	if t1 == "" || t2 == "" || t1 == t2 {
		t.Fatalf("namesakes not told apart: %s", raw)
	}
}
