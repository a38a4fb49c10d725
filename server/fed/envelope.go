package fed

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"relais/server/id"
)

// The signed envelope of a room event that crosses a link.
//
// Two signatures cover each event. The administration of the sender (the
// origin) signs what the sender asked for; the administration of the room
// (the home) signs the place it gave the event in the room's log, chained
// to the previous one. Each signature covers a domain-separation prefix
// and a canonical binary encoding, so that neither key can be made to sign
// anything else in a form that reads as an event or an ordering.
//
// The encoding is strict: fields in a fixed order, lengths as uvarints
// bounded per field, no trailing bytes. Decoding then re-encoding gives the
// same bytes, so a signature over the encoding is a signature over the
// fields.

// Prefixes of the signed byte strings.
const (
	originPrefix = "relais-event-v1\x00"
	orderPrefix  = "relais-order-v1\x00"
)

// Limits of the encoding.
const (
	// MaxFrame is the largest event frame a record may carry (an
	// encrypted event of server/proto.MaxCiphertext, with room to spare).
	MaxFrame = 600 << 10
	// MaxBatchBytes is what a batch may weigh: below the link's largest
	// message (1 MiB), whatever the records.
	MaxBatchBytes = 900 << 10
	// MaxBatch is the most records one batch may carry.
	MaxBatch = 512
	// maxShort bounds identifiers, client ids and types.
	maxShort = 128
	// recordVersion is the first byte of an encoded record.
	recordVersion = 1
)

// Hash is a SHA-256 digest.
type Hash [32]byte

// HashOf returns the SHA-256 of b.
func HashOf(b []byte) Hash { return sha256.Sum256(b) }

// Origin is what the sender's administration signs: who sent what to which
// room, under which client id.
type Origin struct {
	Room    string
	Sender  string
	Admin   AdminID // the sender's administration, which signs
	CID     string  // the client's idempotency key ("" for events the home makes)
	TS      int64   // Unix ms at the origin
	Type    string
	Content Hash // the hash of the event's content (ContentHash in server/chat)
}

// Order is what the room's home signs: the event's place in the room's log,
// chained to the previous event (Prev is zero for the first event a chain
// carries).
type Order struct {
	Room      string
	Seq       uint64
	EventHash Hash // SHA-256 of the frame as first committed
	Prev      Hash // EventHash of event Seq-1
}

// Record is one ordered event as it crosses the link.
type Record struct {
	Origin    Origin
	OriginSig []byte
	Order     Order
	OrderSig  []byte
	// Frame is the event exactly as the home first committed it.
	Frame []byte
}

// Envelope errors. Every refusal wraps one of them.
var (
	ErrMalformed = errors.New("fed: malformed envelope")
	ErrSignature = errors.New("fed: bad signature")
	ErrAuthority = errors.New("fed: signer has no authority")
	ErrChain     = errors.New("fed: broken chain")
)

func appendShort(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func (o *Origin) signed() []byte {
	b := make([]byte, 0, 256)
	b = append(b, originPrefix...)
	b = o.append(b)
	return b
}

func (o *Origin) append(b []byte) []byte {
	b = appendShort(b, o.Room)
	b = appendShort(b, o.Sender)
	b = appendShort(b, string(o.Admin))
	b = appendShort(b, o.CID)
	b = binary.BigEndian.AppendUint64(b, uint64(o.TS))
	b = appendShort(b, o.Type)
	return append(b, o.Content[:]...)
}

func (o *Order) signed() []byte {
	b := make([]byte, 0, 128)
	b = append(b, orderPrefix...)
	return o.append(b)
}

func (o *Order) append(b []byte) []byte {
	b = appendShort(b, o.Room)
	b = binary.BigEndian.AppendUint64(b, o.Seq)
	b = append(b, o.EventHash[:]...)
	return append(b, o.Prev[:]...)
}

// SignOrigin signs o with the origin administration's key.
func SignOrigin(key ed25519.PrivateKey, o Origin) []byte { return ed25519.Sign(key, o.signed()) }

// SignOrder signs o with the home administration's key.
func SignOrder(key ed25519.PrivateKey, o Order) []byte { return ed25519.Sign(key, o.signed()) }

// AppendRecord appends the encoding of r to b.
func AppendRecord(b []byte, r *Record) []byte {
	b = append(b, recordVersion)
	b = r.Origin.append(b)
	b = append(b, r.OriginSig...)
	b = r.Order.append(b)
	b = append(b, r.OrderSig...)
	b = binary.AppendUvarint(b, uint64(len(r.Frame)))
	return append(b, r.Frame...)
}

// reader decodes the strict encoding; the first fault sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", ErrMalformed, what)
	}
}

