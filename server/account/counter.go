package account

import (
	"sync"
	"time"

	"relais/server/proto"
)

// dailyCounter counts events per key over the last 24 hours, on the
// service's clock. It lives in memory: a restart forgets the counts, which
// the persistent rule (no second mail while an invitation is pending)
// does not depend on.
type dailyCounter struct {
	mu sync.Mutex
	m  map[string][]time.Time
}

const day = 24 * time.Hour

// take counts one event for each of the keys if none of them has reached
// its limit in the last 24 hours, and otherwise counts nothing and returns
// a rate_limited error saying when to try again.
func (c *dailyCounter) take(now time.Time, key1 string, limit1 int, key2 string, limit2 int) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string][]time.Time{}
	}
	var wait time.Duration
	for _, k := range []struct {
		key   string
		limit int
	}{{key1, limit1}, {key2, limit2}} {
		recent := c.m[k.key][:0]
		for _, t := range c.m[k.key] {
			if now.Sub(t) < day {
				recent = append(recent, t)
			}
		}
		if len(recent) == 0 {
			delete(c.m, k.key)
		} else {
			c.m[k.key] = recent
		}
		if len(recent) >= k.limit {
			wait = max(wait, day-now.Sub(recent[0]))
		}
	}
	if wait > 0 {
		e := proto.Errorf(proto.CodeRateLimited, "too many invitations in the last 24 hours: try again later")
		e.RetryAfter = int(wait/time.Second) + 1
		return e
	}
	c.m[key1] = append(c.m[key1], now)
	c.m[key2] = append(c.m[key2], now)
	return nil
}

// giveBack forgets the events counted at now for the keys, for an action
// that did not happen after all (a mail that could not be sent).
func (c *dailyCounter) giveBack(now time.Time, keys ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		ts := c.m[k]
		for i := len(ts) - 1; i >= 0; i-- {
			if ts[i].Equal(now) {
				c.m[k] = append(ts[:i], ts[i+1:]...)
				break
			}
		}
	}
}
