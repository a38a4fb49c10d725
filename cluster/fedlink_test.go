package cluster_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"relais/cluster"
	"relais/cluster/nodetest"
	"relais/server/fed"
)

// fedBus starts a bus with federation for a fresh administration.
func fedBus(t testing.TB, listen string, tune ...func(*cluster.FedOptions)) (*cluster.Bus, fed.AdminID) {
	t.Helper()
	pub, _, _ := ed25519.GenerateKey(nil)
	id := fed.AdminIDOf(pub)
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("admin", id)
	}
	fo := &cluster.FedOptions{Admin: id, DataDir: t.TempDir(), Listen: listen}
	for _, f := range tune {
		if f != nil {
			f(fo)
		}
	}
	b, err := cluster.Start(cluster.Options{Name: "n" + string(id[1:9]), Logger: log, Federation: fo})
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

// peered starts two buses, a listening and b dialing, peered with their
// link up.
func peered(t testing.TB, tuneA, tuneB func(*cluster.FedOptions)) (a, b *cluster.Bus, aid, bid fed.AdminID) {
	t.Helper()
	a, aid = fedBus(t, "127.0.0.1:0", tuneA)
	b, bid = fedBus(t, "", tuneB)
	if err := a.Federation().SetPeers([]fed.LinkPeer{linkPeer(b, bid)}); err != nil {
		t.Fatal(err)
	}
	if err := b.Federation().SetPeers([]fed.LinkPeer{linkPeer(a, aid)}); err != nil {
		t.Fatal(err)
	}
	nodetest.CheckFor(t, 15*time.Second, func() error {
		return errors.Join(linkUp(a.Federation(), bid), linkUp(b.Federation(), aid))
	})
	return a, b, aid, bid
}

// TestFederationSlowPeerNeverBlocksLocalTraffic: a peer that never
// answers holds at most MaxInFlight requests of ours; the next fails at
// once, pushes do not wait, health counts the pending requests, and the
// node's own bus keeps its pace meanwhile.
func TestFederationSlowPeerNeverBlocksLocalTraffic(t *testing.T) {
	const inFlight = 8
	a, b, _, bid := peered(t, func(o *cluster.FedOptions) { o.MaxInFlight = inFlight },
		func(o *cluster.FedOptions) { o.MaxServing = 1000 })
	release := make(chan struct{})
	defer close(release)
	b.Federation().Handle("slow", func(ctx context.Context, from fed.AdminID, body []byte) ([]byte, error) {
		<-release
		return nil, nil
	})
	la := a.Federation()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errs := make(chan error, inFlight)
	for range inFlight {
		go func() {
			_, err := la.Request(ctx, bid, "slow", nil)
			errs <- err
		}()
	}
	nodetest.CheckFor(t, 10*time.Second, func() error {
		for _, s := range la.Status() {
			if s.ID == bid && s.Pending == inFlight {
				return nil
			}
		}
		return fmt.Errorf("pending: %+v", la.Status())
	})
	start := time.Now()
	if _, err := la.Request(context.Background(), bid, "slow", nil); !errors.Is(err, fed.ErrUnreachable) {
		t.Fatalf("request over the bound: %v", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("the request over the bound waited %v", d)
	}
	for range 100 {
		if err := la.Push(bid, "slow", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan struct{}, 1)
	if _, err := a.Subscribe("relais.local", func(string, []byte) { got <- struct{}{} }); err != nil {
		t.Fatal(err)
	}
	var worst time.Duration
	for range 200 {
		s := time.Now()
		a.Publish("relais.local", nil)
		select {
		case <-got:
		case <-time.After(5 * time.Second):
			t.Fatal("local bus stalled")
		}
		worst = max(worst, time.Since(s))
	}
	t.Logf("local publish→deliver worst of 200 while the peer holds %d requests: %v", inFlight, worst)
	short, cancelShort := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancelShort()
	cancel() // the 8 waiting requests give up
	for range inFlight {
		if err := <-errs; !errors.Is(err, fed.ErrUnreachable) {
			t.Fatalf("cancelled request: %v", err)
		}
	}
	if _, err := la.Request(short, bid, "slow", nil); !errors.Is(err, fed.ErrUnreachable) {
		t.Fatalf("request past its deadline: %v", err)
	}
}

// TestFederationRefusesOversizedFrames: neither side sends nor handles a
// body over MaxFrame.
func TestFederationRefusesOversizedFrames(t *testing.T) {
	a, b, aid, bid := peered(t, nil, nil)
	called := false
	b.Federation().Handle("big", func(ctx context.Context, from fed.AdminID, body []byte) ([]byte, error) {
		called = true
		return nil, nil
	})
	big := make([]byte, cluster.MaxFrame+1)
	if _, err := a.Federation().Request(context.Background(), bid, "big", big); err == nil {
		t.Fatal("oversized request sent")
	}
	if err := a.Federation().Push(bid, "big", big); err == nil {
		t.Fatal("oversized push sent")
	}
	a.Federation().Handle("answer_big", func(ctx context.Context, from fed.AdminID, body []byte) ([]byte, error) {
		return big, nil
	})
	var re *fed.RemoteError
	if _, err := b.Federation().Request(context.Background(), aid, "answer_big", nil); !errors.As(err, &re) || re.Code != "too_large" {
		t.Fatalf("oversized answer: %v", err)
	}
	if called {
		t.Fatal("handler ran on an oversized frame")
	}
}

// BenchmarkFederationRequest measures one request/reply of 256 bytes
// across a leaf link (mutual TLS, per-peer accounts) on loopback.
func BenchmarkFederationRequest(b *testing.B) {
	a, bb, _, bid := peered(b, nil, nil)
	bb.Federation().Handle("echo", func(ctx context.Context, from fed.AdminID, body []byte) ([]byte, error) { return body, nil })
	body := make([]byte, 256)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		s := time.Now()
		if _, err := a.Federation().Request(context.Background(), bid, "echo", body); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(s))
	}
	b.StopTimer()
	slices.Sort(lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
	}
}

// TestFederationEndpointWithoutListenerIsRefused: a node that advertised
// an endpoint without listening would have its peers wait for it.
func TestFederationEndpointWithoutListenerIsRefused(t *testing.T) {
	pub, _, _ := ed25519.GenerateKey(nil)
	b, err := cluster.Start(cluster.Options{Name: "nabcdefgh", Federation: &cluster.FedOptions{
		Admin: fed.AdminIDOf(pub), DataDir: t.TempDir(), Endpoint: "relais.example.gouv.fr:7422"}})
	if err == nil {
		b.Close()
		t.Fatal("started with an endpoint and no listener")
	}
}

// TestFederationListenPortInUseFailsAtOnce: a busy link port is a clear
// start error, not a ten-second wait.
func TestFederationListenPortInUseFailsAtOnce(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pub, _, _ := ed25519.GenerateKey(nil)
	start := time.Now()
	b, err := cluster.Start(cluster.Options{Name: "nabcdefgh", Federation: &cluster.FedOptions{
		Admin: fed.AdminIDOf(pub), DataDir: t.TempDir(), Listen: ln.Addr().String()}})
	if err == nil {
		b.Close()
		t.Fatal("started on a port in use")
	}
	if !strings.Contains(err.Error(), "address already in use") || time.Since(start) > 5*time.Second {
		t.Fatalf("after %v: %v", time.Since(start), err)
	}
}
