package proto

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strconv"
)

// Event is an "ev" frame: one entry of a room's log, as stored and as sent.
type Event struct {
	T    string `json:"t"` // always "ev"
	Room string `json:"room"`
	Seq  uint64 `json:"seq"`
	TS   int64  `json:"ts"` // Unix milliseconds, set by the room's home node
	From string `json:"from"`
	Dev  string `json:"dev,omitempty"`
	CID  string `json:"cid,omitempty"` // the sender's idempotency key, so its devices can match their outbox
	Type string `json:"type"`

	Body     string   `json:"body,omitempty"`
	ReplyTo  uint64   `json:"reply_to,omitempty"`
	Target   uint64   `json:"target,omitempty"`
	Key      string   `json:"key,omitempty"`
	Mentions []string `json:"mentions,omitempty"`
	File     *File    `json:"file,omitempty"`
	Data     string   `json:"data,omitempty"`

	// Deleted marks a tombstone: the content above has been dropped.
	Deleted bool `json:"deleted,omitempty"`
	// Edited is when the last edit of this message happened (Unix ms); the
	// edit events themselves stay in the log.
	Edited int64 `json:"edited,omitempty"`
	// Reactions are the current reactions to this message: key → users.
	Reactions map[string][]string `json:"reactions,omitempty"`

	// member
	User   string `json:"user,omitempty"`
	Action string `json:"action,omitempty"` // invite, join, leave, kick, ban, unban, role
	Role   string `json:"role,omitempty"`

	// create and settings
	Kind      string  `json:"kind,omitempty"`
	Name      *string `json:"name,omitempty"`
	Topic     *string `json:"topic,omitempty"`
	Externals *bool   `json:"externals,omitempty"`
	Encrypted *bool   `json:"encrypted,omitempty"`

	// mls_commit: the epoch the commit (in Data) was made in.
	Epoch *uint64 `json:"epoch,omitempty"`
}

// Membership actions, the "action" of a member event.
const (
	ActInvite = "invite"
	ActJoin   = "join"
	ActLeave  = "leave"
	ActKick   = "kick"
	ActBan    = "ban"
	ActUnban  = "unban"
	ActRole   = "role"
)

// Hello is the first frame of a connection.
type Hello struct {
	T      string  `json:"t"`
	V      int     `json:"v"`
	Node   string  `json:"node"`
	User   Profile `json:"user"`
	Device string  `json:"device"`
}

// Profile is how a person appears to others: never an e-mail address.
type Profile struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Org  string `json:"org,omitempty"`
	// Tag tells apart people of one administration with the same name:
	// four characters derived from the user id alone, so it reveals
	// nothing the id does not (no address, no part of one).
	Tag      string `json:"tag"`
	External bool   `json:"ext,omitempty"`
	Active   bool   `json:"active"`
	// Admin and AdminID name the administration of a person homed in
	// another, peered administration (as pinned at peering); empty for
	// people of this one.
	Admin   string `json:"admin,omitempty"`
	AdminID string `json:"admin_id,omitempty"`
}

// Member is one person in a room's member list.
type Member struct {
	User string `json:"user"`
	Role string `json:"role"`
	// State is joined, invited, left or banned.
	State string `json:"state"`
}

// Room is a "room" frame: a room as one user sees it.
type Room struct {
	T         string   `json:"t"`
	ID        string   `json:"id"`
	Kind      string   `json:"kind"`
	Name      string   `json:"name,omitempty"`
	Topic     string   `json:"topic,omitempty"`
	Externals bool     `json:"externals,omitempty"`
	Encrypted bool     `json:"encrypted,omitempty"`
	Members   []Member `json:"members,omitempty"`
	Count     int      `json:"count"` // joined members
	LastSeq   uint64   `json:"last_seq"`
	LastTS    int64    `json:"last_ts,omitempty"`
	Role      string   `json:"role"`
	State     string   `json:"state"` // the user's own membership state
	InvitedBy string   `json:"invited_by,omitempty"`
	ReadSeq   uint64   `json:"read_seq"`
	Unread    int      `json:"unread"`
	Mentions  int      `json:"mentions"`
	// Epoch is the MLS epoch of a joined encrypted room.
	Epoch *uint64 `json:"epoch,omitempty"`
}

// Gap tells a client that events First..Last of a room were not sent: it
// pages them in with "history" if it wants them.
type Gap struct {
	T     string `json:"t"`
	Room  string `json:"room"`
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
}

// Ack answers a "send" once the event is durably committed.
type Ack struct {
	T    string `json:"t"`
	ID   string `json:"id"`
	Room string `json:"room"`
	Seq  uint64 `json:"seq"`
	TS   int64  `json:"ts"`
}

// Receipt says how far a member has read a room.
type Receipt struct {
	T    string `json:"t"`
	Room string `json:"room"`
	User string `json:"user"`
	Seq  uint64 `json:"seq"`
}

// Unread carries a room's unread counters for the user, computed by the
// node from the read marker so that every device agrees.
type Unread struct {
	T        string `json:"t"`
	Room     string `json:"room"`
	ReadSeq  uint64 `json:"read_seq"`
	Unread   int    `json:"unread"`
	Mentions int    `json:"mentions"`
}

// Typing says a member started or stopped typing.
type Typing struct {
	T    string `json:"t"`
	Room string `json:"room"`
	User string `json:"user"`
	On   bool   `json:"on"`
}

// Presence says whether a user is online, away or offline.
type Presence struct {
	T      string `json:"t"`
	User   string `json:"user"`
	Status string `json:"status"`
}

