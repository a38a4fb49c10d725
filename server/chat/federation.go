package chat

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	"relais/server/fed"
	"relais/server/id"
	"relais/server/proto"
	"relais/server/store"
)

// Rooms shared across administrations.
//
// A room's home is the administration of the node its id names; the
// home's store is the room's truth and orders its events. A member homed
// elsewhere writes through their own node, which signs the request and
// forwards it to the home (fed.OpRoomSend); the user's ack comes only once
// the home committed. The home pushes each committed record to every
// administration with members in the room (fed.OpRoomEvent); a node
// applies a record if it follows the end of its chain, and otherwise pulls
// (fed.OpRoomSync), as it also does when a link comes up and on a timer.
// A node holds a room only from the moment one of its users was invited
// or joined: the home gives it a signed snapshot of the room's state then,
// and events from there on.

// Federation configures rooms shared with peered administrations.
type Federation struct {
	Transport fed.Transport
	Self      fed.Identity
	// SendTimeout bounds a write forwarded to a room's home (default 5 s).
	SendTimeout time.Duration
	// SyncEvery is the period of the catch-up pull (default 30 s).
	SyncEvery time.Duration
}

// originSkew is how far the signed time of a forwarded request may be from
// the home's clock: an older request is a replay.
const originSkew = 10 * time.Minute

type federation struct {
	Federation
	dir  fed.Directory
	stop chan struct{}

	// senders serialises the forwarded requests of each sender, so that
	// the event being appended for a remote sender is always the one
	// whose origin is in origins.
	senders [64]sync.Mutex

	mu      sync.Mutex
	origins map[string]*signedOrigin // remote sender → request being carried out
	pulling map[string]bool          // rooms being pulled
	seen    map[string]uint64        // replica → highest seq its home has shown (pushes, answers)
}

type signedOrigin struct {
	o   fed.Origin
	sig []byte
	seq uint64 // the event it became
}

// SetFederation turns on rooms shared with the peers of f.Transport. Call
// it once, before serving.
func (s *Service) SetFederation(f Federation) {
	if f.SendTimeout == 0 {
		f.SendTimeout = 5 * time.Second
	}
	if f.SyncEvery == 0 {
		f.SyncEvery = 30 * time.Second
	}
	s.fed = &federation{
		Federation: f, dir: fed.Directory{Self: f.Self, Peers: f.Transport}, stop: make(chan struct{}),
		origins: map[string]*signedOrigin{}, pulling: map[string]bool{}, seen: map[string]uint64{},
	}
	f.Transport.Handle(fed.OpRoomSend, s.handleRoomSend)
	f.Transport.Handle(fed.OpRoomSync, s.handleRoomSync)
	f.Transport.Handle(fed.OpRoomEvent, s.handleRoomEvent)
	f.Transport.Handle(fed.OpRoomEphemeral, s.handleRoomEphemeral)
	f.Transport.Handle(OpResolveUser, s.handleResolveUser)
	f.Transport.Handle(OpForumSearch, s.handleForumSearch)
	f.Transport.Handle(fed.OpKeyClaim, s.handleKeyClaim)
	f.Transport.Handle(fed.OpDeviceKeys, s.handleDeviceKeys)
	f.Transport.Handle(fed.OpKeyRefs, s.handleKeyRefs)
	f.Transport.Handle(fed.OpWelcome, s.handleWelcome)
	f.Transport.Handle(fed.OpGroupInfo, s.handleGroupInfo)
	f.Transport.OnLinkUp(func(a fed.AdminID) { go s.linkUp(a) })
	go s.syncLoop()
}

// StopFederation stops the catch-up timer.
func (s *Service) StopFederation() {
	if s.fed != nil {
		select {
		case <-s.fed.stop:
		default:
			close(s.fed.stop)
		}
	}
}

// remoteUser reports whether userID is homed in a peered administration.
func (s *Service) remoteUser(userID string) bool {
	if s.fed == nil || id.Home(userID) == s.node {
		return false
	}
	a, ok := s.fed.dir.AdminOf(userID)
	return ok && a != s.fed.Self.ID
}

