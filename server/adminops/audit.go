package adminops

import (
	"encoding/csv"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"relais/server/proto"
	"relais/server/store"
)

// Filter selects audit entries. Zero fields select everything.
type Filter struct {
	Action string
	// Actor is a user id, or "cli".
	Actor    string
	From, To time.Time
	// Limit bounds the entries returned (DefaultLimit when zero).
	Limit int
}

// Limits of one answer of the audit log.
const (
	DefaultLimit = 1000
	MaxLimit     = 100000
)

// ParseFilter reads a filter from query parameters: action, actor, from
// and to (RFC 3339 or a date, to's date included), limit.
func ParseFilter(q url.Values) (Filter, error) {
	var f Filter
	for k, v := range q {
		if len(v) != 1 {
			return Filter{}, proto.Errorf(proto.CodeBadRequest, "give %s once", k)
		}
		switch k {
		case "action":
			if !slices.Contains(Actions, v[0]) {
				return Filter{}, proto.Errorf(proto.CodeBadRequest, "unknown action %q", v[0])
			}
			f.Action = v[0]
		case "actor":
			if len(v[0]) > 64 {
				return Filter{}, proto.Errorf(proto.CodeBadRequest, "actor too long")
			}
			f.Actor = v[0]
		case "from", "to":
			t, err := parseTime(v[0], k == "to")
			if err != nil {
				return Filter{}, err
			}
			if k == "from" {
				f.From = t
			} else {
				f.To = t
			}
		case "limit":
			n, err := strconv.Atoi(v[0])
			if err != nil || n < 1 || n > MaxLimit {
				return Filter{}, proto.Errorf(proto.CodeBadRequest, "limit: a number from 1 to %d", MaxLimit)
			}
			f.Limit = n
		default:
			return Filter{}, proto.Errorf(proto.CodeBadRequest, "unknown parameter %q", k)
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return Filter{}, proto.Errorf(proto.CodeBadRequest, "from must be before to")
	}
	return f, nil
}

// parseTime reads RFC 3339 or a date; a date as an end bound means the
// end of that day.
func parseTime(s string, end bool) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, proto.Errorf(proto.CodeBadRequest, "a time is RFC 3339 (2026-12-01T10:00:00Z) or a date (2026-12-01)")
	}
	if end {
		t = t.AddDate(0, 0, 1)
	}
	return t, nil
}

// Entry is an audit entry as shown to administrators: the ids resolved
// to the addresses they see in the users list anyway. The log itself
// holds ids only, so that an address is never written where it cannot be
// erased.
type Entry struct {
	store.AuditEntry
	ActorEmail  string `json:"actor_email,omitempty"`
	TargetEmail string `json:"target_email,omitempty"`
}

// userTargeted says which actions name a user id as their target.
func userTargeted(action string) bool {
	return strings.HasPrefix(action, "user.") || strings.HasPrefix(action, "invitation.")
}

// Audit returns the entries f selects, newest first.
func (s *Service) Audit(f Filter) ([]Entry, error) {
	if f.Limit <= 0 {
		f.Limit = DefaultLimit
	}
	var out []Entry
	emails := map[string]string{}
	email := func(tx *store.Tx, id string) string {
		if id == "" || id == CLIActor {
			return ""
		}
		e, ok := emails[id]
		if !ok {
			if u, err := tx.User(id); err == nil {
				e = u.Email
			}
			emails[id] = e
		}
		return e
	}
	err := s.cfg.DB.View(func(tx *store.Tx) error {
		return tx.Audit(f.From, f.To, func(e store.AuditEntry) bool {
			if (f.Action != "" && e.Action != f.Action) || (f.Actor != "" && e.Actor != f.Actor) {
				return true
			}
			v := Entry{AuditEntry: e, ActorEmail: email(tx, e.Actor)}
			if userTargeted(e.Action) {
				v.TargetEmail = email(tx, e.Target)
			}
			out = append(out, v)
			return len(out) < f.Limit
		})
	})
	return out, err
}

// CSVHeader is the first line of the CSV export.
var CSVHeader = []string{"time", "actor", "actor_email", "unix_user", "from", "action", "target", "target_email", "outcome"}

// WriteCSV writes entries as CSV, header first.
func WriteCSV(w io.Writer, entries []Entry) error {
	cw := csv.NewWriter(w)
	cw.Write(CSVHeader)
	for _, e := range entries {
		cw.Write([]string{e.Time.UTC().Format(time.RFC3339Nano), cell(e.Actor), cell(e.ActorEmail), cell(e.Unix), cell(e.Addr),
			cell(e.Action), cell(e.Target), cell(e.TargetEmail), cell(e.Outcome)})
	}
	cw.Flush()
	return cw.Error()
}

// cell keeps a spreadsheet from reading a value as a formula.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
