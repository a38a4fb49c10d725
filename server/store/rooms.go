package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// RoomKind is the kind of a room.
type RoomKind string

// The kinds of room.
const (
	Direct RoomKind = "direct"
	Group  RoomKind = "group"
	Forum  RoomKind = "forum"
)

// Room is a room's settings.
type Room struct {
	ID        string    `json:"id"`
	Kind      RoomKind  `json:"kind"`
	Name      string    `json:"name,omitempty"`
	Topic     string    `json:"topic,omitempty"`
	Externals bool      `json:"externals,omitempty"` // a group that accepts external correspondents
	Encrypted bool      `json:"encrypted,omitempty"`
	Creator   string    `json:"creator"`
	Created   time.Time `json:"created"`
}

// Role is a member's role in a room.
type Role string

// The roles, from most to least powerful.
const (
	Owner     Role = "owner"
	Moderator Role = "moderator"
	Member    Role = "member"
)

// MemberState is where a user stands in a room.
type MemberState string

// The membership states.
const (
	Joined  MemberState = "joined"
	Invited MemberState = "invited"
	Left    MemberState = "left"
	Banned  MemberState = "banned"
)

// Membership is one user's membership of one room.
type Membership struct {
	Role  Role        `json:"role"`
	State MemberState `json:"state"`
	By    string      `json:"by,omitempty"` // who invited, removed or banned
	Since time.Time   `json:"since"`
}

// Active reports whether the membership gives access to the room's
// contents (invited users see only the invitation).
func (m Membership) Active() bool { return m.State == Joined }

// CreateRoom stores a new room and its (empty) event log.
func (tx *Tx) CreateRoom(r Room) error {
	rooms := tx.bucket(bRooms)
	if rooms.Get([]byte(r.ID)) != nil {
		return ErrExists
	}
	if _, err := tx.bucket(bEvents).CreateBucket([]byte(r.ID)); err != nil {
		return fmt.Errorf("store: create event log of %s: %w", r.ID, err)
	}
	tx.cache.last.written([]byte(r.ID), Event{})
	return tx.putRoom(nil, &r)
}

// PutRoom replaces a room's settings.
func (tx *Tx) PutRoom(r Room) error {
	old, err := tx.Room(r.ID)
	if err != nil {
		return err
	}
	return tx.putRoom(&old, &r)
}

func (tx *Tx) putRoom(old, r *Room) error {
	forums := tx.bucket(bForums)
	if old != nil && old.Kind == Forum {
		if err := forums.Delete(join(FoldName(old.Name), old.ID)); err != nil {
			return err
		}
	}
	if r.Kind == Forum {
		if err := forums.Put(join(FoldName(r.Name), r.ID), nil); err != nil {
			return err
		}
	}
	if err := tx.bucket(bRooms).Put([]byte(r.ID), encode(r)); err != nil {
		return err
	}
	tx.cache.rooms.written([]byte(r.ID), *r)
	return nil
}

// Room returns a room's settings.
func (tx *Tx) Room(roomID string) (Room, error) {
	k := []byte(roomID)
	return tx.cache.rooms.read(k, func() (r Room, err error) {
		return r, decode(tx.bucket(bRooms).Get(k), &r)
	})
}

// Forums returns up to limit forums whose folded name contains the folded
// query (all forums for an empty query), in name order.
func (tx *Tx) Forums(query string, limit int) ([]Room, error) {
	q := []byte(FoldName(query))
	var out []Room
	c := tx.bucket(bForums).Cursor()
	for k, _ := c.First(); k != nil && len(out) < limit; k, _ = c.Next() {
		sep := bytes.LastIndexByte(k, 0)
		if sep < 0 || !bytes.Contains(k[:sep], q) {
			continue
		}
		r, err := tx.Room(string(k[sep+1:]))
		if err != nil {
			return nil, fmt.Errorf("store: forum index: %w", err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Member returns a user's membership of a room.
func (tx *Tx) Member(roomID, userID string) (Membership, error) {
	k := join(roomID, userID)
	return tx.cache.members.read(k, func() (m Membership, err error) {
		return m, decode(tx.bucket(bMembers).Get(k), &m)
	})
}

// PutMember stores a membership and keeps the user's room index in step.
func (tx *Tx) PutMember(roomID, userID string, m Membership) error {
	mk := join(roomID, userID)
	if err := tx.bucket(bMembers).Put(mk, encode(m)); err != nil {
		return err
	}
	tx.cache.members.written(mk, m)
	k := join(userID, roomID)
	if m.State == Joined || m.State == Invited {
		return tx.bucket(bUserRooms).Put(k, nil)
	}
	return tx.bucket(bUserRooms).Delete(k)
}

// MemberEntry is a user and their membership.
type MemberEntry struct {
	UserID string
	Membership
}

// Members returns every membership record of a room (all states), ordered
// by user id.
func (tx *Tx) Members(roomID string) ([]MemberEntry, error) {
	var out []MemberEntry
	prefix := join(roomID, "")
	c := tx.bucket(bMembers).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var m Membership
		if err := decode(v, &m); err != nil {
			return nil, fmt.Errorf("store: member %q: %w", k, err)
		}
		out = append(out, MemberEntry{UserID: string(k[len(prefix):]), Membership: m})
	}
	return out, nil
}

// UserRooms returns the ids of the rooms a user has joined or is invited
// to, sorted.
func (tx *Tx) UserRooms(userID string) ([]string, error) {
	var out []string
	prefix := join(userID, "")
	c := tx.bucket(bUserRooms).Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		out = append(out, string(k[len(prefix):]))
	}
	return out, nil
}

func dmKey(a, b string) []byte {
	if a > b {
		a, b = b, a
	}
	return join(a, b)
}

// DM returns the direct room of two users, or ErrNotFound.
func (tx *Tx) DM(a, b string) (string, error) {
	v := tx.bucket(bDMs).Get(dmKey(a, b))
	if v == nil {
		return "", ErrNotFound
	}
	return string(v), nil
}

// PutDM records the direct room of two users.
func (tx *Tx) PutDM(a, b, roomID string) error {
	return tx.bucket(bDMs).Put(dmKey(a, b), []byte(roomID))
}

// Read returns the last event a user has read in a room, and the
// countable-event ordinal at that event.
func (tx *Tx) Read(roomID, userID string) (seq, ord uint64) {
	v := tx.bucket(bReads).Get(join(roomID, userID))
	if len(v) != 16 {
		return 0, 0
	}
	return binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])
}

