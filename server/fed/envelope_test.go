package fed

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"

	"relais/server/id"
)

// mapPeers is a pinned directory in a map, for tests.
type mapPeers []Peer

func (m mapPeers) Peer(a AdminID) (Peer, bool) {
	for _, p := range m {
		if p.ID == a {
			return p, true
		}
	}
	return Peer{}, false
}
func (m mapPeers) ByDomain(string) (Peer, bool) { return Peer{}, false }
func (m mapPeers) ByNode(n string) (Peer, bool) {
	for _, p := range m {
		for _, x := range p.Nodes {
			if x == n {
				return p, true
			}
		}
	}
	return Peer{}, false
}
func (m mapPeers) List() []Peer { return m }

type admin struct {
	ident Identity
	node  string
}

func newAdmin(t testing.TB) admin {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	n := id.NewNode()
	return admin{Identity{ID: AdminIDOf(key.Public().(ed25519.PublicKey)), Key: key, Nodes: []string{n}}, n}
}

func (a admin) peer() Peer {
	return Peer{ID: a.ident.ID, Nodes: a.ident.Nodes, EventKey: a.ident.Key.Public().(ed25519.PublicKey)}
}

// dirOf is the directory as self sees it, with the others pinned.
func dirOf(self admin, others ...admin) Directory {
	var ps mapPeers
	for _, o := range others {
		ps = append(ps, o.peer())
	}
	return Directory{Self: self.ident, Peers: ps}
}

// record makes a record of a room homed at home, sent by a user homed at
// signer's node, signed by signer.
func record(home, signer admin, sender, room string, seq uint64, prev Hash, frame string) Record {
	o := Origin{Room: room, Sender: sender, Admin: signer.ident.ID, CID: "c1", TS: 1000, Type: "text", Content: HashOf([]byte("hello"))}
	ord := Order{Room: room, Seq: seq, EventHash: HashOf([]byte(frame)), Prev: prev}
	return Record{Origin: o, OriginSig: SignOrigin(signer.ident.Key, o), Order: ord, OrderSig: SignOrder(home.ident.Key, ord), Frame: []byte(frame)}
}

func TestFederationRecordRoundTrip(t *testing.T) {
	a, b := newAdmin(t), newAdmin(t)
	rec := record(a, b, id.NewUser(b.node), id.NewRoom(a.node), 7, HashOf([]byte("six")), `{"t":"ev"}`)
	enc := AppendRecord(nil, &rec)
	got, err := ParseRecord(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(AppendRecord(nil, &got), enc) {
		t.Fatal("re-encoding a parsed record gives other bytes")
	}
	if err := dirOf(a, b).Verify(&got, &rec.Order.Prev); err != nil {
		t.Fatalf("home A refuses a good record: %v", err)
	}
	c := newAdmin(t)
	if err := dirOf(c, a, b).Verify(&got, &rec.Order.Prev); err != nil {
		t.Fatalf("third administration C refuses a good record: %v", err)
	}
}

// TestFederationEnvelopeRefusals: each forgery a hostile administration
// could try is refused with its own error.
func TestFederationEnvelopeRefusals(t *testing.T) {
	a, b, c := newAdmin(t), newAdmin(t), newAdmin(t)
	room := id.NewRoom(a.node)
	userB, userC := id.NewUser(b.node), id.NewUser(c.node)
	prev := HashOf([]byte("prev"))
	stranger := newAdmin(t)
	for _, tc := range []struct {
		name string
		rec  func() Record
		prev *Hash
		want error
	}{
		{"B signs for a user of C", func() Record { return record(a, b, userC, room, 2, prev, "f") }, &prev, ErrAuthority},
		{"C's user with B's admin id but C's key", func() Record {
			r := record(a, c, userC, room, 2, prev, "f")
			r.Origin.Admin = b.ident.ID
			r.OriginSig = SignOrigin(c.ident.Key, r.Origin)
			return r
		}, &prev, ErrAuthority},
		{"sender of an unknown administration", func() Record { return record(a, stranger, id.NewUser(stranger.node), room, 2, prev, "f") }, &prev, ErrAuthority},
		{"origin signed by the wrong key", func() Record {
			r := record(a, b, userB, room, 2, prev, "f")
			r.OriginSig = SignOrigin(c.ident.Key, r.Origin)
			return r
		}, &prev, ErrSignature},
		{"body changed after the origin signed", func() Record {
			r := record(a, b, userB, room, 2, prev, "f")
			r.Origin.Content = HashOf([]byte("other"))
			return r
		}, &prev, ErrSignature},
		{"B orders a room homed at A", func() Record {
			r := record(a, b, userB, room, 2, prev, "f")
			r.OrderSig = SignOrder(b.ident.Key, r.Order)
			return r
		}, &prev, ErrSignature},
		{"home rewrites a past sequence (broken chain)", func() Record { return record(a, b, userB, room, 2, HashOf([]byte("forged")), "f") }, &prev, ErrChain},
		{"frame swapped under the signatures", func() Record {
			r := record(a, b, userB, room, 2, prev, "f")
			r.Frame = []byte("g")
			return r
		}, &prev, ErrMalformed},
		{"order for another room", func() Record {
			r := record(a, b, userB, room, 2, prev, "f")
			r.Order.Room = id.NewRoom(a.node)
			r.OrderSig = SignOrder(a.ident.Key, r.Order)
			return r
		}, &prev, ErrMalformed},
		{"sequence 0", func() Record { return record(a, b, userB, room, 0, prev, "f") }, &prev, ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := tc.rec()
			err := dirOf(c, a, b).Verify(&rec, tc.prev)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			// What the wire carries must be refused the same way.
			if got, perr := ParseRecord(AppendRecord(nil, &rec)); perr == nil {
				if err := dirOf(c, a, b).Verify(&got, tc.prev); !errors.Is(err, tc.want) {
					t.Fatalf("after the wire: Verify = %v, want %v", err, tc.want)
				}
			} else if tc.want != ErrMalformed {
				t.Fatalf("parse refused a record that is only forged: %v", perr)
			}
		})
	}
}

