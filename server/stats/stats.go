// Package stats holds the counters the node's packages keep about their
// own work, in forms that cost no allocation and no lock on a hot path:
// counters by name from a fixed set, and histograms with fixed buckets.
// It exports nothing by itself; server/metrics reads these for Prometheus
// and the admin page reads them through it.
package stats

import (
	"math"
	"sync/atomic"
)

// Other is the name under which a Names set counts a name it does not
// list, so that a client cannot grow the set.
const Other = "other"

// Names counts events by name, the names fixed when the set is made.
// Inc on a name of the set is one map lookup (the map is never written
// again, so readers need no lock) and one atomic add.
type Names struct {
	index  map[string]int
	names  []string
	counts []atomic.Uint64
}

// NewNames returns a set counting each of names, and Other.
func NewNames(names ...string) *Names {
	n := &Names{index: make(map[string]int, len(names)+1)}
	for _, name := range append(names, Other) {
		if _, dup := n.index[name]; dup {
			continue
		}
		n.index[name] = len(n.names)
		n.names = append(n.names, name)
	}
	n.counts = make([]atomic.Uint64, len(n.names))
	return n
}

// Inc counts one event of name (Other when name is not in the set).
func (n *Names) Inc(name string) {
	i, ok := n.index[name]
	if !ok {
		i = n.index[Other]
	}
	n.counts[i].Add(1)
}

// IncBytes is Inc for a name held in bytes; it does not allocate.
func (n *Names) IncBytes(name []byte) {
	i, ok := n.index[string(name)]
	if !ok {
		i = n.index[Other]
	}
	n.counts[i].Add(1)
}

// Get returns the count of name.
func (n *Names) Get(name string) uint64 {
	if i, ok := n.index[name]; ok {
		return n.counts[i].Load()
	}
	return 0
}

// Each calls f with every name whose count is not zero, in the order the
// names were given: a name never seen is not exported as a zero.
func (n *Names) Each(f func(name string, count uint64)) {
	for i, name := range n.names {
		if c := n.counts[i].Load(); c != 0 {
			f(name, c)
		}
	}
}

// Histogram counts observations into buckets with fixed upper bounds.
// Observe is lock-free: a few comparisons and two atomic adds.
type Histogram struct {
	bounds []float64
	counts []atomic.Uint64 // len(bounds)+1: the last one is +Inf
	sum    atomic.Uint64   // float64 bits
}

// NewHistogram returns a histogram with the given upper bounds, which
// must be increasing.
func NewHistogram(bounds ...float64) *Histogram {
	for i := 1; i < len(bounds); i++ {
		if bounds[i] <= bounds[i-1] {
			panic("stats: histogram bounds must increase")
		}
	}
	return &Histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

// ExpBounds returns n bounds from start, each factor times the previous.
func ExpBounds(start, factor float64, n int) []float64 {
	b := make([]float64, n)
	for i := range b {
		b[i] = start
		start *= factor
	}
	return b
}

// Observe records v.
func (h *Histogram) Observe(v float64) {
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// Snapshot is a histogram's state at one moment.
type Snapshot struct {
	Count uint64
	Sum   float64
	// Buckets maps each upper bound to the number of observations at or
	// below it (cumulative, as Prometheus has them).
	Buckets map[float64]uint64
}

// Snapshot returns the counts so far. Observations that race with it may
// be in the buckets and not yet in the sum; Count is the sum of the
// buckets, so it always agrees with them.
func (h *Histogram) Snapshot() Snapshot {
	s := Snapshot{Sum: math.Float64frombits(h.sum.Load()), Buckets: make(map[float64]uint64, len(h.bounds))}
	var cum uint64
	for i := range h.counts {
		cum += h.counts[i].Load()
		if i < len(h.bounds) {
			s.Buckets[h.bounds[i]] = cum
		}
	}
	s.Count = cum
	return s
}
