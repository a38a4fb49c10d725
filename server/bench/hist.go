package bench

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// hist is a latency histogram in the manner of HDR histograms: values in
// microseconds, exact below 128 µs, then 64 linear sub-buckets per power
// of two (at most 1.6 % error), up to hours. Record is lock-free and safe
// for concurrent use.
type hist struct {
	counts [histBuckets]atomic.Int64
	n      atomic.Int64
	max    atomic.Int64
}

const (
	histLinear  = 128
	histSub     = 64
	histBuckets = histLinear + 40*histSub
)

func histIndex(us int64) int {
	if us < histLinear {
		return int(max(us, 0))
	}
	e := bits.Len64(uint64(us)) - 7 // ≥ 1: us >> e is in [64, 128)
	i := histLinear + (e-1)*histSub + int(us>>e) - histSub
	return min(i, histBuckets-1)
}

// histValue is the middle of bucket i, in microseconds.
func histValue(i int) int64 {
	if i < histLinear {
		return int64(i)
	}
	e := (i-histLinear)/histSub + 1
	m := int64((i-histLinear)%histSub + histSub)
	return m<<e + (int64(1)<<e)/2
}

func (h *hist) record(d time.Duration) {
	us := d.Microseconds()
	h.counts[histIndex(us)].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			return
		}
	}
}

func (h *hist) count() int64 { return h.n.Load() }

// quantile returns the value under which a fraction q of the recorded
// values fall.
func (h *hist) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := int64(q*float64(n) + 0.5)
	rank = min(max(rank, 1), n)
	var seen int64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			v := histValue(i)
			if m := h.max.Load(); v > m {
				v = m
			}
			return time.Duration(v) * time.Microsecond
		}
	}
	return time.Duration(h.max.Load()) * time.Microsecond
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
