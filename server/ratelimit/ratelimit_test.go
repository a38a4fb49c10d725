package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(2, 3) // 3 at once, then 2 per second
	l.now = func() time.Time { return now }
	steps := []struct {
		advance time.Duration
		key     string
		want    bool
	}{
		{0, "a", true}, {0, "a", true}, {0, "a", true}, {0, "a", false},
		{0, "b", true}, // keys are independent
		{500 * time.Millisecond, "a", true},
		{0, "a", false},
		{10 * time.Second, "a", true}, {0, "a", true}, {0, "a", true}, {0, "a", false}, // refills to burst, not beyond
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		ok, wait := l.Allow(s.key)
		if ok != s.want {
			t.Fatalf("step %d (%s): allow = %v, want %v", i, s.key, ok, s.want)
		}
		if !ok && (wait <= 0 || wait > time.Second) {
			t.Fatalf("step %d: retry after %v", i, wait)
		}
	}
}

func TestLimiterForgetsIdleKeys(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(100, 1)
	l.now = func() time.Time { return now }
	for i := range 5000 {
		l.Allow(fmt.Sprint(i))
		now = now.Add(time.Millisecond)
	}
	if n := len(l.buckets); n > 1100 {
		t.Fatalf("%d buckets kept", n)
	}
}

func TestNilLimiterAllows(t *testing.T) {
	var l *Limiter
	if ok, _ := l.Allow("x"); !ok {
		t.Fatal("nil limiter refused")
	}
}

func TestLimiterUndoGivesBackUpToTheBurst(t *testing.T) {
	now := time.Unix(1000, 0)
	l := New(1, 2)
	l.now = func() time.Time { return now }
	l.Allow("a")
	l.Allow("a")
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("allowed past the burst")
	}
	l.Undo("a")
	if ok, _ := l.Allow("a"); !ok {
		t.Fatal("a token given back was not usable")
	}
	l.Undo("a")
	l.Undo("a")
	l.Undo("a") // beyond the burst: capped
	l.Allow("a")
	l.Allow("a")
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("Undo filled past the burst")
	}
	l.Undo("unknown") // no bucket: nothing to give back
}
