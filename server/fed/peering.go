package fed

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"relais/server/proto"
	"relais/server/store"
)

// Peering is explicit, mutual and one-time, in three commands:
//
//  1. A: `relais federation invite` prints an invitation token (A's
//     record, a fresh nonce, 24 hours) and keeps the nonce as pending.
//  2. B: `relais federation add TOKEN` verifies it, pins A, and prints a
//     reply token (B's record, reply_to = the invitation's nonce).
//  3. A: `relais federation add REPLY` checks that reply_to is one of its
//     pending invitations, consumes it and pins B.
//
// Every token is good once: the nonce of each token added is remembered
// until the token would have expired anyway.

// Config configures a Service.
type Config struct {
	DB   *store.DB
	Link Link
	// Key is the administration's event-signing key (LoadKey).
	Key ed25519.PrivateKey
	// Name is the administration's name as its peers show it.
	Name string
	// Domains returns the e-mail domains the administration serves now.
	Domains func() []string
	// Node is this node's id.
	Node   string
	Logger *slog.Logger
	Now    func() time.Time
}

// Service is peering and the federation directory of one node.
type Service struct {
	cfg Config
	id  AdminID
	log *slog.Logger
	lag atomic.Pointer[func(AdminID) (int64, bool)]
}

// NewService pins the stored peers on the link.
func NewService(cfg Config) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Domains == nil {
		cfg.Domains = func() []string { return nil }
	}
	s := &Service{cfg: cfg, id: AdminIDOf(cfg.Key.Public().(ed25519.PublicKey)), log: cfg.Logger.With("component", "federation")}
	if err := s.pinAll(); err != nil {
		return nil, err
	}
	return s, nil
}

// Identity is this administration as its peers know it.
func (s *Service) Identity() Identity {
	return Identity{ID: s.id, Name: s.cfg.Name, Domains: s.cfg.Domains(), Nodes: []string{s.cfg.Node}, Key: s.cfg.Key}
}

// Transport is the link to the peers.
func (s *Service) Transport() Transport { return s.cfg.Link }

// SetLag installs the function that reports how far behind a peer this
// node's copy of its rooms is (events to catch up), for health.
func (s *Service) SetLag(f func(AdminID) (events int64, ok bool)) { s.lag.Store(&f) }

func (s *Service) pinAll() error {
	var peers []store.FedPeer
	if err := s.cfg.DB.View(func(tx *store.Tx) (err error) {
		peers, err = tx.FedPeers()
		return err
	}); err != nil {
		return fmt.Errorf("fed: read peers: %w", err)
	}
	list := make([]LinkPeer, 0, len(peers))
	for _, p := range peers {
		list = append(list, LinkPeer{Peer: Peer{ID: AdminID(p.ID), Name: p.Name, Domains: p.Domains, Nodes: p.Nodes, EventKey: p.EventKey},
			Endpoint: p.Endpoint, TLSPin: p.TLSPin, Nkey: p.Nkey})
	}
	if err := s.cfg.Link.SetPeers(list); err != nil {
		return fmt.Errorf("fed: pin peers on the link: %w", err)
	}
	return nil
}

// token is this administration's record as a token.
func (s *Service) token(replyTo string) (Token, string) {
	info := s.cfg.Link.Info()
	t := Token{V: 1, Admin: s.id, Name: s.cfg.Name, Domains: s.cfg.Domains(), Nodes: []string{s.cfg.Node},
		EventKey: s.cfg.Key.Public().(ed25519.PublicKey), Endpoint: info.Endpoint, TLSPin: info.TLSPin, Nkey: info.Nkey,
		Nonce: NewNonce(), Expires: s.cfg.Now().Add(TokenLifetime).Unix(), ReplyTo: replyTo}
	if t.Domains == nil {
		t.Domains = []string{}
	}
	return t, t.Sign(s.cfg.Key)
}

