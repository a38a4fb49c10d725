package chat

import (
	"context"
	"errors"

	"relais/server/fed"
	"relais/server/proto"
	"relais/server/store"
)

// Sync tuning: a device that missed at most catchUp events of a room gets
// them all; one that missed more gets a gap and the last page.
const (
	catchUp  = 100
	syncPage = 20
)

// SyncRoom is what a (re)connecting device receives for one room.
type SyncRoom struct {
	Room   proto.Room
	Gap    *proto.Gap
	Events [][]byte
}

// Sync returns, for every room the user is in or invited to, the room as
// they see it and the events after the device's cursor for that room (or a
// gap and the last page). Rooms the device knew but the user has left come
// back with state "left" so the device can drop them.
func (s *Service) Sync(userID string, cursors map[string]uint64) ([]SyncRoom, error) {
	var out []SyncRoom
	err := s.db.View(func(tx *store.Tx) error {
		rooms, err := tx.UserRooms(userID)
		if err != nil {
			return err
		}
		in := make(map[string]bool, len(rooms))
		for _, roomID := range rooms {
			in[roomID] = true
			sum, err := s.summary(tx, userID, roomID)
			if err != nil {
				return err
			}
			sr := SyncRoom{Room: sum}
			if sum.State == string(store.Joined) {
				if err := backfill(tx, &sr, cursors[roomID]); err != nil {
					return err
				}
			}
			out = append(out, sr)
		}
		for roomID := range cursors {
			if !in[roomID] {
				out = append(out, SyncRoom{Room: proto.Room{T: proto.TRoom, ID: roomID, State: string(store.Left)}})
			}
		}
		return nil
	})
	return out, err
}

func backfill(tx *store.Tx, sr *SyncRoom, cursor uint64) error {
	last := sr.Room.LastSeq
	if cursor >= last {
		return nil
	}
	from := cursor + 1
	if cursor == 0 || last-cursor > catchUp {
		from = 1
		if last >= syncPage {
			from = last - syncPage + 1
		}
		if from > cursor+1 {
			sr.Gap = &proto.Gap{T: proto.TGap, Room: sr.Room.ID, First: cursor + 1, Last: from - 1}
		}
	}
	return tx.Events(sr.Room.ID, from, false, func(ev store.Event) bool {
		sr.Events = append(sr.Events, ev.Frame)
		return true
	})
}

// JoinedRooms returns the rooms whose events the user's devices receive.
func (s *Service) JoinedRooms(userID string) ([]string, error) {
	return s.roomsWhere(userID, func(store.Room) bool { return true })
}

// DirectRooms returns the user's joined direct rooms (presence is shared
// there).
func (s *Service) DirectRooms(userID string) ([]string, error) {
	return s.roomsWhere(userID, func(r store.Room) bool { return r.Kind == store.Direct })
}

func (s *Service) roomsWhere(userID string, keep func(store.Room) bool) ([]string, error) {
	var out []string
	err := s.db.View(func(tx *store.Tx) error {
		rooms, err := tx.UserRooms(userID)
		if err != nil {
			return err
		}
		for _, roomID := range rooms {
			m, err := tx.Member(roomID, userID)
			if err != nil || m.State != store.Joined {
				continue
			}
			if r, err := tx.Room(roomID); err == nil && keep(r) {
				out = append(out, roomID)
			}
		}
		return nil
	})
	return out, err
}

// History returns up to limit event frames of a room in log order: with
// forward, the first ones after seq after; otherwise the last ones before
// seq before (the very last ones when before is zero). more says whether
// the log goes on in the direction of the query.
func (s *Service) History(a Actor, roomID string, before uint64, forward bool, after uint64, limit int) (frames [][]byte, more bool, err error) {
	if limit <= 0 || limit > proto.MaxPage {
		limit = proto.MaxPage
	}
	err = s.db.View(func(tx *store.Tx) error {
		if _, _, err := access(tx, a, roomID, ActRead); err != nil {
			return err
		}
		collect := func(ev store.Event) bool {
			if len(frames) == limit {
				more = true
				return false
			}
			frames = append(frames, ev.Frame)
			return true
		}
		if forward {
			return tx.Events(roomID, after+1, false, collect)
		}
		from := ^uint64(0)
		if before > 0 {
			if before == 1 {
				return nil
			}
			from = before - 1
		}
		if err := tx.Events(roomID, from, true, collect); err != nil {
			return err
		}
		for i, j := 0, len(frames)-1; i < j; i, j = i+1, j-1 {
			frames[i], frames[j] = frames[j], frames[i]
		}
		return nil
	})
	return frames, more, err
}

