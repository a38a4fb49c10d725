// Package fedtest is an in-process fed.Transport for package tests: a hub
// that links administrations in one process, whose links a test can cut
// and restore. The tests that carry federation run real processes over
// the real link; this one lets the logic above the transport be tested
// alone and fast.
package fedtest

import (
	"context"
	"crypto/ed25519"
	"errors"
	"sync"

	"relais/server/fed"
	"relais/server/id"
)

// Hub links the administrations that join it.
type Hub struct {
	mu    sync.Mutex
	nodes map[fed.AdminID]*Transport
	down  map[fed.AdminID]bool
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{nodes: map[fed.AdminID]*Transport{}, down: map[fed.AdminID]bool{}}
}

// NewIdentity returns a fresh administration of one node.
func NewIdentity(name, node string, domains ...string) fed.Identity {
	_, key, _ := ed25519.GenerateKey(nil)
	if node == "" {
		node = id.NewNode()
	}
	return fed.Identity{ID: fed.AdminIDOf(key.Public().(ed25519.PublicKey)), Name: name, Domains: domains, Nodes: []string{node}, Key: key}
}

// PeerOf is the pinned record of an identity.
func PeerOf(i fed.Identity) fed.Peer {
	return fed.Peer{ID: i.ID, Name: i.Name, Domains: i.Domains, Nodes: i.Nodes, EventKey: i.Key.Public().(ed25519.PublicKey)}
}

// Transport is one administration's end of the hub.
type Transport struct {
	hub  *Hub
	self fed.Peer

	mu       sync.Mutex
	peers    []fed.Peer
	handlers map[string]fed.Handler
	linkUp   []func(fed.AdminID)
	queues   map[fed.AdminID]chan push
}

type push struct {
	op   string
	body []byte
}

// Join adds an administration to the hub; it has no peers until Pin.
func (h *Hub) Join(self fed.Identity) *Transport {
	t := &Transport{hub: h, self: PeerOf(self), handlers: map[string]fed.Handler{}, queues: map[fed.AdminID]chan push{}}
	h.mu.Lock()
	h.nodes[self.ID] = t
	h.mu.Unlock()
	return t
}

// Mesh pins every transport's identity at every other.
func Mesh(ts ...*Transport) {
	for _, a := range ts {
		for _, b := range ts {
			if a != b {
				a.Pin(b.self)
			}
		}
	}
}

// Pin records p as a peer.
func (t *Transport) Pin(p fed.Peer) {
	t.mu.Lock()
	t.peers = append(t.peers, p)
	t.mu.Unlock()
}

// SetDown cuts (true) or restores (false) every link of an administration;
// restoring calls the OnLinkUp callbacks on both ends of each link.
func (h *Hub) SetDown(a fed.AdminID, down bool) {
	h.mu.Lock()
	h.down[a] = down
	var ups []func()
	if !down {
		self := h.nodes[a]
		for other, t := range h.nodes {
			if other == a || h.down[other] {
				continue
			}
			ups = append(ups, t.fireLinkUp(a), self.fireLinkUp(other))
		}
	}
	h.mu.Unlock()
	for _, f := range ups {
		f()
	}
}

func (t *Transport) fireLinkUp(peer fed.AdminID) func() {
	t.mu.Lock()
	fs := append([]func(fed.AdminID){}, t.linkUp...)
	t.mu.Unlock()
	return func() {
		for _, f := range fs {
			f(peer)
		}
	}
}

func (t *Transport) target(to fed.AdminID) (*Transport, bool) {
	if _, ok := t.Peer(to); !ok {
		return nil, false
	}
	t.hub.mu.Lock()
	defer t.hub.mu.Unlock()
	o, ok := t.hub.nodes[to]
	if !ok || t.hub.down[to] || t.hub.down[t.self.ID] {
		return nil, false
	}
	if _, pinned := o.Peer(t.self.ID); !pinned {
		return nil, false
	}
	return o, true
}

func (t *Transport) handler(op string) fed.Handler {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.handlers[op]
}

// Request implements fed.Transport.
func (t *Transport) Request(ctx context.Context, to fed.AdminID, op string, body []byte) ([]byte, error) {
	o, ok := t.target(to)
	if !ok {
		return nil, fed.ErrUnreachable
	}
	h := o.handler(op)
	if h == nil {
		return nil, &fed.RemoteError{Code: "not_found", Reason: "no handler for " + op}
	}
	type answer struct {
		b   []byte
		err error
	}
	done := make(chan answer, 1)
	go func() {
		b, err := h(ctx, t.self.ID, append([]byte(nil), body...))
		done <- answer{b, err}
	}()
	select {
	case a := <-done:
		var re *fed.RemoteError
		if a.err != nil && !errors.As(a.err, &re) {
			return nil, &fed.RemoteError{Code: "internal", Reason: a.err.Error()}
		}
		return a.b, a.err
	case <-ctx.Done():
		return nil, fed.ErrUnreachable
	}
}

// Push implements fed.Transport: in order per link, dropped when the
// link is down or its queue full.
func (t *Transport) Push(to fed.AdminID, op string, body []byte) error {
	o, ok := t.target(to)
	if !ok {
		return fed.ErrUnreachable
	}
	t.mu.Lock()
	q, ok := t.queues[to]
	if !ok {
		q = make(chan push, 1024)
		t.queues[to] = q
		go func() {
			for p := range q {
				if _, ok := t.target(to); !ok {
					continue
				}
				if h := o.handler(p.op); h != nil {
					h(context.Background(), t.self.ID, p.body)
				}
			}
		}()
	}
	t.mu.Unlock()
	select {
	case q <- push{op, append([]byte(nil), body...)}:
		return nil
	default:
		return errors.New("fedtest: queue full")
	}
}

// Handle implements fed.Transport.
func (t *Transport) Handle(op string, h fed.Handler) {
	t.mu.Lock()
	t.handlers[op] = h
	t.mu.Unlock()
}

// OnLinkUp implements fed.Transport.
func (t *Transport) OnLinkUp(f func(fed.AdminID)) {
	t.mu.Lock()
	t.linkUp = append(t.linkUp, f)
	t.mu.Unlock()
}

// Peer implements fed.Peers.
func (t *Transport) Peer(a fed.AdminID) (fed.Peer, bool) {
	for _, p := range t.List() {
		if p.ID == a {
			return p, true
		}
	}
	return fed.Peer{}, false
}

// ByDomain implements fed.Peers.
func (t *Transport) ByDomain(d string) (fed.Peer, bool) {
	for _, p := range t.List() {
		for _, x := range p.Domains {
			if x == d {
				return p, true
			}
		}
	}
	return fed.Peer{}, false
}

// ByNode implements fed.Peers.
func (t *Transport) ByNode(n string) (fed.Peer, bool) {
	for _, p := range t.List() {
		for _, x := range p.Nodes {
			if x == n {
				return p, true
			}
		}
	}
	return fed.Peer{}, false
}

// List implements fed.Peers.
func (t *Transport) List() []fed.Peer {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]fed.Peer(nil), t.peers...)
}

var _ fed.Transport = (*Transport)(nil)

// Call runs this administration's handler of op as if body came over the
// link of from, as a hostile peer would send it.
func (t *Transport) Call(from fed.AdminID, op string, body []byte) ([]byte, error) {
	h := t.handler(op)
	if h == nil {
		return nil, errors.New("fedtest: no handler for " + op)
	}
	return h(context.Background(), from, body)
}
