package nodetest

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fatalRecorder is a testing.TB whose Fatalf records the message and ends
// the goroutine, as the real one does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// checkForMessage runs CheckFor on its own goroutine and returns what it
// failed with, "" if it returned.
func checkForMessage(t *testing.T, within time.Duration, check func() error) string {
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		CheckFor(r, within, check)
	}()
	<-done
	return r.msg
}

// TestCheckForReportsTheLastState: on timeout CheckFor fails with the error
// the last check returned, the state seen at the end, not the first one.
func TestCheckForReportsTheLastState(t *testing.T) {
	calls := 0
	msg := checkForMessage(t, 50*time.Millisecond, func() error {
		calls++
		return fmt.Errorf("seen state %d", calls)
	})
	if calls < 2 {
		t.Fatalf("check called %d times in 50ms", calls)
	}
	if want := fmt.Sprintf("seen state %d", calls); !strings.Contains(msg, want) || !strings.Contains(msg, "timed out after 50ms") {
		t.Fatalf("CheckFor failed with %q, want the last state %q and the timeout", msg, want)
	}
}

// TestCheckForReturnsOnceTheCheckPasses: the first nil ends the wait,
// without failing, even after errors.
func TestCheckForReturnsOnceTheCheckPasses(t *testing.T) {
	calls := 0
	msg := checkForMessage(t, 10*time.Second, func() error {
		if calls++; calls < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if msg != "" || calls != 3 {
		t.Fatalf("CheckFor failed with %q after %d calls, want a return after 3", msg, calls)
	}
}
