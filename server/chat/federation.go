package chat

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"relais/server/fed"
	"relais/server/id"
	"relais/server/mailaddr"
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
	case f.Room != o.Room || c.Type != o.Type || c.hash() != o.Content || f.T == proto.TSend && f.ID != o.CID:
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

// ordered runs inside the writer's transaction for each event appended at
// the home: for a room shared with other administrations, it signs the
// event's place in the chain, keeps the record for catch-up and pushes it
// once committed to every administration with members in the room.
func (s *Service) ordered(tx *store.Tx, ev *proto.Event, se store.Event) error {
	fd := s.fed
	if fd == nil || id.Home(ev.Room) != s.node {
		return nil
	}
	head, shared := tx.FedHead(ev.Room)
	// The administration of a member this event adds or removes: it
	// gains a right to the room from here (with a snapshot of the state
	// before), or loses it after here.
	var newPeer, lostPeer fed.AdminID
	var right store.FedRoomPeer
	if ev.Type == proto.EvMember && s.remoteUser(ev.User) {
		a, _ := fd.dir.AdminOf(ev.User)
		var has bool
		var err error
		if right, has, err = tx.FedRoomPeer(ev.Room, string(a)); err != nil {
			return err
		}
		switch memberOpOf(ev.Action) {
		case proto.MemberRemove:
			if has && right.Until == 0 {
				if others, err := s.othersOf(tx, ev.Room, a, ev.User); err != nil {
					return err
				} else if !others {
					lostPeer = a
				}
			}
		default:
			if !has || right.Until != 0 {
				newPeer = a
			}
		}
	}
	if !shared && newPeer == "" {
		return nil
	}
	if lostPeer != "" {
		right.Until = se.Seq
		if err := tx.PutFedRoomPeer(ev.Room, string(lostPeer), right); err != nil {
			return err
		}
	}
	rec := fed.Record{Frame: se.Frame}
	fd.mu.Lock()
	so := fd.origins[ev.From]
	fd.mu.Unlock()
	c := eventContent(ev)
	switch {
	case so != nil:
		if so.o.Type != ev.Type || so.o.Content != c.hash() || so.o.Room != ev.Room {
			return proto.Errorf(proto.CodeForbidden, "this request would make an event its administration did not sign")
		}
		rec.Origin, rec.OriginSig = so.o, so.sig
		so.seq = se.Seq
	case s.remoteUser(ev.From):
		return proto.Errorf(proto.CodeInternal, "an event of a remote user without their administration's signature")
	default:
		rec.Origin = fed.Origin{Room: ev.Room, Sender: ev.From, Admin: fd.Self.ID, CID: ev.CID, TS: ev.TS, Type: ev.Type, Content: c.hash()}
		rec.OriginSig = fed.SignOrigin(fd.Self.Key, rec.Origin)
	}
	rec.Order = fed.Order{Room: ev.Room, Seq: se.Seq, EventHash: fed.HashOf(se.Frame)}
	if shared {
		rec.Order.Prev = head.Hash
	}
	rec.OrderSig = fed.SignOrder(fd.Self.Key, rec.Order)
	if err := tx.PutFedRecord(ev.Room, se.Seq, rec.Order.EventHash, fed.AppendRecord(nil, &rec)); err != nil {
		return err
	}
	var snap *fed.Snapshot
	if newPeer != "" {
		var err error
		if snap, err = s.snapshot(tx, ev.Room, se.Seq-1); err != nil {
			return err
		}
		if err := tx.PutFedRoomPeer(ev.Room, string(newPeer), store.FedRoomPeer{Since: se.Seq, Snapshot: fed.AppendBatchFrame(nil, &fed.Batch{Snapshot: snap})}); err != nil {
			return err
		}
	}
	peers, err := s.peersIn(tx, ev.Room)
	if err != nil {
		return err
	}
	if ev.Type == proto.EvMember && s.remoteUser(ev.User) {
		// One who loses access still sees the event that removes them.
		a, _ := fd.dir.AdminOf(ev.User)
		peers[a] = true
	}
	one := fed.AppendBatchFrame(nil, &fed.Batch{Records: []fed.Record{rec}})
	var first []byte
	if snap != nil {
		first = fed.AppendBatchFrame(nil, &fed.Batch{Snapshot: snap, Records: []fed.Record{rec}})
	}
	tx.OnCommit(func() {
		for p := range peers {
			body := one
			if p == newPeer {
				body = first
			}
			if err := fd.Transport.Push(p, fed.OpRoomEvent, body); err != nil {
				// Best effort: the peer pulls on its timer and on link-up.
				s.log.Debug("push to peer failed", "peer", p, "room", ev.Room, "err", err)
			}
		}
	})
	return nil
}

