package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"relais/cluster"
	"relais/cluster/leaftest"
	"relais/cluster/nodetest"
	"relais/server/client"
	"relais/server/fed"
	"relais/server/proto"
)

// startAdmin starts an administration of its own: a node with federation
// on, serving one e-mail domain. With listen it has a link listener on a
// loopback port it picks; without, it only dials (a town hall behind NAT).
func startAdmin(t *testing.T, name, domain string, listen bool) *proc {
	t.Helper()
	args := []string{"--name", name, "--allowed-domains", domain, "--rate-limits", "off", "--federation", "on"}
	if listen {
		args = append(args, "--federation-listen", "127.0.0.1:0")
	}
	return startProc(t, t.TempDir(), args...)
}

// fedRun runs `relais federation --data p.data args…` and returns its
// standard output, its standard error and whether it succeeded.
func fedRun(t *testing.T, p *proc, args ...string) (string, string, error) {
	t.Helper()
	bin, _ := binary()
	cmd := exec.Command(bin, append([]string{"federation", "--data", p.data}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return strings.TrimSpace(out.String()), errb.String(), err
}

func mustFed(t *testing.T, p *proc, args ...string) string {
	t.Helper()
	out, stderr, err := fedRun(t, p, args...)
	if err != nil {
		t.Fatalf("relais federation %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr)
	}
	return out
}

// peer peers a and b with the three commands of the README.
func peer(t *testing.T, a, b *proc) {
	t.Helper()
	invite := mustFed(t, a, "invite")
	reply := mustFed(t, b, "add", invite)
	if out := mustFed(t, a, "add", reply); !strings.Contains(out, "peering complete") {
		t.Fatalf("adding the reply: %q", out)
	}
}

// health is the node's health details from the admin socket.
type health struct {
	Federation struct {
		Admin fed.AdminID    `json:"admin"`
		Peers []fed.PeerInfo `json:"peers"`
	} `json:"federation"`
}

func healthOf(t *testing.T, p *proc) health {
	t.Helper()
	var h health
	if err := json.Unmarshal([]byte(run(t, "admin", "--data", p.data, "health")), &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func adminOf(t *testing.T, p *proc) fed.AdminID {
	t.Helper()
	id := healthOf(t, p).Federation.Admin
	if !id.Valid() {
		t.Fatalf("no administration id in health")
	}
	return id
}

// linkState is p's state of its link to id in health, "" when not pinned.
func linkState(t *testing.T, p *proc, id fed.AdminID) string {
	t.Helper()
	for _, pi := range healthOf(t, p).Federation.Peers {
		if pi.ID == id {
			return pi.State
		}
	}
	return ""
}

func waitLink(t *testing.T, p *proc, id fed.AdminID, want string, within time.Duration) {
	t.Helper()
	nodetest.CheckFor(t, within, func() error {
		if got := linkState(t, p, id); got != want {
			return fmt.Errorf("link of %s to %s is %q, want %q", p.data, id, got, want)
		}
		return nil
	})
}

// agent registers an agent on p, approves it and signs it in.
func agent(t *testing.T, p *proc, email, name string) *client.Client {
	t.Helper()
	ctx := context.Background()
	c := client.New(p.url)
	if _, err := c.Register(ctx, email, "Velours-Cuivre-42", name); err != nil {
		t.Fatalf("register %s: %v", email, err)
	}
	run(t, "admin", "--data", p.data, "users", "approve", email)
	if err := c.Login(ctx, email, "Velours-Cuivre-42"); err != nil {
		t.Fatalf("login %s: %v", email, err)
	}
	return c
}

type dirResult struct {
	Users   []proto.Profile `json:"users"`
	Partial bool            `json:"partial"`
}

func search(t *testing.T, conn *client.Conn, q string) (dirResult, string) {
	t.Helper()
	var raw json.RawMessage
	if err := conn.Call(context.Background(), proto.TDirectory, map[string]any{"q": q}, &raw); err != nil {
		t.Fatalf("directory %q: %v", q, err)
	}
	var r dirResult
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatal(err)
	}
	return r, string(raw)
}

func names(r dirResult) map[string]string {
	out := map[string]string{}
	for _, u := range r.Users {
		out[u.Name] = u.Admin
	}
	return out
}

// TestFederationThreeAdministrationsPeerAndSearchTheDirectory: a ministry
// A and a prefecture C listen, a town hall B behind NAT only dials. They
// peer pairwise with the three commands; the links come up in health and
// in `federation list`; an agent of B finds agents of A and C by name,
// shown with their administration and never by address, and not the one
// A deactivated; `remove` cuts a link at once and later searches say
// they are partial.
func TestFederationThreeAdministrationsPeerAndSearchTheDirectory(t *testing.T) {
	a := startAdmin(t, "Ministère A", "ministere.gouv.fr", true)
	b := startAdmin(t, "Mairie B", "mairie-b.fr", false)
	c := startAdmin(t, "Préfecture C", "prefecture-c.gouv.fr", true)
	aid, bid, cid := adminOf(t, a), adminOf(t, b), adminOf(t, c)
	peer(t, a, b)
	peer(t, c, b)
	peer(t, a, c)
	for _, l := range []struct {
		p  *proc
		to fed.AdminID
	}{{a, bid}, {a, cid}, {b, aid}, {b, cid}, {c, aid}, {c, bid}} {
		waitLink(t, l.p, l.to, fed.LinkUp, 20*time.Second)
	}
	list := mustFed(t, b, "list")
	for _, want := range []string{string(aid), "Ministère A", "ministere.gouv.fr", string(cid), "Préfecture C", "up (dials)"} {
		if !strings.Contains(list, want) {
			t.Errorf("federation list of B lacks %q:\n%s", want, list)
		}
	}

	agent(t, a, "helene.dupont@ministere.gouv.fr", "Hélène Dupont")
	agent(t, a, "hugo.dupre@ministere.gouv.fr", "Hugo Dupré")
	run(t, "admin", "--data", a.data, "users", "deactivate", "hugo.dupre@ministere.gouv.fr")
	agent(t, c, "herve.dupuis@prefecture-c.gouv.fr", "Hervé Dupuis")
	bruno := agent(t, b, "bruno.martin@mairie-b.fr", "Bruno Martin")
	ctx := context.Background()
	conn := nodetest.Synced(t, ctx, bruno)

	r, raw := search(t, conn, "dup")
	got := names(r)
	if got["Hélène Dupont"] != "Ministère A" || got["Hervé Dupuis"] != "Préfecture C" || r.Partial {
		t.Fatalf("search from B: %s", raw)
	}
	if _, ok := got["Hugo Dupré"]; ok {
		t.Fatalf("a deactivated agent of A is listed on B: %s", raw)
	}
	if strings.Contains(raw, "@") {
		t.Fatalf("an address crossed the link: %s", raw)
	}

	// A removes B: the link goes down on both sides at once, and B's
	// searches say A did not answer.
	mustFed(t, a, "remove", string(bid))
	if st := linkState(t, a, bid); st != "" {
		t.Fatalf("B still pinned on A: %q", st)
	}
	waitLink(t, b, aid, fed.LinkDown, 3*time.Second)
	r, raw = search(t, conn, "dup")
	got = names(r)
	if _, ok := got["Hélène Dupont"]; ok || got["Hervé Dupuis"] != "Préfecture C" || !r.Partial {
		t.Fatalf("search from B after A removed it: %s", raw)
	}
	// A's other link is untouched.
	if st := linkState(t, a, cid); st != fed.LinkUp {
		t.Fatalf("A's link to C is %q after removing B", st)
	}
}

// tokenParts splits a peering token into its JSON content and signature.
func tokenParts(t *testing.T, tok string) (map[string]any, string) {
	t.Helper()
	rest, ok := strings.CutPrefix(tok, "relais-peer1.")
	p64, sig, ok2 := strings.Cut(rest, ".")
	if !ok || !ok2 {
		t.Fatalf("not a token: %q", tok)
	}
	b, err := base64.RawURLEncoding.DecodeString(p64)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return m, sig
}

func joinToken(m map[string]any, sig string) string {
	b, _ := json.Marshal(m)
	return "relais-peer1." + base64.RawURLEncoding.EncodeToString(b) + "." + sig
}

// forgedToken is a well-formed token of a fresh key, changed by f before
// it is signed.
func forgedToken(f func(*fed.Token)) string {
	pub, key, _ := ed25519.GenerateKey(nil)
	tk := fed.Token{V: 1, Admin: fed.AdminIDOf(pub), Name: "Mallory", Domains: []string{"ministere.gouv.fr"},
		Nodes: []string{"nabcdefgh"}, EventKey: pub, TLSPin: strings.Repeat("ab", 32), Nkey: "U" + strings.Repeat("A", 55),
		Nonce: fed.NewNonce(), Expires: time.Now().Add(time.Hour).Unix()}
	f(&tk)
	return tk.Sign(key)
}

// TestFederationRefusesForgedReplayedAndExpiredTokens: each bad token is
// refused with its stable code, logged with its reason, and pins nothing;
// a good token works once.
func TestFederationRefusesForgedReplayedAndExpiredTokens(t *testing.T) {
	a := startAdmin(t, "Ministère A", "ministere.gouv.fr", true)
	b := startAdmin(t, "Mairie B", "mairie-b.fr", false)
	invite := mustFed(t, a, "invite")
	m, sig := tokenParts(t, invite)
	altered := func(k string, v any) string {
		c := map[string]any{}
		for kk, vv := range m {
			c[kk] = vv
		}
		c[k] = v
		return joinToken(c, sig)
	}
	flipped := []byte(sig)
	flipped[3] ^= 1
	if flipped[3] == sig[3] || !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).Match(flipped) {
		flipped[3] = 'A'
	}
	otherPub, _, _ := ed25519.GenerateKey(nil)
	for _, c := range []struct {
		name, token, code, detail string
	}{
		{"altered domains", altered("domains", []string{"interieur.gouv.fr"}), proto.CodePeeringInvalid, "bad_signature"},
		{"altered endpoint", altered("endpoint", "203.0.113.9:7422"), proto.CodePeeringInvalid, "bad_signature"},
		{"bad signature", joinToken(m, string(flipped)), proto.CodePeeringInvalid, "bad_signature"},
		{"id not matching the key", forgedToken(func(tk *fed.Token) { tk.Admin = fed.AdminIDOf(otherPub) }), proto.CodePeeringInvalid, "id_mismatch"},
		{"someone else's id and key, signed by another key", altered("event_key", base64.StdEncoding.EncodeToString(otherPub)), proto.CodePeeringInvalid, "bad_signature"},
		{"expired", forgedToken(func(tk *fed.Token) { tk.Expires = time.Now().Add(-time.Minute).Unix() }), proto.CodePeeringExpired, ""},
		{"reply to no invitation", forgedToken(func(tk *fed.Token) { tk.ReplyTo = fed.NewNonce() }), proto.CodePeeringNoInvitation, ""},
		{"garbage", "relais-peer1.!!!.???", proto.CodePeeringInvalid, "malformed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before := strings.Count(b.logs.String(), "peering token refused")
			out, stderr, err := fedRun(t, b, "add", c.token)
			if err == nil || !strings.Contains(stderr, "("+c.code+")") {
				t.Fatalf("want refusal %s, got err %v:\n%s%s", c.code, err, out, stderr)
			}
			nodetest.CheckFor(t, 5*time.Second, func() error {
				logs := b.logs.String()
				if strings.Count(logs, "peering token refused") == before {
					return fmt.Errorf("refusal not logged")
				}
				if c.detail != "" && !strings.Contains(logs[strings.LastIndex(logs, "peering token refused"):], "detail="+c.detail) {
					return fmt.Errorf("refusal logged without detail %s", c.detail)
				}
				return nil
			})
			if list := mustFed(t, b, "list"); strings.Count(list, "\n") != 0 {
				t.Fatalf("a refused token pinned something:\n%s", list)
			}
		})
	}

	// The genuine invitation works once; its replay is refused, and so is
	// the replay of the reply.
	reply := mustFed(t, b, "add", invite)
	if _, stderr, err := fedRun(t, b, "add", invite); err == nil || !strings.Contains(stderr, proto.CodePeeringReplayed) {
		t.Fatalf("replayed invitation: %v %s", err, stderr)
	}
	mustFed(t, a, "add", reply)
	if _, stderr, err := fedRun(t, a, "add", reply); err == nil || !strings.Contains(stderr, proto.CodePeeringReplayed) {
		t.Fatalf("replayed reply: %v %s", err, stderr)
	}
	// A second reply to the consumed invitation, from a third party that
	// saw it, answers nothing any more.
	m2, _ := tokenParts(t, reply)
	late := forgedToken(func(tk *fed.Token) { tk.Domains, tk.ReplyTo = nil, m2["reply_to"].(string) })
	if _, stderr, err := fedRun(t, a, "add", late); err == nil || !strings.Contains(stderr, proto.CodePeeringNoInvitation) {
		t.Fatalf("second reply to a consumed invitation: %v %s", err, stderr)
	}
	waitLink(t, b, adminOf(t, a), fed.LinkUp, 20*time.Second)

	// A third party's genuine token that claims B's NATS key or B's link
	// certificate would have A hand it B's link (or B's traffic): refused.
	bt, _ := tokenParts(t, reply)
	// Nor one claiming a domain A or B serves: it would be taken as the
	// administration that speaks for those users.
	for _, c := range []struct {
		name, want string
		f          func(*fed.Token)
	}{
		{"B's NATS key", "already pinned", func(tk *fed.Token) { tk.Domains, tk.Nkey = nil, bt["nkey"].(string) }},
		{"B's certificate", "already pinned", func(tk *fed.Token) { tk.Domains, tk.TLSPin = nil, bt["tls_pin"].(string) }},
		{"A's own domain", "served by this administration", func(tk *fed.Token) {}},
		{"B's domain", "already served", func(tk *fed.Token) { tk.Domains = []string{"mairie-b.fr"} }},
		{"a wildcard over A's domain", "served by this administration", func(tk *fed.Token) { tk.Domains = []string{"*.gouv.fr"} }},
	} {
		_, stderr, err := fedRun(t, a, "add", forgedToken(c.f))
		if err == nil || !strings.Contains(stderr, "("+proto.CodePeeringInvalid+")") || !strings.Contains(stderr, c.want) {
			t.Errorf("a token with %s: %v %s", c.name, err, stderr)
		}
	}
	if list := mustFed(t, a, "list"); strings.Count(list, "\n") != 1 {
		t.Fatalf("A pinned a token claiming B's keys:\n%s", list)
	}
	waitLink(t, a, adminOf(t, b), fed.LinkUp, 20*time.Second)
}

// peeredPair starts a ministry A that listens and a town hall B that
// dials, peered, with their link up on both sides.
func peeredPair(t *testing.T) (a, b *proc, aid, bid fed.AdminID) {
	t.Helper()
	a = startAdmin(t, "Ministère A", "ministere.gouv.fr", true)
	b = startAdmin(t, "Mairie B", "mairie-b.fr", false)
	peer(t, a, b)
	aid, bid = adminOf(t, a), adminOf(t, b)
	waitLink(t, a, bid, fed.LinkUp, 20*time.Second)
	waitLink(t, b, aid, fed.LinkUp, 20*time.Second)
	return a, b, aid, bid
}

// copyFile copies a key file of one node's data directory to another's.
func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Dir(to), 0o700)
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestFederationRefusesAnUnpinnedCertificateOrKey: a fourth process that
// has A's genuine invitation but presents, as B, either B's NATS key with
// a certificate of its own, or B's certificate with a NATS key of its
// own, never gets a link; A logs why; B's own link stays up.
func TestFederationRefusesAnUnpinnedCertificateOrKey(t *testing.T) {
	a, b, aid, bid := peeredPair(t)
	for _, c := range []struct {
		name   string
		copies []string // files of B's fed directory the impostor has
		logged string   // what A logs
	}{
		{"B's key, another certificate", []string{"nats.nk"}, "certificate not pinned"},
		{"B's certificate, another key", []string{"link.crt", "link.key"}, "authentication error"},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := t.TempDir()
			for _, f := range c.copies {
				copyFile(t, filepath.Join(b.data, "fed", f), filepath.Join(data, "fed", f))
			}
			d := startProc(t, data, "--name", "Imposteur", "--allowed-domains", "mairie-b.fr", "--federation", "on")
			before := strings.Count(a.logs.String(), c.logged)
			// D pins A with A's genuine invitation, so D dials A.
			mustFed(t, d, "add", mustFed(t, a, "invite"))
			nodetest.CheckFor(t, 20*time.Second, func() error {
				if strings.Count(a.logs.String(), c.logged) <= before {
					return fmt.Errorf("A did not log %q", c.logged)
				}
				return nil
			})
			if st := linkState(t, d, aid); st == fed.LinkUp {
				t.Fatalf("the impostor's link is up")
			}
			if st := linkState(t, b, aid); st != fed.LinkUp {
				t.Fatalf("B's link is %q", st)
			}
			if st := linkState(t, a, bid); st != fed.LinkUp {
				t.Fatalf("A's link to B is %q", st)
			}
		})
	}
}

