package account

import (
	"testing"
	"time"

	"relais/server/proto"
)

func TestDailyCounterLimitsPerKeyOver24Hours(t *testing.T) {
	var c dailyCounter
	t0 := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	steps := []struct {
		name      string
		at        time.Duration // after t0
		by, to    string
		wantRetry int // 0: allowed
	}{
		{name: "first mail", at: 0, by: "u1", to: "a"},
		{name: "same address within the day", at: time.Hour, by: "u2", to: "a", wantRetry: 23*3600 + 1},
		{name: "other address", at: time.Hour, by: "u1", to: "b"},
		{name: "inviter at its limit of 2", at: 2 * time.Hour, by: "u1", to: "c", wantRetry: 22*3600 + 1},
		{name: "a refused try counted nothing", at: 2 * time.Hour, by: "u3", to: "c"},
		{name: "a day after the first, the address again", at: 24 * time.Hour, by: "u2", to: "a"},
		{name: "a day after the first, the inviter has room for one", at: 24*time.Hour + time.Minute, by: "u1", to: "d"},
	}
	for _, s := range steps {
		err := c.take(t0.Add(s.at), "by:"+s.by, 2, "to:"+s.to, 1)
		pe := proto.AsError(err)
		switch {
		case s.wantRetry == 0 && err != nil:
			t.Fatalf("%s: refused: %v", s.name, err)
		case s.wantRetry != 0 && (pe == nil || pe.Code != proto.CodeRateLimited || pe.RetryAfter != s.wantRetry):
			t.Fatalf("%s: got %v (retry %v), want rate_limited retry %d", s.name, err, pe, s.wantRetry)
		}
	}
	// A mail that could not be sent is not counted.
	at := t0.Add(30 * time.Hour)
	if err := c.take(at, "by:u9", 1, "to:z", 1); err != nil {
		t.Fatal(err)
	}
	c.giveBack(at, "by:u9", "to:z")
	if err := c.take(at.Add(time.Second), "by:u9", 1, "to:z", 1); err != nil {
		t.Fatalf("after giving back: %v", err)
	}
}
