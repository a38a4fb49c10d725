package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"relais/server/config"
	"relais/server/fed"
	"relais/server/node"
	"relais/server/proto"
	"relais/server/store"
)

// federation: two administrations in this process, A (whose link
// listens) and B (which dials), peered. A group homed on A has --senders
// senders and one receiver on A, and one receiver on B: the same load
// measures delivery on the home's node and across the link, side by side
// (e2e of each receiver). Then B stops, A's senders post --messages
// messages, B starts again on its data, and the catch-up rate is the
// messages over the time B takes to hold them all. Text messages in a
// room that is not end-to-end encrypted (encrypted rooms do not cross
// administrations yet).
func (r *runner) federation(ctx context.Context) error {
	dirA, err := os.MkdirTemp(r.tmp, "fed-a-")
	if err != nil {
		return err
	}
	dirB, err := os.MkdirTemp(r.tmp, "fed-b-")
	if err != nil {
		return err
	}
	// Clients speak plain HTTP here whatever --tls says: the scenario
	// measures the link between administrations (mutual TLS always).
	cfgA, cfgB := benchConfig(dirA, "127.0.0.1:0", false), benchConfig(dirB, "127.0.0.1:0", false)
	cfgA.Federation, cfgA.FederationListen, cfgA.Name = true, "127.0.0.1:0", "Bench A"
	cfgB.Federation, cfgB.Name = true, "Bench B"
	// Peers serve distinct domains (B's accounts are provisioned in its
	// store directly, whatever their address).
	cfgB.AllowedDomains = config.List{"b." + Domain}
	a, err := r.start(ctx, cfgA, r.log.With("node", "fed-a"))
	if err != nil {
		return fmt.Errorf("start A: %w", err)
	}
	defer shutdown(a)
	b, err := r.start(ctx, cfgB, r.log.With("node", "fed-b"))
	if err != nil {
		return fmt.Errorf("start B: %w", err)
	}
	defer func() {
		if b != nil {
			shutdown(b)
		}
	}()
	if a.Fed == nil || b.Fed == nil {
		return errors.New("federation is off in the bench's nodes")
	}
	if err := peerNodes(ctx, a, b); err != nil {
		return err
	}
	ta := &target{url: a.URL(), node: a, dial: loopbackDialer(a.URL())}
	tb := &target{url: b.URL(), node: b, dial: loopbackDialer(b.URL())}
	senders := r.set.senders
	usersA, err := provision(ctx, a.DB, senders+1, 1)
	if err != nil {
		return err
	}
	usersB, err := provision(ctx, b.DB, 1, 1)
	if err != nil {
		return err
	}
	same, cross := &load{}, &load{}
	var members []*member
	for i, u := range usersA {
		l := same
		if i < senders {
			l = nil // senders' own receptions do not count
		}
		m, err := ta.join(ctx, u, 0, l, false)
		if err != nil {
			return err
		}
		defer m.close()
		members = append(members, m)
	}
	mb, err := tb.join(ctx, usersB[0], 0, cross, false)
	if err != nil {
		return err
	}
	defer func() { mb.close() }()
	var ids []string
	for _, u := range usersA[1:] {
		ids = append(ids, u.ID)
	}
	ids = append(ids, usersB[0].ID)
	var out roomID
	if err := call(ctx, members[0], "create_room", map[string]any{"kind": "group", "name": "Inter-administrations", "encrypted": false, "users": ids}, &out); err != nil {
		return err
	}
	room := out.Room
	for _, m := range append(members[1:], mb) {
		// A join across the link is retried while the home is
		// unreachable, as clients do: the link's interest may still be
		// propagating.
		for try := 0; ; try++ {
			err := call(ctx, m, "join", map[string]any{"room": room}, nil)
			if err == nil {
				break
			}
			if try == 50 || !strings.Contains(err.Error(), proto.CodeHomeUnreachable) {
				return fmt.Errorf("join: %w", err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	if err := marker(ctx, members[0], room, "", append(members[1:], mb)); err != nil {
		return err
	}
	r.progress("federation: group homed on A, %d senders and a receiver on A, a receiver on B; %s warm-up, then %s measured", senders, r.set.warmup, r.set.duration)

	// The same sends measure both receivers.
	start := time.Now()
	from := start.Add(r.set.warmup)
	end := from.Add(r.set.duration)
	same.win.set(from, end)
	cross.win.set(from, end)
	var interval time.Duration
	if r.set.rate > 0 {
		interval = time.Duration(float64(senders) / r.set.rate * float64(time.Second))
	}
	var wg sync.WaitGroup
	for i, m := range members[:senders] {
		wg.Add(1)
		go func() {
			defer wg.Done()
			phase := interval * time.Duration(i) / time.Duration(senders)
			sendLoop(ctx, same, m, room, r.set.size, "", end, interval, phase)
		}()
	}
	wg.Wait()
	drain(same, same.allAcked.Load(), 10*time.Second)
	drain(cross, same.allAcked.Load(), 10*time.Second)
	secs := same.win.length().Seconds()
	r.emit("federation", "acked_per_s", float64(same.acked.Load())/secs, "1/s")
	r.emit("federation", "ack_p99_ms", ms(same.ack.quantile(0.99)), "ms")
	r.emit("federation", "same_node_e2e_p50_ms", ms(same.e2e.quantile(0.50)), "ms")
	r.emit("federation", "same_node_e2e_p99_ms", ms(same.e2e.quantile(0.99)), "ms")
	r.emit("federation", "cross_admin_e2e_p50_ms", ms(cross.e2e.quantile(0.50)), "ms")
	r.emit("federation", "cross_admin_e2e_p99_ms", ms(cross.e2e.quantile(0.99)), "ms")
	r.emit("federation", "cross_admin_delivered", cross.delivered.Load(), "")
	r.emit("federation", "same_node_delivered", same.delivered.Load(), "")
	if same.acked.Load() == 0 {
		return errors.New("no send was acknowledged")
	}

	// Catch-up after an outage of B.
	mb.close()
	<-mb.conn.done()
	shutdown(b)
	b = nil
	n := r.set.messages
	r.progress("federation: B stopped; A's senders post %d messages", n)
	per := (n + senders - 1) / senders
	var last uint64
	var mu sync.Mutex
	if err := parallel(ctx, senders, senders, func(ctx context.Context, i int) error {
		for j := 0; j < per && i*per+j < n; j++ {
			seq, err := members[i].conn.send(ctx, fmt.Sprintf("c%d-%d", i, j), room, message{typ: "text", text: body(r.set.size, time.Now())})
			if err != nil {
				return err
			}
			mu.Lock()
			last = max(last, seq)
			mu.Unlock()
		}
		return nil
	}); err != nil {
		return fmt.Errorf("posting while B is down: %w", err)
	}
	t0 := time.Now()
	if b, err = r.start(ctx, cfgB, r.log.With("node", "fed-b")); err != nil {
		return fmt.Errorf("restart B: %w", err)
	}
	started := time.Since(t0)
	// The link coming up again (the dialer's backoff) is not catch-up:
	// the rate counts from the moment B sees it up.
	var linked time.Duration
	for {
		if linked == 0 {
			if peers, err := b.Fed.List(); err == nil && len(peers) == 1 && peers[0].State == fed.LinkUp {
				linked = time.Since(t0)
			}
		}
		var head uint64
		b.DB.View(func(tx *store.Tx) error {
			h, _ := tx.FedHead(room)
			head = h.Seq
			return nil
		})
		if head >= last {
			break
		}
		if time.Since(t0) > 5*time.Minute {
			return fmt.Errorf("node B holds up to %d of %d after 5 min", head, last)
		}
		time.Sleep(2 * time.Millisecond)
	}
	took := time.Since(t0)
	r.emit("federation", "catch_up_events", n, "")
	r.emit("federation", "catch_up_s", took.Seconds(), "s")
	if linked == 0 || linked > took {
		linked = took // up and done between two looks
	}
	r.emit("federation", "catch_up_restart_s", started.Seconds(), "s")
	r.emit("federation", "catch_up_link_s", linked.Seconds(), "s")
	r.emit("federation", "catch_up_events_per_s", float64(n)/max(took-linked, time.Millisecond).Seconds(), "1/s")
	return nil
}

func shutdown(n *node.Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n.Shutdown(ctx)
}

// peerNodes peers a and b with the three steps of `relais federation`,
// and waits for the link.
func peerNodes(ctx context.Context, a, b *node.Node) error {
	inv, err := a.Fed.Invite(ctx)
	if err != nil {
		return fmt.Errorf("invite: %w", err)
	}
	added, err := b.Fed.Add(ctx, inv)
	if err != nil {
		return fmt.Errorf("add the invitation: %w", err)
	}
	if _, err := a.Fed.Add(ctx, added.Reply); err != nil {
		return fmt.Errorf("add the reply: %w", err)
	}
	// Both sides must see the link: the dialer's view comes later than
	// the listener's, and a request sent before it is unreachable.
	deadline := time.Now().Add(30 * time.Second)
	for _, n := range []*node.Node{a, b} {
		for {
			peers, err := n.Fed.List()
			if err == nil && len(peers) == 1 && peers[0].State == fed.LinkUp {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the link did not come up: %+v %v", peers, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return nil
}