// peersIn returns the administrations other than this one with members
// (joined or invited) in a room.
func (s *Service) peersIn(tx *store.Tx, roomID string) (map[fed.AdminID]bool, error) {
	members, err := tx.Members(roomID)
	if err != nil {
		return nil, err
	}
	out := map[fed.AdminID]bool{}
	for _, m := range members {
		if (m.State == store.Joined || m.State == store.Invited) && s.remoteUser(m.UserID) {
			a, _ := s.fed.dir.AdminOf(m.UserID)
			out[a] = true
		}
	}
	return out, nil
}

// othersOf reports whether administration a has members (joined or
// invited) in a room other than user.
func (s *Service) othersOf(tx *store.Tx, roomID string, a fed.AdminID, user string) (bool, error) {
	members, err := tx.Members(roomID)
	if err != nil {
		return false, err
	}
	for _, m := range members {
		if m.UserID != user && (m.State == store.Joined || m.State == store.Invited) {
			if ma, _ := s.fed.dir.AdminOf(m.UserID); ma == a {
				return true, nil
			}
		}
	}
	return false, nil
}

// roomState is the JSON of a snapshot's state.
type roomState struct {
	Room    store.Room          `json:"room"`
	Members []store.MemberEntry `json:"members"`
}

func (s *Service) snapshot(tx *store.Tx, roomID string, seq uint64) (*fed.Snapshot, error) {
	r, err := tx.Room(roomID)
	if err != nil {
		return nil, err
	}
	members, err := tx.Members(roomID)
	if err != nil {
		return nil, err
	}
	state, err := json.Marshal(roomState{Room: r, Members: members})
	if err != nil {
		return nil, err
	}
	snap := &fed.Snapshot{Room: roomID, Seq: seq, State: state}
	fed.SignSnapshot(s.fed.Self.Key, snap)
	return snap, nil
}

// handleRoomSync answers, at the home, a peer's pull: only for rooms that
// peer has a right to, and only from the event its first user came in at.
func (s *Service) handleRoomSync(_ context.Context, from fed.AdminID, body []byte) ([]byte, error) {
	q, err := fed.ParseSyncRequest(body)
	if err != nil {
		return nil, s.refuse(from, "room_sync", proto.CodeBadRequest, err)
	}
	var b fed.Batch
	err = s.db.View(func(tx *store.Tx) error {
		p, ok, err := tx.FedRoomPeer(q.Room, string(from))
		if err != nil {
			return err
		}
		if !ok || id.Home(q.Room) != s.node {
			return &fed.RemoteError{Code: proto.CodeNotFound, Reason: "no such room for you"}
		}
		after := q.After
		if p.Until != 0 && after >= p.Until {
			return nil // none of its users is in the room any more
		}
		if after+1 < p.Since {
			first, err := fed.ParseBatchFrame(p.Snapshot)
			if err != nil {
				return fmt.Errorf("chat: stored snapshot of %s: %w", q.Room, err)
			}
			b.Snapshot, after = first.Snapshot, p.Since-1
		}
		size := 0
		if b.Snapshot != nil {
			size = len(b.Snapshot.State)
		}
		return tx.FedRecords(q.Room, after, func(_ uint64, raw []byte) bool {
			if size += len(raw) + 8; len(b.Records) > 0 && size > fed.MaxBatchBytes {
				return false // the rest in the next pull
			}
			rec, perr := fed.ParseRecord(raw)
			if perr != nil {
				err = perr
				return false
			}
			b.Records = append(b.Records, rec)
			return len(b.Records) < q.Max && (p.Until == 0 || rec.Order.Seq < p.Until)
		})
	})
	if err != nil {
		var re *fed.RemoteError
		if errors.As(err, &re) {
			return nil, re
		}
		return nil, err
	}
	return fed.AppendBatchFrame(nil, &b), nil
}

// handleRoomEvent takes records the home pushes.
func (s *Service) handleRoomEvent(ctx context.Context, from fed.AdminID, body []byte) ([]byte, error) {
	b, err := fed.ParseBatchFrame(body)
	if err != nil {
		return nil, s.refuse(from, "room_event", proto.CodeBadRequest, err)
	}
	if err := s.apply(ctx, from, b); err != nil {
		return nil, err
	}
	return nil, nil
}

// errGap says a batch does not follow the end of the chain: pull.
var errGap = errors.New("chat: records after a gap")

// errUnknownRoom says records came for a room this node holds no
// replica of, without the snapshot to start one: pull from the start.
var errUnknownRoom = errors.New("chat: records of a room not held here")

