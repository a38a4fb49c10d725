package fed

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"

	"relais/server/id"
)

// The federation frames of room replication: what the operations
// "room_send", "room_sync" and "room_event" carry. Same strict encoding as
// the records.

// Operations of room replication.
const (
	// OpRoomSend: a member homed elsewhere writes to a room; body
	// SendRequest, answer a Batch holding the committed record.
	OpRoomSend = "room_send"
	// OpRoomSync: a peer pulls a room's events after a sequence; body
	// SyncRequest, answer a Batch.
	OpRoomSync = "room_sync"
	// OpRoomEvent: the home pushes committed records; body a Batch.
	OpRoomEvent = "room_event"
)

const (
	snapshotPrefix = "relais-state-v1\x00"
	// MaxState bounds a room's state snapshot (some 3,000 members).
	MaxState = 256 << 10
)

// SendRequest is a write forwarded by the sender's administration.
type SendRequest struct {
	Origin    Origin
	OriginSig []byte
	Device    string
	// Frame is the client's "send" frame as the sender's node received
	// and validated it; the home decodes and validates it again.
	Frame []byte
}

// AppendSendRequest appends the encoding of q.
func AppendSendRequest(b []byte, q *SendRequest) []byte {
	b = append(b, recordVersion)
	b = q.Origin.append(b)
	b = append(b, q.OriginSig...)
	b = appendShort(b, q.Device)
	b = binary.AppendUvarint(b, uint64(len(q.Frame)))
	return append(b, q.Frame...)
}

// ParseSendRequest decodes a SendRequest; the result aliases b.
func ParseSendRequest(b []byte) (SendRequest, error) {
	r := reader{b: b}
	var q SendRequest
	if v := r.bytes(1, "version"); v != nil && v[0] != recordVersion {
		r.fail("unknown version")
	}
	q.Origin = r.origin()
	q.OriginSig = r.bytes(ed25519.SignatureSize, "origin signature")
	q.Device = r.short("device")
	n := r.uvarint("frame length")
	if n > MaxFrame {
		r.fail("frame too large")
	}
	q.Frame = r.bytes(int(n), "frame")
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err == nil {
		switch {
		case !id.Valid(id.Room, q.Origin.Room), !id.Valid(id.User, q.Origin.Sender), !q.Origin.Admin.Valid():
			r.fail("bad identifiers")
		case q.Device != "" && !id.Valid(id.Device, q.Device):
			r.fail("bad device id")
		case q.Origin.CID == "":
			r.fail("no client id")
		}
	}
	return q, r.err
}

// SyncRequest asks for up to Max events of Room after sequence After.
type SyncRequest struct {
	Room  string
	After uint64
	Max   int
}

// AppendSyncRequest appends the encoding of q.
func AppendSyncRequest(b []byte, q SyncRequest) []byte {
	b = appendShort(b, q.Room)
	b = binary.BigEndian.AppendUint64(b, q.After)
	return binary.AppendUvarint(b, uint64(q.Max))
}

// ParseSyncRequest decodes a SyncRequest; Max is clamped to MaxBatch.
func ParseSyncRequest(b []byte) (SyncRequest, error) {
	r := reader{b: b}
	q := SyncRequest{Room: r.short("room"), After: r.u64("after")}
	m := r.uvarint("max")
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err == nil && !id.Valid(id.Room, q.Room) {
		r.fail("bad room id")
	}
	q.Max = int(min(m, MaxBatch))
	if q.Max == 0 {
		q.Max = MaxBatch
	}
	return q, r.err
}

// Snapshot is a room's state (settings and members, JSON of server/chat)
// as of sequence Seq, signed by the home: what a node that takes a room
// from the middle of its log starts from.
type Snapshot struct {
	Room  string
	Seq   uint64
	State []byte
	Sig   []byte
}

func (s *Snapshot) signed() []byte {
	b := []byte(snapshotPrefix)
	b = appendShort(b, s.Room)
	b = binary.BigEndian.AppendUint64(b, s.Seq)
	h := HashOf(s.State)
	return append(b, h[:]...)
}

// SignSnapshot fills s.Sig with the home's key.
func SignSnapshot(key ed25519.PrivateKey, s *Snapshot) { s.Sig = ed25519.Sign(key, s.signed()) }