// Invite issues an invitation token and keeps its nonce until the reply.
func (s *Service) Invite(ctx context.Context) (string, error) {
	t, signed := s.token("")
	if err := s.cfg.DB.Update(ctx, func(tx *store.Tx) error {
		return tx.PutFedInvite(store.FedInvite{Nonce: t.Nonce, Expires: time.Unix(t.Expires, 0)}, s.cfg.Now())
	}); err != nil {
		return "", fmt.Errorf("fed: keep invitation: %w", err)
	}
	s.log.Info("peering invitation issued", "expires", time.Unix(t.Expires, 0).UTC())
	return signed, nil
}

// Added is the outcome of Add.
type Added struct {
	Peer PeerInfo `json:"peer"`
	// Reply is the token to hand back, when what was added was an
	// invitation; "" when it was a reply (peering is complete).
	Reply string `json:"reply,omitempty"`
}

// Add verifies a peer's token (an invitation or the reply to one of ours)
// and pins the peer. A token that does not verify, expired, was used
// already or replies to nothing changes nothing and is logged.
func (s *Service) Add(ctx context.Context, raw string) (Added, error) {
	now := s.cfg.Now()
	out, err := s.add(ctx, raw, now)
	if err != nil {
		if pe := proto.AsError(err); pe != nil {
			s.log.Warn("peering token refused", "code", pe.Code, "detail", pe.Detail, "reason", pe.Message)
		}
		return Added{}, err
	}
	return out, nil
}

func (s *Service) add(ctx context.Context, raw string, now time.Time) (Added, error) {
	t, err := ParseToken(raw, now)
	if err != nil {
		return Added{}, err
	}
	if t.Admin == s.id {
		return Added{}, proto.Errorf(proto.CodePeeringSelf, "this token is this administration's own")
	}
	var reply string
	if t.ReplyTo == "" {
		_, reply = s.token(t.Nonce)
	}
	rec := store.FedPeer{ID: string(t.Admin), Name: t.Name, Domains: t.Domains, Nodes: t.Nodes, EventKey: t.EventKey,
		Endpoint: t.Endpoint, TLSPin: t.TLSPin, Nkey: t.Nkey, Added: now.UTC()}
	err = s.cfg.DB.Update(ctx, func(tx *store.Tx) error {
		// An error undoes every write of this function.
		fresh, err := tx.UseFedNonce(t.Nonce, time.Unix(t.Expires, 0), now)
		if err != nil {
			return err
		}
		if !fresh {
			return proto.Errorf(proto.CodePeeringReplayed, "this token was used already")
		}
		if err := s.checkUnique(tx, t); err != nil {
			return err
		}
		if t.ReplyTo != "" {
			if _, err := tx.TakeFedInvite(t.ReplyTo, now); errors.Is(err, store.ErrNotFound) {
				return proto.Errorf(proto.CodePeeringNoInvitation, "this reply answers no pending invitation of this administration (consumed, expired or never issued)")
			} else if err != nil {
				return err
			}
		}
		return tx.PutFedPeer(rec)
	})
	if err != nil {
		if proto.AsError(err) != nil {
			return Added{}, err
		}
		return Added{}, fmt.Errorf("fed: pin peer: %w", err)
	}
	if err := s.pinAll(); err != nil {
		return Added{}, err
	}
	s.log.Info("peer pinned", "peer", t.Admin, "name", t.Name, "reply", t.ReplyTo != "")
	return Added{Peer: s.info(rec), Reply: reply}, nil
}

// Remove unpins a peer and closes its link at once. What was stored of or
// for it stays.
func (s *Service) Remove(ctx context.Context, id AdminID) error {
	err := s.cfg.DB.Update(ctx, func(tx *store.Tx) error { return tx.DeleteFedPeer(string(id)) })
	if errors.Is(err, store.ErrNotFound) {
		return proto.Errorf(proto.CodePeerUnknown, "no peered administration has the id %q", id)
	}
	if err != nil {
		return fmt.Errorf("fed: remove peer: %w", err)
	}
	if err := s.pinAll(); err != nil {
		return err
	}
	s.log.Info("peer removed", "peer", id)
	return nil
}

