// Package ratelimit provides token buckets, alone or keyed (per client
// address, per e-mail address, per user), with bounded memory.
package ratelimit

import (
	"math"
	"net/netip"
	"sync"
	"time"
)

// Bucket is a token bucket: it holds up to Burst tokens and refills at
// Rate tokens per second. The zero value refuses nothing until Init.
// A Bucket is not safe for concurrent use; Limiter is.
type Bucket struct {
	rate, burst float64
	tokens      float64
	last        time.Time
}

// Init sets the bucket's rate and burst and fills it.
func (b *Bucket) Init(rate float64, burst int) {
	b.rate, b.burst, b.tokens, b.last = rate, float64(burst), float64(burst), time.Time{}
}

// Allow takes one token if there is one. When there is none it returns how
// long until there will be.
func (b *Bucket) Allow(now time.Time) (bool, time.Duration) {
	if b.rate == 0 {
		return true, 0
	}
	if !b.last.IsZero() {
		b.tokens = math.Min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

// full reports whether the bucket would be full at now (it can be
// forgotten without changing any answer).
func (b *Bucket) full(now time.Time) bool {
	return b.tokens+now.Sub(b.last).Seconds()*b.rate >= b.burst
}

// Limiter is a set of buckets by key. Buckets that have refilled are
// forgotten, so memory follows the number of recently active keys.
type Limiter struct {
	rate  float64
	burst int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*Bucket
	calls   int
}

// New returns a Limiter allowing burst events at once and rate per second
// after that, for each key.
func New(rate float64, burst int) *Limiter {
	return &Limiter{rate: rate, burst: burst, now: time.Now, buckets: map[string]*Bucket{}}
}

// Peek reports whether key's bucket has a token, without taking it; when
// it has none it says how long until it will. A nil Limiter allows
// everything.
func (l *Limiter) Peek(key string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil || b.rate == 0 {
		return true, 0
	}
	tokens := math.Min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	if tokens >= 1 {
		return true, 0
	}
	return false, time.Duration((1 - tokens) / b.rate * float64(time.Second))
}

// Network returns the client network an address belongs to, the unit of
// per-client limits: the /64 of an IPv6 address (one subscriber's, which
// can pick any address in it), the IPv4 address itself. A string that is
// not an address is its own key.
func Network(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}

// Allow takes a token from key's bucket; when refused it says how long to
// wait. A nil Limiter allows everything (rate limits turned off).
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls++
	if l.calls%1024 == 0 {
		for k, b := range l.buckets {
			if b.full(now) {
				delete(l.buckets, k)
			}
		}
	}
	b := l.buckets[key]
	if b == nil {
		b = &Bucket{}
		b.Init(l.rate, l.burst)
		l.buckets[key] = b
	}
	return b.Allow(now)
}

// Undo gives back a token Allow took from key's bucket (up to the burst),
// for a caller that takes from several buckets all or none.
func (l *Limiter) Undo(key string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.buckets[key]; b != nil {
		b.tokens = math.Min(b.burst, b.tokens+1)
	}
}
