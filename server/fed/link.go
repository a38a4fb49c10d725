package fed

import "time"

// LinkPeer is a pinned peer with what the link needs to reach it and to
// recognise it.
type LinkPeer struct {
	Peer
	// Endpoint is host:port of its link listener, "" when it only dials.
	Endpoint string
	// TLSPin is the hex SHA-256 of its link certificate's SPKI.
	TLSPin string
	// Nkey is the public NATS user key its node dials with.
	Nkey string
}

// LinkInfo is what this node's link advertises in its peering tokens.
type LinkInfo struct {
	Endpoint string
	TLSPin   string
	Nkey     string
}

// The states of a link.
const (
	LinkUp      = "up"
	LinkDown    = "down"
	LinkNoRoute = "no_route" // neither side has an endpoint: nobody can dial
)

// LinkStatus is one peer's link as the transport sees it.
type LinkStatus struct {
	ID    AdminID `json:"id"`
	State string  `json:"state"`
	// Dials says this side opens the link (the other listens).
	Dials bool `json:"dials"`
	// LastContact is when something last came from the peer.
	LastContact time.Time `json:"last_contact,omitzero"`
	// Pending counts requests to the peer waiting for their answer.
	Pending int `json:"pending"`
}

// Link is a Transport that peering drives: it advertises this node's
// link and is told which peers are pinned.
type Link interface {
	Transport
	// Info is what tokens advertise of this node's link.
	Info() LinkInfo
	// SetPeers replaces the pinned peers: links to new ones come up,
	// links to those left out close at once.
	SetPeers(peers []LinkPeer) error
	// Status reports each pinned peer's link.
	Status() []LinkStatus
}