// VerifySnapshot checks that the room's home administration signed s.
func (d Directory) VerifySnapshot(s *Snapshot) error {
	_, key, ok := d.adminOfNode(id.Home(s.Room))
	if !ok {
		return fmt.Errorf("%w: room %s belongs to no known administration", ErrAuthority, s.Room)
	}
	if len(s.Sig) != ed25519.SignatureSize || !ed25519.Verify(key, s.signed(), s.Sig) {
		return fmt.Errorf("%w: snapshot of %s", ErrSignature, s.Room)
	}
	return nil
}

// Batch is what room_event pushes and room_sync and room_send answer: an
// optional snapshot, then records in sequence order.
type Batch struct {
	Snapshot *Snapshot
	Records  []Record
}

// AppendBatchFrame appends the encoding of a Batch.
func AppendBatchFrame(b []byte, f *Batch) []byte {
	if f.Snapshot == nil {
		b = append(b, 0)
	} else {
		s := f.Snapshot
		b = append(b, 1)
		b = appendShort(b, s.Room)
		b = binary.BigEndian.AppendUint64(b, s.Seq)
		b = binary.AppendUvarint(b, uint64(len(s.State)))
		b = append(b, s.State...)
		b = append(b, s.Sig...)
	}
	return AppendBatch(b, f.Records)
}

// ParseBatchFrame decodes a Batch: well formed, all records of the
// snapshot's room, in strictly increasing sequence. Signatures are left to
// the receiver, which knows the chain.
func ParseBatchFrame(b []byte) (Batch, error) {
	r := reader{b: b}
	var f Batch
	switch flag := r.bytes(1, "snapshot flag"); {
	case flag == nil:
	case flag[0] == 1:
		s := &Snapshot{Room: r.short("snapshot room"), Seq: r.u64("snapshot seq")}
		n := r.uvarint("state length")
		if n > MaxState {
			r.fail("state too large")
		}
		s.State = r.bytes(int(n), "state")
		s.Sig = r.bytes(ed25519.SignatureSize, "snapshot signature")
		if r.err == nil && !id.Valid(id.Room, s.Room) {
			r.fail("bad snapshot room")
		}
		f.Snapshot = s
	case flag[0] != 0:
		r.fail("bad snapshot flag")
	}
	if r.err != nil {
		return Batch{}, r.err
	}
	recs, err := ParseBatch(r.b)
	if err != nil {
		return Batch{}, err
	}
	for i := range recs {
		if f.Snapshot != nil && recs[i].Order.Room != f.Snapshot.Room || i > 0 && (recs[i].Order.Room != recs[0].Order.Room || recs[i].Order.Seq != recs[i-1].Order.Seq+1) {
			return Batch{}, fmt.Errorf("%w: records not consecutive in one room", ErrMalformed)
		}
	}
	f.Records = recs
	return f, nil
}

// OpRoomEphemeral carries what a room's members see but nobody stores
// (typing) or what is not part of the log (read receipts): from a
// member's administration to the home, and from the home to the other
// administrations with members. Body an Ephemeral; no answer.
const OpRoomEphemeral = "room_ephemeral"

// Ephemeral kinds.
const (
	EphTyping  byte = 't'
	EphReceipt byte = 'r'
)

// Ephemeral is a receipt or a typing notice of one member.
type Ephemeral struct {
	Room string
	User string
	Kind byte
	Seq  uint64 // EphReceipt: read up to
	On   bool   // EphTyping
}

// AppendEphemeral appends the encoding of e.
func AppendEphemeral(b []byte, e Ephemeral) []byte {
	b = appendShort(b, e.Room)
	b = appendShort(b, e.User)
	b = append(b, e.Kind)
	b = binary.BigEndian.AppendUint64(b, e.Seq)
	on := byte(0)
	if e.On {
		on = 1
	}
	return append(b, on)
}

// ParseEphemeral decodes an Ephemeral.
func ParseEphemeral(b []byte) (Ephemeral, error) {
	r := reader{b: b}
	e := Ephemeral{Room: r.short("room"), User: r.short("user")}
	if k := r.bytes(1, "kind"); k != nil {
		e.Kind = k[0]
	}
	e.Seq = r.u64("seq")
	if on := r.bytes(1, "on"); on != nil {
		if on[0] > 1 {
			r.fail("bad on flag")
		}
		e.On = on[0] == 1
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err == nil {
		switch {
		case !id.Valid(id.Room, e.Room), !id.Valid(id.User, e.User):
			r.fail("bad identifiers")
		case e.Kind != EphTyping && e.Kind != EphReceipt:
			r.fail("unknown kind")
		case e.Kind == EphTyping && e.Seq != 0, e.Kind == EphReceipt && e.On:
			r.fail("fields of another kind")
		}
	}
	return e, r.err
}
