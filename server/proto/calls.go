package proto

import "relais/server/id"

// Calls (PROTOCOL.md, "Calls"): the signalling of audio and video calls
// travels as MLS application messages of the room's group, relayed by the
// node without being stored; TURN credentials are handed out per room.

// Frame types of calls, client and node alike.
const (
	// TCall carries one signalling message (ring, offer, answer, ICE
	// candidates, hang-up…) of a call, encrypted to the room's group.
	TCall = "call"
	// TTurn asks for credentials of the node's TURN relay for a call in
	// a room.
	TTurn = "turn"
)

// MaxSignal bounds a call frame's data, in bytes of base64: an SDP with
// its candidates is a few KiB, MLS adds little.
const MaxSignal = 64 << 10

// CallSignal is a signalling message relayed to the room's connected
// members. From and Dev are the sending device as the node knows it;
// clients check them against the MLS sender inside Data.
type CallSignal struct {
	T    string `json:"t"`
	Room string `json:"room"`
	From string `json:"from"`
	Dev  string `json:"dev"`
	Data string `json:"data"`
}

// TURNCredentials answer a turn request: time-limited long-term
// credentials (RFC 8489) in the TURN REST scheme, username
// "<expiry unix seconds>:<user id>" and credential the base64 of the
// HMAC-SHA1 of the username under the node's TURN secret.
type TURNCredentials struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username"`
	Credential string   `json:"credential"`
	// TTL is the credentials' lifetime in seconds from now.
	TTL int `json:"ttl"`
}

// validateCall checks the shape of call and turn frames; the MLS framing
// of a call's data is checked by the chat service, like an encrypted
// event's.
func (f *ClientFrame) validateCall() error {
	if !id.Valid(id.Room, f.Room) {
		return Errorf(CodeBadRequest, "%s needs a valid room", f.T)
	}
	switch f.T {
	case TCall:
		if f.Data == "" {
			return Errorf(CodeBadRequest, "call needs data")
		}
		if len(f.Data) > MaxSignal {
			return Errorf(CodeTooLarge, "call data over %d bytes", MaxSignal)
		}
	case TTurn:
		if f.ID == "" {
			return Errorf(CodeBadRequest, "turn needs an id")
		}
	}
	return nil
}
