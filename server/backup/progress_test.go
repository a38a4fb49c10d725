package backup

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestProgressBarOnATerminalLinesOtherwise: a terminal gets a bar redrawn
// in place, a log or a pipe plain lines; both end with a summary line.
func TestProgressBarOnATerminalLinesOtherwise(t *testing.T) {
	for _, tty := range []bool{true, false} {
		var out bytes.Buffer
		p := NewProgress(&out, tty, "backup", 4<<20)
		w := p.Writer(&bytes.Buffer{})
		for range 4 {
			p.last = time.Time{} // as if the redraw period had passed
			w.Write(make([]byte, 1<<20))
		}
		p.Done()
		s := out.String()
		if !strings.HasSuffix(s, "\n") || !strings.Contains(s, "backup: 4.0 MiB in ") {
			t.Errorf("tty %v: no summary line: %q", tty, s)
		}
		if tty {
			if !strings.Contains(s, "\r\033[Kbackup [███████████████···············]  50% 2.0/4.0 MiB") || strings.Count(s, "\n") != 1 {
				t.Errorf("terminal: %q", s)
			}
		} else if !strings.Contains(s, "backup: 50%, 2.0 of 4.0 MiB") || strings.Contains(s, "\r") || strings.Count(s, "\n") != 5 {
			t.Errorf("plain: %q", s)
		}
	}
}