// Remote reports whether roomID is homed in another administration: its
// writes are forwarded there (Forward).
func (s *Service) Remote(roomID string) bool {
	return s.fed != nil && id.Valid(id.Room, roomID) && id.Home(roomID) != s.node
}

// content is what an origin signs the hash of: what the sender asked
// for, without what the home adds (sequence, time, filtered mentions, a
// file's metadata, the role a joiner gets).
type content struct {
	Type      string  `json:"type"`
	Body      string  `json:"body,omitempty"`
	ReplyTo   uint64  `json:"reply_to,omitempty"`
	Target    uint64  `json:"target,omitempty"`
	Key       string  `json:"key,omitempty"`
	Data      string  `json:"data,omitempty"`
	File      string  `json:"file,omitempty"`
	User      string  `json:"user,omitempty"`
	Action    string  `json:"action,omitempty"`
	Role      string  `json:"role,omitempty"`
	Name      *string `json:"name,omitempty"`
	Topic     *string `json:"topic,omitempty"`
	Externals *bool   `json:"externals,omitempty"`
}

func (c content) hash() fed.Hash { return fed.HashOf(proto.Encode(c)) }

// eventContent is the content of a committed event.
func eventContent(ev *proto.Event) content {
	c := content{Type: ev.Type, Body: ev.Body, ReplyTo: ev.ReplyTo, Target: ev.Target, Key: ev.Key, Data: ev.Data,
		User: ev.User, Action: ev.Action, Name: ev.Name, Topic: ev.Topic, Externals: ev.Externals}
	if ev.File != nil {
		c.File = ev.File.ID
	}
	if ev.Action == proto.ActRole {
		c.Role = ev.Role
	}
	return c
}

// frameContent is the content of the event a client frame asks for, the
// same as eventContent of the event the home makes of it.
func frameContent(f *proto.ClientFrame, sender string) (content, error) {
	member := func(user, action string) content {
		return content{Type: proto.EvMember, User: user, Action: action}
	}
	switch f.T {
	case proto.TSend:
		c := content{Type: f.Type}
		switch f.Type {
		case proto.EvText, proto.EvFile:
			c.Body, c.ReplyTo = f.Body, f.ReplyTo
		case proto.EvEdit:
			c.Target, c.Body = f.Target, f.Body
		case proto.EvDelete:
			c.Target = f.Target
		case proto.EvReact, proto.EvUnreact:
			c.Target, c.Key = f.Target, f.Key
		case proto.EvEncrypted:
			c.Data = f.Data
		default:
			return c, proto.Errorf(proto.CodeUnknownType, "unknown event type %q", f.Type)
		}
		if f.File != nil && (f.Type == proto.EvFile || f.Type == proto.EvEncrypted) {
			c.File = f.File.ID
		}
		return c, nil
	case proto.TMLS:
		// The home checks the rest of the frame (GroupInfo, Welcome,
		// removes) as the Delivery Service; the event holds the commit.
		return content{Type: proto.EvMLSCommit, Data: f.Data}, nil
	case proto.TJoin:
		return member(sender, proto.ActJoin), nil
	case proto.TLeave:
		return member(sender, proto.ActLeave), nil
	case proto.TInvite:
		return member(f.User, proto.ActInvite), nil
	case proto.TKick:
		return member(f.User, proto.ActKick), nil
	case proto.TBan:
		return member(f.User, proto.ActBan), nil
	case proto.TUnban:
		return member(f.User, proto.ActUnban), nil
	case proto.TSetRole:
		c := member(f.User, proto.ActRole)
		c.Role = f.Role
		return c, nil
	case proto.TUpdateRoom:
		c := content{Type: proto.EvSettings, Externals: f.Externals}
		if f.Name != nil {
			n := strings.TrimSpace(*f.Name)
			c.Name = &n
		}
		if f.Topic != nil {
			t := strings.TrimSpace(*f.Topic)
			c.Topic = &t
		}
		return c, nil
	}
	return content{}, proto.Errorf(proto.CodeBadRequest, "%s is not carried to a room's home", f.T)
}

// Forwardable reports whether a frame for a room homed elsewhere is
// carried to its home by Forward.
func Forwardable(t string) bool {
	_, err := frameContent(&proto.ClientFrame{T: t, Type: proto.EvText}, "")
	return err == nil
}

