package ws

import (
	"bytes"

	"relais/server/chat"
	"relais/server/proto"
	"relais/server/store"
)

// maxSyncMessage is the size past which a resync is split into several
// websocket messages.
const maxSyncMessage = 256 << 10

// handle decodes one client frame and carries it out. Frames of one
// session are handled in order, one at a time, so a client's messages keep
// the order it sent them in.
func (s *session) handle(b []byte) {
	f, err := proto.DecodeClient(b)
	if err != nil {
		s.srv.stats.FramesIn.Inc(frameInvalid)
		id := ""
		if f != nil {
			id = f.ID
		}
		s.refuse(id, err)
		return
	}
	s.srv.stats.FramesIn.Inc(f.T)
	coalesced, err := s.limit(f)
	if err != nil {
		s.refuse(f.ID, err)
		return
	}
	if coalesced {
		s.done(f.ID, nil)
		s.refused = 0
		return
	}
	if err := s.dispatch(f); err != nil {
		s.refuse(f.ID, err)
		return
	}
	s.refused = 0
}

func (s *session) result(id string, data any) {
	s.reply(proto.Encode(proto.Result{T: proto.TResult, ID: id, Data: data}))
}

func (s *session) dispatch(f *proto.ClientFrame) error {
	ctx := s.srv.ctx
	c := s.srv.chat
	a := s.actor
	if chat.Forwardable(f.T) && c.Remote(f.Room) {
		// A room homed in another administration: carried there, acked
		// once its home committed (chat/federation.go).
		ack, err := c.Forward(ctx, a, f)
		if err != nil || f.T != proto.TSend && f.T != proto.TMLS {
			return s.done(f.ID, err)
		}
		s.reply(proto.Encode(ack))
		return nil
	}
	switch f.T {
	case proto.TSync:
		return s.sync(f)
	case proto.TSend:
		ack, err := c.Send(ctx, a, f)
		if err != nil {
			return err
		}
		s.reply(proto.Encode(ack))
	case proto.TCreateRoom:
		req := chat.CreateRoomRequest{Kind: store.RoomKind(f.Kind), Name: *f.Name, Invite: f.Users, Encrypted: f.Encrypted}
		if f.Topic != nil {
			req.Topic = *f.Topic
		}
		if f.Externals != nil {
			req.Externals = *f.Externals
		}
		room, err := c.CreateRoom(ctx, a, req)
		if err != nil {
			return err
		}
		s.result(f.ID, map[string]string{"room": room})
	case proto.TOpenDM:
		room, err := c.OpenDM(ctx, a, f.User, f.Encrypted)
		if err != nil {
			return err
		}
		s.result(f.ID, map[string]string{"room": room})
	case proto.TInvite:
		return s.done(f.ID, c.Invite(ctx, a, f.Room, f.User))
	case proto.TInviteExt:
		user, outcome, err := c.InviteExternal(ctx, a, f.Room, f.Email)
		if err != nil {
			return err
		}
		s.result(f.ID, map[string]string{"user": user, "invitation": outcome})
	case proto.TJoin:
		return s.done(f.ID, c.Join(ctx, a, f.Room))
	case proto.TLeave:
		return s.done(f.ID, c.Leave(ctx, a, f.Room))
	case proto.TKick:
		return s.done(f.ID, c.Kick(ctx, a, f.Room, f.User))
	case proto.TBan:
		return s.done(f.ID, c.Ban(ctx, a, f.Room, f.User))
	case proto.TUnban:
		return s.done(f.ID, c.Unban(ctx, a, f.Room, f.User))
	case proto.TSetRole:
		return s.done(f.ID, c.SetRole(ctx, a, f.Room, f.User, store.Role(f.Role)))
	case proto.TUpdateRoom:
		return s.done(f.ID, c.UpdateRoom(ctx, a, f.Room, chat.RoomUpdate{Name: f.Name, Topic: f.Topic, Externals: f.Externals}))
	case proto.THistory:
		var after uint64
		if f.After != nil {
			after = *f.After
		}
		frames, more, err := c.History(a, f.Room, f.Before, f.After != nil, after, f.Limit)
		if err != nil {
			return err
		}
		s.reply(proto.History(f.ID, f.Room, frames, more))
	case proto.TMembers:
		members, err := c.Members(a, f.Room)
		if err != nil {
			return err
		}
		receipts, err := c.Receipts(a, f.Room)
		if err != nil {
			return err
		}
		s.result(f.ID, map[string]any{"room": f.Room, "members": members, "receipts": receipts})
	case proto.TUsers:
		users, err := c.Profiles(a, f.IDs)
		if err != nil {
			return err
		}
		s.result(f.ID, map[string]any{"users": users})
	case proto.TDirectory:
		users, err := c.Directory(a, f.Q, 20)
		if err != nil {
			return err
		}
		if s.srv.opts.RemoteDirectory == nil {
			s.result(f.ID, map[string]any{"users": users})
			break
		}
		s.directoryAcrossMesh(f.ID, f.Q, users)
	case proto.TForums:
		forums, err := c.Forums(a, f.Q, 50)
		if err != nil {
			return err
		}
		s.result(f.ID, map[string]any{"forums": forums})
	case proto.TSearch:
		res, err := c.Search(a, f.Q, f.Room, f.Cursor, f.Limit)
		if err != nil {
			return err
		}
		s.result(f.ID, res)
	case proto.TRead:
		return s.done(f.ID, c.MarkRead(ctx, a, f.Room, f.Seq))
	case proto.TTyping:
		return s.done(f.ID, c.Typing(a, f.Room, f.On))
	case proto.TPresence:
		return s.done(f.ID, c.Presence(a.User, f.Status))
	case proto.TPing:
		s.reply(proto.Encode(proto.Result{T: proto.TPong, ID: f.ID}))
	case proto.TKeyPackages, proto.TClaimKeys, proto.TDeviceKeys, proto.TMLS, proto.TGroupInfo, proto.TWelcomeAck:
		return s.dispatchMLS(f)
	case proto.TCall:
		return s.done(f.ID, c.Signal(a, f.Room, f.Data))
	case proto.TTurn:
		return s.turn(f)
	}
	return nil
}

