package chat

import (
	"context"
	"errors"
	"strings"

	"relais/server/id"
	"relais/server/proto"
	"relais/server/store"
)

// CreateRoomRequest describes a new group or forum.
type CreateRoomRequest struct {
	Kind      store.RoomKind // Group or Forum
	Name      string
	Topic     string
	Externals bool // groups only
	// Encrypted is whether the room is end-to-end encrypted; nil is the
	// default, which every path gets: groups are encrypted, forums never
	// are (an explicit true is ignored for them).
	Encrypted *bool
	Invite    []string
}

// DefaultEncrypted is whether a room of kind is end-to-end encrypted when
// its creator does not say: direct conversations and groups are, forums
// (open and searchable by design) are not.
func DefaultEncrypted(kind store.RoomKind) bool { return kind == store.Direct || kind == store.Group }

// CreateRoom creates a group or forum owned by the actor and invites the
// given users. It returns the room id.
func (s *Service) CreateRoom(ctx context.Context, a Actor, req CreateRoomRequest) (string, error) {
	if a.External {
		return "", proto.Errorf(proto.CodeExternalForbidden, "external correspondents cannot create rooms")
	}
	if req.Kind != store.Group && req.Kind != store.Forum {
		return "", proto.Errorf(proto.CodeBadRequest, "kind must be group or forum")
	}
	// People of another administration change nothing: their devices'
	// keys cross the link from their own administration (fedkeys.go).
	encrypted := DefaultEncrypted(req.Kind)
	if req.Encrypted != nil {
		encrypted = *req.Encrypted
	}
	if req.Kind == store.Forum {
		// Forums are open and searchable by design: never encrypted,
		// never open to externals.
		req.Externals, encrypted = false, false
	}
	room := store.Room{
		ID: id.NewRoom(s.node), Kind: req.Kind, Name: strings.TrimSpace(req.Name), Topic: strings.TrimSpace(req.Topic),
		Externals: req.Externals, Encrypted: encrypted, Creator: a.User, Created: s.now(),
	}
	err := s.update(ctx, func(tx *store.Tx) error {
		if err := tx.CreateRoom(room); err != nil {
			return err
		}
		announce := s.notifyUserFirst(tx, a.User, room.ID)
		name, topic := room.Name, room.Topic
		ev := &proto.Event{Room: room.ID, From: a.User, Dev: a.Device, Type: proto.EvCreate, Kind: string(room.Kind),
			Name: &name, Topic: &topic, Externals: &room.Externals, Encrypted: &room.Encrypted}
		se, err := s.appendEvent(tx, ev, 0, proto.MemberAdd, a.User)
		if err != nil {
			return err
		}
		if err := s.setMember(tx, room.ID, a.User, store.Membership{Role: store.Owner, State: store.Joined, Since: s.now()}, se); err != nil {
			return err
		}
		if err := announce(); err != nil {
			return err
		}
		for _, u := range dedupe(req.Invite, a.User) {
			if err := s.invite(tx, a, room, u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	s.log.Debug("room created", "room", room.ID, "kind", room.Kind, "user", a.User)
	return room.ID, nil
}

// setMember stores a membership; when the user joins, their read marker is
// put at the join so that older history does not count as unread.
func (s *Service) setMember(tx *store.Tx, roomID, userID string, m store.Membership, at store.Event) error {
	if err := tx.PutMember(roomID, userID, m); err != nil {
		return err
	}
	if m.State == store.Joined {
		if seq, _ := tx.Read(roomID, userID); seq < at.Seq {
			return tx.PutRead(roomID, userID, at.Seq, at.Ord)
		}
	}
	return nil
}

// OpenDM returns the direct room of the actor and another agent, creating
// it (both joined) or rejoining it as needed. A new room is end-to-end
// encrypted unless encrypted says otherwise (nil is the default,
// DefaultEncrypted); an existing one keeps what it is.
func (s *Service) OpenDM(ctx context.Context, a Actor, other string, encrypted *bool) (string, error) {
	enc := DefaultEncrypted(store.Direct)
	if encrypted != nil {
		enc = *encrypted
	}
	if a.External {
		return "", proto.Errorf(proto.CodeExternalForbidden, "external correspondents cannot start conversations")
	}
	if other == a.User {
		return "", proto.Errorf(proto.CodeBadRequest, "a direct conversation needs someone else")
	}
	var roomID string
	err := s.update(ctx, func(tx *store.Tx) error {
		var err error
		if !s.remoteUser(other) {
			u, err := tx.User(other)
			if err != nil || u.State != store.UserActive || u.External {
				return proto.Errorf(proto.CodeNotFound, "no such person")
			}
		}
		roomID, err = tx.DM(a.User, other)
		if errors.Is(err, store.ErrNotFound) {
			room := store.Room{ID: id.NewRoom(s.node), Kind: store.Direct, Encrypted: enc, Creator: a.User, Created: s.now()}
			roomID = room.ID
			if err := tx.CreateRoom(room); err != nil {
				return err
			}
			if err := tx.PutDM(a.User, other, room.ID); err != nil {
				return err
			}
			announce := s.notifyUserFirst(tx, a.User, room.ID)
			ev := &proto.Event{Room: room.ID, From: a.User, Dev: a.Device, Type: proto.EvCreate, Kind: string(store.Direct), Encrypted: &room.Encrypted}
			se, err := s.appendEvent(tx, ev, 0, proto.MemberAdd, a.User)
			if err != nil {
				return err
			}
			if err := s.setMember(tx, room.ID, a.User, store.Membership{Role: store.Member, State: store.Joined, Since: s.now()}, se); err != nil {
				return err
			}
			if err := announce(); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
		if s.Remote(roomID) {
			// A direct room homed in the other's administration: only
			// its home brings people back.
			return nil
		}
		// Bring back whoever had left.
		for _, u := range []string{a.User, other} {
			m, err := tx.Member(roomID, u)
			if err == nil && m.State == store.Joined {
				continue
			}
			if err := s.changeMember(tx, a, roomID, u, proto.ActJoin, store.Membership{Role: store.Member, State: store.Joined, By: a.User, Since: s.now()}); err != nil {
				return err
			}
		}
		return nil
	})
	return roomID, err
}

// changeMember appends a member event, stores the new membership and tells
// the user's devices, in the order that lets the fan-out follow: a user
// who gains access is told of the room before its events; one who loses
// access sees the event that removes them, then the room's new state.
func (s *Service) changeMember(tx *store.Tx, a Actor, roomID, userID, action string, m store.Membership) error {
	op := proto.MemberNone
	switch m.State {
	case store.Joined:
		op = proto.MemberAdd
	case store.Left, store.Banned:
		op = proto.MemberRemove
	}
	ev := &proto.Event{Room: roomID, From: a.User, Dev: a.Device, Type: proto.EvMember, User: userID, Action: action}
	if action == proto.ActRole || action == proto.ActJoin {
		ev.Role = string(m.Role)
	}
	var announce func() error
	if op == proto.MemberAdd {
		announce = s.notifyUserFirst(tx, userID, roomID)
	}
	se, err := s.appendEvent(tx, ev, 0, op, userID)
	if err != nil {
		return err
	}
	if err := s.setMember(tx, roomID, userID, m, se); err != nil {
		return err
	}
	if err := mlsMembership(tx, roomID, userID, m.State); err != nil {
		return err
	}
	if announce != nil {
		return announce()
	}
	return s.notifyUser(tx, userID, roomID)
}

// invite invites userID to room on behalf of a, inside a transaction.
func (s *Service) invite(tx *store.Tx, a Actor, room store.Room, userID string) error {
	// A user of a peered administration is an agent that administration
	// vouches for; this node has no record of them.
	var u store.User
	var err error
	if !s.remoteUser(userID) {
		u, err = tx.User(userID)
	}
	if err != nil || !s.remoteUser(userID) && u.State != store.UserActive && u.State != store.UserInvited {
		return proto.Errorf(proto.CodeNotFound, "no such person")
	}
	if u.External && !room.Externals {
		return proto.Errorf(proto.CodeExternalForbidden, "this room does not accept external correspondents")
	}
	m, err := tx.Member(room.ID, userID)
	if err == nil {
		switch m.State {
		case store.Joined, store.Invited:
			return proto.Errorf(proto.CodeConflict, "already in the room or invited")
		case store.Banned:
			return proto.Errorf(proto.CodeConflict, "this person is banned from the room: unban first")
		}
	}
	return s.changeMember(tx, a, room.ID, userID, proto.ActInvite,
		store.Membership{Role: store.Member, State: store.Invited, By: a.User, Since: s.now()})
}

// Invite invites an agent or a known external to a room.
func (s *Service) Invite(ctx context.Context, a Actor, roomID, userID string) error {
	return s.update(ctx, func(tx *store.Tx) error {
		room, _, err := access(tx, a, roomID, ActInvite)
		if err != nil {
			return err
		}
		return s.invite(tx, a, room, userID)
	})
}

// InviteExternal invites an external correspondent by e-mail to a group
// that accepts externals, creating their restricted account if needed. It
// returns the external's user id.
func (s *Service) InviteExternal(ctx context.Context, a Actor, roomID, email string) (userID, outcome string, err error) {
	if a.External {
		return "", "", proto.Errorf(proto.CodeExternalForbidden, "external correspondents cannot invite")
	}
	// An agent of a peered administration is invited as an agent, by
	// the id their administration gives for the address.
	if uid, ok, err := s.resolvePeerAddress(ctx, email); ok || err != nil {
		if err != nil {
			return "", "", err
		}
		if s.Remote(roomID) {
			_, err = s.Forward(ctx, a, &proto.ClientFrame{T: proto.TInvite, Room: roomID, User: uid})
		} else {
			err = s.Invite(ctx, a, roomID, uid)
		}
		return uid, proto.InvitationPeer, err
	}
	if s.Remote(roomID) {
		return "", "", proto.Errorf(proto.CodeExternalForbidden, "external correspondents of a room homed in another administration are invited there")
	}
	if s.inviter == nil {
		return "", "", proto.Errorf(proto.CodeUnavailable, "invitations are not available on this node")
	}
	var room store.Room
	var inviter store.User
	err = s.db.View(func(tx *store.Tx) error {
		var err error
		if room, _, err = access(tx, a, roomID, ActInvite); err != nil {
			return err
		}
		inviter, err = tx.User(a.User)
		return err
	})
	if err != nil {
		return "", "", err
	}
	if room.Kind != store.Group || !room.Externals {
		return "", "", proto.Errorf(proto.CodeExternalForbidden, "this room does not accept external correspondents")
	}
	userID, outcome, err = s.inviter.InviteExternal(ctx, inviter, email, room)
	if err != nil {
		return "", "", err
	}
	err = s.Invite(ctx, a, roomID, userID)
	if pe := proto.AsError(err); pe != nil && pe.Code == proto.CodeConflict {
		return userID, outcome, nil // invited again: the pending invitation stands, no second mail
	}
	return userID, outcome, err
}

// Join joins a forum, or accepts an invitation to a group or direct room.
func (s *Service) Join(ctx context.Context, a Actor, roomID string) error {
	return s.update(ctx, func(tx *store.Tx) error {
		room, err := tx.Room(roomID)
		if err != nil {
			return errNotFound()
		}
		m, err := tx.Member(roomID, a.User)
		known := err == nil
		switch {
		case known && m.State == store.Joined:
			return nil
		case known && m.State == store.Banned:
			return proto.Errorf(proto.CodeForbidden, "you are banned from this room")
		case known && m.State == store.Invited:
		case room.Kind == store.Forum && !a.External:
		case room.Kind == store.Forum:
			return proto.Errorf(proto.CodeExternalForbidden, "forums are for agents only")
		default:
			return errNotFound()
		}
		role := store.Member
		if known && m.Role != "" {
			role = m.Role
		}
		return s.changeMember(tx, a, roomID, a.User, proto.ActJoin,
			store.Membership{Role: role, State: store.Joined, By: m.By, Since: s.now()})
	})
}

// Leave leaves a room or declines an invitation. The last owner of a room
// with other members must hand over first.
func (s *Service) Leave(ctx context.Context, a Actor, roomID string) error {
	return s.update(ctx, func(tx *store.Tx) error {
		room, err := tx.Room(roomID)
		if err != nil {
			return errNotFound()
		}
		m, err := tx.Member(roomID, a.User)
		if err != nil || (m.State != store.Joined && m.State != store.Invited) {
			return errNotFound()
		}
		if m.State == store.Joined && m.Role == store.Owner && room.Kind != store.Direct {
			if last, others, err := lastOwner(tx, roomID, a.User); err != nil {
				return err
			} else if last && others {
				return proto.Errorf(proto.CodeLastOwner, "you are the last owner: make someone else owner before leaving")
			}
		}
		return s.changeMember(tx, a, roomID, a.User, proto.ActLeave,
			store.Membership{Role: m.Role, State: store.Left, Since: s.now()})
	})
}

// lastOwner reports whether userID is the only joined owner of a room, and
// whether other people are joined.
func lastOwner(tx *store.Tx, roomID, userID string) (last, others bool, err error) {
	members, err := tx.Members(roomID)
	if err != nil {
		return false, false, err
	}
	owners := 0
	for _, e := range members {
		if e.State != store.Joined {
			continue
		}
		if e.Role == store.Owner {
			owners++
		}
		if e.UserID != userID {
			others = true
		}
	}
	return owners == 1, others, nil
}

// Kick removes a member (or withdraws an invitation) of lower rank.
func (s *Service) Kick(ctx context.Context, a Actor, roomID, userID string) error {
	return s.moderate(ctx, a, roomID, userID, ActRemove, func(m store.Membership) (string, store.Membership, error) {
		if m.State != store.Joined && m.State != store.Invited {
			return "", m, proto.Errorf(proto.CodeConflict, "this person is not in the room")
		}
		return proto.ActKick, store.Membership{Role: m.Role, State: store.Left, By: a.User, Since: s.now()}, nil
	})
}

// Ban removes a member of lower rank and keeps them from coming back.
func (s *Service) Ban(ctx context.Context, a Actor, roomID, userID string) error {
	return s.moderate(ctx, a, roomID, userID, ActBan, func(m store.Membership) (string, store.Membership, error) {
		if m.State == store.Banned {
			return "", m, proto.Errorf(proto.CodeConflict, "already banned")
		}
		return proto.ActBan, store.Membership{Role: store.Member, State: store.Banned, By: a.User, Since: s.now()}, nil
	})
}

// Unban lifts a ban; the person may then be invited or join a forum again.
func (s *Service) Unban(ctx context.Context, a Actor, roomID, userID string) error {
	return s.moderate(ctx, a, roomID, userID, ActBan, func(m store.Membership) (string, store.Membership, error) {
		if m.State != store.Banned {
			return "", m, proto.Errorf(proto.CodeConflict, "this person is not banned")
		}
		return proto.ActUnban, store.Membership{Role: store.Member, State: store.Left, By: a.User, Since: s.now()}, nil
	})
}

func (s *Service) moderate(ctx context.Context, a Actor, roomID, userID string, act Action,
	change func(store.Membership) (string, store.Membership, error)) error {
	if userID == a.User {
		return proto.Errorf(proto.CodeBadRequest, "use leave to leave a room")
	}
	return s.update(ctx, func(tx *store.Tx) error {
		room, me, err := access(tx, a, roomID, act)
		if err != nil {
			return err
		}
		target, err := tx.Member(roomID, userID)
		if errors.Is(err, store.ErrNotFound) {
			if act != ActBan {
				return proto.Errorf(proto.CodeConflict, "this person is not in the room")
			}
			u, err := tx.User(userID)
			if err != nil {
				return proto.Errorf(proto.CodeNotFound, "no such person")
			}
			// A ban tells its target the room as they now see it, name
			// included: only a forum, whose name every agent can find in
			// the forum directory anyway, may ban an agent who was never
			// in it. Anyone else must be a member, an invitee or have
			// been in the room.
			if room.Kind != store.Forum || u.External {
				return proto.Errorf(proto.CodeNotMember, "this person is not in the room: only members and invitees can be banned")
			}
			target = store.Membership{Role: store.Member, State: store.Left}
		} else if err != nil {
			return err
		}
		if !Outranks(me.Role, target.Role) {
			return proto.Errorf(proto.CodeForbidden, "you can only do this to people of lower rank")
		}
		action, m, err := change(target)
		if err != nil {
			return err
		}
		return s.changeMember(tx, a, roomID, userID, action, m)
	})
}

// SetRole changes a joined member's role; owners only. An owner may step
// down only if another owner remains.
func (s *Service) SetRole(ctx context.Context, a Actor, roomID, userID string, role store.Role) error {
	if _, ok := rank[role]; !ok {
		return proto.Errorf(proto.CodeBadRequest, "unknown role")
	}
	return s.update(ctx, func(tx *store.Tx) error {
		if _, _, err := access(tx, a, roomID, ActChangeRole); err != nil {
			return err
		}
		m, err := tx.Member(roomID, userID)
		if err != nil || m.State != store.Joined {
			return proto.Errorf(proto.CodeConflict, "this person is not in the room")
		}
		if m.Role == role {
			return nil
		}
		if u, err := tx.User(userID); err == nil && u.External && role != store.Member {
			return proto.Errorf(proto.CodeExternalForbidden, "external correspondents can only be members")
		}
		if m.Role == store.Owner {
			if last, _, err := lastOwner(tx, roomID, userID); err != nil {
				return err
			} else if last {
				return proto.Errorf(proto.CodeLastOwner, "a room needs an owner: make someone else owner first")
			}
		}
		m.Role, m.By = role, a.User
		return s.changeMember(tx, a, roomID, userID, proto.ActRole, m)
	})
}

// RoomUpdate changes a room's settings; nil fields stay as they are.
type RoomUpdate struct {
	Name, Topic *string
	Externals   *bool
}

// UpdateRoom renames a room, changes its topic or whether it accepts
// externals.
func (s *Service) UpdateRoom(ctx context.Context, a Actor, roomID string, up RoomUpdate) error {
	return s.update(ctx, func(tx *store.Tx) error {
		room, me, err := access(tx, a, roomID, ActSend)
		if err != nil {
			return err
		}
		if room.Kind == store.Direct {
			return proto.Errorf(proto.CodeForbidden, "direct conversations have no settings")
		}
		if (up.Name != nil || up.Topic != nil) && !Allowed(room.Kind, me.Role, ActRename) ||
			up.Externals != nil && !Allowed(room.Kind, me.Role, ActSettings) {
			return proto.Errorf(proto.CodeForbidden, "your role in this room does not allow this")
		}
		if up.Externals != nil && room.Kind != store.Group {
			return proto.Errorf(proto.CodeExternalForbidden, "forums never accept external correspondents")
		}
		ev := &proto.Event{Room: roomID, From: a.User, Dev: a.Device, Type: proto.EvSettings}
		if up.Name != nil {
			n := strings.TrimSpace(*up.Name)
			room.Name, ev.Name = n, &n
		}
		if up.Topic != nil {
			t := strings.TrimSpace(*up.Topic)
			room.Topic, ev.Topic = t, &t
		}
		if up.Externals != nil {
			if !*up.Externals && room.Externals {
				if has, err := hasExternals(tx, roomID); err != nil {
					return err
				} else if has {
					return proto.Errorf(proto.CodeConflict, "remove the external correspondents first")
				}
			}
			room.Externals, ev.Externals = *up.Externals, up.Externals
		}
		if err := tx.PutRoom(room); err != nil {
			return err
		}
		_, err = s.appendEvent(tx, ev, 0, proto.MemberNone, "")
		return err
	})
}

func hasExternals(tx *store.Tx, roomID string) (bool, error) {
	members, err := tx.Members(roomID)
	if err != nil {
		return false, err
	}
	for _, e := range members {
		if e.State != store.Joined && e.State != store.Invited {
			continue
		}
		if u, err := tx.User(e.UserID); err == nil && u.External {
			return true, nil
		}
	}
	return false, nil
}

func dedupe(ids []string, skip string) []string {
	seen := map[string]bool{skip: true}
	var out []string
	for _, u := range ids {
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	return out
}

// JoinInvited accepts, on behalf of a user, the invitation to a room: used
// when an external correspondent's account is created from the
// invitation's link. It implements account.Joiner.
func (s *Service) JoinInvited(ctx context.Context, userID, roomID string) error {
	u, err := s.db.User(userID)
	if err != nil {
		return err
	}
	return s.Join(ctx, Actor{User: userID, External: u.External}, roomID)
}
