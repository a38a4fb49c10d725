package ws_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/client"
	"relais/server/proto"
)

// TestResilience: 50 clients send 200 messages each while connections are
// dropped at random and the node restarts once. Afterwards every client
// holds every message exactly once, in the same order as every other
// client.
func TestResilience(t *testing.T) {
	clients, perClient := 50, 200
	if testing.Short() {
		clients, perClient = 10, 30
	}
	n := nodetest.Start(t)
	peers := make([]*peer, clients)
	var wg sync.WaitGroup
	for i := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			peers[i] = newPeer(t, n, fmt.Sprintf("Resilient %02d", i))
		}()
	}
	wg.Wait()
	var ids []string
	for _, p := range peers[1:] {
		ids = append(ids, p.id())
	}
	var res map[string]string
	peers[0].call("create_room", map[string]any{"kind": "group", "name": "Résilience", "encrypted": false, "users": ids}, &res)
	room := roomOf(t, res)
	for _, p := range peers[1:] {
		p.waitFrame("invitation", func(f client.Frame) bool { return f.T == proto.TRoom && f.ID == room })
		p.call("join", map[string]any{"room": room}, nil)
	}
	// Every peer must hold the room's whole log: start from the join of the
	// last member, which all have seen live.
	last := peers[clients-1]
	lastJoin := last.waitFrame("its own join", func(f client.Frame) bool {
		return isEv(room, "member")(f) && f.User == last.id()
	}).Seq
	for _, p := range peers {
		p.waitFrame("the last join", func(f client.Frame) bool { return f.Room == room && f.Seq == lastJoin })
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	chaos, stopChaos := context.WithCancel(ctx)
	var chaosDone sync.WaitGroup
	chaosDone.Add(1)
	go func() {
		defer chaosDone.Done()
		r := rand.New(rand.NewPCG(1, 2))
		for chaos.Err() == nil {
			time.Sleep(time.Duration(5+r.IntN(20)) * time.Millisecond)
			p := peers[r.IntN(len(peers))]
			if c, err := p.s.Wait(chaos); err == nil {
				c.CloseNow()
			}
		}
	}()

	var sent sync.WaitGroup
	var progress sync.WaitGroup
	progress.Add(clients)
	errs := make(chan error, clients)
	for i, p := range peers {
		sent.Add(1)
		go func() {
			defer sent.Done()
			for j := range perClient {
				if j == perClient/2 {
					progress.Done()
				}
				if _, err := p.s.Send(ctx, room, fmt.Sprintf("m %d %d", i, j)); err != nil {
					errs <- fmt.Errorf("peer %d message %d: %w", i, j, err)
					return
				}
			}
		}()
	}
	// Restart the node once, when everyone is halfway.
	progress.Wait()
	n.Restart()
	sent.Wait()
	stopChaos()
	chaosDone.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	total := clients * perClient
	// Everyone converges on the same log.
	var want []client.Frame
	nodetest.CheckFor(t, 2*time.Minute, func() error {
		for pi, p := range peers {
			if got := countTexts(p.events(room), lastJoin); got < total {
				return fmt.Errorf("not every peer received every message: peer %d has %d of %d", pi, got, total)
			}
		}
		return nil
	})
	for pi, p := range peers {
		var got []client.Frame
		for _, f := range p.events(room) {
			if f.Seq >= lastJoin {
				got = append(got, f)
			}
		}
		seen := map[string]bool{}
		for i, f := range got {
			if i > 0 && f.Seq != got[i-1].Seq+1 {
				t.Fatalf("peer %d: seq %d follows %d", pi, f.Seq, got[i-1].Seq)
			}
			if f.Type == "text" {
				if seen[f.Body] {
					t.Fatalf("peer %d: %q twice", pi, f.Body)
				}
				seen[f.Body] = true
			}
		}
		if len(seen) != total {
			t.Fatalf("peer %d has %d distinct messages, want %d", pi, len(seen), total)
		}
		if want == nil {
			want = got
			continue
		}
		if len(got) != len(want) {
			t.Fatalf("peer %d has %d events, peer 0 has %d", pi, len(got), len(want))
		}
		for i := range got {
			if got[i].Seq != want[i].Seq || got[i].Body != want[i].Body {
				t.Fatalf("peer %d event %d differs: %d %q vs %d %q", pi, i, got[i].Seq, got[i].Body, want[i].Seq, want[i].Body)
			}
		}
	}
	// Per sender, messages are in the order they were sent.
	next := make([]int, clients)
	for _, f := range want {
		if f.Type != "text" {
			continue
		}
		var i, j int
		fmt.Sscanf(f.Body, "m %d %d", &i, &j)
		if j != next[i] {
			t.Fatalf("sender %d: message %d arrived when %d was expected", i, j, next[i])
		}
		next[i]++
	}
}

func countTexts(fs []client.Frame, since uint64) int {
	n := 0
	for _, f := range fs {
		if f.Seq >= since && f.Type == "text" {
			n++
		}
	}
	return n
}