// apply verifies a batch from a room's home and stores it; a gap or an
// unknown room starts a pull instead. Anything that fails a check is
// refused, logged, and nothing of the batch is stored.
func (s *Service) apply(ctx context.Context, from fed.AdminID, b fed.Batch) error {
	room := ""
	if b.Snapshot != nil {
		room = b.Snapshot.Room
	} else if len(b.Records) > 0 {
		room = b.Records[0].Order.Room
	} else {
		return nil
	}
	if n := len(b.Records); n > 0 {
		s.fed.mu.Lock()
		s.fed.seen[room] = max(s.fed.seen[room], b.Records[n-1].Order.Seq)
		s.fed.mu.Unlock()
	}
	err := s.applyBatch(ctx, from, room, b)
	switch {
	case errors.Is(err, errGap), errors.Is(err, errUnknownRoom):
		go s.pull(from, room)
		return nil
	case err != nil:
		return s.refuse(from, "room_event", proto.CodeForbidden, err)
	}
	return nil
}

func (s *Service) applyBatch(ctx context.Context, from fed.AdminID, room string, b fed.Batch) error {
	fd := s.fed
	if home, ok := fd.dir.AdminOf(room); !ok || home != from || id.Home(room) == s.node {
		return fmt.Errorf("%w: %s sent events of %s, which it is not the home of", fed.ErrAuthority, from, room)
	}
	// The signatures, the costly part, are checked on every core before
	// the write; the chain, which depends on what is stored, inside it.
	signed := make([]error, len(b.Records))
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), len(b.Records))
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(b.Records); i += workers {
				signed[i] = fd.dir.Verify(&b.Records[i], nil)
			}
		}()
	}
	wg.Wait()
	return s.update(ctx, func(tx *store.Tx) error {
		head, held := tx.FedHead(room)
		chained := held
		if b.Snapshot != nil && (!held || b.Snapshot.Seq > head.Seq) {
			if err := fd.dir.VerifySnapshot(b.Snapshot); err != nil {
				return err
			}
			if err := s.applySnapshot(tx, b.Snapshot); err != nil {
				return err
			}
			head, held, chained = store.FedHead{Seq: b.Snapshot.Seq}, true, false
		}
		if !held {
			return errUnknownRoom
		}
		for i := range b.Records {
			rec := &b.Records[i]
			seq := rec.Order.Seq
			if seq <= head.Seq {
				if err := s.same(tx, rec); err != nil {
					return err
				}
				continue
			}
			if seq != head.Seq+1 {
				return errGap
			}
			var prev *fed.Hash
			if chained {
				prev = (*fed.Hash)(&head.Hash)
			}
			if signed[i] != nil {
				return signed[i]
			}
			if err := fed.CheckChain(rec.Order, prev); err != nil {
				return err
			}
			if err := s.applyRecord(tx, rec); err != nil {
				return err
			}
			head, chained = store.FedHead{Seq: seq, Hash: rec.Order.EventHash}, true
		}
		return nil
	})
}

// same checks that a record this node already holds is the one it
// received before: a home that rewrites a past sequence is refused.
func (s *Service) same(tx *store.Tx, rec *fed.Record) error {
	raw, err := tx.FedRecord(rec.Order.Room, rec.Order.Seq)
	if errors.Is(err, store.ErrNotFound) {
		return nil // before this node's first event of the room
	}
	if err != nil {
		return err
	}
	held, err := fed.ParseRecord(raw)
	if err != nil {
		return err
	}
	if held.Order.EventHash != rec.Order.EventHash {
		return fmt.Errorf("%w: the home rewrote event %d of %s", fed.ErrChain, rec.Order.Seq, rec.Order.Room)
	}
	return nil
}

func (s *Service) applySnapshot(tx *store.Tx, snap *fed.Snapshot) error {
	var st roomState
	if err := json.Unmarshal(snap.State, &st); err != nil {
		return fmt.Errorf("%w: snapshot state: %v", fed.ErrMalformed, err)
	}
	if st.Room.ID != snap.Room {
		return fmt.Errorf("%w: snapshot of another room", fed.ErrMalformed)
	}
	if _, err := tx.Room(snap.Room); errors.Is(err, store.ErrNotFound) {
		if err := tx.CreateRoom(st.Room); err != nil {
			return err
		}
	} else if err != nil {
		return err
	} else if err := tx.PutRoom(st.Room); err != nil {
		return err
	}
	for _, m := range st.Members {
		if !id.Valid(id.User, m.UserID) {
			return fmt.Errorf("%w: snapshot member %q", fed.ErrMalformed, m.UserID)
		}
		if err := tx.PutMember(snap.Room, m.UserID, m.Membership); err != nil {
			return err
		}
	}
	return indexDM(tx, st.Room)
}

// indexDM records a replica of a direct room as the two people's direct
// room once both are in it, unless they have one already (homed here):
// opening a conversation with someone then finds it.
func indexDM(tx *store.Tx, r store.Room) error {
	if r.Kind != store.Direct {
		return nil
	}
	members, err := tx.Members(r.ID)
	if err != nil || len(members) != 2 {
		return err
	}
	a, b := members[0].UserID, members[1].UserID
	if _, err := tx.DM(a, b); errors.Is(err, store.ErrNotFound) {
		return tx.PutDM(a, b, r.ID)
	} else if err != nil {
		return err
	}
	return nil
}