func (r *reader) bytes(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n > len(r.b) {
		r.fail(what + " truncated")
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) uvarint(what string) uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	// A uvarint has one encoding: refuse padded ones, or two byte strings
	// would decode to the same fields.
	if n != len(binary.AppendUvarint(nil, v)) {
		r.fail(what + " not minimal")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) short(what string) string {
	n := r.uvarint(what + " length")
	if n > maxShort {
		r.fail(what + " too long")
		return ""
	}
	return string(r.bytes(int(n), what))
}

func (r *reader) u64(what string) uint64 {
	v := r.bytes(8, what)
	if v == nil {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

func (r *reader) hash(what string) (h Hash) {
	copy(h[:], r.bytes(len(h), what))
	return h
}

func (r *reader) origin() (o Origin) {
	o.Room = r.short("room")
	o.Sender = r.short("sender")
	o.Admin = AdminID(r.short("admin"))
	o.CID = r.short("client id")
	o.TS = int64(r.u64("ts"))
	o.Type = r.short("type")
	o.Content = r.hash("content hash")
	return o
}

func (r *reader) record() Record {
	var rec Record
	if v := r.bytes(1, "version"); v != nil && v[0] != recordVersion {
		r.fail("unknown version")
	}
	rec.Origin = r.origin()
	rec.OriginSig = r.bytes(ed25519.SignatureSize, "origin signature")
	rec.Order.Room = r.short("order room")
	rec.Order.Seq = r.u64("seq")
	rec.Order.EventHash = r.hash("event hash")
	rec.Order.Prev = r.hash("previous hash")
	rec.OrderSig = r.bytes(ed25519.SignatureSize, "order signature")
	n := r.uvarint("frame length")
	if n > MaxFrame {
		r.fail("frame too large")
		return rec
	}
	rec.Frame = r.bytes(int(n), "frame")
	if r.err == nil {
		r.err = rec.wellFormed()
	}
	return rec
}

// wellFormed checks what needs no key: identifiers, agreement of the two
// halves, the frame's hash.
func (rec *Record) wellFormed() error {
	switch {
	case !id.Valid(id.Room, rec.Origin.Room):
		return fmt.Errorf("%w: bad room id", ErrMalformed)
	case !id.Valid(id.User, rec.Origin.Sender):
		return fmt.Errorf("%w: bad sender id", ErrMalformed)
	case !rec.Origin.Admin.Valid():
		return fmt.Errorf("%w: bad administration id", ErrMalformed)
	case rec.Origin.Type == "":
		return fmt.Errorf("%w: no type", ErrMalformed)
	case rec.Order.Room != rec.Origin.Room:
		return fmt.Errorf("%w: order and origin name different rooms", ErrMalformed)
	case rec.Order.Seq == 0:
		return fmt.Errorf("%w: sequence 0", ErrMalformed)
	case HashOf(rec.Frame) != rec.Order.EventHash:
		return fmt.Errorf("%w: frame does not match its hash", ErrMalformed)
	}
	return nil
}

// ParseRecord decodes one record; the result aliases b. It checks the
// form only; Verify checks the signatures.
func ParseRecord(b []byte) (Record, error) {
	r := reader{b: b}
	rec := r.record()
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	return rec, r.err
}

// AppendBatch appends the encoding of a batch of records: a count, then
// each record with its length.
func AppendBatch(b []byte, recs []Record) []byte {
	b = binary.AppendUvarint(b, uint64(len(recs)))
	var one []byte
	for i := range recs {
		one = AppendRecord(one[:0], &recs[i])
		b = binary.AppendUvarint(b, uint64(len(one)))
		b = append(b, one...)
	}
	return b
}

// ParseBatch decodes a batch of at most MaxBatch records.
func ParseBatch(b []byte) ([]Record, error) {
	r := reader{b: b}
	n := r.uvarint("count")
	if n > MaxBatch {
		return nil, fmt.Errorf("%w: %d records in a batch", ErrMalformed, n)
	}
	out := make([]Record, 0, n)
	for i := uint64(0); i < n && r.err == nil; i++ {
		size := r.uvarint("record length")
		if size > MaxFrame+1024 {
			return nil, fmt.Errorf("%w: record too large", ErrMalformed)
		}
		one := r.bytes(int(size), "record")
		if r.err != nil {
			break
		}
		rec, err := ParseRecord(one)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i, err)
		}
		out = append(out, rec)
	}
	if r.err == nil && len(r.b) != 0 {
		r.fail("trailing bytes")
	}
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}

// Directory answers who may sign for what: this administration and its
// pinned peers.
type Directory struct {
	Self  Identity
	Peers Peers
}

// adminOfNode returns the administration one of whose nodes is node, and
// its event key.
func (d Directory) adminOfNode(node string) (AdminID, ed25519.PublicKey, bool) {
	for _, n := range d.Self.Nodes {
		if n == node {
			return d.Self.ID, d.Self.Key.Public().(ed25519.PublicKey), true
		}
	}
	if d.Peers != nil {
		if p, ok := d.Peers.ByNode(node); ok {
			return p.ID, p.EventKey, true
		}
	}
	return "", nil, false
}

// AdminOf returns the administration a user or room id belongs to (the one
// serving its home node), or false when no known administration does.
func (d Directory) AdminOf(userOrRoom string) (AdminID, bool) {
	a, _, ok := d.adminOfNode(id.Home(userOrRoom))
	return a, ok
}

// VerifyOrigin checks the origin half: the sender's home node belongs to
// the administration named as signer, and its pinned key made the
// signature.
func (d Directory) VerifyOrigin(o Origin, sig []byte) error {
	key, err := d.originAuthority(o)
	if err != nil {
		return err
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(key, o.signed(), sig) {
		return fmt.Errorf("%w: origin of %s in %s", ErrSignature, o.Sender, o.Room)
	}
	return nil
}

// originAuthority checks that the sender belongs to the administration
// the origin names, and returns that administration's key.
func (d Directory) originAuthority(o Origin) (ed25519.PublicKey, error) {
	admin, key, ok := d.adminOfNode(id.Home(o.Sender))
	switch {
	case !ok:
		return nil, fmt.Errorf("%w: sender %s belongs to no known administration", ErrAuthority, o.Sender)
	case admin != o.Admin:
		return nil, fmt.Errorf("%w: %s signed for %s, a user of %s", ErrAuthority, o.Admin, o.Sender, admin)
	}
	return key, nil
}

// VerifyOrder checks the order half: it is signed by the administration
// of the room's home node, and chains to prev (the EventHash of the event
// before, which the receiver holds) unless prev is nil (the first event
// the receiver takes from this room).
func (d Directory) VerifyOrder(o Order, sig []byte, prev *Hash) error {
	_, key, ok := d.adminOfNode(id.Home(o.Room))
	if !ok {
		return fmt.Errorf("%w: room %s belongs to no known administration", ErrAuthority, o.Room)
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(key, o.signed(), sig) {
		return fmt.Errorf("%w: order of %s/%d", ErrSignature, o.Room, o.Seq)
	}
	return CheckChain(o, prev)
}

// CheckChain checks that o follows the event whose hash is prev (nil: the
// first event the receiver takes, nothing to follow).
func CheckChain(o Order, prev *Hash) error {
	if prev != nil && !bytes.Equal(prev[:], o.Prev[:]) {
		return fmt.Errorf("%w: %s/%d does not follow the event before it", ErrChain, o.Room, o.Seq)
	}
	return nil
}

// Verify checks both halves of a record (see VerifyOrigin, VerifyOrder).
// The caller still checks what needs the room's state: that the sender
// was a member, and that the frame says what the origin signed.
//
// For an event of one of the home's own users, the origin and the order
// are the same administration's: the order signature, which covers the
// frame the receiver matches against the origin, is the one checked (one
// ed25519 verification instead of two, the cost of a catch-up).
func (d Directory) Verify(rec *Record, prev *Hash) error {
	if err := rec.wellFormed(); err != nil {
		return err
	}
	home, _, _ := d.adminOfNode(id.Home(rec.Order.Room))
	if rec.Origin.Admin == home {
		if _, err := d.originAuthority(rec.Origin); err != nil {
			return err
		}
	} else if err := d.VerifyOrigin(rec.Origin, rec.OriginSig); err != nil {
		return err
	}
	return d.VerifyOrder(rec.Order, rec.OrderSig, prev)
}
