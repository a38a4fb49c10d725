package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Rooms shared with other administrations: what a node keeps of them
// (schema.go: fedlog, fedhead, fedrooms). The records are
// opaque bytes here (their encoding is server/fed's).

// FedHead is the end of a room's hash chain as this node holds it.
type FedHead struct {
	Seq  uint64
	Hash [32]byte
}

// FedHead returns the end of a room's chain; ok is false for a room that
// never crossed a link.
func (tx *Tx) FedHead(roomID string) (h FedHead, ok bool) {
	v := tx.bucket(bFedHead).Get([]byte(roomID))
	if len(v) != 8+32 {
		return FedHead{}, false
	}
	h.Seq = binary.BigEndian.Uint64(v)
	copy(h.Hash[:], v[8:])
	return h, true
}

// PutFedRecord stores the signed record of event seq and makes it the end
// of the room's chain.
func (tx *Tx) PutFedRecord(roomID string, seq uint64, hash [32]byte, rec []byte) error {
	if err := tx.bucket(bFedLog).Put(fedKey(roomID, seq), rec); err != nil {
		return err
	}
	return tx.bucket(bFedHead).Put([]byte(roomID), append(u64(seq), hash[:]...))
}

func fedKey(roomID string, seq uint64) []byte { return append(join(roomID, ""), u64(seq)...) }

// FedRecord returns the stored record of one event, or ErrNotFound.
func (tx *Tx) FedRecord(roomID string, seq uint64) ([]byte, error) {
	v := tx.bucket(bFedLog).Get(fedKey(roomID, seq))
	if v == nil {
		return nil, ErrNotFound
	}
	return clone(v), nil
}

// FedRecords calls fn with the records of a room after seq, in order,
// until fn returns false.
func (tx *Tx) FedRecords(roomID string, after uint64, fn func(seq uint64, rec []byte) bool) error {
	prefix := join(roomID, "")
	c := tx.bucket(bFedLog).Cursor()
	for k, v := c.Seek(fedKey(roomID, after+1)); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) != len(prefix)+8 {
			return fmt.Errorf("store: fedlog key %q", k)
		}
		if !fn(binary.BigEndian.Uint64(k[len(prefix):]), clone(v)) {
			return nil
		}
	}
	return nil
}

// FedRoomPeer is a peer administration's right to a room at its home: from
// which event on, and the signed state it starts from.
type FedRoomPeer struct {
	Since    uint64 `json:"since"`
	Snapshot []byte `json:"snapshot"` // encoded by server/fed
	// Until, when not 0, is the event that removed the administration's
	// last member: nothing after it is theirs.
	Until uint64 `json:"until,omitempty"`
}

// FedRoomPeer returns the right of an administration to a room.
func (tx *Tx) FedRoomPeer(roomID, admin string) (p FedRoomPeer, ok bool, err error) {
	v := tx.bucket(bFedRooms).Get(join(roomID, admin))
	if v == nil {
		return p, false, nil
	}
	return p, true, decode(v, &p)
}

// PutFedRoomPeer records the right of an administration to a room.
func (tx *Tx) PutFedRoomPeer(roomID, admin string, p FedRoomPeer) error {
	return tx.bucket(bFedRooms).Put(join(roomID, admin), encode(p))
}

// AppendReplica appends an event a room's home ordered to this node's
// replica of the room. Unlike AppendEvent, the first event of an empty
// log may have any sequence: a node holds a room only from the moment one
// of its users joined. It returns the event's place in the feed.
func (tx *Tx) AppendReplica(roomID string, ev Event) (gseq uint64, err error) {
	return tx.appendEvent(roomID, ev, true)
}

// FedHeads calls fn with every room this node holds a chain of, until fn
// returns false.
func (tx *Tx) FedHeads(fn func(roomID string, h FedHead) bool) error {
	err := tx.bucket(bFedHead).ForEach(func(k, v []byte) error {
		if len(v) != 8+32 {
			return fmt.Errorf("store: fedhead %q: short record", k)
		}
		h := FedHead{Seq: binary.BigEndian.Uint64(v)}
		copy(h.Hash[:], v[8:])
		if !fn(string(k), h) {
			return errStopFed
		}
		return nil
	})
	if errors.Is(err, errStopFed) {
		return nil
	}
	return err
}

var errStopFed = errors.New("stop")

// FedPeerRooms returns the rooms an administration has a right to.
func (tx *Tx) FedPeerRooms(admin string) ([]string, error) {
	var out []string
	err := tx.bucket(bFedRooms).ForEach(func(k, _ []byte) error {
		if i := bytes.IndexByte(k, 0); i >= 0 && string(k[i+1:]) == admin {
			out = append(out, string(k[:i]))
		}
		return nil
	})
	return out, err
}