// Members lists the joined and invited members of a room.
func (s *Service) Members(a Actor, roomID string) ([]proto.Member, error) {
	var out []proto.Member
	err := s.db.View(func(tx *store.Tx) error {
		if _, _, err := access(tx, a, roomID, ActRead); err != nil {
			return err
		}
		members, err := tx.Members(roomID)
		if err != nil {
			return err
		}
		for _, e := range members {
			if e.State == store.Joined || e.State == store.Invited {
				out = append(out, proto.Member{User: e.UserID, Role: string(e.Role), State: string(e.State)})
			}
		}
		return nil
	})
	return out, err
}

// ProfileOf is how a user appears to others.
func ProfileOf(u store.User) proto.Profile {
	return proto.Profile{ID: u.ID, Name: u.Name, Org: u.Org, Tag: proto.UserTag(u.ID), External: u.External, Active: u.State == store.UserActive}
}

// Profiles returns the profiles of the given users. Agents may look up any
// user; external correspondents only the people of their rooms. Unknown
// or invisible ids are left out.
func (s *Service) Profiles(a Actor, ids []string) ([]proto.Profile, error) {
	var out []proto.Profile
	err := s.db.View(func(tx *store.Tx) error {
		var visible map[string]bool
		if a.External {
			var err error
			if visible, err = roommates(tx, a.User); err != nil {
				return err
			}
		}
		for _, uid := range ids {
			if visible != nil && !visible[uid] {
				continue
			}
			u, err := tx.User(uid)
			if errors.Is(err, store.ErrNotFound) || (err == nil && (u.State == store.UserUnverified || u.State == store.UserPending)) {
				continue
			}
			if err != nil {
				return err
			}
			out = append(out, ProfileOf(u))
		}
		return nil
	})
	return out, err
}

// roommates returns the users who share a joined room with userID,
// userID included.
func roommates(tx *store.Tx, userID string) (map[string]bool, error) {
	out := map[string]bool{userID: true}
	rooms, err := tx.UserRooms(userID)
	if err != nil {
		return nil, err
	}
	for _, roomID := range rooms {
		if m, err := tx.Member(roomID, userID); err != nil || m.State != store.Joined {
			continue
		}
		members, err := tx.Members(roomID)
		if err != nil {
			return nil, err
		}
		for _, e := range members {
			if e.State == store.Joined || e.State == store.Invited {
				out[e.UserID] = true
			}
		}
	}
	return out, nil
}

// Directory searches agents by name; external correspondents may not.
// Accounts whose validity ran out are not listed.
func (s *Service) Directory(a Actor, query string, limit int) ([]proto.Profile, error) {
	if a.External {
		return nil, proto.Errorf(proto.CodeExternalForbidden, "the directory is for agents only")
	}
	var out []proto.Profile
	err := s.db.View(func(tx *store.Tx) error {
		users, err := tx.SearchNames(query, limit)
		for _, u := range users {
			if s.expired(u) {
				continue // nobody can reach them until they renew
			}
			out = append(out, ProfileOf(u))
		}
		return err
	})
	return out, err
}

// ForumInfo is a forum as listed in the room directory.
type ForumInfo struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Topic  string `json:"topic,omitempty"`
	Count  int    `json:"count"`
	Joined bool   `json:"joined"`
	// Admin is the name of the peered administration a forum is homed
	// in, as pinned at peering; "" for this one's.
	Admin string `json:"admin,omitempty"`
}

