package ratelimit

import (
	"fmt"
	"net/netip"
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

// FuzzNetwork: every address of one /64 (IPv6) gives one key, and an
// IPv4 address (mapped or not) is its own.
func FuzzNetwork(f *testing.F) {
	for _, s := range []string{"192.0.2.1", "::ffff:192.0.2.1", "2001:db8::1", "2001:db8::1%eth0", "garbage", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		key := Network(s)
		a, err := netip.ParseAddr(s)
		if err != nil {
			if key != s {
				t.Fatalf("%q: not an address, key %q", s, key)
			}
			return
		}
		if a.Unmap().Is4() {
			if key != a.Unmap().String() {
				t.Fatalf("%q: key %q", s, key)
			}
			return
		}
		// Another address of the same /64 has the same key.
		b := a.WithZone("").As16()
		b[15] ^= 0xff
		b[8] ^= 0x01
		if other := Network(netip.AddrFrom16(b).String()); other != key {
			t.Fatalf("%q: %q, and %q for its neighbour", s, key, other)
		}
	})
}

func TestNetwork(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":            "192.0.2.1",
		"::ffff:192.0.2.1":     "192.0.2.1",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"2001:db8:1:3::1":      "2001:db8:1:3::/64",
		"not an address":       "not an address",
	} {
		if got := Network(in); got != want {
			t.Errorf("Network(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestPeekTakesNothing(t *testing.T) {
	l := New(1.0/3600, 2)
	for range 10 {
		if ok, _ := l.Peek("k"); !ok {
			t.Fatal("peek refused a full bucket")
		}
	}
	l.Allow("k")
	l.Allow("k")
	if ok, wait := l.Peek("k"); ok || wait <= 0 {
		t.Fatalf("peek of an empty bucket: %v %v", ok, wait)
	}
}
