package ws

import (
	"time"

	"relais/server/proto"
	"relais/server/ratelimit"
)

// limitClass is a rate limit shared by some frame kinds: a token bucket
// per session and one per user across the user's sessions.
type limitClass struct {
	index int
	name  string
	// rate is per second, burst the frames allowed at once.
	rate, userRate   float64
	burst, userBurst int
	// coalesce: over the limit, a frame is not refused but kept, the
	// latest per target, and carried out when the bucket allows (read
	// markers and presence, which only the last value of matters).
	coalesce bool
}

// The limit classes. Sized so that a person using the web client never
// meets them: reads are sent at most one per room per 150 ms and only when
// the marker moves, presence on visibility changes, room administration
// at the pace of clicks; a new device acknowledges every waiting Welcome
// at once after its sync.
var (
	classMessage  = &limitClass{index: 0, name: "message", rate: 10, burst: 30, userRate: 20, userBurst: 60}
	classTyping   = &limitClass{index: 1, name: "typing", rate: 2, burst: 4, userRate: 4, userBurst: 8}
	classRoom     = &limitClass{index: 2, name: "room", rate: 0.5, burst: 20, userRate: 1, userBurst: 40}
	classKeys     = &limitClass{index: 3, name: "keys", rate: 1, burst: 20, userRate: 2, userBurst: 40}
	classAck      = &limitClass{index: 4, name: "welcome_ack", rate: 10, burst: 200, userRate: 20, userBurst: 400}
	classRead     = &limitClass{index: 5, name: "read", rate: 5, burst: 50, userRate: 10, userBurst: 100, coalesce: true}
	classPresence = &limitClass{index: 6, name: "presence", rate: 0.2, burst: 5, userRate: 1, userBurst: 20, coalesce: true}
	// A call's signalling is a handful of frames per side (ring, offer,
	// answer, late ICE candidates, hang-up) and an ICE restart per
	// network change; a group call of 8 sends them to 7 peers at once.
	classCall = &limitClass{index: 7, name: "call", rate: 5, burst: 60, userRate: 10, userBurst: 120}
	// TURN credentials: one request per call and per ICE restart.
	classTURN = &limitClass{index: 8, name: "turn", rate: 0.2, burst: 10, userRate: 0.5, userBurst: 20}
	// Search: the web client searches as one types, a query per pause
	// (300 ms); each one reads up to thousands of messages.
	classSearch  = &limitClass{index: 9, name: "search", rate: 2, burst: 10, userRate: 3, userBurst: 20}
	limitClasses = []*limitClass{classMessage, classTyping, classRoom, classKeys, classAck, classRead, classPresence, classCall, classTURN, classSearch}
)

// frameClass is the one table of which state-changing frame kinds are
// limited, and how, with search, the one reading frame that costs much.
// Frames absent from it (sync, history, members, users, directory,
// forums, device_keys, group_info, ping) only read.
var frameClass = map[string]*limitClass{
	proto.TSend: classMessage,
	proto.TMLS:  classMessage,

	proto.TTyping: classTyping,

	proto.TCreateRoom: classRoom,
	proto.TOpenDM:     classRoom,
	proto.TInvite:     classRoom,
	proto.TInviteExt:  classRoom,
	proto.TJoin:       classRoom,
	proto.TLeave:      classRoom,
	proto.TKick:       classRoom,
	proto.TBan:        classRoom,
	proto.TUnban:      classRoom,
	proto.TSetRole:    classRoom,
	proto.TUpdateRoom: classRoom,

	proto.TKeyPackages: classKeys,
	proto.TClaimKeys:   classKeys,

	proto.TWelcomeAck: classAck,

	proto.TRead:     classRead,
	proto.TPresence: classPresence,

	proto.TCall: classCall,
	proto.TTurn: classTURN,

	proto.TSearch: classSearch,
}

// userLimiters are the per-user buckets of each class, by class index.
func newUserLimiters() []*ratelimit.Limiter {
	out := make([]*ratelimit.Limiter, len(limitClasses))
	for _, c := range limitClasses {
		out[c.index] = ratelimit.New(c.userRate, c.userBurst)
	}
	return out
}

