package files

import (
	"context"
	"time"

	"relais/server/store"
)

// AntivirusState is what the admin page shows of the antivirus.
type AntivirusState struct {
	// Clamd is clamd's address; empty when only the built-in policy runs.
	Clamd string `json:"clamd,omitempty"`
	// Up says clamd answered a ping just now.
	Up      bool   `json:"up"`
	Version string `json:"version,omitempty"`
	Error   string `json:"error,omitempty"`
	// Down is what happens to files while clamd is down: hold or reject.
	Down string `json:"down"`
	// Pending counts the files waiting for a scan (at most 10000).
	Pending       int  `json:"pending"`
	ScanEncrypted bool `json:"scan_encrypted"`
}

// Antivirus asks clamd, when configured, whether it is up and its
// version, and counts the files waiting for it.
func (s *Service) Antivirus(ctx context.Context) AntivirusState {
	st := AntivirusState{Down: string(s.pipe.OnClamdDown), ScanEncrypted: s.scanEnc}
	s.db.View(func(tx *store.Tx) error {
		p, err := tx.PendingScans(10000)
		st.Pending = len(p)
		return err
	})
	if cl := s.pipe.Clamd; cl != nil {
		st.Clamd = cl.String()
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		v, err := cl.Version(ctx)
		if err != nil {
			st.Error = err.Error()
		} else {
			st.Up, st.Version = true, v
		}
	}
	return st
}
