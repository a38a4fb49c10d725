package store

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// populate writes a small consistent store: two users, a room with
// messages, a read marker, a file with a thumbnail.
func populate(t *testing.T, db *DB) {
	t.Helper()
	now := time.Now()
	err := db.Update(context.Background(), func(tx *Tx) error {
		for _, u := range []User{{ID: "u1", Email: "a@x.fr", Name: "A", State: UserActive, Created: now}, {ID: "u2", Email: "b@x.fr", Name: "B", State: UserActive, Created: now}} {
			if err := tx.CreateUser(u); err != nil {
				return err
			}
		}
		if err := tx.CreateRoom(Room{ID: "r1", Kind: "forum", Name: "Conseil", Creator: "u1", Created: now}); err != nil {
			return err
		}
		for _, u := range []string{"u1", "u2"} {
			if err := tx.PutMember("r1", u, Membership{Role: Member, State: Joined, Since: now}); err != nil {
				return err
			}
		}
		ord := uint64(0)
		for seq := uint64(1); seq <= 5; seq++ {
			flags := Countable
			if seq == 3 {
				flags = 0 // a reaction: not counted
			} else {
				ord++
			}
			if _, err := tx.AppendEvent("r1", Event{Seq: seq, Ord: ord, TS: now.UnixMilli(), Flags: flags, Frame: []byte(`{}`)}); err != nil {
				return err
			}
		}
		if err := tx.PutRead("r1", "u2", 4, 3); err != nil {
			return err
		}
		if err := tx.CreateBlob(Blob{Hash: testHash("photo"), Size: 7, State: BlobClean, Thumb: testHash("thumb"), Created: now}); err != nil {
			return err
		}
		return tx.CreateFile(File{ID: "f1", Owner: "u1", Room: "r1", Name: "photo.png", Size: 7, Hash: testHash("photo"), Created: now, Seq: 5})
	})
	if err != nil {
		t.Fatal(err)
	}
}

func rawKey(hash string) []byte { k, _ := hex.DecodeString(hash); return k }

// TestCheckConsistencyFindsBrokenRelations: each broken relation between
// records is reported; the consistent store passes.
func TestCheckConsistencyFindsBrokenRelations(t *testing.T) {
	onDisk := func(hash string, size int64) error { return nil }
	cases := []struct {
		name    string
		corrupt func(tx *bolt.Tx) error
		blobs   func(string, int64) error
		want    string
	}{
		{"consistent", nil, onDisk, ""},
		{"address of a missing user", func(tx *bolt.Tx) error { return tx.Bucket(bUsers).Delete([]byte("u2")) }, onDisk, "address \"b@x.fr\" leads to user u2"},
		{"room without its log", func(tx *bolt.Tx) error { return tx.Bucket(bEvents).DeleteBucket([]byte("r1")) }, onDisk, "room r1 has no event log"},
		{"log without its room", func(tx *bolt.Tx) error { _, err := tx.Bucket(bEvents).CreateBucket([]byte("r9")); return err }, onDisk, "event log r9 has no room"},
		{"a gap in a log", func(tx *bolt.Tx) error { return tx.Bucket(bEvents).Bucket([]byte("r1")).Delete(u64(2)) }, onDisk, "event 3 follows 1"},
		{"a wrong ordinal", func(tx *bolt.Tx) error {
			return tx.Bucket(bEvents).Bucket([]byte("r1")).Put(u64(4), encodeEvent(&Event{Seq: 4, Ord: 4, Flags: Countable, Frame: []byte("{}")}))
		}, onDisk, "event 4 counts 4 countable events, expected 3"},
		{"membership of a missing room", func(tx *bolt.Tx) error {
			return tx.Bucket(bMembers).Put(join("r7", "u1"), encode(Membership{State: Joined}))
		}, onDisk, "in room r7, which does not exist"},
		{"room index without membership", func(tx *bolt.Tx) error { return tx.Bucket(bUserRooms).Put(join("u1", "r8"), nil) }, onDisk, "room index lists u1 in room r8"},
		{"read marker after the log", func(tx *bolt.Tx) error { return tx.Bucket(bReads).Put(join("r1", "u1"), append(u64(9), u64(1)...)) }, onDisk, "at 9, after the last event 5"},
		{"feed entry of a missing event", func(tx *bolt.Tx) error { return tx.Bucket(bFeed).Put(u64(99), append(u64(6), "r1"...)) }, onDisk, "feed entry 99 points at event 6"},
		{"file without its blob", func(tx *bolt.Tx) error { return tx.Bucket(bBlobs).Delete(rawKey(testHash("photo"))) }, onDisk, "file f1 has no blob record"},
		{"reference count off", func(tx *bolt.Tx) error {
			return tx.Bucket(bBlobs).Put(rawKey(testHash("photo")), encode(Blob{Size: 7, State: BlobClean, Refs: 2, Thumb: testHash("thumb")}))
		}, onDisk, "counts 2 references, 1 found"},
		{"file out of its owner's quota", func(tx *bolt.Tx) error { return tx.Bucket(bFiles).Delete(ownerKey("u1", "f1")) }, onDisk, "file f1 is missing from its owner's quota"},
		{"quota counting another size", func(tx *bolt.Tx) error { return tx.Bucket(bFiles).Put(ownerKey("u1", "f1"), u64(9)) }, onDisk, "counts 0000000000000009 bytes against its owner's quota, not 7"},
		{"content missing on disk", nil, func(hash string, size int64) error {
			if hash == testHash("thumb") {
				return errors.New("no such file")
			}
			return nil
		}, "blob " + testHash("thumb") + ": no such file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			db := openTest(t)
			populate(t, db)
			if c.corrupt != nil {
				if err := db.bolt.Update(c.corrupt); err != nil {
					t.Fatal(err)
				}
			}
			err := db.CheckConsistency(c.blobs)
			if c.want == "" {
				if err != nil {
					t.Fatalf("consistent store: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInconsistent) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want a finding %q", err, c.want)
			}
		})
	}
}

// TestCheckConsistencyBoundsItsReport: a store broken everywhere gets a
// report of 20 findings, not one per record.
func TestCheckConsistencyBoundsItsReport(t *testing.T) {
	db := openTest(t)
	populate(t, db)
	db.bolt.Update(func(tx *bolt.Tx) error {
		for i := range 100 {
			tx.Bucket(bEmails).Put([]byte(fmt.Sprintf("z%d@x.fr", i)), []byte("nobody"))
		}
		return nil
	})
	err := db.CheckConsistency(nil)
	if n := strings.Count(fmt.Sprint(err), "; "); n != maxFindings {
		t.Fatalf("%d findings reported: %v", n+1, err)
	}
}
