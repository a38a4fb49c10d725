package store

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// ErrInconsistent wraps every finding of CheckConsistency.
var ErrInconsistent = errors.New("store: inconsistent")

// maxFindings bounds what CheckConsistency reports: a damaged store would
// otherwise produce one line per record.
const maxFindings = 20

// CheckConsistency verifies the relations between records that no single
// write checks again later, for restores and for tests that stress the
// store:
//
//   - every address leads to a user, every membership and room index to a
//     room, every room has its log and every log its room;
//   - a room's log numbers its events 1, 2, 3… without a gap, and each
//     event's ordinal counts the countable events up to it;
//   - read markers and feed entries point at events that exist;
//   - every file has its blob record and its indexes, and its owner's
//     quota counts its size (0 once quarantined); a blob's reference count
//     is the number of its files and of the blobs it is the thumbnail of;
//   - blobContent, when not nil, is asked for every blob whose content
//     must be on disk (all but quarantined ones), with the size its record
//     gives (0 when it gives none: thumbnails), and returns an error if
//     the content is missing or has another size.
//
// It reads in one transaction and returns nil or an error wrapping
// ErrInconsistent that lists up to 20 findings.
func (db *DB) CheckConsistency(blobContent func(hash string, size int64) error) error {
	var findings []string
	add := func(format string, args ...any) {
		if len(findings) < maxFindings {
			findings = append(findings, fmt.Sprintf(format, args...))
		} else if len(findings) == maxFindings {
			findings = append(findings, "…")
		}
	}
	err := db.View(func(tx *Tx) error {
		return checkTx(tx.tx, add, blobContent)
	})
	if err != nil {
		return fmt.Errorf("store: consistency check: %w", err)
	}
	if len(findings) > 0 {
		return fmt.Errorf("%w: %s", ErrInconsistent, joinFindings(findings))
	}
	return nil
}

func joinFindings(f []string) string {
	var b bytes.Buffer
	for i, s := range f {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(s)
	}
	return b.String()
}