// leafEndpoint is the address of p's link listener, as it logged it.
func leafEndpoint(t *testing.T, p *proc) string {
	t.Helper()
	m := regexp.MustCompile(`msg="federation link listening"[^\n]* addr=(\S+)`).FindStringSubmatch(p.logs.String())
	if m == nil {
		t.Fatalf("no link listener in the logs")
	}
	return m[1]
}

// TestFederationCutsAPeerPublishingOutsideItsAllowList: B's node, once
// peered, is replaced by a raw leaf client holding B's key and
// certificate. What B may send (a request to A, a reply to its inbox)
// works; a message to another administration or to the node's own bus
// subjects is delivered to nobody, the link is cut, and A logs why.
func TestFederationCutsAPeerPublishingOutsideItsAllowList(t *testing.T) {
	a, b, aid, bid := peeredPair(t)
	b.cmd.Process.Kill()
	b.cmd.Wait()
	waitLink(t, a, bid, fed.LinkDown, 20*time.Second)
	agent(t, a, "helene.dupont@ministere.gouv.fr", "Hélène Dupont")

	// A request whose answer B asks to be sent elsewhere than its inbox
	// (here to a subject B receives as a push from A) gets no answer.
	t.Run("reply outside the inbox", func(t *testing.T) {
		raw, err := leaftest.DialRaw(leafEndpoint(t, a), b.data)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		raw.Subscribe("_INBOX_" + string(bid) + ".>")
		raw.Subscribe("fed." + string(bid) + ".>")
		nodetest.CheckFor(t, 20*time.Second, func() error {
			raw.Publish("fed."+string(aid)+".req.dir_search", "_INBOX_"+string(bid)+".ok", []byte(`{"q":"dup","limit":5}`))
			_, err := raw.Next(500 * time.Millisecond)
			return err
		})
		before := strings.Count(a.logs.String(), "reply subject outside the peer's inbox")
		raw.Publish("fed."+string(aid)+".req.dir_search", "fed."+string(bid)+".push.dir", []byte(`{"q":"dup","limit":5}`))
		// Anything A sent would come before the answer to a request sent
		// after it.
		raw.Publish("fed."+string(aid)+".req.dir_search", "_INBOX_"+string(bid)+".after", []byte(`{"q":"dup","limit":5}`))
		for {
			m, err := raw.Next(5 * time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject == "fed."+string(bid)+".push.dir" {
				t.Fatalf("A answered to %s: %q", m.Subject, m.Data)
			}
			if m.Subject == "_INBOX_"+string(bid)+".after" {
				break
			}
		}
		// The answers run concurrently: give the refused one as long again.
		if m, err := raw.Next(time.Second); err == nil && m.Subject == "fed."+string(bid)+".push.dir" {
			t.Fatalf("A answered to %s: %q", m.Subject, m.Data)
		}
		nodetest.CheckFor(t, 10*time.Second, func() error {
			if strings.Count(a.logs.String(), "reply subject outside the peer's inbox") <= before {
				return fmt.Errorf("A did not log the refusal")
			}
			return nil
		})
	})

	// A frame over the link's limit is refused before any handler runs.
	t.Run("oversized frame", func(t *testing.T) {
		raw, err := leaftest.DialRaw(leafEndpoint(t, a), b.data)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		raw.Subscribe("_INBOX_" + string(bid) + ".>")
		before := strings.Count(a.logs.String(), "federation frame refused: too large")
		big := append([]byte(`{"q":"dup","limit":5,"pad":"`), bytes.Repeat([]byte("x"), cluster.MaxFrame)...)
		raw.Publish("fed."+string(aid)+".req.dir_search", "_INBOX_"+string(bid)+".big", append(big, '"', '}'))
		m, err := raw.Next(10 * time.Second)
		if err != nil || len(m.Data) != 0 {
			t.Fatalf("answer to an oversized frame: %q %v", m.Data, err)
		}
		nodetest.CheckFor(t, 10*time.Second, func() error {
			if strings.Count(a.logs.String(), "federation frame refused: too large") <= before {
				return fmt.Errorf("A did not log the oversized frame")
			}
			return nil
		})
	})

	for _, subject := range []string{
		"fed.a" + strings.Repeat("b", 12) + ".req.dir_search", // to another administration
		"relais.ev.r-x", // the node's own bus
		"fed." + string(aid) + "x.req.dir_search",
		"_INBOX_" + string(bid) + ".1", // B's own inbox: A's to send, not B's
	} {
		t.Run(subject, func(t *testing.T) {
			raw, err := leaftest.DialRaw(leafEndpoint(t, a), b.data)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			// The allowed path works, so a refusal below is the allow-list's.
			raw.Subscribe("_INBOX_" + string(bid) + ".>")
			nodetest.CheckFor(t, 20*time.Second, func() error {
				raw.Publish("fed."+string(aid)+".req.dir_search", "_INBOX_"+string(bid)+".ok", []byte(`{"q":"dup","limit":5}`))
				m, err := raw.Next(500 * time.Millisecond)
				if err != nil {
					return err
				}
				if !strings.Contains(string(m.Data), "Hélène Dupont") {
					return fmt.Errorf("answer %q", m.Data)
				}
				return nil
			})
			violation := `Publish Violation on \"` + subject + `\"`
			before := strings.Count(a.logs.String(), violation)
			raw.Publish(subject, "_INBOX_"+string(bid)+".bad", []byte(`{"q":"dup","limit":5}`))
			nodetest.CheckFor(t, 10*time.Second, func() error {
				if !raw.Closed() {
					return fmt.Errorf("the link is still open")
				}
				return nil
			})
			if m, err := raw.Next(0); err == nil {
				t.Fatalf("something answered the forbidden message: %s %q", m.Subject, m.Data)
			}
			if strings.Count(a.logs.String(), violation) <= before {
				t.Fatalf("A did not log the violation:\n%s", a.logs)
			}
		})
	}
}

// TestFederationFrozenPeerNeverBlocksLocalTraffic: with its peer frozen
// (SIGSTOP: its link stays open, nothing answers), a node's users keep
// sending in their rooms at local speed, and a directory search answers
// with the local people after the bounded wait, marked partial.
func TestFederationFrozenPeerNeverBlocksLocalTraffic(t *testing.T) {
	a, b, _, _ := peeredPair(t)
	alice := agent(t, a, "alice.durand@ministere.gouv.fr", "Alice Durand")
	agent(t, a, "helene.dupont@ministere.gouv.fr", "Hélène Dupont")
	agent(t, b, "herve.dupuis@mairie-b.fr", "Hervé Dupuis")
	ctx := context.Background()
	conn := nodetest.Synced(t, ctx, alice)
	if r, raw := search(t, conn, "h"); len(r.Users) != 2 || r.Partial {
		t.Fatalf("search before the freeze: %s", raw)
	}
	room := nodetest.CreateRoom(t, ctx, conn, map[string]any{"kind": "group", "name": "Cellule", "encrypted": false})

	if err := b.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer b.cmd.Process.Signal(syscall.SIGCONT)
	stopped(t, b.cmd.Process.Pid)
	start := time.Now()
	r, raw := search(t, conn, "h")
	took := time.Since(start)
	if len(r.Users) != 1 || r.Users[0].Name != "Hélène Dupont" || !r.Partial {
		t.Fatalf("search with the peer frozen: %s", raw)
	}
	if took > fed.DirTimeout+2*time.Second {
		t.Fatalf("search with the peer frozen took %v", took)
	}
	var worst time.Duration
	for i := range 50 {
		s := time.Now()
		if _, err := conn.Send(ctx, fmt.Sprintf("c%d", i), room, "message pendant le gel"); err != nil {
			t.Fatal(err)
		}
		worst = max(worst, time.Since(s))
	}
	t.Logf("peer frozen: directory search answered in %v (partial), worst of 50 local sends %v", took, worst)
	if worst > time.Second {
		t.Fatalf("a local send took %v with the peer frozen", worst)
	}
}

// stopped waits until the kernel reports pid stopped: kill(2) returns
// before a process running on another core has stopped.
func stopped(t *testing.T, pid int) {
	t.Helper()
	nodetest.CheckFor(t, 5*time.Second, func() error {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return err
		}
		// pid (comm) state …: comm may hold spaces, the state follows the last ')'.
		if f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:])); len(f) == 0 || f[0] != "T" {
			return fmt.Errorf("process %d not stopped: %q", pid, f)
		}
		return nil
	})
}

