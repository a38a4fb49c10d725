package cluster_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"relais/cluster"
	"relais/cluster/nodetest"
	"relais/server/fed"
)

// fedBus starts a bus with federation for a fresh administration.
func fedBus(t *testing.T, listen string) (*cluster.Bus, fed.AdminID) {
	t.Helper()
	pub, _, _ := ed25519.GenerateKey(nil)
	id := fed.AdminIDOf(pub)
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("admin", id)
	}
	b, err := cluster.Start(cluster.Options{Name: "n" + string(id[1:9]), Logger: log,
		Federation: &cluster.FedOptions{Admin: id, DataDir: t.TempDir(), Listen: listen}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, id
}

func linkPeer(b *cluster.Bus, id fed.AdminID) fed.LinkPeer {
	i := b.Federation().Info()
	return fed.LinkPeer{Peer: fed.Peer{ID: id, Name: string(id), Nodes: []string{"n" + string(id[1:9])}},
		Endpoint: i.Endpoint, TLSPin: i.TLSPin, Nkey: i.Nkey}
}

func linkUp(l fed.Link, id fed.AdminID) error {
	for _, s := range l.Status() {
		if s.ID == id && s.State == fed.LinkUp {
			return nil
		}
	}
	return fmt.Errorf("link to %s not up: %+v", id, l.Status())
}

// TestFederationLinkRequestReplyAndRemove: two buses peer, requests and
// pushes cross in both directions with the handler's refusals passed
// through; removing the peer cuts the link at once, and the local bus
// keeps working throughout.
func TestFederationLinkRequestReplyAndRemove(t *testing.T) {
	a, aid := fedBus(t, "127.0.0.1:0")
	b, bid := fedBus(t, "")
	la, lb := a.Federation(), b.Federation()
	if la.Info().Endpoint == "" || lb.Info().Endpoint != "" {
		t.Fatalf("endpoints: a %q, b %q", la.Info().Endpoint, lb.Info().Endpoint)
	}
	for _, l := range []fed.Link{la, lb} {
		l.Handle("echo", func(ctx context.Context, from fed.AdminID, body []byte) ([]byte, error) {
			return append([]byte(string(from)+":"), body...), nil
		})
		l.Handle("refuse", func(ctx context.Context, from fed.AdminID, body []byte) ([]byte, error) {
			return nil, &fed.RemoteError{Code: "forbidden", Reason: "no"}
		})
	}
	pushed := make(chan string, 1)
	la.Handle("note", func(ctx context.Context, from fed.AdminID, body []byte) ([]byte, error) {
		pushed <- string(from) + ":" + string(body)
		return nil, nil
	})
	if err := la.SetPeers([]fed.LinkPeer{linkPeer(b, bid)}); err != nil {
		t.Fatal(err)
	}
	if err := lb.SetPeers([]fed.LinkPeer{linkPeer(a, aid)}); err != nil {
		t.Fatal(err)
	}
	nodetest.CheckFor(t, 15*time.Second, func() error { return errors.Join(linkUp(la, bid), linkUp(lb, aid)) })
	ctx := context.Background()
	for _, c := range []struct {
		from fed.Link
		to   fed.AdminID
		want string
	}{{la, bid, string(aid) + ":hi"}, {lb, aid, string(bid) + ":hi"}} {
		got, err := c.from.Request(ctx, c.to, "echo", []byte("hi"))
		if err != nil || string(got) != c.want {
			t.Fatalf("echo to %s: %q %v, want %q", c.to, got, err, c.want)
		}
	}
	var re *fed.RemoteError
	if _, err := lb.Request(ctx, aid, "refuse", nil); !errors.As(err, &re) || re.Code != "forbidden" {
		t.Fatalf("refusal: %v", err)
	}
	if err := lb.Push(aid, "note", []byte("x")); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-pushed:
		if got != string(bid)+":x" {
			t.Fatalf("push: %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("push not delivered")
	}

	if err := la.SetPeers(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := la.Request(ctx, bid, "echo", nil); !errors.Is(err, fed.ErrUnreachable) {
		t.Fatalf("request after remove: %v", err)
	}
	nodetest.CheckFor(t, 5*time.Second, func() error {
		if linkUp(lb, aid) == nil {
			return errors.New("b still sees the link up")
		}
		return nil
	})
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := lb.Request(short, aid, "echo", nil); !errors.Is(err, fed.ErrUnreachable) {
		t.Fatalf("request from b after a removed it: %v", err)
	}
	// The local bus is untouched.
	got := make(chan struct{}, 1)
	if _, err := a.Subscribe("relais.x", func(string, []byte) { got <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	a.Publish("relais.x", nil)
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("local bus broken after federation changes")
	}
}
