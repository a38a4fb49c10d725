package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Event flags.
const (
	// Countable marks an event that counts as unread (a message, not a
	// reaction, edit or membership change).
	Countable byte = 1 << iota
	// Redacted marks an event whose content was deleted (tombstone).
	Redacted
)

// Event is one entry of a room's log.
//
// Its record is: flags (1) | ord (uvarint) | ts (uvarint) | frame. The
// frame is the event exactly as sent to clients, so it is encoded once and
// served from the store without decoding.
type Event struct {
	Seq   uint64
	Ord   uint64 // number of countable events up to and including this one
	TS    int64  // Unix milliseconds
	Flags byte
	Frame []byte
}

// ErrSeq is returned by AppendEvent when the sequence number is not the
// next one of the room.
var ErrSeq = errors.New("store: event out of sequence")

func eventKey(seq uint64) []byte { return u64(seq) }

// header is ev without its frame.
func (ev *Event) header() Event { return Event{Seq: ev.Seq, Ord: ev.Ord, TS: ev.TS, Flags: ev.Flags} }

func (tx *Tx) events(roomID string) (*bolt.Bucket, error) {
	b := tx.bucket(bEvents).Bucket([]byte(roomID))
	if b == nil {
		return nil, fmt.Errorf("store: room %s: %w", roomID, ErrNotFound)
	}
	return b, nil
}

func encodeEvent(ev *Event) []byte {
	v := make([]byte, 0, 1+2*binary.MaxVarintLen64+len(ev.Frame))
	v = append(v, ev.Flags)
	v = binary.AppendUvarint(v, ev.Ord)
	v = binary.AppendUvarint(v, uint64(ev.TS))
	return append(v, ev.Frame...)
}

func decodeEvent(seq uint64, v []byte) (Event, error) {
	ev, rest, err := decodeEventHeader(seq, v)
	ev.Frame = clone(rest)
	return ev, err
}

func decodeEventHeader(seq uint64, v []byte) (Event, []byte, error) {
	if len(v) < 3 {
		return Event{}, nil, fmt.Errorf("store: event %d: short record", seq)
	}
	ord, n := binary.Uvarint(v[1:])
	if n <= 0 {
		return Event{}, nil, fmt.Errorf("store: event %d: bad ordinal", seq)
	}
	ts, m := binary.Uvarint(v[1+n:])
	if m <= 0 {
		return Event{}, nil, fmt.Errorf("store: event %d: bad timestamp", seq)
	}
	return Event{Seq: seq, Ord: ord, TS: int64(ts), Flags: v[0]}, v[1+n+m:], nil
}

// LastEvent returns the header (Seq, Ord, TS, Flags; no Frame) of a
// room's last event, a zero Event for an empty log.
func (tx *Tx) LastEvent(roomID string) (Event, error) {
	return tx.cache.last.read([]byte(roomID), func() (Event, error) {
		b, err := tx.events(roomID)
		if err != nil {
			return Event{}, err
		}
		return lastInLog(b)
	})
}

func lastInLog(b *bolt.Bucket) (Event, error) {
	k, v := b.Cursor().Last()
	if k == nil {
		return Event{}, nil
	}
	ev, _, err := decodeEventHeader(binary.BigEndian.Uint64(k), v)
	return ev, err
}

// AppendEvent appends ev to a room's log and to the node's feed, and
// returns its place in the feed. ev.Seq must follow the log's last event.
func (tx *Tx) AppendEvent(roomID string, ev Event) (gseq uint64, err error) {
	return tx.appendEvent(roomID, ev, false)
}

func (tx *Tx) appendEvent(roomID string, ev Event, replica bool) (gseq uint64, err error) {
	b, err := tx.events(roomID)
	if err != nil {
		return 0, err
	}
	last, err := tx.cache.last.read([]byte(roomID), func() (Event, error) { return lastInLog(b) })
	if err != nil {
		return 0, err
	}
	if ev.Seq != last.Seq+1 && !(replica && last.Seq == 0 && ev.Seq > 0) {
		return 0, fmt.Errorf("%w: room %s has %d, got %d", ErrSeq, roomID, last.Seq, ev.Seq)
	}
	// Appends are sequential: full pages waste nothing.
	b.FillPercent = 1
	if err := b.Put(eventKey(ev.Seq), encodeEvent(&ev)); err != nil {
		return 0, err
	}
	tx.cache.last.written([]byte(roomID), ev.header())
	feed := tx.bucket(bFeed)
	if gseq, err = feed.NextSequence(); err != nil {
		return 0, err
	}
	feed.FillPercent = 1
	return gseq, feed.Put(u64(gseq), append(u64(ev.Seq), roomID...))
}