func TestFederationRecordEncodingIsStrict(t *testing.T) {
	a, b := newAdmin(t), newAdmin(t)
	rec := record(a, b, id.NewUser(b.node), id.NewRoom(a.node), 3, Hash{}, "frame")
	good := AppendRecord(nil, &rec)
	padded := append([]byte{good[0], 0x9a, 0x80, 0x00}, good[2:]...) // room length 26 as a 3-byte uvarint
	huge := AppendRecord(nil, &Record{Origin: rec.Origin, OriginSig: rec.OriginSig, Order: rec.Order, OrderSig: rec.OrderSig})
	huge = append(huge[:len(huge)-1], 0xff, 0xff, 0xff, 0x7f)
	for name, b := range map[string][]byte{
		"trailing byte":     append(append([]byte{}, good...), 0),
		"truncated":         good[:len(good)-1],
		"unknown version":   append([]byte{2}, good[1:]...),
		"padded uvarint":    padded,
		"frame over limit":  huge,
		"empty":             nil,
		"signature missing": good[:120],
	} {
		if _, err := ParseRecord(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: ParseRecord = %v, want ErrMalformed", name, err)
		}
	}
}

func TestFederationBatchAndRequests(t *testing.T) {
	a, b := newAdmin(t), newAdmin(t)
	room := id.NewRoom(a.node)
	u := id.NewUser(b.node)
	r1 := record(a, b, u, room, 1, Hash{}, "one")
	r2 := record(a, b, u, room, 2, r1.Order.EventHash, "two")
	snap := &Snapshot{Room: room, Seq: 1, State: []byte(`{"members":[]}`)}
	SignSnapshot(a.ident.Key, snap)
	f, err := ParseBatchFrame(AppendBatchFrame(nil, &Batch{Snapshot: snap, Records: []Record{r1, r2}}))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Records) != 2 || f.Snapshot == nil || string(f.Snapshot.State) != string(snap.State) {
		t.Fatalf("batch came back as %+v", f)
	}
	if err := dirOf(b, a).VerifySnapshot(f.Snapshot); err != nil {
		t.Fatalf("good snapshot refused: %v", err)
	}
	f.Snapshot.State = []byte(`{"members":["me"]}`)
	if err := dirOf(b, a).VerifySnapshot(f.Snapshot); !errors.Is(err, ErrSignature) {
		t.Fatalf("altered snapshot: %v, want ErrSignature", err)
	}
	if _, err := ParseBatchFrame(AppendBatchFrame(nil, &Batch{Records: []Record{r2, r1}})); !errors.Is(err, ErrMalformed) {
		t.Fatalf("records out of order: %v, want ErrMalformed", err)
	}
	sq, err := ParseSyncRequest(AppendSyncRequest(nil, SyncRequest{Room: room, After: 41, Max: 100000}))
	if err != nil || sq.Room != room || sq.After != 41 || sq.Max != MaxBatch {
		t.Fatalf("sync request came back as %+v, %v", sq, err)
	}
	q := SendRequest{Origin: r1.Origin, OriginSig: r1.OriginSig, Device: id.NewDevice(), Frame: []byte(`{"t":"send"}`)}
	got, err := ParseSendRequest(AppendSendRequest(nil, &q))
	if err != nil || got.Device != q.Device || string(got.Frame) != string(q.Frame) {
		t.Fatalf("send request came back as %+v, %v", got, err)
	}
	if err := dirOf(a, b).VerifyOrigin(got.Origin, got.OriginSig); err != nil {
		t.Fatalf("good send request refused: %v", err)
	}
}
