package adminops

import (
	"bytes"
	"net/url"
	"strings"
	"testing"
	"time"

	"relais/server/proto"
	"relais/server/store"
)

// TestParseFilter: what the page and the CLI send, and what is refused
// with bad_request.
func TestParseFilter(t *testing.T) {
	day := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		query string
		want  Filter
		bad   bool
	}{
		{"", Filter{}, false},
		{"action=user.approve&actor=cli", Filter{Action: ActApprove, Actor: "cli"}, false},
		{"from=2026-12-01&to=2026-12-01", Filter{From: day, To: day.AddDate(0, 0, 1)}, false},
		{"from=2026-12-01T10:00:00Z", Filter{From: day.Add(10 * time.Hour)}, false},
		{"limit=5", Filter{Limit: 5}, false},
		{"action=user.delete", Filter{}, true},
		{"action=user.approve&action=user.promote", Filter{}, true},
		{"from=hier", Filter{}, true},
		{"from=2026-12-02&to=2026-12-01", Filter{}, true},
		{"limit=0", Filter{}, true},
		{"limit=100001", Filter{}, true},
		{"actor=" + strings.Repeat("a", 65), Filter{}, true},
		{"target=x", Filter{}, true},
	} {
		q, _ := url.ParseQuery(c.query)
		f, err := ParseFilter(q)
		if c.bad {
			if pe := proto.AsError(err); pe == nil || pe.Code != proto.CodeBadRequest {
				t.Errorf("%q: %v, want bad_request", c.query, err)
			}
			continue
		}
		if err != nil || f != c.want {
			t.Errorf("%q: %+v %v, want %+v", c.query, f, err, c.want)
		}
	}
}

// FuzzParseFilter: any query either parses into a filter whose bounds are
// in order or is refused with bad_request; it never panics.
func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{"", "action=user.approve", "from=2026-12-01&to=2026-12-02", "limit=10", "from=2026-12-01T10:00:00%2B02:00", "actor=cli&actor=cli", "%zz"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := url.ParseQuery(s)
		if err != nil {
			return
		}
		flt, err := ParseFilter(q)
		if err != nil {
			if pe := proto.AsError(err); pe == nil || pe.Code != proto.CodeBadRequest {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		if !flt.From.IsZero() && !flt.To.IsZero() && !flt.From.Before(flt.To) {
			t.Fatalf("%q: bounds out of order %+v", s, flt)
		}
		if flt.Limit < 0 || flt.Limit > MaxLimit {
			t.Fatalf("%q: limit %d", s, flt.Limit)
		}
	})
}

// TestCSVCellsAreNotFormulas: a value a spreadsheet would run as a
// formula is written as text.
func TestCSVCellsAreNotFormulas(t *testing.T) {
	var b bytes.Buffer
	e := Entry{AuditEntry: store.AuditEntry{Time: time.Unix(0, 0), Actor: "cli", Addr: SocketAddr, Action: ActDomainsAdd, Target: "=HYPERLINK(\"x\")", Outcome: "ok"}}
	if err := WriteCSV(&b, []Entry{e}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `"'=HYPERLINK(""x"")"`) {
		t.Fatalf("CSV:\n%s", b.String())
	}
}
