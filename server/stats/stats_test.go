package stats

import (
	"sync"
	"testing"
)

// TestStatsNamesCountsOnlyItsNames: a name outside the set counts as
// Other, never as a new entry a client could grow.
func TestStatsNamesCountsOnlyItsNames(t *testing.T) {
	n := NewNames("send", "sync")
	for _, name := range []string{"send", "send", "sync", "forged", "other"} {
		n.Inc(name)
	}
	n.IncBytes([]byte("sync"))
	n.IncBytes([]byte("\x00junk"))
	got := map[string]uint64{}
	n.Each(func(name string, c uint64) { got[name] = c })
	want := map[string]uint64{"send": 2, "sync": 2, Other: 3}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v || n.Get(k) != v {
			t.Errorf("%s: got %d (Get %d), want %d", k, got[k], n.Get(k), v)
		}
	}
	if n.Get("forged") != 0 {
		t.Error("a name outside the set has a count")
	}
}

// TestStatsHistogramBuckets: each observation lands in the first bucket
// whose bound is at or above it; counts are cumulative.
func TestStatsHistogramBuckets(t *testing.T) {
	h := NewHistogram(1, 2, 4)
	for _, tc := range []struct {
		v    float64
		want [3]uint64 // cumulative counts at bounds 1, 2, 4 after v
	}{
		{0.5, [3]uint64{1, 1, 1}},
		{1, [3]uint64{2, 2, 2}},
		{1.5, [3]uint64{2, 3, 3}},
		{4, [3]uint64{2, 3, 4}},
		{100, [3]uint64{2, 3, 4}},
	} {
		h.Observe(tc.v)
		s := h.Snapshot()
		for i, b := range []float64{1, 2, 4} {
			if s.Buckets[b] != tc.want[i] {
				t.Errorf("after %v: bucket %v = %d, want %d", tc.v, b, s.Buckets[b], tc.want[i])
			}
		}
	}
	s := h.Snapshot()
	if s.Count != 5 || s.Sum != 107 {
		t.Errorf("count %d sum %v, want 5 and 107", s.Count, s.Sum)
	}
}

// TestStatsConcurrentObserve: concurrent observations are all counted
// and summed.
func TestStatsConcurrentObserve(t *testing.T) {
	h := NewHistogram(ExpBounds(1, 2, 4)...)
	n := NewNames("a")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				h.Observe(1)
				n.Inc("a")
			}
		})
	}
	wg.Wait()
	if s := h.Snapshot(); s.Count != 8000 || s.Sum != 8000 {
		t.Errorf("count %d sum %v, want 8000", s.Count, s.Sum)
	}
	if n.Get("a") != 8000 {
		t.Errorf("names: %d", n.Get("a"))
	}
}

// TestStatsNoAllocation: counting on a hot path allocates nothing.
func TestStatsNoAllocation(t *testing.T) {
	n := NewNames("send", "sync")
	h := NewHistogram(ExpBounds(0.001, 2, 12)...)
	b := []byte("send")
	for _, tc := range []struct {
		name string
		f    func()
	}{
		{"Inc", func() { n.Inc("sync") }},
		{"Inc unknown", func() { n.Inc("nope") }},
		{"IncBytes", func() { n.IncBytes(b) }},
		{"Observe", func() { h.Observe(0.01) }},
	} {
		if a := testing.AllocsPerRun(100, tc.f); a != 0 {
			t.Errorf("%s: %v allocations", tc.name, a)
		}
	}
}