// allow takes a token of the frame's class from the session's bucket and
// the user's; it reports the wait when refused. Frames of no class pass.
func (s *session) allow(c *limitClass) (bool, time.Duration) {
	if c == nil || !s.srv.opts.RateLimits {
		return true, 0
	}
	s.lmu.Lock()
	if s.buckets == nil {
		// Allocated on the first limited frame: an idle connection
		// carries none.
		s.buckets = make([]ratelimit.Bucket, len(limitClasses))
		for _, lc := range limitClasses {
			s.buckets[lc.index].Init(lc.rate, lc.burst)
		}
	}
	ok, wait := s.buckets[c.index].Allow(time.Now())
	s.lmu.Unlock()
	if !ok {
		return false, wait
	}
	return s.srv.userLimits[c.index].Allow(s.actor.User)
}

// limit applies the frame's limit class. A refused frame gets
// rate_limited with retry_after and is not carried out. A coalesced one
// is kept for later (see coalesce) and answered at once: coalesced
// reports whether that happened.
func (s *session) limit(f *proto.ClientFrame) (coalesced bool, err error) {
	c := frameClass[f.T]
	ok, wait := s.allow(c)
	if ok {
		return false, nil
	}
	if c.coalesce && s.coalesce(f, wait) {
		return true, nil
	}
	e := proto.Errorf(proto.CodeRateLimited, "too many %s frames: slow down", c.name)
	e.RetryAfter = int(wait/time.Second) + 1
	return false, e
}

// coalesce keeps a read or presence frame over its limit: only the
// furthest read marker of each room and the latest presence matter, so a
// client syncing markers is never refused, and a flood costs one write
// per room and per refill. At most maxPendingReads rooms are kept: past
// that (reads of made-up rooms) the frame is refused.
func (s *session) coalesce(f *proto.ClientFrame, wait time.Duration) bool {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	switch f.T {
	case proto.TRead:
		if s.pendingReads == nil {
			s.pendingReads = map[string]uint64{}
		}
		cur, ok := s.pendingReads[f.Room]
		if !ok && len(s.pendingReads) >= maxPendingReads {
			return false
		}
		if !ok || f.Seq > cur {
			s.pendingReads[f.Room] = f.Seq
		}
	case proto.TPresence:
		s.pendingPresence = f.Status
	}
	if s.flushTimer == nil {
		s.flushTimer = time.AfterFunc(wait, s.flushCoalesced)
	}
	return true
}

// maxPendingReads bounds the read markers a session keeps for later.
const maxPendingReads = 1000

// flushCoalesced carries out the kept frames the buckets now allow, and
// waits again for the others.
func (s *session) flushCoalesced() {
	s.lmu.Lock()
	s.flushTimer = nil
	reads, presence := s.pendingReads, s.pendingPresence
	s.pendingReads, s.pendingPresence = nil, ""
	s.lmu.Unlock()
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed || s.srv.ctx.Err() != nil {
		return // a presence after the session's "offline" would stick
	}
	for room, seq := range reads {
		ok, wait := s.allow(classRead)
		if !ok {
			s.coalesce(&proto.ClientFrame{T: proto.TRead, Room: room, Seq: seq}, wait)
			continue
		}
		if err := s.srv.chat.MarkRead(s.srv.ctx, s.actor, room, seq); err != nil {
			s.logger().Debug("coalesced read refused", "room", room, "err", err)
		}
	}
	if presence != "" {
		if ok, wait := s.allow(classPresence); !ok {
			s.coalesce(&proto.ClientFrame{T: proto.TPresence, Status: presence}, wait)
		} else if err := s.srv.chat.Presence(s.actor.User, presence); err != nil {
			s.logger().Debug("coalesced presence refused", "err", err)
		}
	}
}

// stopCoalescing drops what was kept, when the session ends.
func (s *session) stopCoalescing() {
	s.lmu.Lock()
	defer s.lmu.Unlock()
	if s.flushTimer != nil {
		s.flushTimer.Stop()
		s.flushTimer = nil
	}
	s.pendingReads, s.pendingPresence = nil, ""
}