// applyRecord stores one verified record in the replica: the checks that
// need the room's state, then the event and its effects, as the home made
// them.
func (s *Service) applyRecord(tx *store.Tx, rec *fed.Record) error {
	var ev proto.Event
	if err := json.Unmarshal(rec.Frame, &ev); err != nil {
		return fmt.Errorf("%w: event frame: %v", fed.ErrMalformed, err)
	}
	o := rec.Origin
	switch {
	case ev.T != proto.TEvent || ev.Room != o.Room || ev.Seq != rec.Order.Seq || ev.From != o.Sender || ev.Type != o.Type ||
		ev.CID != "" && ev.CID != o.CID || eventContent(&ev).hash() != o.Content:
		return fmt.Errorf("%w: the event is not what its origin signed", fed.ErrSignature)
	}
	m, err := tx.Member(ev.Room, ev.From)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	selfJoin := ev.Type == proto.EvMember && ev.Action == proto.ActJoin && ev.User == ev.From
	if ev.Type != proto.EvCreate && !selfJoin && !m.Active() {
		return fmt.Errorf("%w: %s is not a member of %s", fed.ErrAuthority, ev.From, ev.Room)
	}
	if ev.Type != proto.EvCreate && !selfJoin {
		if err := replicaAllowed(tx, &ev, m); err != nil {
			return err
		}
	}
	flags, memberOp, member := byte(0), proto.MemberNone, ""
	switch ev.Type {
	case proto.EvText, proto.EvFile, proto.EvEncrypted:
		flags = store.Countable
	case proto.EvEdit, proto.EvDelete, proto.EvReact, proto.EvUnreact:
		if err := s.mutate(tx, &ev); err != nil {
			return err
		}
	case proto.EvSettings:
		r, err := tx.Room(ev.Room)
		if err != nil {
			return err
		}
		if ev.Name != nil {
			r.Name = *ev.Name
		}
		if ev.Topic != nil {
			r.Topic = *ev.Topic
		}
		if ev.Externals != nil {
			r.Externals = *ev.Externals
		}
		if err := tx.PutRoom(r); err != nil {
			return err
		}
	case proto.EvMember:
		memberOp, member = memberOpOf(ev.Action), ev.User
	}
	last, err := tx.LastEvent(ev.Room)
	if err != nil {
		return err
	}
	se := store.Event{Seq: ev.Seq, Ord: last.Ord, TS: ev.TS, Flags: flags, Frame: rec.Frame}
	if flags&store.Countable != 0 {
		se.Ord++
	}
	var announce func() error
	if memberOp == proto.MemberAdd && !s.remoteUser(ev.User) {
		announce = s.notifyUserFirst(tx, ev.User, ev.Room)
	}
	gseq, err := tx.AppendReplica(ev.Room, se)
	if err != nil {
		return err
	}
	if err := tx.PutFedRecord(ev.Room, ev.Seq, rec.Order.EventHash, fed.AppendRecord(nil, rec)); err != nil {
		return err
	}
	if err := s.publishCommitted(tx, ev.Room, se, gseq, memberOp, member); err != nil {
		return err
	}
	if ev.Type == proto.EvMember {
		if err := s.applyMember(tx, &ev, se); err != nil {
			return err
		}
		if announce != nil {
			return announce()
		}
		if !s.remoteUser(ev.User) {
			return s.notifyUser(tx, ev.User, ev.Room)
		}
	}
	if flags&store.Countable != 0 {
		for _, u := range ev.Mentions {
			if !s.remoteUser(u) {
				if err := tx.AddMention(u, ev.Room, ev.Seq); err != nil {
					return err
				}
			}
		}
		if !s.remoteUser(ev.From) {
			if err := tx.PutRead(ev.Room, ev.From, se.Seq, se.Ord); err != nil {
				return err
			}
		}
	}
	return nil
}

