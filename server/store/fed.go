package store

import (
	"bytes"
	"encoding/binary"
	"time"
)

// Federation: the administrations this one peered with, pinned once at
// peering and never fetched again, and the one-time peering invitations.
//
//	fedpeers    admin id → JSON FedPeer
//	fedinvites  nonce → JSON FedInvite        (invitations waiting for their reply)
//	fednonces   nonce → expiry, Unix s (8)    (tokens of peers already used once)
var (
	bFedPeers   = []byte("fedpeers")
	bFedInvites = []byte("fedinvites")
	bFedNonces  = []byte("fednonces")
)

var fedBuckets = [][]byte{bFedPeers, bFedInvites, bFedNonces}

// FedPeer is a peered administration as pinned at peering.
type FedPeer struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Domains  []string `json:"domains"`
	Nodes    []string `json:"nodes"`
	EventKey []byte   `json:"event_key"`
	// Endpoint is the host:port of its link listener, "" when it only
	// dials out.
	Endpoint string `json:"endpoint,omitempty"`
	// TLSPin is the lower-case hex SHA-256 of its link certificate's
	// SubjectPublicKeyInfo; Nkey the public NATS key its node dials with.
	TLSPin string    `json:"tls_pin"`
	Nkey   string    `json:"nkey"`
	Added  time.Time `json:"added"`
}

// FedInvite is an invitation this administration issued and whose reply
// it waits for.
type FedInvite struct {
	Nonce   string    `json:"nonce"`
	Expires time.Time `json:"expires"`
}

// PutFedPeer pins a peer, replacing an earlier record of the same id.
func (tx *Tx) PutFedPeer(p FedPeer) error {
	return tx.bucket(bFedPeers).Put([]byte(p.ID), encode(p))
}

// FedPeer returns the pinned peer with this id.
func (tx *Tx) FedPeer(id string) (FedPeer, error) {
	var p FedPeer
	err := decode(tx.bucket(bFedPeers).Get([]byte(id)), &p)
	return p, err
}

// FedPeers returns every pinned peer, in id order.
func (tx *Tx) FedPeers() ([]FedPeer, error) {
	var out []FedPeer
	err := tx.bucket(bFedPeers).ForEach(func(k, v []byte) error {
		var p FedPeer
		if err := decode(v, &p); err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

// DeleteFedPeer unpins a peer; ErrNotFound if it was not pinned.
func (tx *Tx) DeleteFedPeer(id string) error {
	b := tx.bucket(bFedPeers)
	if b.Get([]byte(id)) == nil {
		return ErrNotFound
	}
	return b.Delete([]byte(id))
}

// PutFedInvite records an issued invitation, dropping those that expired.
func (tx *Tx) PutFedInvite(inv FedInvite, now time.Time) error {
	b := tx.bucket(bFedInvites)
	var stale [][]byte
	b.ForEach(func(k, v []byte) error {
		var i FedInvite
		if decode(v, &i) != nil || !i.Expires.After(now) {
			stale = append(stale, bytes.Clone(k))
		}
		return nil
	})
	for _, k := range stale {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return b.Put([]byte(inv.Nonce), encode(inv))
}

// TakeFedInvite consumes the invitation with this nonce: ErrNotFound if
// there is none, it was consumed already or it expired.
func (tx *Tx) TakeFedInvite(nonce string, now time.Time) (FedInvite, error) {
	b := tx.bucket(bFedInvites)
	var inv FedInvite
	if err := decode(b.Get([]byte(nonce)), &inv); err != nil {
		return inv, err
	}
	if err := b.Delete([]byte(nonce)); err != nil {
		return inv, err
	}
	if !inv.Expires.After(now) {
		return inv, ErrNotFound
	}
	return inv, nil
}

// FedInvites returns the invitations still waiting for a reply.
func (tx *Tx) FedInvites(now time.Time) ([]FedInvite, error) {
	var out []FedInvite
	err := tx.bucket(bFedInvites).ForEach(func(k, v []byte) error {
		var i FedInvite
		if err := decode(v, &i); err != nil {
			return err
		}
		if i.Expires.After(now) {
			out = append(out, i)
		}
		return nil
	})
	return out, err
}

// UseFedNonce records that a peer's token with this nonce was used, until
// it expires (after which the token is refused as expired anyway). It
// returns false if the nonce was used already.
func (tx *Tx) UseFedNonce(nonce string, expires, now time.Time) (bool, error) {
	b := tx.bucket(bFedNonces)
	if v := b.Get([]byte(nonce)); v != nil && fedExpiry(v) > now.Unix() {
		return false, nil
	}
	var stale [][]byte
	b.ForEach(func(k, v []byte) error {
		if fedExpiry(v) <= now.Unix() {
			stale = append(stale, bytes.Clone(k))
		}
		return nil
	})
	for _, k := range stale {
		if err := b.Delete(k); err != nil {
			return false, err
		}
	}
	return true, b.Put([]byte(nonce), u64(uint64(expires.Unix())))
}

func fedExpiry(v []byte) int64 {
	if len(v) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(v))
}
