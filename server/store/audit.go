package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"
)

// The audit log: every administrative action, from the admin page or the
// admin socket. It is append-only: the store has no method that changes
// or deletes an entry, so no API above it can.
//
//	audit       Unix ns (8) seq (8) → JSON AuditEntry   (time order; seq
//	            is the bucket's sequence, so two entries of one
//	            nanosecond keep their order and never collide)
var bAudit = []byte("audit")

// AuditEntry is one administrative action.
type AuditEntry struct {
	Time time.Time `json:"time"`
	// Actor is the administrator's user id, or "cli" for the admin socket.
	Actor string `json:"actor"`
	// Unix is the system account that used the admin socket (Actor "cli").
	Unix string `json:"unix,omitempty"`
	// Addr is where the action came from: the client's IP address, or
	// "admin.sock".
	Addr   string `json:"addr"`
	Action string `json:"action"`
	// Target is what the action was on: a user id (never an e-mail
	// address), a domain, or empty.
	Target string `json:"target,omitempty"`
	// Outcome is "ok", or the stable error code of a refused action.
	Outcome string `json:"outcome"`
}

func auditKey(t time.Time, seq uint64) []byte {
	k := make([]byte, 16)
	binary.BigEndian.PutUint64(k, uint64(t.UnixNano()))
	binary.BigEndian.PutUint64(k[8:], seq)
	return k
}

// AppendAudit adds an entry at the end of the audit log.
func (tx *Tx) AppendAudit(e AuditEntry) error {
	b := tx.bucket(bAudit)
	seq, err := b.NextSequence()
	if err != nil {
		return fmt.Errorf("store: audit sequence: %w", err)
	}
	return b.Put(auditKey(e.Time, seq), encode(e))
}

// Audit calls fn for the entries of [from, to) (a zero bound: none),
// newest first, until fn returns false.
func (tx *Tx) Audit(from, to time.Time, fn func(AuditEntry) bool) error {
	c := tx.bucket(bAudit).Cursor()
	var k, v []byte
	if to.IsZero() {
		k, v = c.Last()
	} else if k, _ = c.Seek(auditKey(to, 0)); k == nil {
		k, v = c.Last()
	} else {
		// The first entry at or after to is excluded: start before it.
		k, v = c.Prev()
	}
	var low []byte
	if !from.IsZero() {
		low = auditKey(from, 0)
	}
	for ; k != nil && bytes.Compare(k, low) >= 0; k, v = c.Prev() {
		var e AuditEntry
		if err := decode(v, &e); err != nil {
			return fmt.Errorf("store: audit entry %x: %w", k, err)
		}
		if !fn(e) {
			return nil
		}
	}
	return nil
}

// RoomInfo is what the admin page shows of a room: never its content,
// nor the name of a room that is not in the public directory.
type RoomInfo struct {
	Room    Room
	Members int       // joined members
	Last    time.Time // time of the last event; zero for none
}

// Rooms calls fn for every room in id order with its joined members and
// last activity, until fn returns false.
func (tx *Tx) Rooms(fn func(RoomInfo) bool) error {
	c := tx.bucket(bRooms).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var r Room
		if err := decode(v, &r); err != nil {
			return fmt.Errorf("store: room %s: %w", k, err)
		}
		info := RoomInfo{Room: r}
		members, err := tx.Members(r.ID)
		if err != nil {
			return err
		}
		for _, m := range members {
			if m.State == Joined {
				info.Members++
			}
		}
		if ev, err := tx.LastEvent(r.ID); err == nil && ev.TS > 0 {
			info.Last = time.UnixMilli(ev.TS)
		}
		if !fn(info) {
			return nil
		}
	}
	return nil
}