// turn hands out TURN credentials for a call in a room the actor may
// call in.
func (s *session) turn(f *proto.ClientFrame) error {
	if err := s.srv.chat.CallAccess(s.actor, f.Room); err != nil {
		return err
	}
	if s.srv.opts.TURN == nil {
		return proto.Errorf(proto.CodeUnavailable, "this node runs no TURN relay")
	}
	s.result(f.ID, s.srv.opts.TURN.Credentials(s.actor.User))
	return nil
}

// dispatchMLS carries out the frames of end-to-end encryption: the node
// as MLS Delivery Service (chat/mls.go, chat/keys.go).
func (s *session) dispatchMLS(f *proto.ClientFrame) error {
	ctx := s.srv.ctx
	c := s.srv.chat
	a := s.actor
	switch f.T {
	case proto.TKeyPackages:
		n, err := c.UploadKeyPackages(ctx, a, f.KeyPackages, f.LastResort)
		if err != nil {
			return err
		}
		s.result(f.ID, map[string]int{"count": n})
	case proto.TClaimKeys:
		claim, err := c.ClaimKeys(ctx, a, f.Users, f.Suite)
		if err != nil {
			return err
		}
		s.result(f.ID, claim)
	case proto.TDeviceKeys:
		keys, err := c.DeviceKeys(a, f.Users)
		if err != nil {
			return err
		}
		s.result(f.ID, map[string]any{"devices": keys})
	case proto.TMLS:
		ack, err := c.Commit(ctx, a, f)
		if err != nil {
			return err
		}
		s.reply(proto.Encode(ack))
	case proto.TGroupInfo:
		gi, err := c.GroupInfo(a, f.Room)
		if err != nil {
			return err
		}
		s.result(f.ID, gi)
	case proto.TWelcomeAck:
		return s.done(f.ID, c.AckWelcome(ctx, a, f.Room))
	}
	return nil
}

// done answers a request that returns nothing but success, if the client
// asked for an answer by giving an id.
func (s *session) done(id string, err error) error {
	if err == nil && id != "" {
		s.result(id, nil)
	}
	return err
}

// sync sends the device what it missed: each room as the user sees it,
// then the events after the device's cursor (or a gap and the last page),
// then its waiting Welcomes and low_keys, then "synced". The session was registered with the hub before the store
// was read, so events committed meanwhile wait in the paused queue; those
// the resync already carried are dropped by sequence number.
func (s *session) sync(f *proto.ClientFrame) error {
	s.pause()
	defer s.resume()
	rooms, err := s.srv.chat.Sync(s.actor.User, f.Rooms)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	flush := func() error {
		if buf.Len() == 0 {
			return nil
		}
		err := s.writeMessage(s.srv.ctx, buf.Bytes())
		buf.Reset()
		return err
	}
	add := func(frame []byte) error {
		if buf.Len() > 0 {
			if buf.Len()+len(frame) > maxSyncMessage {
				if err := flush(); err != nil {
					return err
				}
			} else {
				buf.WriteByte('\n')
			}
		}
		buf.Write(frame)
		s.srv.countOut(frame)
		return nil
	}
	for _, r := range rooms {
		if err := add(proto.Encode(r.Room)); err != nil {
			return err
		}
		if r.Gap != nil {
			if err := add(proto.Encode(r.Gap)); err != nil {
				return err
			}
		}
		for _, ev := range r.Events {
			if err := add(ev); err != nil {
				return err
			}
		}
		if r.Room.State == string(store.Joined) {
			s.mu.Lock()
			s.sent[r.Room.ID] = max(s.sent[r.Room.ID], r.Room.LastSeq)
			s.mu.Unlock()
		}
	}
	// Then what end-to-end encryption has waiting for this device: its
	// Welcomes (until acknowledged), and a request for KeyPackages.
	e2ee, err := s.srv.chat.Welcomes(s.actor)
	if err != nil {
		return err
	}
	low, err := s.srv.chat.LowKeys(s.actor)
	if err != nil {
		return err
	}
	if low != nil {
		e2ee = append(e2ee, low)
	}
	for _, frame := range e2ee {
		if err := add(frame); err != nil {
			return err
		}
	}
	if err := add(proto.Encode(proto.Result{T: proto.TSynced, ID: f.ID})); err != nil {
		return err
	}
	return flush()
}

// directoryAcrossMesh adds the peered administrations' answers to a
// directory search. The wait for the peers (bounded) does not hold the
// session's other frames, except while an earlier search still waits:
// then this one waits in line, so a client cannot start searches without
// bound.
func (s *session) directoryAcrossMesh(id, q string, local []proto.Profile) {
	search := func() {
		remote, partial := s.srv.opts.RemoteDirectory(s.srv.ctx, q, 20)
		res := map[string]any{"users": append(local, remote...)}
		if partial {
			res["partial"] = true
		}
		s.result(id, res)
	}
	if !s.remoteDir.CompareAndSwap(false, true) {
		search()
		return
	}
	go func() {
		defer s.remoteDir.Store(false)
		search()
	}()
}
