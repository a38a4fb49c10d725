package ws

import (
	"bytes"
	"sync/atomic"

	"relais/server/proto"
	"relais/server/stats"
)

// Stats are the endpoint's counters since it started; server/metrics
// exports them. Each is counted where it happens, with an atomic add.
type Stats struct {
	// Opened counts the websocket sessions registered.
	Opened atomic.Uint64
	// SlowConsumers counts sessions closed because their queue filled.
	SlowConsumers atomic.Uint64
	// FramesIn counts client frames by type; "invalid" for frames that
	// do not decode, stats.Other for a type the node does not know.
	FramesIn *stats.Names
	// FramesOut counts frames written to clients, by type.
	FramesOut *stats.Names
}

// frameInvalid is the type under which undecodable client frames count.
const frameInvalid = "invalid"

func newStats() *Stats {
	return &Stats{
		FramesIn: stats.NewNames(frameInvalid, proto.TSync, proto.TSend, proto.TCreateRoom, proto.TOpenDM, proto.TInvite,
			proto.TInviteExt, proto.TJoin, proto.TLeave, proto.TKick, proto.TBan, proto.TUnban, proto.TSetRole,
			proto.TUpdateRoom, proto.THistory, proto.TMembers, proto.TUsers, proto.TDirectory, proto.TForums,
			proto.TRead, proto.TTyping, proto.TPresence, proto.TPing, proto.TKeyPackages, proto.TClaimKeys,
			proto.TDeviceKeys, proto.TMLS, proto.TGroupInfo, proto.TWelcomeAck, proto.TSearch),
		FramesOut: stats.NewNames(proto.THello, proto.TRoom, proto.TEvent, proto.TGap, proto.TSynced, proto.TAck,
			proto.TOK, proto.TError, proto.TReceipt, proto.TUnread, proto.TPong, proto.TResult, proto.TTypingEv,
			proto.TPresEv, proto.TFileState, proto.TWelcome, proto.TDevice, proto.TLowKeys),
	}
}

// Stats returns the endpoint's counters.
func (s *Server) Stats() *Stats { return s.stats }

// QueueDepths returns the frames waiting in all sessions' queues and in
// the longest one, at this moment.
func (s *Server) QueueDepths() (total, deepest int) {
	for _, ss := range s.hub.sessions() {
		ss.mu.Lock()
		n := len(ss.queue)
		ss.mu.Unlock()
		total += n
		deepest = max(deepest, n)
	}
	return total, deepest
}

var typePrefix = []byte(`{"t":"`)

// countOut counts one frame written to a client by its type, read from
// its first bytes: every server frame is encoded with "t" first.
func (s *Server) countOut(frame []byte) {
	if rest, ok := bytes.CutPrefix(frame, typePrefix); ok {
		if i := bytes.IndexByte(rest, '"'); i > 0 {
			s.stats.FramesOut.IncBytes(rest[:i])
			return
		}
	}
	s.stats.FramesOut.Inc(stats.Other)
}
