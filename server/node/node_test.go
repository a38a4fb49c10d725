package node_test

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/client"
	"relais/server/config"
)

// TestShutdownLeavesNoGoroutines starts a node with a mail relay, uses it
// (a registration mail, a websocket session, a room, messages), stops it,
// and checks that every goroutine the node started has ended.
func TestShutdownLeavesNoGoroutines(t *testing.T) {
	relay, withRelay := nodetest.WithMailRelay(t)
	before := goroutines()
	n := nodetest.Start(t, withRelay)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := n.Client().Register(ctx, "jean.dupont@"+nodetest.Domain, nodetest.Password, "Jean Dupont"); err != nil {
		t.Fatal(err)
	}
	if _, err := relay.WaitMessage(ctx, "jean.dupont@"+nodetest.Domain); err != nil {
		t.Fatal(err)
	}
	alice := n.NewUser("Alice Martin")
	conn := nodetest.Synced(t, ctx, alice)
	room := nodetest.Forum(t, ctx, conn, "Voirie")
	if _, err := conn.Send(ctx, "m1", room, "Bonjour"); err != nil {
		t.Fatal(err)
	}
	conn.CloseNow()
	n.Stop()

	noneLeft(t, before, 5*time.Second, "the node")
}

// goroutines returns the stacks of the running goroutines, by id.
func goroutines() map[string]string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		id, _, _ := strings.Cut(g, " [")
		out[id] = g
	}
	return out
}

// leaked lists the goroutines of now that were not running before, except
// the test's own and the test client's idle HTTP connections (the client's,
// not the node's).
func leaked(before, now map[string]string) []string {
	var out []string
	for id, g := range now {
		if _, ok := before[id]; ok {
			continue
		}
		if strings.Contains(g, "testing.tRunner") || strings.Contains(g, "net/http.(*persistConn)") {
			continue
		}
		out = append(out, g)
	}
	return out
}

// TestTLSNodeServesHTTP2AndWebsockets: a node serving HTTPS from its local
// CA (over ws.RecordListener) answers HTTP/2 requests and carries
// websocket sessions: two users exchange messages over TLS.
func TestTLSNodeServesHTTP2AndWebsockets(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithConfig(func(c *config.Config) { c.TLS = "local" }))
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(n.TLS.CACertPEM()) {
		t.Fatal("no local CA")
	}
	trust := &tls.Config{RootCAs: pool}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: trust, ForceAttemptHTTP2: true}}
	resp, err := hc.Get(n.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.ProtoMajor != 2 || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz over TLS: %s %s, want HTTP/2 200", resp.Proto, resp.Status)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	user := func(email string) *client.Conn {
		c := client.New(n.URL(), client.WithTLS(trust))
		if _, err := c.Register(ctx, email, nodetest.Password, "Agent"); err != nil {
			t.Fatal(err)
		}
		if err := n.Accounts.Approve(ctx, email); err != nil {
			t.Fatal(err)
		}
		if err := c.Login(ctx, email, nodetest.Password); err != nil {
			t.Fatal(err)
		}
		return nodetest.Synced(t, ctx, c)
	}
	alice, bob := user("alice@"+nodetest.Domain), user("bob@"+nodetest.Domain)
	room := nodetest.Forum(t, ctx, alice, "Conseil")
	if err := bob.Call(ctx, "join", map[string]any{"room": room}, nil); err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("é", 7000) // frames of several TLS records
	var last uint64
	for i := range 20 {
		ack, err := alice.Send(ctx, alice.NextID(), room, fmt.Sprintf("%d %s", i, body[:len(body)*i/20]))
		if err != nil {
			t.Fatal(err)
		}
		last = ack.Seq
	}
	for {
		select {
		case f := <-bob.Frames():
			if f.T == "ev" && f.Room == room && f.Seq == last {
				return
			}
		case <-ctx.Done():
			t.Fatal("bob did not receive the last message over TLS")
		}
	}
}

// noneLeft fails t when goroutines that were not running before still run
// within the given time: what stopped left something behind.
func noneLeft(t *testing.T, before map[string]string, within time.Duration, what string) {
	t.Helper()
	var left []string
	deadline := time.Now().Add(within)
	for {
		left = leaked(before, goroutines())
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Fatalf("%d goroutines outlived %s:\n\n%s", len(left), what, strings.Join(left, "\n\n"))
	}
}

// TestTrustPageCAOpensTheHTTPSNode walks an agent's first start with the
// local CA: the plain-HTTP port leads to the trust page, the page's
// fingerprint is the downloaded certificate's, and a client trusting only
// that download reaches the node over HTTPS.
func TestTrustPageCAOpensTheHTTPSNode(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithConfig(func(c *config.Config) {
		c.TLS = "local"
		c.HTTPListen = "127.0.0.1:0"
	}))
	if want := "http://127.0.0.1:" + n.RedirectAddr()[strings.LastIndex(n.RedirectAddr(), ":")+1:] + "/trust"; n.TrustPageURL() != want {
		t.Errorf("TrustPageURL() = %q, want %q", n.TrustPageURL(), want)
	}
	plain := &http.Client{Timeout: 10 * time.Second}
	resp, err := plain.Get("http://" + n.RedirectAddr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/trust" {
		t.Fatalf("http:// root: %s at %s, want the trust page", resp.Status, resp.Request.URL)
	}
	resp, err = plain.Get("http://" + n.RedirectAddr() + "/trust/ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	block, _ := pem.Decode(caPEM)
	if block == nil {
		t.Fatalf("ca.crt is not PEM: %q", caPEM)
	}
	sum := sha256.Sum256(block.Bytes)
	hexes := make([]string, len(sum))
	for i, b := range sum {
		hexes[i] = fmt.Sprintf("%02X", b)
	}
	if fp := strings.Join(hexes, ":"); !strings.Contains(string(page), fp) {
		t.Fatalf("the page does not show the downloaded CA's fingerprint %s", fp)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("downloaded CA does not parse")
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err = hc.Get(n.URL() + "/healthz")
	if err != nil {
		t.Fatalf("HTTPS with the downloaded CA: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("HTTPS /healthz: %s", resp.Status)
	}
}