// TestFederationLinkComesBackAfterARestart: the pins are stored, so a
// node killed and started again links up with its peers by itself.
func TestFederationLinkComesBackAfterARestart(t *testing.T) {
	a, b, aid, bid := peeredPair(t)
	b.cmd.Process.Kill()
	b.cmd.Wait()
	waitLink(t, a, bid, fed.LinkDown, 20*time.Second)
	b2 := startProc(t, b.data, "--name", "Mairie B", "--allowed-domains", "mairie-b.fr", "--rate-limits", "off", "--federation", "on")
	waitLink(t, b2, aid, fed.LinkUp, 20*time.Second)
	waitLink(t, a, bid, fed.LinkUp, 20*time.Second)
}

// TestFederationOffByDefault: a node started without federation says so
// with a stable code; the options and commands are documented.
func TestFederationOffByDefault(t *testing.T) {
	p := startNode(t, t.TempDir())
	if _, stderr, err := fedRun(t, p, "list"); err == nil || !strings.Contains(stderr, "("+proto.CodeFederationOff+")") {
		t.Fatalf("federation list on a node without federation: %v %s", err, stderr)
	}
	help := run(t, "serve", "--help")
	for _, flag := range []string{"-federation ", "-federation-listen", "-federation-endpoint"} {
		if !strings.Contains(help, flag) {
			t.Errorf("serve --help does not document %s", flag)
		}
	}
	bin, _ := binary()
	out, _ := exec.Command(bin, "federation", "--help").CombinedOutput()
	for _, cmd := range []string{"invite", "add TOKEN", "add REPLY", "list", "remove ID"} {
		if !strings.Contains(string(out), cmd) {
			t.Errorf("federation --help does not document %q:\n%s", cmd, out)
		}
	}
}
