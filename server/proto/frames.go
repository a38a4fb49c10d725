// Package proto defines the wire protocol between clients and the node:
// the websocket frames, the HTTP JSON bodies they share, their validation,
// the stable error codes, and the envelope events travel in on the bus.
// It does no I/O. PROTOCOL.md next to this file documents every frame.
package proto

import (
	"bytes"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"relais/server/id"
)

// Version is the protocol version served at /api/v1/ws.
const Version = 1

// Limits of what a client may send.
const (
	MaxFrame      = 1 << 20 // a websocket message (MLS commits and welcomes of big groups are large)
	MaxClientID   = 64
	MaxBody       = 16 << 10 // text of a message, in bytes
	MaxName       = 100      // room or display name, in characters
	MaxTopic      = 500
	MaxReactKey   = 32 // bytes: one emoji with modifiers, or a short code
	MaxMentions   = 50
	MaxIDs        = 200 // ids in one users request
	MaxPage       = 100 // events in one history page
	MaxQuery      = 100
	MaxCursors    = 10000
	MaxCiphertext = 512 << 10 // an encrypted event's data, in bytes of base64
)

// Frame types a client sends.
const (
	TSync       = "sync"
	TSend       = "send"
	TCreateRoom = "create_room"
	TOpenDM     = "open_dm"
	TInvite     = "invite"
	TInviteExt  = "invite_external"
	TJoin       = "join"
	TLeave      = "leave"
	TKick       = "kick"
	TBan        = "ban"
	TUnban      = "unban"
	TSetRole    = "set_role"
	TUpdateRoom = "update_room"
	THistory    = "history"
	TMembers    = "members"
	TUsers      = "users"
	TDirectory  = "directory"
	TForums     = "forums"
	TRead       = "read"
	TTyping     = "typing"
	TPresence   = "presence"
	TPing       = "ping"
	TSearch     = "search"
)

// Frame types the node sends.
const (
	THello    = "hello"
	TRoom     = "room"
	TEvent    = "ev"
	TGap      = "gap"
	TSynced   = "synced"
	TAck      = "ack"
	TOK       = "ok"
	TError    = "error"
	TReceipt  = "receipt"
	TUnread   = "unread"
	TPong     = "pong"
	TResult   = "result"
	TTypingEv = "typing"
	TPresEv   = "presence"
)

// Event types, the "type" of an "ev" frame and of a "send".
const (
	EvText      = "text"
	EvEdit      = "edit"
	EvDelete    = "delete"
	EvReact     = "react"
	EvUnreact   = "unreact"
	EvFile      = "file"
	EvEncrypted = "encrypted"
	EvMember    = "member"
	EvSettings  = "settings"
	EvCreate    = "create"
)

// ClientFrame is any frame a client sends; T says which fields matter.
// Unknown fields are refused, so that a typo is an error and not a silent
// no-op.
type ClientFrame struct {
	T  string `json:"t"`
	ID string `json:"id,omitempty"` // client-chosen; echoed in the answer. For "send", the idempotency key.

	Room string `json:"room,omitempty"`
	User string `json:"user,omitempty"`

	// send
	Type     string   `json:"type,omitempty"`
	Body     string   `json:"body,omitempty"`
	ReplyTo  uint64   `json:"reply_to,omitempty"`
	Target   uint64   `json:"target,omitempty"`
	Key      string   `json:"key,omitempty"`
	Mentions []string `json:"mentions,omitempty"`
	File     *File    `json:"file,omitempty"`
	Data     string   `json:"data,omitempty"` // base64: encrypted payloads, MLS messages

	// create_room, update_room
	Kind      string   `json:"kind,omitempty"`
	Name      *string  `json:"name,omitempty"`
	Topic     *string  `json:"topic,omitempty"`
	Externals *bool    `json:"externals,omitempty"`
	Encrypted *bool    `json:"encrypted,omitempty"`
	Users     []string `json:"users,omitempty"`

	// invite_external
	Email string `json:"email,omitempty"`
	// set_role
	Role string `json:"role,omitempty"`

	// sync
	Rooms map[string]uint64 `json:"rooms,omitempty"`
	// history: events before a seq, or after one (after 0: from the start)
	Before uint64  `json:"before,omitempty"`
	After  *uint64 `json:"after,omitempty"`
	Limit  int     `json:"limit,omitempty"`
	// read
	Seq uint64 `json:"seq,omitempty"`
	// typing
	On bool `json:"on,omitempty"`
	// presence
	Status string `json:"status,omitempty"`
	// directory, forums, search
	Q string `json:"q,omitempty"`
	// search: where the previous page ended
	Cursor string `json:"cursor,omitempty"`
	// users
	IDs []string `json:"ids,omitempty"`

	// End-to-end encryption (mls.go). claim_keys and device_keys name
	// their users in Users; mls carries its commit in Data.
	KeyPackages []string `json:"key_packages,omitempty"`
	LastResort  string   `json:"last_resort,omitempty"`
	Suite       uint16   `json:"suite,omitempty"`
	Welcome     string   `json:"welcome,omitempty"`
	GroupInfo   string   `json:"group_info,omitempty"`
	Removes     []string `json:"removes,omitempty"`
}