// PutRead records a user's read marker in a room.
func (tx *Tx) PutRead(roomID, userID string, seq, ord uint64) error {
	var v [16]byte
	binary.BigEndian.PutUint64(v[:], seq)
	binary.BigEndian.PutUint64(v[8:], ord)
	return tx.bucket(bReads).Put(join(roomID, userID), v[:])
}

// Reads returns every member's read marker in a room, by user id.
func (tx *Tx) Reads(roomID string) (map[string]uint64, error) {
	out := map[string]uint64{}
	prefix := join(roomID, "")
	c := tx.bucket(bReads).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(v) == 16 {
			out[string(k[len(prefix):])] = binary.BigEndian.Uint64(v)
		}
	}
	return out, nil
}

func mentionKey(userID, roomID string, seq uint64) []byte {
	k := join(userID, roomID, "")
	return binary.BigEndian.AppendUint64(k, seq)
}

// AddMention records that event seq of a room mentions a user.
func (tx *Tx) AddMention(userID, roomID string, seq uint64) error {
	return tx.bucket(bMentions).Put(mentionKey(userID, roomID, seq), nil)
}

// Mentions counts the mentions of a user in a room after event seq.
func (tx *Tx) Mentions(userID, roomID string, after uint64) int {
	prefix := join(userID, roomID, "")
	n := 0
	c := tx.bucket(bMentions).Cursor()
	for k, _ := c.Seek(mentionKey(userID, roomID, after+1)); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		n++
	}
	return n
}

// IdemWindow is how long a client id is remembered at least. Client ids
// live in two buckets that take turns: writes go to the current one and,
// once it is IdemWindow old, the other is emptied and becomes current. A
// resend is so recognised for one to two windows, far past any client's
// retry, and the store does not keep one key per message forever.
const IdemWindow = 24 * time.Hour

// idemBuckets returns the current bucket of client ids, the other one,
// and the other's name.
func (tx *Tx) idemBuckets() (cur, other *bolt.Bucket, otherName []byte) {
	if string(tx.bucket(bMeta).Get(kIdemCurrent)) == "b" {
		return tx.bucket(bIdemB), tx.bucket(bIdem), bIdem
	}
	return tx.bucket(bIdem), tx.bucket(bIdemB), bIdemB
}

// Idem returns the event a client id of a user already created, and its
// timestamp in Unix milliseconds.
func (tx *Tx) Idem(userID, clientID string) (roomID string, seq uint64, ts int64, ok bool) {
	k := join(userID, clientID)
	cur, other, _ := tx.idemBuckets()
	v := cur.Get(k)
	if v == nil {
		v = other.Get(k)
	}
	if len(v) < 17 {
		return "", 0, 0, false
	}
	sep := len(v) - 17
	return string(v[:sep]), binary.BigEndian.Uint64(v[sep+1:]), int64(binary.BigEndian.Uint64(v[sep+9:])), true
}

// PutIdem records the event a client id created at tsMillis, so that a
// resend gets the same answer and creates nothing.
func (tx *Tx) PutIdem(userID, clientID, roomID string, seq uint64, tsMillis int64) error {
	if err := tx.turnIdem(tsMillis); err != nil {
		return err
	}
	v := append(join(roomID, ""), make([]byte, 16)...)
	binary.BigEndian.PutUint64(v[len(v)-16:], seq)
	binary.BigEndian.PutUint64(v[len(v)-8:], uint64(tsMillis))
	cur, _, _ := tx.idemBuckets()
	return cur.Put(join(userID, clientID), v)
}

// turnIdem empties the other bucket of client ids and makes it current
// once the current one is IdemWindow old. Deleting a bucket frees its
// pages in one go: no scan, no tombstones.
func (tx *Tx) turnIdem(nowMillis int64) error {
	meta := tx.bucket(bMeta)
	var since int64
	if v := meta.Get(kIdemSince); len(v) == 8 {
		since = int64(binary.BigEndian.Uint64(v))
	}
	if since != 0 && nowMillis-since < IdemWindow.Milliseconds() {
		return nil
	}
	turns := 0
	switch {
	case since == 0:
	case nowMillis-since < 2*IdemWindow.Milliseconds():
		turns = 1
	default:
		turns = 2 // both generations are older than a window
	}
	for range turns {
		_, _, otherName := tx.idemBuckets()
		if err := tx.tx.DeleteBucket(otherName); err != nil {
			return fmt.Errorf("store: empty client ids: %w", err)
		}
		if _, err := tx.tx.CreateBucket(otherName); err != nil {
			return fmt.Errorf("store: empty client ids: %w", err)
		}
		next := "a"
		if bytes.Equal(otherName, bIdemB) {
			next = "b"
		}
		if err := meta.Put(kIdemCurrent, []byte(next)); err != nil {
			return err
		}
	}
	return meta.Put(kIdemSince, u64(uint64(nowMillis)))
}