// Forums searches the forum directory by name; agents only.
func (s *Service) Forums(a Actor, query string, limit int) ([]ForumInfo, error) {
	if a.External {
		return nil, proto.Errorf(proto.CodeExternalForbidden, "the room directory is for agents only")
	}
	out, err := s.localForums(a.User, query, limit, func(string) bool { return true })
	if err != nil {
		return nil, err
	}
	return append(out, s.peerForums(a, query, limit, out)...), nil
}

// localForums lists the forums this node holds whose name matches and
// keep accepts, as userID sees them.
func (s *Service) localForums(userID, query string, limit int, keep func(roomID string) bool) ([]ForumInfo, error) {
	var out []ForumInfo
	err := s.db.View(func(tx *store.Tx) error {
		rooms, err := tx.Forums(query, limit)
		if err != nil {
			return err
		}
		for _, r := range rooms {
			if !keep(r.ID) {
				continue
			}
			info := ForumInfo{ID: r.ID, Name: r.Name, Topic: r.Topic}
			members, err := tx.Members(r.ID)
			if err != nil {
				return err
			}
			for _, e := range members {
				if e.State == store.Joined {
					info.Count++
					info.Joined = info.Joined || e.UserID == userID
				}
			}
			out = append(out, info)
		}
		return nil
	})
	return out, err
}

// MarkRead moves the actor's read marker in a room forward to seq (never
// back), tells the room's members and updates the unread counters of all
// the actor's devices.
func (s *Service) MarkRead(ctx context.Context, a Actor, roomID string, seq uint64) error {
	return s.update(ctx, func(tx *store.Tx) error {
		if _, _, err := access(tx, a, roomID, ActRead); err != nil {
			return err
		}
		last, err := tx.LastEvent(roomID)
		if err != nil {
			return err
		}
		seq = min(seq, last.Seq)
		if cur, _ := tx.Read(roomID, a.User); seq <= cur {
			return nil
		}
		ev, err := tx.Event(roomID, seq)
		if err != nil {
			return err
		}
		if err := tx.PutRead(roomID, a.User, seq, ev.Ord); err != nil {
			return err
		}
		receipt := proto.Encode(proto.Receipt{T: proto.TReceipt, Room: roomID, User: a.User, Seq: seq})
		unread := proto.Encode(proto.Unread{T: proto.TUnread, Room: roomID, ReadSeq: seq,
			Unread: int(last.Ord - ev.Ord), Mentions: tx.Mentions(a.User, roomID, seq)})
		tx.OnCommit(func() {
			s.publishEphemeral(roomID, receipt)
			s.PublishUser(a.User, unread)
			s.shareEphemeral(fed.Ephemeral{Room: roomID, User: a.User, Kind: fed.EphReceipt, Seq: seq}, "")
		})
		return nil
	})
}

// Receipts returns how far each joined member has read a room.
func (s *Service) Receipts(a Actor, roomID string) (map[string]uint64, error) {
	var out map[string]uint64
	err := s.db.View(func(tx *store.Tx) error {
		if _, _, err := access(tx, a, roomID, ActRead); err != nil {
			return err
		}
		var err error
		out, err = tx.Reads(roomID)
		return err
	})
	return out, err
}

// Typing tells a room's connected members that the actor started or
// stopped typing.
func (s *Service) Typing(a Actor, roomID string, on bool) error {
	err := s.db.View(func(tx *store.Tx) error {
		_, _, err := access(tx, a, roomID, ActSend)
		return err
	})
	if err != nil {
		return err
	}
	s.publishEphemeral(roomID, proto.Encode(proto.Typing{T: proto.TTypingEv, Room: roomID, User: a.User, On: on}))
	s.shareEphemeral(fed.Ephemeral{Room: roomID, User: a.User, Kind: fed.EphTyping, On: on}, "")
	return nil
}

// Presence tells the user's direct conversations that they are online,
// away or offline.
func (s *Service) Presence(userID, status string) error {
	rooms, err := s.DirectRooms(userID)
	if err != nil {
		return err
	}
	frame := proto.Encode(proto.Presence{T: proto.TPresEv, User: userID, Status: status})
	for _, r := range rooms {
		s.publishEphemeral(r, frame)
	}
	return nil
}