// Event returns one event of a room.
func (tx *Tx) Event(roomID string, seq uint64) (Event, error) {
	b, err := tx.events(roomID)
	if err != nil {
		return Event{}, err
	}
	v := b.Get(eventKey(seq))
	if v == nil {
		return Event{}, ErrNotFound
	}
	return decodeEvent(seq, v)
}

// ReplaceEvent rewrites an existing event in place (a tombstone replacing
// deleted content keeps the event's place in the log).
func (tx *Tx) ReplaceEvent(roomID string, ev Event) error {
	b, err := tx.events(roomID)
	if err != nil {
		return err
	}
	if b.Get(eventKey(ev.Seq)) == nil {
		return ErrNotFound
	}
	if err := b.Put(eventKey(ev.Seq), encodeEvent(&ev)); err != nil {
		return err
	}
	if k, _ := b.Cursor().Last(); k != nil && binary.BigEndian.Uint64(k) == ev.Seq {
		tx.cache.last.written([]byte(roomID), ev.header())
	}
	return nil
}

// Events calls fn for the events of a room starting at seq from, forward
// or backward, until fn returns false or the log ends.
func (tx *Tx) Events(roomID string, from uint64, backward bool, fn func(Event) bool) error {
	b, err := tx.events(roomID)
	if err != nil {
		return err
	}
	c := b.Cursor()
	k, v := c.Seek(eventKey(from))
	if backward {
		if k == nil {
			k, v = c.Last()
		} else if binary.BigEndian.Uint64(k) > from {
			k, v = c.Prev()
		}
	}
	for k != nil {
		ev, err := decodeEvent(binary.BigEndian.Uint64(k), v)
		if err != nil {
			return err
		}
		if !fn(ev) {
			return nil
		}
		if backward {
			k, v = c.Prev()
		} else {
			k, v = c.Next()
		}
	}
	return nil
}

// FeedEntry is one committed event in the node's commit order.
type FeedEntry struct {
	GSeq   uint64
	RoomID string
	Seq    uint64
}

// Feed calls fn for feed entries after gseq, in commit order, until fn
// returns false.
func (tx *Tx) Feed(after uint64, fn func(FeedEntry) bool) error {
	c := tx.bucket(bFeed).Cursor()
	for k, v := c.Seek(u64(after + 1)); k != nil; k, v = c.Next() {
		if len(v) < 8 {
			return fmt.Errorf("store: feed %x: short record", k)
		}
		if !fn(FeedEntry{GSeq: binary.BigEndian.Uint64(k), Seq: binary.BigEndian.Uint64(v), RoomID: string(v[8:])}) {
			return nil
		}
	}
	return nil
}

// FeedHead returns the gseq of the last feed entry.
func (tx *Tx) FeedHead() uint64 { return tx.bucket(bFeed).Sequence() }

// FeedPublished returns how far the feed is known to be published.
func (tx *Tx) FeedPublished() uint64 {
	v := tx.bucket(bMeta).Get(kFeedPublished)
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// MarkFeedPublished records that every entry up to gseq is published and
// drops up to max of the entries it covers.
func (tx *Tx) MarkFeedPublished(gseq uint64, max int) error {
	if err := tx.bucket(bMeta).Put(kFeedPublished, u64(gseq)); err != nil {
		return err
	}
	c := tx.bucket(bFeed).Cursor()
	for k, _ := c.First(); k != nil && max > 0 && binary.BigEndian.Uint64(k) <= gseq; k, _ = c.First() {
		if err := c.Delete(); err != nil {
			return err
		}
		max--
	}
	return nil
}
