package store

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
	rooms   recordCache[Room]
	members recordCache[Membership]
	groups  recordCache[MLSGroup]
	last    recordCache[Event] // header only: no Frame
}

func newWriteCache() *writeCache {
	return &writeCache{
		rooms:   newRecordCache[Room](),
		members: newRecordCache[Membership](),
		groups:  newRecordCache[MLSGroup](),
		last:    newRecordCache[Event](),
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

type recordCache[T any] struct {
	committed map[string]T
	pending   map[string]T
}

func newRecordCache[T any]() recordCache[T] {
	return recordCache[T]{committed: map[string]T{}, pending: map[string]T{}}
}

// get looks key up; the string(key) conversions in map lookups do not
// allocate.
func (c *recordCache[T]) get(key []byte) (T, bool) {
	if v, ok := c.pending[string(key)]; ok {
		return v, true
	}
	v, ok := c.committed[string(key)]
	return v, ok
}

// loaded records a value read from the file by the open transaction.
func (c *recordCache[T]) loaded(key []byte, v T) {
	if _, ok := c.pending[string(key)]; ok {
		return
	}
	if len(c.committed) >= maxCached {
		clear(c.committed)
	}
	c.committed[string(key)] = v
}

// written records a value the open transaction wrote.
func (c *recordCache[T]) written(key []byte, v T) { c.pending[string(key)] = v }

func (c *recordCache[T]) commit() {
	if len(c.committed)+len(c.pending) > maxCached {
		clear(c.committed)
	}
	for k, v := range c.pending {
		c.committed[k] = v
	}
	clear(c.pending)
}

func (c *recordCache[T]) rollback() { clear(c.pending) }