// replicaAllowed checks, against the replica's state, that the sender's
// role allows what the event does: a home cannot make its members'
// nodes show a kick by a plain member. (The rank rules, a moderator
// removing members only, stay the home's.)
func replicaAllowed(tx *store.Tx, ev *proto.Event, m store.Membership) error {
	room, err := tx.Room(ev.Room)
	if err != nil {
		return err
	}
	act := ActSend
	switch ev.Type {
	case proto.EvMember:
		switch ev.Action {
		case proto.ActInvite:
			act = ActInvite
		case proto.ActJoin: // another's join: a direct room brought back
			if room.Kind != store.Direct {
				act = ActInvite
			}
		case proto.ActKick:
			act = ActRemove
		case proto.ActBan, proto.ActUnban:
			act = ActBan
		case proto.ActRole:
			act = ActChangeRole
		case proto.ActLeave:
			if ev.User != ev.From {
				return fmt.Errorf("%w: %s left for %s", fed.ErrAuthority, ev.From, ev.User)
			}
			act = ActLeave
		}
	case proto.EvSettings:
		act = ActRename
		if ev.Externals != nil {
			act = ActSettings
		}
	case proto.EvDelete, proto.EvEdit:
		t, err := target(tx, ev.Room, ev.Target)
		if err != nil {
			return fmt.Errorf("%w: %s/%d targets %d: %v", fed.ErrMalformed, ev.Room, ev.Seq, ev.Target, err)
		}
		if t.ev.From != ev.From {
			if ev.Type == proto.EvEdit {
				return fmt.Errorf("%w: %s edited a message of %s", fed.ErrAuthority, ev.From, t.ev.From)
			}
			act = ActDeleteOthers
		}
	}
	if !Allowed(room.Kind, m.Role, act) {
		return fmt.Errorf("%w: %s (%s) may not %s in %s", fed.ErrAuthority, ev.From, m.Role, act, ev.Room)
	}
	return nil
}

func memberOpOf(action string) byte {
	switch action {
	case proto.ActJoin:
		return proto.MemberAdd
	case proto.ActLeave, proto.ActKick, proto.ActBan:
		return proto.MemberRemove
	}
	return proto.MemberNone
}

// applyMember stores the membership a member event states.
func (s *Service) applyMember(tx *store.Tx, ev *proto.Event, at store.Event) error {
	old, err := tx.Member(ev.Room, ev.User)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	m := store.Membership{Role: old.Role, State: old.State, By: ev.From, Since: time.UnixMilli(ev.TS)}
	if m.Role == "" {
		m.Role = store.Member
	}
	switch ev.Action {
	case proto.ActInvite:
		m.State = store.Invited
	case proto.ActJoin:
		m.State, m.By = store.Joined, old.By
		if ev.Role != "" {
			m.Role = store.Role(ev.Role)
		}
	case proto.ActLeave, proto.ActKick, proto.ActUnban:
		m.State = store.Left
	case proto.ActBan:
		m.State = store.Banned
	case proto.ActRole:
		m.Role, m.By = store.Role(ev.Role), old.By
	default:
		return fmt.Errorf("%w: member action %q", fed.ErrMalformed, ev.Action)
	}
	if err := s.setMember(tx, ev.Room, ev.User, m, at); err != nil {
		return err
	}
	r, err := tx.Room(ev.Room)
	if err != nil {
		return err
	}
	return indexDM(tx, r)
}

// mutate applies an edit, deletion or reaction to the message it targets,
// as the home did.
func (s *Service) mutate(tx *store.Tx, ev *proto.Event) error {
	t, err := target(tx, ev.Room, ev.Target)
	if err != nil {
		return fmt.Errorf("%w: %s/%d targets %d: %v", fed.ErrMalformed, ev.Room, ev.Seq, ev.Target, err)
	}
	switch ev.Type {
	case proto.EvEdit:
		t.ev.Body, t.ev.Edited = ev.Body, max(ev.TS, t.ev.TS)
	case proto.EvDelete:
		t.ev = proto.Event{T: t.ev.T, Room: t.ev.Room, Seq: t.ev.Seq, TS: t.ev.TS, From: t.ev.From, Dev: t.ev.Dev, Type: t.ev.Type, Deleted: true}
		t.rec.Flags |= store.Redacted
	case proto.EvReact:
		if t.ev.Reactions == nil {
			t.ev.Reactions = map[string][]string{}
		}
		t.ev.Reactions[ev.Key] = append(t.ev.Reactions[ev.Key], ev.From)
	case proto.EvUnreact:
		users := t.ev.Reactions[ev.Key][:0:0]
		for _, u := range t.ev.Reactions[ev.Key] {
			if u != ev.From {
				users = append(users, u)
			}
		}
		if len(users) == 0 {
			delete(t.ev.Reactions, ev.Key)
		} else {
			t.ev.Reactions[ev.Key] = users
		}
	}
	return t.save(tx)
}

