// Package fed is federation between administrations: the identity an
// administration shows its peers, the pinned directory of those peers,
// and the transport that carries requests and pushed events between them.
//
// An administration (a ministry, a town hall) is addressed by its AdminID,
// never by the node that happens to serve it, so that an administration
// run by several nodes stays one peer. Each administration keeps its own
// users and the rooms they created; what crosses the link is signed by the
// administration it comes from (see the envelope in this package) and is
// checked against keys pinned when the two administrations peered.
//
// The transport itself is implemented outside server/ (cluster/, on
// leaf-node links of the embedded NATS server); this package only states
// the contract, so that the server never depends on NATS.
package fed

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// AdminID names an administration: "a" followed by 12 lower-case base32
// characters of the SHA-256 of its event-signing public key. It is
// therefore self-certifying (a record that claims an id must carry a key
// that hashes to it) and a valid NATS subject token.
type AdminID string

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// AdminIDOf returns the AdminID of the administration whose event-signing
// key is pub.
func AdminIDOf(pub ed25519.PublicKey) AdminID {
	sum := sha256.Sum256(pub)
	return AdminID("a" + b32.EncodeToString(sum[:])[:12])
}

var adminIDRe = regexp.MustCompile(`^a[a-z2-7]{12}$`)

// Valid reports whether id is well formed.
func (id AdminID) Valid() bool { return adminIDRe.MatchString(string(id)) }

// Identity is this administration as its peers know it.
type Identity struct {
	ID      AdminID
	Name    string
	Domains []string // e-mail domains whose users this administration serves
	Nodes   []string // node ids (server/id) of this administration
	Key     ed25519.PrivateKey
}

// Peer is a peered administration, as pinned when the two peered. Nothing
// in it is ever fetched from the peer afterwards.
type Peer struct {
	ID       AdminID
	Name     string
	Domains  []string
	Nodes    []string
	EventKey ed25519.PublicKey
}

// Peers is the pinned federation directory.
type Peers interface {
	// Peer returns the peer with this id.
	Peer(id AdminID) (Peer, bool)
	// ByDomain returns the peer that serves this e-mail domain.
	ByDomain(domain string) (Peer, bool)
	// ByNode returns the peer one of whose nodes is node (the home part of
	// a user or room id).
	ByNode(node string) (Peer, bool)
	// List returns every peer.
	List() []Peer
}

// ErrUnreachable is returned by Transport.Request when no link to the peer
// is up, or the peer did not answer before the context ended. Nothing may
// be assumed to have happened at the peer.
var ErrUnreachable = errors.New("fed: administration unreachable")

// RemoteError is a refusal the peer answered with: a stable code of
// server/proto and a reason for the logs.
type RemoteError struct {
	Code   string
	Reason string
}

func (e *RemoteError) Error() string { return "fed: refused: " + e.Code + ": " + e.Reason }

// Handler serves one operation. from is the administration whose link the
// message came over; the transport guarantees it, the handler still checks
// every signature inside body. A *RemoteError it returns reaches the
// requester as is; any other error as proto.CodeInternal.
type Handler func(ctx context.Context, from AdminID, body []byte) ([]byte, error)

// Transport carries federation traffic. Operation names are lower-case
// letters and '_' (they become subject tokens).
type Transport interface {
	Peers
	// Request sends body to peer's handler for op and returns its answer.
	Request(ctx context.Context, to AdminID, op string, body []byte) ([]byte, error)
	// Push delivers body to peer's handler for op without waiting for an
	// answer; delivery is best effort (the receiver catches up by request).
	Push(to AdminID, op string, body []byte) error
	// Handle sets the handler of op, for requests and pushes alike.
	Handle(op string, h Handler)
	// OnLinkUp registers f, called each time the link to a peer comes up:
	// the moment to catch up on what was missed.
	OnLinkUp(f func(AdminID))
}

// LoadKey returns the administration's event-signing key, kept in
// dataDir/fed/event.key (mode 0600), creating it on first use. It is a key
// of its own, never the TLS or the NATS key: the NATS handshake signs
// whatever nonce the other side picks.
func LoadKey(dataDir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dataDir, "fed", "event.key")
	seed, err := os.ReadFile(path)
	if err == nil {
		if len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("fed: %s: not an ed25519 seed (%d bytes)", path, len(seed))
		}
		return ed25519.NewKeyFromSeed(seed), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("fed: read event key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("fed: create key directory: %w", err)
	}
	seed = make([]byte, ed25519.SeedSize)
	rand.Read(seed)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, seed, 0o600); err != nil {
		return nil, fmt.Errorf("fed: write event key: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, fmt.Errorf("fed: write event key: %w", err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}
