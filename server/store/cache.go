package store

import "slices"

// maxCached bounds each cache of the writer. Past it the cache starts
// again empty: a crude bound, but the working set of a busy node (its
// active rooms and their members) refills it within a few commits.
const maxCached = 1 << 16

// writeCache keeps decoded copies of the records that nearly every write
// reads (a room's settings, the sender's membership, the room's MLS group
// and the header of its last event), so that the single writer, which
// every send waits for, does not decode the same JSON again and again.
//
// Only the writer goroutine touches it, so it needs no lock, and read-only
// transactions never use it: they keep their snapshot of the file. Writes
// go to the file as always and to the open transaction's overlay, which
// becomes the cached value when the transaction commits and is dropped
// when it rolls back, so the cache never holds what was not committed.
type writeCache struct {
	rooms   *recordCache[Room]
	members *recordCache[Membership]
	groups  *recordCache[MLSGroup]
	last    *recordCache[Event] // header only: no Frame
}

// noCache is the cache of read-only transactions: its record caches are
// nil, which hold nothing and remember nothing.
var noCache = &writeCache{}

func newWriteCache() *writeCache {
	return &writeCache{
		rooms:   newRecordCache[Room](nil),
		members: newRecordCache[Membership](nil),
		groups: newRecordCache(func(g MLSGroup) MLSGroup {
			g.Pending = slices.Clone(g.Pending)
			return g
		}),
		last: newRecordCache[Event](nil),
	}
}

func (c *writeCache) commit() {
	c.rooms.commit()
	c.members.commit()
	c.groups.commit()
	c.last.commit()
}

func (c *writeCache) rollback() {
	c.rooms.rollback()
	c.members.rollback()
	c.groups.rollback()
	c.last.rollback()
}

// recordCache holds the decoded records of one kind. A nil recordCache
// (read-only transactions) holds nothing; its methods do nothing.
type recordCache[T any] struct {
	committed map[string]T
	pending   map[string]T
	// copy gives a value that shares no memory with v; nil when
	// assignment does (no slices or maps in T).
	copy func(v T) T
}

func newRecordCache[T any](copy func(T) T) *recordCache[T] {
	return &recordCache[T]{committed: map[string]T{}, pending: map[string]T{}, copy: copy}
}

func (c *recordCache[T]) own(v T) T {
	if c.copy == nil {
		return v
	}
	return c.copy(v)
}

// read returns key's value from the cache or, failing that, from load,
// and remembers what load read. The string(key) conversions in map
// lookups do not allocate.
func (c *recordCache[T]) read(key []byte, load func() (T, error)) (T, error) {
	if c == nil {
		return load()
	}
	if v, ok := c.pending[string(key)]; ok {
		return c.own(v), nil
	}
	if v, ok := c.committed[string(key)]; ok {
		return c.own(v), nil
	}
	v, err := load()
	if err != nil {
		return v, err
	}
	if len(c.committed) >= maxCached {
		clear(c.committed)
	}
	c.committed[string(key)] = c.own(v)
	return v, nil
}

// written records a value the open transaction wrote.
func (c *recordCache[T]) written(key []byte, v T) {
	if c != nil {
		c.pending[string(key)] = c.own(v)
	}
}

func (c *recordCache[T]) commit() {
	if c == nil {
		return
	}
	if len(c.committed)+len(c.pending) > maxCached {
		clear(c.committed)
	}
	for k, v := range c.pending {
		c.committed[k] = v
	}
	clear(c.pending)
}

func (c *recordCache[T]) rollback() {
	if c != nil {
		clear(c.pending)
	}
}