// pull catches a replica up from its home, a batch at a time.
func (s *Service) pull(home fed.AdminID, room string) {
	fd := s.fed
	fd.mu.Lock()
	if fd.pulling[room] {
		fd.mu.Unlock()
		return
	}
	fd.pulling[room] = true
	fd.mu.Unlock()
	defer func() {
		fd.mu.Lock()
		delete(fd.pulling, room)
		fd.mu.Unlock()
	}()
	head := func() (seq uint64) {
		s.db.View(func(tx *store.Tx) error {
			h, _ := tx.FedHead(room)
			seq = h.Seq
			return nil
		})
		return seq
	}
	type answer struct {
		b   fed.Batch
		err error
	}
	fetch := func(after uint64) <-chan answer {
		c := make(chan answer, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*fd.SendTimeout)
			defer cancel()
			ans, err := fd.Transport.Request(ctx, home, fed.OpRoomSync, fed.AppendSyncRequest(nil, fed.SyncRequest{Room: room, After: after, Max: fed.MaxBatch}))
			if err != nil {
				c <- answer{err: err}
				return
			}
			b, err := fed.ParseBatchFrame(ans)
			c <- answer{b, err}
		}()
		return c
	}
	after := head()
	pending := fetch(after)
	for {
		a := <-pending
		if a.err != nil {
			s.log.Debug("pull failed", "room", room, "home", home, "err", a.err)
			return
		}
		b := a.b
		if len(b.Records) == 0 && b.Snapshot == nil {
			return
		}
		// The next batch is asked for while this one is stored: the
		// home's answer and this node's write overlap. A batch may stop
		// short of MaxBatch by weight, so ask until nothing comes.
		var next uint64
		if n := len(b.Records); n > 0 {
			next = b.Records[n-1].Order.Seq
			pending = fetch(next)
		}
		if err := s.applyBatch(context.Background(), home, room, b); err != nil {
			s.log.Warn("federation message refused", "peer", home, "op", "room_sync", "room", room, "err", err)
			return
		}
		if got := head(); got <= after || next == 0 || got != next {
			// Nothing new, a snapshot alone, or not where the batch
			// ended: ask again from what is stored, once.
			if got <= after {
				return
			}
			pending = fetch(got)
			next = got
		}
		after = next
	}
}

// linkUp catches up with an administration whose link just came up: pull
// every room it is the home of, and tell it of the rooms it is entitled
// to here, so that it pulls those it missed.
func (s *Service) linkUp(peer fed.AdminID) {
	s.pullFrom(func(a fed.AdminID) bool { return a == peer })
	var last [][]byte
	s.db.View(func(tx *store.Tx) error {
		rooms, err := tx.FedPeerRooms(string(peer))
		if err != nil {
			return err
		}
		for _, r := range rooms {
			h, ok := tx.FedHead(r)
			if !ok {
				continue
			}
			if raw, err := tx.FedRecord(r, h.Seq); err == nil {
				if rec, err := fed.ParseRecord(raw); err == nil {
					last = append(last, fed.AppendBatchFrame(nil, &fed.Batch{Records: []fed.Record{rec}}))
				}
			}
		}
		return nil
	})
	for _, b := range last {
		s.fed.Transport.Push(peer, fed.OpRoomEvent, b)
	}
}

// pullFrom pulls every replica whose home's administration keep accepts.
func (s *Service) pullFrom(keep func(fed.AdminID) bool) {
	type held struct {
		room string
		home fed.AdminID
	}
	var rooms []held
	s.db.View(func(tx *store.Tx) error {
		return tx.FedHeads(func(room string, _ store.FedHead) bool {
			if id.Home(room) != s.node {
				if a, ok := s.fed.dir.AdminOf(room); ok && keep(a) {
					rooms = append(rooms, held{room, a})
				}
			}
			return true
		})
	})
	for _, r := range rooms {
		s.pull(r.home, r.room)
	}
}

func (s *Service) syncLoop() {
	t := time.NewTicker(s.fed.SyncEvery)
	defer t.Stop()
	for {
		select {
		case <-s.fed.stop:
			return
		case <-t.C:
			s.pullFrom(func(fed.AdminID) bool { return true })
		}
	}
}

// shareEphemeral sends a member's receipt or typing notice of a shared
// room across: to the home for a room homed elsewhere, to every
// administration with members for a room homed here (but back to the one
// it came from). Best effort, as on one node.
func (s *Service) shareEphemeral(e fed.Ephemeral, except fed.AdminID) {
	fd := s.fed
	if fd == nil {
		return
	}
	var to []fed.AdminID
	s.db.View(func(tx *store.Tx) error {
		if _, shared := tx.FedHead(e.Room); !shared {
			return nil
		}
		if id.Home(e.Room) != s.node {
			if home, ok := fd.dir.AdminOf(e.Room); ok {
				to = append(to, home)
			}
			return nil
		}
		peers, err := s.peersIn(tx, e.Room)
		for p := range peers {
			if p != except {
				to = append(to, p)
			}
		}
		return err
	})
	body := fed.AppendEphemeral(nil, e)
	for _, p := range to {
		if err := fd.Transport.Push(p, fed.OpRoomEphemeral, body); err != nil {
			s.log.Debug("ephemeral push failed", "peer", p, "err", err)
		}
	}
}

