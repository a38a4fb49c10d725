package chat

import (
	"time"

	"relais/server/proto"
	"relais/server/stats"
)

// Outcomes of a send, as Stats.Sends counts them.
const (
	SendAcked   = "acked"   // committed (or replayed) and acknowledged
	SendRefused = "refused" // refused with a protocol error
	SendFailed  = "failed"  // an internal error, or the node stopping
)

// Stats are the service's counters since it started; server/metrics
// exports them.
type Stats struct {
	// Sends counts sends by outcome.
	Sends *stats.Names
	// AckLatency is the time from a send's arrival to its ack (after the
	// commit's fsync), in seconds, for acked sends.
	AckLatency *stats.Histogram
}

func newStats() *Stats {
	return &Stats{
		Sends:      stats.NewNames(SendAcked, SendRefused, SendFailed),
		AckLatency: stats.NewHistogram(stats.ExpBounds(0.0005, 2, 14)...),
	}
}

// Stats returns the service's counters.
func (s *Service) Stats() *Stats { return s.stats }

func (st *Stats) send(err error, took time.Duration) {
	switch {
	case err == nil:
		st.Sends.Inc(SendAcked)
		st.AckLatency.Observe(took.Seconds())
	case proto.AsError(err) != nil:
		st.Sends.Inc(SendRefused)
	default:
		st.Sends.Inc(SendFailed)
	}
}