// PeerInfo is a peer and its link, for `relais federation list` and
// health.
type PeerInfo struct {
	ID          AdminID   `json:"id"`
	Name        string    `json:"name"`
	Domains     []string  `json:"domains"`
	Endpoint    string    `json:"endpoint,omitempty"`
	State       string    `json:"state"`
	Dials       bool      `json:"dials"`
	LastContact time.Time `json:"last_contact,omitzero"`
	Pending     int       `json:"pending"`
	// Lag is how many events this node's copy of the peer's rooms is
	// behind, when known.
	Lag *int64 `json:"lag,omitempty"`
}

func (s *Service) info(p store.FedPeer) PeerInfo {
	pi := PeerInfo{ID: AdminID(p.ID), Name: p.Name, Domains: p.Domains, Endpoint: p.Endpoint, State: LinkDown}
	for _, st := range s.cfg.Link.Status() {
		if st.ID == pi.ID {
			pi.State, pi.Dials, pi.LastContact, pi.Pending = st.State, st.Dials, st.LastContact, st.Pending
		}
	}
	if f := s.lag.Load(); f != nil {
		if n, ok := (*f)(pi.ID); ok {
			pi.Lag = &n
		}
	}
	return pi
}

// List returns every pinned peer with its link's state.
func (s *Service) List() ([]PeerInfo, error) {
	var peers []store.FedPeer
	if err := s.cfg.DB.View(func(tx *store.Tx) (err error) {
		peers, err = tx.FedPeers()
		return err
	}); err != nil {
		return nil, fmt.Errorf("fed: read peers: %w", err)
	}
	out := make([]PeerInfo, 0, len(peers))
	for _, p := range peers {
		out = append(out, s.info(p))
	}
	slices.SortFunc(out, func(a, b PeerInfo) int {
		if a.Name != b.Name {
			if a.Name < b.Name {
				return -1
			}
			return 1
		}
		if a.ID < b.ID {
			return -1
		}
		return 1
	})
	return out, nil
}

// Health is what /healthz and the admin socket show of federation.
func (s *Service) Health() map[string]any {
	peers, err := s.List()
	h := map[string]any{"admin": s.id, "endpoint": s.cfg.Link.Info().Endpoint, "peers": peers}
	if err != nil {
		h["error"] = err.Error()
	}
	return h
}

// checkUnique refuses a token that claims what belongs to this
// administration or to another pinned peer: a NATS key or link
// certificate (the link would carry the other's traffic) or a domain (the
// peer would be taken as the one whose users it may speak for).
func (s *Service) checkUnique(tx *store.Tx, t Token) error {
	info := s.cfg.Link.Info()
	if t.Nkey == info.Nkey || t.TLSPin == info.TLSPin {
		return invalid("key_in_use", "the token's NATS key or link certificate is this administration's own")
	}
	for _, d := range t.Domains {
		for _, mine := range s.cfg.Domains() {
			if DomainsOverlap(d, mine) {
				return invalid("domain_in_use", "the domain %s is served by this administration (%s)", d, mine)
			}
		}
	}
	peers, err := tx.FedPeers()
	if err != nil {
		return err
	}
	for _, p := range peers {
		if p.ID == string(t.Admin) {
			continue // the same administration peering again
		}
		if p.Nkey == t.Nkey || p.TLSPin == t.TLSPin {
			return invalid("key_in_use", "the token's NATS key or link certificate is already pinned for %s (%s)", p.ID, p.Name)
		}
		for _, d := range t.Domains {
			for _, theirs := range p.Domains {
				if DomainsOverlap(d, theirs) {
					return invalid("domain_in_use", "the domain %s is already served by %s (%s)", d, p.ID, p.Name)
				}
			}
		}
	}
	return nil
}

// DomainsOverlap reports whether two domain patterns (a.gouv.fr, or
// *.gouv.fr for the sub-domains) can match one address.
func DomainsOverlap(a, b string) bool {
	a, b = strings.ToLower(a), strings.ToLower(b)
	if a == b {
		return true
	}
	under := func(d, wild string) bool {
		parent, ok := strings.CutPrefix(wild, "*.")
		return ok && strings.HasSuffix(strings.TrimPrefix(d, "*."), "."+parent)
	}
	return under(a, b) || under(b, a)
}