// handleRoomEphemeral takes a receipt or typing notice from the member's
// administration, or from the room's home relaying it.
func (s *Service) handleRoomEphemeral(ctx context.Context, from fed.AdminID, body []byte) ([]byte, error) {
	fd := s.fed
	e, err := fed.ParseEphemeral(body)
	if err != nil {
		return nil, s.refuse(from, fed.OpRoomEphemeral, proto.CodeBadRequest, err)
	}
	userAdmin, _ := fd.dir.AdminOf(e.User)
	home, _ := fd.dir.AdminOf(e.Room)
	if userAdmin != from && (home != from || userAdmin == fd.Self.ID) {
		return nil, s.refuse(from, fed.OpRoomEphemeral, proto.CodeForbidden,
			fmt.Errorf("%w: %s spoke for %s in %s", fed.ErrAuthority, from, e.User, e.Room))
	}
	a := Actor{User: e.User}
	if e.Kind == fed.EphTyping {
		if err := s.db.View(func(tx *store.Tx) error { _, _, err := access(tx, a, e.Room, ActSend); return err }); err != nil {
			return nil, s.refuse(from, fed.OpRoomEphemeral, proto.CodeForbidden, err)
		}
		s.publishEphemeral(e.Room, proto.Encode(proto.Typing{T: proto.TTypingEv, Room: e.Room, User: e.User, On: e.On}))
	} else if err := s.update(ctx, func(tx *store.Tx) error {
		if _, _, err := access(tx, a, e.Room, ActRead); err != nil {
			return err
		}
		ev, err := tx.Event(e.Room, e.Seq)
		if err != nil {
			return nil // before this node's first event of the room: nothing to mark
		}
		if cur, _ := tx.Read(e.Room, e.User); e.Seq <= cur {
			return nil
		}
		if err := tx.PutRead(e.Room, e.User, e.Seq, ev.Ord); err != nil {
			return err
		}
		receipt := proto.Encode(proto.Receipt{T: proto.TReceipt, Room: e.Room, User: e.User, Seq: e.Seq})
		tx.OnCommit(func() { s.publishEphemeral(e.Room, receipt) })
		return nil
	}); err != nil {
		return nil, s.refuse(from, fed.OpRoomEphemeral, proto.CodeForbidden, err)
	}
	if id.Home(e.Room) == s.node {
		s.shareEphemeral(e, from)
	}
	return nil, nil
}

// OpResolveUser asks a peer for the agent behind an address of one of its
// domains: body {"email"}, answer {"id","name"}. The address goes only to
// the administration that serves its domain; the answer never carries it.
const OpResolveUser = "resolve_user"

type resolveQuery struct {
	Email string `json:"email"`
}

type resolveAnswer struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// resolvePeerAddress returns the id of the agent of a peered
// administration behind email; ok is false when no peer serves the
// address's domain (then it is an external's).
func (s *Service) resolvePeerAddress(ctx context.Context, email string) (userID string, ok bool, err error) {
	fd := s.fed
	if fd == nil {
		return "", false, nil
	}
	addr, perr := mailaddr.Parse(email)
	if perr != nil {
		return "", false, nil // the external path reports the malformed address
	}
	p, served := fd.Transport.ByDomain(addr.Domain)
	if !served || p.ID == fd.Self.ID {
		return "", false, nil
	}
	rctx, cancel := context.WithTimeout(ctx, fd.SendTimeout)
	defer cancel()
	ans, err := fd.Transport.Request(rctx, p.ID, OpResolveUser, proto.Encode(resolveQuery{Email: addr.String()}))
	if err != nil {
		var re *fed.RemoteError
		if errors.As(err, &re) {
			return "", true, proto.Errorf(re.Code, "%s", re.Reason)
		}
		return "", true, proto.Errorf(proto.CodeHomeUnreachable, "the administration of this address does not answer; retry later")
	}
	var r resolveAnswer
	if err := decodeStrict(ans, &r); err != nil || !id.Valid(id.User, r.ID) {
		return "", true, s.refuse(p.ID, OpResolveUser, proto.CodeInternal, fmt.Errorf("answer: %v", err))
	}
	if a, _ := fd.dir.AdminOf(r.ID); a != p.ID {
		return "", true, s.refuse(p.ID, OpResolveUser, proto.CodeForbidden, fmt.Errorf("%w: %s answered with a user of %s", fed.ErrAuthority, p.ID, a))
	}
	return r.ID, true, nil
}

// handleResolveUser answers a peer's question for the agent behind an
// address: only active agents, never externals, never the address back.
func (s *Service) handleResolveUser(_ context.Context, from fed.AdminID, body []byte) ([]byte, error) {
	var q resolveQuery
	if len(body) > 512 || decodeStrict(body, &q) != nil {
		return nil, s.refuse(from, OpResolveUser, proto.CodeBadRequest, errors.New("malformed query"))
	}
	addr, err := mailaddr.Parse(q.Email)
	if err != nil {
		return nil, &fed.RemoteError{Code: proto.CodeEmailInvalid, Reason: "not a well-formed address"}
	}
	var u store.User
	err = s.db.View(func(tx *store.Tx) (err error) { u, err = tx.UserByEmail(addr.String()); return err })
	if err != nil || u.State != store.UserActive || u.External {
		return nil, &fed.RemoteError{Code: proto.CodeNotFound, Reason: "no agent with this address"}
	}
	return proto.Encode(resolveAnswer{ID: u.ID, Name: u.Name}), nil
}