// ErrorFrame reports a refused request.
type ErrorFrame struct {
	T          string `json:"t"`
	ID         string `json:"id,omitempty"`
	Code       string `json:"code"`
	Detail     string `json:"detail,omitempty"`
	Message    string `json:"message"`
	RetryAfter int    `json:"retry_after,omitempty"`
	// Epoch and Devices: see Error.
	Epoch   *uint64  `json:"epoch,omitempty"`
	Devices []string `json:"devices,omitempty"`
}

// Result answers a request that returns data; Data's shape depends on the
// request (see PROTOCOL.md).
type Result struct {
	T    string `json:"t"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

// Encode marshals a server frame. Server frames are built from our own
// types, so failure is a programming error.
func Encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("proto: encode: " + err.Error())
	}
	return b
}

// ErrorFrameOf builds the error frame for err, answering request id.
func ErrorFrameOf(id string, err error) []byte {
	e := AsError(err)
	if e == nil {
		e = &Error{Code: CodeInternal, Message: "internal error"}
	}
	return Encode(ErrorFrame{T: TError, ID: id, Code: e.Code, Detail: e.Detail, Message: e.Message, RetryAfter: e.RetryAfter,
		Epoch: e.Epoch, Devices: e.Devices})
}

// History builds a "result" frame whose data is {"room":…,"events":[…]}
// from stored event frames, without decoding them.
func History(reqID, room string, frames [][]byte, gapBefore bool) []byte {
	n := 64 + len(reqID) + len(room)
	for _, f := range frames {
		n += len(f) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, `{"t":"result","id":`...)
	b = strconv.AppendQuote(b, reqID)
	b = append(b, `,"data":{"room":`...)
	b = strconv.AppendQuote(b, room)
	b = append(b, `,"more":`...)
	b = strconv.AppendBool(b, gapBefore)
	b = append(b, `,"events":[`...)
	for i, f := range frames {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, f...)
	}
	return append(b, "]}}"...)
}

// Envelope kinds on the bus.
const (
	EnvEvent     byte = 'e' // a room event (subject relais.ev.<room>)
	EnvEphemeral byte = 'p' // typing, receipts (subject relais.eph.<room>)
	EnvUser      byte = 'u' // a frame for one user's devices (subject relais.user.<user>)
	EnvRevoke    byte = 'x' // close a device's connections (subject relais.user.<user>)
)

// Member changes carried by event envelopes, so fan-out follows membership
// without decoding the event.
const (
	MemberNone   byte = 0
	MemberAdd    byte = 1 // the user can now read the room
	MemberRemove byte = 2 // the user can no longer read the room
)

// Envelope is what travels on the bus: a frame, encoded once, with what the
// fan-out needs to route it.
type Envelope struct {
	Kind     byte
	Seq      uint64 // EnvEvent
	MemberOp byte   // EnvEvent
	Member   string // EnvEvent with a MemberOp; EnvRevoke: the device
	Frame    []byte
}

// ErrEnvelope is returned for a malformed envelope.
var ErrEnvelope = errors.New("proto: malformed envelope")

// AppendEnvelope appends the encoding of e to dst:
// kind (1) | seq (8) | member op (1) | member length (1) | member | frame.
func AppendEnvelope(dst []byte, e Envelope) []byte {
	dst = append(dst, e.Kind)
	dst = binary.BigEndian.AppendUint64(dst, e.Seq)
	dst = append(dst, e.MemberOp, byte(len(e.Member)))
	dst = append(dst, e.Member...)
	return append(dst, e.Frame...)
}

// ParseEnvelope decodes an envelope; Frame and Member alias b.
func ParseEnvelope(b []byte) (Envelope, error) {
	if len(b) < 11 {
		return Envelope{}, ErrEnvelope
	}
	e := Envelope{Kind: b[0], Seq: binary.BigEndian.Uint64(b[1:9]), MemberOp: b[9]}
	n := int(b[10])
	if len(b) < 11+n {
		return Envelope{}, ErrEnvelope
	}
	e.Member = string(b[11 : 11+n])
	e.Frame = b[11+n:]
	return e, nil
}

// Bus subjects. Identifiers are valid subject tokens (see package id).
const (
	SubjectAll = "relais.>"
	prefixEv   = "relais.ev."
	prefixEph  = "relais.eph."
	prefixUser = "relais.user."
)

// SubjectEvents is the subject of a room's committed events.
func SubjectEvents(room string) string { return prefixEv + room }

// SubjectEphemeral is the subject of a room's typing and receipts.
func SubjectEphemeral(room string) string { return prefixEph + room }

// SubjectUser is the subject of frames for all devices of one user.
func SubjectUser(user string) string { return prefixUser + user }

// SubjectTarget returns the room or user id at the end of a subject.
func SubjectTarget(subject string) string {
	for _, p := range [...]string{prefixEv, prefixEph, prefixUser} {
		if len(subject) > len(p) && subject[:len(p)] == p {
			return subject[len(p):]
		}
	}
	return ""
}

// UserTag is the Tag of a user's profile: the first 20 bits of the
// SHA-256 of the id, in Crockford's base 32 (no I, L, O, U to misread).
// Ids are random, so two namesakes share a tag once in a million.
func UserTag(userID string) string {
	const digits = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	h := sha256.Sum256([]byte(userID))
	v := uint32(h[0])<<12 | uint32(h[1])<<4 | uint32(h[2])>>4
	var b [4]byte
	for i := 3; i >= 0; i-- {
		b[i] = digits[v&31]
		v >>= 5
	}
	return string(b[:])
}
