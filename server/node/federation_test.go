package node_test

import (
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/fed"
)

// TestFederationNodeExposesTransportAndIdentity: a federated node gives
// its identity (the id of its event key, its name, domains and node) and a
// transport that reaches its peers; the catch-up lag hook shows in the
// list of peers and in health; a node without federation has neither.
func TestFederationNodeExposesTransportAndIdentity(t *testing.T) {
	a := nodetest.Start(t, nodetest.WithFederation("Ministère A", "ministere.gouv.fr", true))
	b := nodetest.Start(t, nodetest.WithFederation("Mairie B", "mairie-b.fr", false))
	nodetest.Peer(t, a, b)
	ia, ok := a.FedIdentity()
	if !ok {
		t.Fatal("no identity")
	}
	if ia.ID != fed.AdminIDOf(ia.Key.Public().(ed25519.PublicKey)) || ia.Name != "Ministère A" ||
		len(ia.Domains) != 1 || ia.Domains[0] != "ministere.gouv.fr" || len(ia.Nodes) != 1 || ia.Nodes[0] != a.DB.Node() {
		t.Fatalf("identity %+v", ia)
	}
	ib, _ := b.FedIdentity()
	a.FedTransport().Handle("hello", func(ctx context.Context, from fed.AdminID, body []byte) ([]byte, error) {
		return []byte("bonjour " + string(from)), nil
	})
	got, err := b.FedTransport().Request(context.Background(), ia.ID, "hello", nil)
	if err != nil || string(got) != "bonjour "+string(ib.ID) {
		t.Fatalf("request: %q %v", got, err)
	}
	if p, ok := b.FedTransport().ByDomain("ministere.gouv.fr"); !ok || p.ID != ia.ID {
		t.Fatalf("ByDomain: %+v %v", p, ok)
	}
	if p, ok := b.FedTransport().ByNode(a.DB.Node()); !ok || p.ID != ia.ID || p.Name != "Ministère A" {
		t.Fatalf("ByNode: %+v %v", p, ok)
	}

	b.Fed.SetLag(func(id fed.AdminID) (int64, bool) { return 7, id == ia.ID })
	peers, err := b.Fed.List()
	if err != nil || len(peers) != 1 || peers[0].Lag == nil || *peers[0].Lag != 7 || peers[0].State != fed.LinkUp || peers[0].LastContact.IsZero() {
		t.Fatalf("list: %+v %v", peers, err)
	}
	if h, ok := b.Fed.Health()["peers"].([]fed.PeerInfo); !ok || len(h) != 1 || h[0].Lag == nil {
		t.Fatalf("health: %+v", b.Fed.Health())
	}

	plain := nodetest.Start(t)
	if plain.FedTransport() != nil || plain.Fed != nil {
		t.Fatal("a node without federation has a transport")
	}
	if _, ok := plain.FedIdentity(); ok {
		t.Fatal("a node without federation has an identity")
	}
}

// TestFederationShutdownLeavesNoGoroutines: federated nodes, peered and
// talking, leave nothing running once stopped.
func TestFederationShutdownLeavesNoGoroutines(t *testing.T) {
	before := goroutines()
	a := nodetest.Start(t, nodetest.WithFederation("Ministère A", "ministere.gouv.fr", true))
	b := nodetest.Start(t, nodetest.WithFederation("Mairie B", "mairie-b.fr", false))
	nodetest.Peer(t, a, b)
	ia, _ := a.FedIdentity()
	if _, err := b.FedTransport().Request(context.Background(), ia.ID, fed.OpDirSearch, []byte(`{"q":"x","limit":1}`)); err != nil {
		t.Fatal(err)
	}
	b.Stop()
	a.Stop()
	noneLeft(t, before, 10*time.Second, "the nodes")
}