// Forward carries a client's frame for a room homed in another
// administration to that home, signed by this one, and returns once the
// home committed it (with the ack of a send). It never acks what the home
// did not confirm: an unreachable home is proto.CodeHomeUnreachable, and a
// retry with the same client id is deduplicated at the home.
func (s *Service) Forward(ctx context.Context, a Actor, f *proto.ClientFrame) (proto.Ack, error) {
	fd := s.fed
	home, ok := fd.dir.AdminOf(f.Room)
	if !ok || home == fd.Self.ID {
		return proto.Ack{}, errNotFound()
	}
	if a.External {
		return proto.Ack{}, proto.Errorf(proto.CodeExternalForbidden, "external correspondents stay in their administration's rooms")
	}
	c, err := frameContent(f, a.User)
	if err != nil {
		return proto.Ack{}, err
	}
	// No local check of membership: the home decides, and a replica may
	// lag behind it (an invitation not pulled yet).
	cid := f.ID
	if cid == "" {
		var b [8]byte
		rand.Read(b[:])
		cid = "f-" + hex.EncodeToString(b[:])
	}
	o := fed.Origin{Room: f.Room, Sender: a.User, Admin: fd.Self.ID, CID: cid, TS: s.nowMS(), Type: c.Type, Content: c.hash()}
	carried := *f
	carried.ID = cid // the home decodes the frame as a client's, which needs one
	frame, err := json.Marshal(&carried)
	if err != nil {
		return proto.Ack{}, fmt.Errorf("chat: encode forwarded frame: %w", err)
	}
	body := fed.AppendSendRequest(nil, &fed.SendRequest{Origin: o, OriginSig: fed.SignOrigin(fd.Self.Key, o), Device: a.Device, Frame: frame})
	rctx, cancel := context.WithTimeout(ctx, fd.SendTimeout)
	defer cancel()
	ans, err := fd.Transport.Request(rctx, home, fed.OpRoomSend, body)
	if err != nil {
		var re *fed.RemoteError
		if errors.As(err, &re) {
			return proto.Ack{}, proto.Errorf(re.Code, "%s", re.Reason)
		}
		s.log.Warn("room home unreachable", "room", f.Room, "home", home, "err", err)
		return proto.Ack{}, proto.Errorf(proto.CodeHomeUnreachable, "the room's home administration does not answer; nothing was sent, retry later")
	}
	b, err := fed.ParseBatchFrame(ans)
	if err != nil {
		s.log.Warn("room home answered a malformed batch", "room", f.Room, "home", home, "err", err)
		return proto.Ack{}, proto.Errorf(proto.CodeInternal, "the room's home answered something this node cannot read")
	}
	ack := proto.Ack{T: proto.TAck, ID: f.ID, Room: f.Room}
	if len(b.Records) > 0 {
		var ev proto.Event
		if err := json.Unmarshal(b.Records[len(b.Records)-1].Frame, &ev); err == nil {
			ack.Seq, ack.TS = ev.Seq, ev.TS
		}
		// The home committed: acking now is true whatever happens here.
		// Applying first lets the sender's devices see the event at once,
		// and the sender's next request find what this one changed.
		err := s.applyBatch(ctx, home, f.Room, b)
		switch {
		case errors.Is(err, errGap), errors.Is(err, errUnknownRoom):
			s.pull(home, f.Room)
		case err != nil:
			s.log.Warn("federation message refused", "peer", home, "op", "room_send", "room", f.Room, "err", err)
		}
	}
	return ack, nil
}

