package node

import (
	"fmt"

	"relais/server/bus"
	"relais/server/chat"
	"relais/server/config"
	"relais/server/fed"
	"relais/server/proto"
)

// FederationLink is what a bus started with federation offers: the
// links to peered administrations (nil when off).
type FederationLink interface {
	Federation() fed.Link
}

// startFederation sets up peering and the directory across the mesh on
// the bus's federation link, if it has one.
func (n *Node) startFederation(cfg config.Config, b bus.Bus) error {
	fl, ok := b.(FederationLink)
	if !ok || fl.Federation() == nil {
		return nil
	}
	key, err := fed.LoadKey(cfg.Data)
	if err != nil {
		return err
	}
	name := cfg.Name
	if name == "" {
		name = "Relais"
	}
	if n.Fed, err = fed.NewService(fed.Config{DB: n.DB, Link: fl.Federation(), Key: key, Name: name,
		Domains: n.Accounts.Domains, Node: n.DB.Node(), Logger: n.log}); err != nil {
		return fmt.Errorf("start federation: %w", err)
	}
	n.Fed.ServeDirectory(func(q string, limit int) ([]proto.Profile, error) {
		// As any agent of this administration would see it.
		return n.Chat.Directory(chat.Actor{}, q, limit)
	})
	// Rooms shared with the peers (chat/federation.go).
	n.Chat.SetFederation(chat.Federation{Transport: n.Fed.Transport(), Self: n.Fed.Identity()})
	n.Fed.SetLag(n.Chat.Lag)
	return nil
}

// FedTransport is the transport to the peered administrations, nil when
// federation is off.
func (n *Node) FedTransport() fed.Transport {
	if n.Fed == nil {
		return nil
	}
	return n.Fed.Transport()
}

// FedIdentity is this administration as its peers know it; false when
// federation is off.
func (n *Node) FedIdentity() (fed.Identity, bool) {
	if n.Fed == nil {
		return fed.Identity{}, false
	}
	return n.Fed.Identity(), true
}
