package node_test

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"relais/cluster/nodetest"
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

	var left []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		left = leaked(before, goroutines())
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Fatalf("%d goroutines outlived the node:\n\n%s", len(left), strings.Join(left, "\n\n"))
	}
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
