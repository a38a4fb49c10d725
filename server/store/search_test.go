package store

import (
	"context"
	"fmt"
	"slices"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestSearchPostingsNewestFirst: a word's postings come newest first below
// a bound, exactly for the word or for every word with the prefix, and
// never for a word that merely contains it or another room's.
func TestSearchPostingsNewestFirst(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	texts := map[uint64]string{1: "Chat noir", 2: "château fort", 3: "un chat", 4: "achat groupé", 5: "CHATS"}
	err := db.Update(ctx, func(tx *Tx) error {
		for seq, text := range texts {
			if err := tx.IndexText("r1", seq, text); err != nil {
				return err
			}
		}
		return tx.IndexText("r2", 9, "chat")
	})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		for _, c := range []struct {
			word   string
			prefix bool
			before uint64
			max    int
			want   []uint64
		}{
			{"chat", false, 0, 10, []uint64{3, 1}},
			{"chat", false, 3, 10, []uint64{1}},
			{"chat", true, 0, 10, []uint64{5, 3, 2, 1}},
			{"chat", true, 0, 2, []uint64{5, 3}},
			{"chat", true, 5, 10, []uint64{3, 2, 1}},
			{"cha", false, 0, 10, nil},
			{"noir", false, 0, 10, []uint64{1}},
			{"groupe", false, 0, 10, []uint64{4}},
		} {
			got, truncated := tx.SearchPostings("r1", c.word, c.prefix, c.before, c.max)
			if !slices.Equal(got, c.want) || truncated {
				t.Errorf("%q prefix=%v before=%d: %v (truncated %v), want %v", c.word, c.prefix, c.before, got, truncated, c.want)
			}
		}
		return nil
	})
}

// TestSearchMigrationIndexesLiveForumMessages: a store written before the
// index gets one at upgrade, holding the words of live text and file
// messages of unencrypted rooms, and none of deleted messages, of other
// events or of encrypted rooms.
func TestSearchMigrationIndexesLiveForumMessages(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	rooms := []Room{{ID: "rf", Kind: Forum, Name: "F", Creator: "u1"}, {ID: "re", Kind: Group, Name: "E", Creator: "u1", Encrypted: true}}
	events := []struct {
		room  string
		flags byte
		frame string
	}{
		{"rf", 0, `{"type":"create","name":"budget"}`},
		{"rf", Countable, `{"type":"text","body":"Réunion budget"}`},
		{"rf", Countable | Redacted, `{"type":"text","deleted":true}`},
		{"rf", Countable, `{"type":"file","body":"budget annexe"}`},
		{"re", Countable, `{"type":"encrypted","data":"YnVkZ2V0"}`},
	}
	err := db.Update(ctx, func(tx *Tx) error {
		for _, r := range rooms {
			if err := tx.CreateRoom(r); err != nil {
				return err
			}
		}
		for _, e := range events {
			last, err := tx.LastEvent(e.room)
			if err != nil {
				return err
			}
			if _, err := tx.AppendEvent(e.room, Event{Seq: last.Seq + 1, TS: 1, Flags: e.flags, Frame: []byte(e.frame)}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// As before the migration: no index.
	err = db.bolt.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(bSearch); err != nil {
			return err
		}
		return migrateSearch(tx)
	})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *Tx) error {
		var all []string
		c := tx.bucket(bSearch).Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.Next() {
			all = append(all, fmt.Sprintf("%q", k[:len(k)-8]))
		}
		want := []string{`"rf\x00annexe\x00"`, `"rf\x00budget\x00"`, `"rf\x00budget\x00"`, `"rf\x00reunion\x00"`}
		if !slices.Equal(all, want) {
			t.Errorf("index %v, want %v", all, want)
		}
		return nil
	})
}