// decodeStrict decodes one JSON object with no unknown fields.
func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data")
	}
	return nil
}

// OpForumSearch lists the forums of an administration whose name matches:
// body {"q","limit"}, answer {"forums":[ForumInfo]}. Forums are open to
// every agent by design; the listing spans the mesh.
const OpForumSearch = "forum_search"

// forumTimeout bounds how long a forum listing waits for the peers.
const forumTimeout = 1500 * time.Millisecond

type forumQuery struct {
	Q     string `json:"q"`
	Limit int    `json:"limit"`
}

type forumAnswer struct {
	Forums []ForumInfo `json:"forums"`
}

// peerForums asks every peer for its forums matching query, for at most
// forumTimeout; a peer that does not answer in time is left out.
func (s *Service) peerForums(a Actor, query string, limit int, local []ForumInfo) []ForumInfo {
	fd := s.fed
	if fd == nil {
		return nil
	}
	peers := fd.Transport.List()
	ctx, cancel := context.WithTimeout(context.Background(), forumTimeout)
	defer cancel()
	body := proto.Encode(forumQuery{Q: query, Limit: limit})
	results := make([][]ForumInfo, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ans, err := fd.Transport.Request(ctx, p.ID, OpForumSearch, body)
			if err != nil {
				s.log.Debug("forum listing: a peer did not answer", "peer", p.ID, "err", err)
				return
			}
			var fa forumAnswer
			if len(ans) > 256<<10 || decodeStrict(ans, &fa) != nil || len(fa.Forums) > limit {
				s.log.Warn("federation message refused", "peer", p.ID, "op", OpForumSearch, "err", "malformed answer")
				return
			}
			for _, f := range fa.Forums {
				if home, _ := fd.dir.AdminOf(f.ID); home != p.ID || !id.Valid(id.Room, f.ID) ||
					proto.TextFault(f.Name) != "" || proto.TextFault(f.Topic) != "" || f.Count < 0 ||
					utf8.RuneCountInString(f.Name) > proto.MaxName || utf8.RuneCountInString(f.Topic) > proto.MaxTopic {
					s.log.Warn("federation message refused", "peer", p.ID, "op", OpForumSearch, "err", "a forum not of that administration, or a bad name")
					return
				}
			}
			results[i] = fa.Forums
			for j := range results[i] {
				results[i][j].Admin = p.Name
			}
		}()
	}
	wg.Wait()
	var out []ForumInfo
	seen := map[string]bool{}
	for _, f := range local {
		seen[f.ID] = true // a replica held here is listed already
	}
	s.db.View(func(tx *store.Tx) error {
		for _, r := range results {
			for _, f := range r {
				if seen[f.ID] {
					continue
				}
				m, err := tx.Member(f.ID, a.User)
				f.Joined = err == nil && m.State == store.Joined
				out = append(out, f)
			}
		}
		return nil
	})
	return out
}

// handleForumSearch answers a peer's forum listing with this
// administration's own forums.
func (s *Service) handleForumSearch(_ context.Context, from fed.AdminID, body []byte) ([]byte, error) {
	var q forumQuery
	if len(body) > 1024 || decodeStrict(body, &q) != nil || len(q.Q) > proto.MaxQuery || q.Limit < 1 || q.Limit > 50 {
		return nil, s.refuse(from, OpForumSearch, proto.CodeBadRequest, errors.New("malformed query"))
	}
	// Only forums homed here: a replica of another's forum is that
	// administration's to list.
	out, err := s.localForums("", q.Q, q.Limit, func(r string) bool { return id.Home(r) == s.node })
	if err != nil {
		return nil, err
	}
	return proto.Encode(forumAnswer{Forums: out}), nil
}

// Lag reports how many events this node's copies of the rooms homed in
// peer are behind what that peer has shown of them (pushed or answered),
// for health; ok is false when federation is off.
func (s *Service) Lag(peer fed.AdminID) (events int64, ok bool) {
	fd := s.fed
	if fd == nil {
		return 0, false
	}
	fd.mu.Lock()
	seen := make(map[string]uint64, len(fd.seen))
	for r, q := range fd.seen {
		if a, _ := fd.dir.AdminOf(r); a == peer {
			seen[r] = q
		}
	}
	fd.mu.Unlock()
	s.db.View(func(tx *store.Tx) error {
		for r, q := range seen {
			if h, _ := tx.FedHead(r); q > h.Seq {
				events += int64(q - h.Seq)
			}
		}
		return nil
	})
	return events, true
}
