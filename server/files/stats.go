package files

import (
	"relais/server/proto"
	"relais/server/stats"
)

// Outcomes of an upload's Finish and of an antivirus scan, as Stats
// counts them.
const (
	UploadStored  = "stored"  // recorded (its scan may still be pending)
	UploadRefused = "refused" // refused with a protocol error: policy, quarantine, rights
	UploadFailed  = "failed"  // an internal error

	ScanClean       = "clean"
	ScanQuarantined = "quarantined"
	ScanUnavailable = "unavailable" // clamd did not answer: held pending, retried
	ScanError       = "error"       // the scan or recording its verdict failed: retried
)

// Stats are the attachment service's counters since it started;
// server/metrics exports them.
type Stats struct {
	Uploads *stats.Names
	Scans   *stats.Names
}

func newStats() *Stats {
	return &Stats{
		Uploads: stats.NewNames(UploadStored, UploadRefused, UploadFailed),
		Scans:   stats.NewNames(ScanClean, ScanQuarantined, ScanUnavailable, ScanError),
	}
}

// Stats returns the service's counters.
func (s *Service) Stats() *Stats { return s.stats }

func (st *Stats) upload(err error) {
	switch {
	case err == nil:
		st.Uploads.Inc(UploadStored)
	case proto.AsError(err) != nil:
		st.Uploads.Inc(UploadRefused)
	default:
		st.Uploads.Inc(UploadFailed)
	}
}