func checkTx(tx *bolt.Tx, add func(string, ...any), blobContent func(string, int64) error) error {
	meta := tx.Bucket(bMeta)
	if meta == nil || len(meta.Get(kSchema)) != 8 || len(meta.Get(kNode)) == 0 {
		add("no schema version or node id")
		return nil
	}
	for _, name := range [][]byte{bUsers, bEmails, bRooms, bMembers, bUserRooms, bEvents, bReads, bFeed, bFiles, bBlobs} {
		if tx.Bucket(name) == nil {
			add("bucket %s is missing", name)
			return nil
		}
	}
	users := tx.Bucket(bUsers)
	if err := tx.Bucket(bEmails).ForEach(func(k, v []byte) error {
		if users.Get(v) == nil {
			add("address %q leads to user %s, who does not exist", k, v)
		}
		return nil
	}); err != nil {
		return err
	}
	rooms, events := tx.Bucket(bRooms), tx.Bucket(bEvents)
	// last holds each room's last seq, for the markers that point into logs.
	last := map[string]uint64{}
	if err := rooms.ForEach(func(k, v []byte) error {
		var r Room
		if err := decode(v, &r); err != nil {
			add("room %s: %v", k, err)
		}
		log := events.Bucket(k)
		if log == nil {
			add("room %s has no event log", k)
			return nil
		}
		last[string(k)] = checkLog(string(k), log, add)
		return nil
	}); err != nil {
		return err
	}
	if err := events.ForEach(func(k, v []byte) error {
		if v == nil && rooms.Get(k) == nil {
			add("event log %s has no room", k)
		}
		return nil
	}); err != nil {
		return err
	}
	members := tx.Bucket(bMembers)
	if err := members.ForEach(func(k, v []byte) error {
		room, user, ok := bytes.Cut(k, []byte{0})
		if !ok {
			add("membership key %q has no separator", k)
			return nil
		}
		if rooms.Get(room) == nil {
			add("membership of %s in room %s, which does not exist", user, room)
		}
		var m Membership
		if err := decode(v, &m); err != nil {
			add("membership of %s in %s: %v", user, room, err)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := tx.Bucket(bUserRooms).ForEach(func(k, _ []byte) error {
		user, room, ok := bytes.Cut(k, []byte{0})
		if !ok {
			add("room index key %q has no separator", k)
			return nil
		}
		var m Membership
		if err := decode(members.Get(join(string(room), string(user))), &m); err != nil || (m.State != Joined && m.State != Invited) {
			add("room index lists %s in room %s without a joined or invited membership", user, room)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := tx.Bucket(bReads).ForEach(func(k, v []byte) error {
		room, user, _ := bytes.Cut(k, []byte{0})
		top, ok := last[string(room)]
		switch {
		case !ok:
			add("read marker of %s in room %s, which does not exist", user, room)
		case len(v) != 16:
			add("read marker of %s in %s: %d bytes", user, room, len(v))
		case binary.BigEndian.Uint64(v) > top:
			add("read marker of %s in %s at %d, after the last event %d", user, room, binary.BigEndian.Uint64(v), top)
		}
		return nil
	}); err != nil {
		return err
	}
	if err := tx.Bucket(bFeed).ForEach(func(k, v []byte) error {
		if len(v) < 8 {
			add("feed entry %x: short record", k)
			return nil
		}
		seq, room := binary.BigEndian.Uint64(v), string(v[8:])
		if top, ok := last[room]; !ok || seq == 0 || seq > top {
			add("feed entry %d points at event %d of room %s, which does not exist", binary.BigEndian.Uint64(k), seq, room)
		}
		return nil
	}); err != nil {
		return err
	}
	return checkFiles(tx, add, blobContent)
}

// checkLog checks one room's log and returns its last seq.
func checkLog(room string, log *bolt.Bucket, add func(string, ...any)) uint64 {
	var seq, ord uint64
	log.ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			add("room %s: event key %x is not 8 bytes", room, k)
			return nil
		}
		s := binary.BigEndian.Uint64(k)
		if s != seq+1 {
			add("room %s: event %d follows %d", room, s, seq)
		}
		ev, _, err := decodeEventHeader(s, v)
		if err != nil {
			add("room %s: %v", room, err)
			seq = s
			return nil
		}
		want := ord
		if ev.Flags&Countable != 0 {
			want++
		}
		if ev.Ord != want {
			add("room %s: event %d counts %d countable events, expected %d", room, s, ev.Ord, want)
		}
		seq, ord = s, ev.Ord
		return nil
	})
	return seq
}

func checkFiles(tx *bolt.Tx, add func(string, ...any), blobContent func(string, int64) error) error {
	files, blobs := tx.Bucket(bFiles), tx.Bucket(bBlobs)
	refs := map[string]int{} // blob hash (raw) → references found
	if err := files.ForEach(func(k, v []byte) error {
		if len(k) == 0 || k[0] != fileRecord {
			return nil
		}
		id := string(k[1:])
		var f File
		if err := decode(v, &f); err != nil {
			add("file %s: %v", id, err)
			return nil
		}
		hk, err := hashKey(f.Hash)
		if err != nil {
			add("file %s: %v", id, err)
			return nil
		}
		if blobs.Get(hk) == nil {
			add("file %s has no blob record %s", id, f.Hash)
		}
		refs[string(hk)]++
		if files.Get(fileKey(fileByBlob, hk, []byte(id))) == nil {
			add("file %s is missing from its blob's index", id)
		}
		// The quota counts a file by its size, a quarantined one as 0.
		want := uint64(f.Size)
		var b Blob
		if decode(blobs.Get(hk), &b) == nil && b.State == BlobQuarantined {
			want = 0
		}
		switch q := files.Get(ownerKey(f.Owner, id)); {
		case q == nil:
			add("file %s is missing from its owner's quota", id)
		case len(q) != 8 || binary.BigEndian.Uint64(q) != want:
			add("file %s counts %x bytes against its owner's quota, not %d", id, q, want)
		}
		return nil
	}); err != nil {
		return err
	}
	type blobRec struct {
		hash string
		b    Blob
	}
	var all []blobRec
	if err := blobs.ForEach(func(k, v []byte) error {
		var b Blob
		if err := decode(v, &b); err != nil {
			add("blob %x: %v", k, err)
			return nil
		}
		b.Hash = hex.EncodeToString(k)
		all = append(all, blobRec{string(k), b})
		if b.Thumb != "" {
			if tk, err := hashKey(b.Thumb); err == nil {
				refs[string(tk)]++
			} else {
				add("blob %s: thumbnail: %v", b.Hash, err)
			}
		}
		return nil
	}); err != nil {
		return err
	}
	for _, r := range all {
		if got := refs[r.hash]; got != r.b.Refs {
			add("blob %s counts %d references, %d found", r.b.Hash, r.b.Refs, got)
		}
		if r.b.State == BlobQuarantined || blobContent == nil {
			continue
		}
		if err := blobContent(r.b.Hash, r.b.Size); err != nil {
			add("blob %s: %v", r.b.Hash, err)
		}
	}
	return nil
}
