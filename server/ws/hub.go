package ws

import (
	"sync"

	"relais/server/proto"
)

// outFrame is one frame queued for sessions. The same outFrame (and its
// bytes) is shared by every recipient: encoded once, sent many times.
type outFrame struct {
	room string // events: the room, for de-duplication after a resync
	seq  uint64 // events: the room sequence number; 0 for other frames
	data []byte
}

// hub routes bus messages to this node's sessions.
//
// Lock order: hub.mu before session.mu.
type hub struct {
	mu     sync.RWMutex
	byUser map[string]map[*session]struct{}
	byRoom map[string]map[*session]struct{}
	// reserved counts upgrades under way, by user, for the socket cap.
	reserved map[string]int
	// rooms lists the joined rooms of a user with sessions here, for a
	// newly registered session of that user.
	rooms func(userID string) ([]string, error)
}

func newHub(rooms func(string) ([]string, error)) *hub {
	return &hub{byUser: map[string]map[*session]struct{}{}, byRoom: map[string]map[*session]struct{}{},
		reserved: map[string]int{}, rooms: rooms}
}

// register adds a session, whose place was reserved, and subscribes it to
// its user's rooms. The room list is read under the hub's lock so that no
// membership change on the bus can fall between the read and the
// subscription. It reports whether this is the user's first session here.
func (h *hub) register(s *session) (first bool, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	rooms, err := h.rooms(s.actor.User)
	if err != nil {
		return false, err
	}
	set := h.byUser[s.actor.User]
	if set == nil {
		set = map[*session]struct{}{}
		h.byUser[s.actor.User] = set
	}
	set[s] = struct{}{}
	h.unreserveLocked(s.actor.User)
	for _, r := range rooms {
		h.joinLocked(s, r)
	}
	return len(set) == 1, nil
}

// reserve holds a place for a new session of the user if the user's
// sessions and upgrades under way are fewer than limit (negative: no
// limit); register takes the place, unreserve gives it back.
func (h *hub) reserve(userID string, limit int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if limit >= 0 && len(h.byUser[userID])+h.reserved[userID] >= limit {
		return false
	}
	h.reserved[userID]++
	return true
}

func (h *hub) unreserve(userID string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unreserveLocked(userID)
}

func (h *hub) unreserveLocked(userID string) {
	if h.reserved[userID]--; h.reserved[userID] <= 0 {
		delete(h.reserved, userID)
	}
}

// unregister removes a session; it reports whether it was the user's last
// session here.
func (h *hub) unregister(s *session) (last bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	set, ok := h.byUser[s.actor.User]
	if !ok {
		return false
	}
	if _, ok := set[s]; !ok {
		return false
	}
	delete(set, s)
	if len(set) == 0 {
		delete(h.byUser, s.actor.User)
		last = true
	}
	for r := range s.rooms {
		if rs := h.byRoom[r]; rs != nil {
			delete(rs, s)
			if len(rs) == 0 {
				delete(h.byRoom, r)
			}
		}
	}
	s.rooms = nil
	return last
}

func (h *hub) joinLocked(s *session, room string) {
	rs := h.byRoom[room]
	if rs == nil {
		rs = map[*session]struct{}{}
		h.byRoom[room] = rs
	}
	rs[s] = struct{}{}
	if s.rooms == nil {
		s.rooms = map[string]struct{}{}
	}
	s.rooms[room] = struct{}{}
}

func (h *hub) setMembership(userID, room string, add bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.byUser[userID] {
		if add {
			h.joinLocked(s, room)
			continue
		}
		delete(s.rooms, room)
		if rs := h.byRoom[room]; rs != nil {
			delete(rs, s)
			if len(rs) == 0 {
				delete(h.byRoom, room)
			}
		}
	}
}

func (h *hub) toRoom(room string, f *outFrame) {
	h.mu.RLock()
	for s := range h.byRoom[room] {
		s.enqueue(f)
	}
	h.mu.RUnlock()
}

func (h *hub) toUser(userID string, f *outFrame) {
	h.mu.RLock()
	for s := range h.byUser[userID] {
		s.enqueue(f)
	}
	h.mu.RUnlock()
}

// sessions returns a snapshot of every session, for pings and shutdown.
func (h *hub) sessions() []*session {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var out []*session
	for _, set := range h.byUser {
		for s := range set {
			out = append(out, s)
		}
	}
	return out
}

func (h *hub) userSessions(userID string) []*session {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]*session, 0, len(h.byUser[userID]))
	for s := range h.byUser[userID] {
		out = append(out, s)
	}
	return out
}

// handle is the bus handler: it runs on the subscription's goroutine, one
// message at a time in publication order, and never blocks.
func (h *hub) handle(subject string, data []byte) {
	env, err := proto.ParseEnvelope(data)
	if err != nil {
		return
	}
	target := proto.SubjectTarget(subject)
	switch env.Kind {
	case proto.EnvEvent:
		f := &outFrame{room: target, seq: env.Seq, data: env.Frame}
		if env.MemberOp == proto.MemberAdd {
			h.setMembership(env.Member, target, true)
		}
		h.toRoom(target, f)
		if env.MemberOp == proto.MemberRemove {
			h.setMembership(env.Member, target, false)
		}
	case proto.EnvEphemeral:
		h.toRoom(target, &outFrame{data: env.Frame})
	case proto.EnvUser:
		h.toUser(target, &outFrame{data: env.Frame})
	case proto.EnvRevoke:
		for _, s := range h.userSessions(target) {
			if env.Member == "" || s.actor.Device == env.Member {
				s.closeWith(closeRevoked, "session revoked")
			}
		}
	}
}