// handleRoomSend carries out, at the room's home, a request forwarded by
// the sender's administration.
func (s *Service) handleRoomSend(ctx context.Context, from fed.AdminID, body []byte) ([]byte, error) {
	fd := s.fed
	q, err := fed.ParseSendRequest(body)
	if err != nil {
		return nil, s.refuse(from, "room_send", proto.CodeBadRequest, err)
	}
	o := q.Origin
	if o.Admin != from {
		return nil, s.refuse(from, "room_send", proto.CodeForbidden, fmt.Errorf("%w: request of %s came over the link of %s", fed.ErrAuthority, o.Admin, from))
	}
	if err := fd.dir.VerifyOrigin(o, q.OriginSig); err != nil {
		return nil, s.refuse(from, "room_send", proto.CodeForbidden, err)
	}
	if id.Home(o.Room) != s.node {
		return nil, &fed.RemoteError{Code: proto.CodeNotFound, Reason: "no such room here"}
	}
	if d := time.Duration(s.nowMS()-o.TS) * time.Millisecond; d > originSkew || d < -originSkew {
		return nil, s.refuse(from, "room_send", proto.CodeForbidden, fmt.Errorf("request signed %v away from now", d))
	}
	f, err := proto.DecodeClient(q.Frame)
	if err != nil {
		return nil, s.refuse(from, "room_send", proto.CodeBadRequest, err)
	}
	c, err := frameContent(f, o.Sender)
	switch {
	case err != nil:
		return nil, s.refuse(from, "room_send", proto.CodeBadRequest, err)
	case f.Room != o.Room || c.Type != o.Type || c.hash() != o.Content || (f.T == proto.TSend || f.T == proto.TMLS) && f.ID != o.CID:
		return nil, s.refuse(from, "room_send", proto.CodeForbidden, errors.New("the frame is not what the origin signed"))
	}
	lock := &fd.senders[shard(o.Sender)]
	lock.Lock()
	defer lock.Unlock()
	so := &signedOrigin{o: o, sig: q.OriginSig}
	fd.mu.Lock()
	fd.origins[o.Sender] = so
	fd.mu.Unlock()
	defer func() {
		fd.mu.Lock()
		delete(fd.origins, o.Sender)
		fd.mu.Unlock()
	}()
	a := Actor{User: o.Sender, Device: q.Device}
	switch f.T {
	case proto.TSend:
		var ack proto.Ack
		if ack, err = s.Send(ctx, a, f); err == nil {
			so.seq = ack.Seq // also for a replayed send
		}
	case proto.TMLS:
		var ack proto.Ack
		if ack, err = s.Commit(ctx, a, f); err == nil {
			so.seq = ack.Seq
		}
	case proto.TJoin:
		err = s.Join(ctx, a, f.Room)
	case proto.TLeave:
		err = s.Leave(ctx, a, f.Room)
	case proto.TInvite:
		err = s.Invite(ctx, a, f.Room, f.User)
	case proto.TKick:
		err = s.Kick(ctx, a, f.Room, f.User)
	case proto.TBan:
		err = s.Ban(ctx, a, f.Room, f.User)
	case proto.TUnban:
		err = s.Unban(ctx, a, f.Room, f.User)
	case proto.TSetRole:
		err = s.SetRole(ctx, a, f.Room, f.User, store.Role(f.Role))
	case proto.TUpdateRoom:
		err = s.UpdateRoom(ctx, a, f.Room, RoomUpdate{Name: f.Name, Topic: f.Topic, Externals: f.Externals})
	}
	if err != nil {
		if pe := proto.AsError(err); pe != nil {
			return nil, &fed.RemoteError{Code: pe.Code, Reason: pe.Message}
		}
		return nil, err
	}
	var b fed.Batch
	if so.seq != 0 {
		if err := s.db.View(func(tx *store.Tx) error {
			raw, err := tx.FedRecord(o.Room, so.seq)
			if err != nil {
				return err
			}
			rec, err := fed.ParseRecord(raw)
			b.Records = []fed.Record{rec}
			return err
		}); err != nil {
			return nil, fmt.Errorf("chat: read committed record: %w", err)
		}
	}
	return fed.AppendBatchFrame(nil, &b), nil
}

func shard(s string) int {
	h := fnv.New32a()
	h.Write([]byte(s))
	return int(h.Sum32() % 64)
}

// refuse logs a refused federation message and returns the refusal for
// the peer.
func (s *Service) refuse(from fed.AdminID, op, code string, err error) error {
	s.log.Warn("federation message refused", "peer", from, "op", op, "code", code, "err", err)
	return &fed.RemoteError{Code: code, Reason: err.Error()}
}