// File describes an attachment in a "file" event.
type File struct {
	ID     string `json:"id"`
	Name   string `json:"name,omitempty"`
	Size   int64  `json:"size,omitempty"`
	Mime   string `json:"mime,omitempty"`
	Width  int    `json:"w,omitempty"`
	Height int    `json:"h,omitempty"`
	Thumb  bool   `json:"thumb,omitempty"`
	// State is the antivirus state set by the node (see files.go), with
	// Code and Reason when quarantined. Clients do not send them.
	State  string `json:"state,omitempty"`
	Code   string `json:"code,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Checked says, for a clean file, what passed it: CheckedAntivirus
	// or CheckedPolicy.
	Checked string `json:"checked,omitempty"`
	// Key and the rest are set by clients of encrypted rooms, inside the
	// encrypted payload only; the node never sees them in the clear.
}

// DecodeClient decodes and validates one client frame. The error is an
// *Error with code bad_frame, unknown_type, too_large or bad_request, and
// the frame's id when it could be read, so the client can match it.
func DecodeClient(b []byte) (*ClientFrame, error) {
	if len(b) > MaxFrame {
		return nil, Errorf(CodeTooLarge, "frame of %d bytes exceeds %d", len(b), MaxFrame)
	}
	var f ClientFrame
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return &f, Errorf(CodeBadFrame, "frame is not a valid JSON object of this protocol: %v", err)
	}
	if dec.More() {
		return &f, Errorf(CodeBadFrame, "trailing data after the frame")
	}
	return &f, f.validate()
}

func (f *ClientFrame) validate() error {
	if len(f.ID) > MaxClientID || !printable(f.ID) {
		f.ID = ""
		return Errorf(CodeBadFrame, "id must be at most %d printable characters", MaxClientID)
	}
	needID := func() error {
		if f.ID == "" {
			return Errorf(CodeBadRequest, "%s needs an id", f.T)
		}
		return nil
	}
	needRoom := func() error {
		if !id.Valid(id.Room, f.Room) {
			return Errorf(CodeBadRequest, "%s needs a valid room", f.T)
		}
		return nil
	}
	needUser := func() error {
		if !id.Valid(id.User, f.User) {
			return Errorf(CodeBadRequest, "%s needs a valid user", f.T)
		}
		return nil
	}
	switch f.T {
	case TSync:
		if len(f.Rooms) > MaxCursors {
			return Errorf(CodeTooLarge, "too many cursors")
		}
		for r := range f.Rooms {
			if !id.Valid(id.Room, r) {
				return Errorf(CodeBadRequest, "invalid room in cursors")
			}
		}
		return nil
	case TSend:
		return first(needID, needRoom, f.validateSend)
	case TCreateRoom:
		if err := needID(); err != nil {
			return err
		}
		if f.Kind != "group" && f.Kind != "forum" {
			return Errorf(CodeBadRequest, "kind must be group or forum")
		}
		if f.Name == nil || strings.TrimSpace(*f.Name) == "" {
			return Errorf(CodeBadRequest, "a room needs a name")
		}
		if len(f.Users) > MaxIDs {
			return Errorf(CodeTooLarge, "too many users")
		}
		for _, u := range f.Users {
			if !id.Valid(id.User, u) {
				return Errorf(CodeBadRequest, "invalid user %q", u)
			}
		}
		return f.validateSettings()
	case TUpdateRoom:
		if err := first(needID, needRoom); err != nil {
			return err
		}
		if f.Name == nil && f.Topic == nil && f.Externals == nil {
			return Errorf(CodeBadRequest, "nothing to update")
		}
		if f.Name != nil && strings.TrimSpace(*f.Name) == "" {
			return Errorf(CodeBadRequest, "a room needs a name")
		}
		return f.validateSettings()
	case TOpenDM:
		return first(needID, needUser)
	case TInvite, TKick, TBan, TUnban:
		return first(needID, needRoom, needUser)
	case TInviteExt:
		if err := first(needID, needRoom); err != nil {
			return err
		}
		if f.Email == "" || len(f.Email) > 320 {
			return Errorf(CodeBadRequest, "invite_external needs an email")
		}
		return nil
	case TSetRole:
		if err := first(needID, needRoom, needUser); err != nil {
			return err
		}
		switch f.Role {
		case "owner", "moderator", "member":
			return nil
		}
		return Errorf(CodeBadRequest, "role must be owner, moderator or member")
	case TJoin, TLeave, TMembers:
		return first(needID, needRoom)
	case THistory:
		if err := first(needID, needRoom); err != nil {
			return err
		}
		if f.Before != 0 && f.After != nil {
			return Errorf(CodeBadRequest, "give before or after, not both")
		}
		if f.Limit < 0 || f.Limit > MaxPage {
			return Errorf(CodeBadRequest, "limit must be between 1 and %d", MaxPage)
		}
		return nil
	case TUsers:
		if err := needID(); err != nil {
			return err
		}
		if len(f.IDs) == 0 || len(f.IDs) > MaxIDs {
			return Errorf(CodeBadRequest, "users needs 1 to %d ids", MaxIDs)
		}
		for _, u := range f.IDs {
			if !id.Valid(id.User, u) {
				return Errorf(CodeBadRequest, "invalid user %q", u)
			}
		}
		return nil
	case TDirectory, TForums:
		if err := needID(); err != nil {
			return err
		}
		if utf8.RuneCountInString(f.Q) > MaxQuery {
			return Errorf(CodeTooLarge, "query too long")
		}
		return nil
	case TSearch:
		return f.validateSearch()
	case TRead:
		if err := needRoom(); err != nil {
			return err
		}
		if f.Seq == 0 {
			return Errorf(CodeBadRequest, "read needs a seq")
		}
		return nil
	case TTyping:
		return needRoom()
	case TPresence:
		if f.Status != "online" && f.Status != "away" {
			return Errorf(CodeBadRequest, "status must be online or away")
		}
		return nil
	case TPing:
		return nil
	case TKeyPackages, TClaimKeys, TDeviceKeys, TMLS, TGroupInfo, TWelcomeAck:
		return f.validateMLS()
	case TCall, TTurn:
		return f.validateCall()
	case "":
		return Errorf(CodeBadFrame, "frame has no type")
	}
	return Errorf(CodeUnknownType, "unknown frame type %q", f.T)
}

func (f *ClientFrame) validateSend() error {
	if f.ReplyTo != 0 && f.Type != EvText && f.Type != EvFile {
		return Errorf(CodeBadRequest, "reply_to goes with text or file")
	}
	switch f.Type {
	case EvText:
		if err := checkBody(f.Body, true); err != nil {
			return err
		}
		if len(f.Mentions) > MaxMentions {
			return Errorf(CodeTooLarge, "too many mentions")
		}
		for _, u := range f.Mentions {
			if !id.Valid(id.User, u) {
				return Errorf(CodeBadRequest, "invalid mention %q", u)
			}
		}
		return nil
	case EvEdit:
		if f.Target == 0 {
			return Errorf(CodeBadRequest, "edit needs a target")
		}
		return checkBody(f.Body, true)
	case EvDelete:
		if f.Target == 0 {
			return Errorf(CodeBadRequest, "delete needs a target")
		}
		return nil
	case EvReact, EvUnreact:
		if f.Target == 0 {
			return Errorf(CodeBadRequest, "%s needs a target", f.Type)
		}
		if f.Key == "" || len(f.Key) > MaxReactKey || !printable(f.Key) {
			return Errorf(CodeBadRequest, "reaction key must be 1 to %d bytes", MaxReactKey)
		}
		return nil
	case EvFile:
		if f.File == nil || f.File.ID == "" || len(f.File.ID) > 64 || !printable(f.File.ID) {
			return Errorf(CodeBadRequest, "file needs a file id")
		}
		return checkBody(f.Body, false)
	case EvEncrypted:
		if f.Data == "" {
			return Errorf(CodeBadRequest, "encrypted needs data")
		}
		if f.File != nil && (f.File.ID == "" || len(f.File.ID) > 64 || !printable(f.File.ID)) {
			return Errorf(CodeBadRequest, "file needs a file id")
		}
		if len(f.Data) > MaxCiphertext {
			return Errorf(CodeTooLarge, "encrypted data over %d bytes", MaxCiphertext)
		}
		return nil
	case "":
		return Errorf(CodeBadRequest, "send needs a type")
	}
	return Errorf(CodeUnknownType, "unknown event type %q", f.Type)
}

func (f *ClientFrame) validateSettings() error {
	if f.Name != nil {
		if utf8.RuneCountInString(*f.Name) > MaxName {
			return Errorf(CodeBadRequest, "name must be at most %d characters", MaxName)
		}
		if fault := TextFault(*f.Name); fault != "" {
			e := Errorf(CodeNameInvalid, "a room's name cannot hold control, invisible or direction-changing characters")
			e.Detail = fault
			return e
		}
	}
	if f.Topic != nil && (utf8.RuneCountInString(*f.Topic) > MaxTopic || !utf8.ValidString(*f.Topic)) {
		return Errorf(CodeBadRequest, "topic must be at most %d characters", MaxTopic)
	}
	return nil
}

func checkBody(s string, required bool) error {
	if required && strings.TrimSpace(s) == "" {
		return Errorf(CodeBadRequest, "body is empty")
	}
	if len(s) > MaxBody {
		return Errorf(CodeTooLarge, "body over %d bytes", MaxBody)
	}
	if !utf8.ValidString(s) || strings.ContainsRune(s, 0) {
		return Errorf(CodeBadRequest, "body is not valid text")
	}
	return nil
}

// printable reports whether s is valid UTF-8 without control characters.
func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

func first(checks ...func() error) error {
	for _, c := range checks {
		if err := c(); err != nil {
			return err
		}
	}
	return nil
}
