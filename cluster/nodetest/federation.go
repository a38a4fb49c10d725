package nodetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"relais/server/config"
	"relais/server/fed"
)

// WithFederation makes the node an administration of its own, named name
// and serving domain: with listen it has a link listener on a loopback
// port it picks, without it only dials (a town hall behind NAT).
func WithFederation(name, domain string, listen bool) Option {
	return WithConfig(func(c *config.Config) {
		c.Name, c.AllowedDomains, c.Federation = name, config.List{domain}, true
		if listen {
			c.FederationListen = "127.0.0.1:0"
		}
	})
}

// Peer peers two federated nodes as the three commands do (invite, add,
// add the reply) and waits until both see their link up.
func Peer(t testing.TB, a, b *Node) {
	t.Helper()
	if a.Fed == nil || b.Fed == nil {
		t.Fatal("Peer: start both nodes WithFederation")
	}
	ctx := context.Background()
	invite, err := a.Fed.Invite(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Fed.Add(ctx, invite)
	if err != nil {
		t.Fatalf("add the invitation: %v", err)
	}
	if _, err := a.Fed.Add(ctx, got.Reply); err != nil {
		t.Fatalf("add the reply: %v", err)
	}
	aid, bid := a.Fed.Identity().ID, b.Fed.Identity().ID
	CheckFor(t, 20*time.Second, func() error {
		for _, side := range []struct {
			n  *Node
			to fed.AdminID
		}{{a, bid}, {b, aid}} {
			peers, err := side.n.Fed.List()
			if err != nil {
				return err
			}
			up := false
			for _, p := range peers {
				up = up || (p.ID == side.to && p.State == fed.LinkUp)
			}
			if !up {
				return fmt.Errorf("link to %s not up: %+v", side.to, peers)
			}
		}
		return nil
	})
}
