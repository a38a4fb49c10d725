package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// fixtureExpected is what the generator of a fixture saw acknowledged
// (testdata/fixtures/gen_test.go.txt).
type fixtureExpected struct {
	Node     string            `json:"node"`
	Users    map[string]string `json:"users"`
	Pending  []string          `json:"pending"`
	Domains  []string          `json:"domains"`
	Rooms    map[string]string `json:"rooms"`
	Messages []struct {
		Room    string `json:"room"`
		Seq     uint64 `json:"seq"`
		User    string `json:"user"`
		CID     string `json:"cid"`
		Type    string `json:"type"`
		Body    string `json:"body"`
		Deleted bool   `json:"deleted"`
	} `json:"messages"`
	Files []struct {
		ID   string `json:"id"`
		Room string `json:"room"`
		Name string `json:"name"`
		Size int64  `json:"size"`
	} `json:"files"`
}

// TestMigratesEveryReleasedSchema opens a store written by each released
// schema version (testdata/fixtures, made by make-fixtures.sh from the
// revisions that wrote them), migrates it and finds everything the
// writer's clients had acknowledged, consistent and writable.
func TestMigratesEveryReleasedSchema(t *testing.T) {
	cases := []struct {
		fixture string
		version int
	}{
		// Schema v1 was never released: the first revision migrated to v2.
		{"schema-v2", 2},
		{"schema-v3", 3},
		{"schema-v4", 4},
		// Schema v5 (federation peers) never reached main alone: v6 came
		// in the same merge.
		{"schema-v6", 6},
		{"schema-v7", 7},
	}
	if last := cases[len(cases)-1].version; last != SchemaVersion() {
		t.Fatalf("no fixture of schema version %d: add one with make-fixtures.sh", SchemaVersion())
	}
	for _, c := range cases {
		t.Run(c.fixture, func(t *testing.T) {
			src := filepath.Join("testdata", "fixtures", c.fixture)
			b, err := os.ReadFile(src + ".db")
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "relais.db")
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			var exp fixtureExpected
			if b, err := os.ReadFile(src + ".json"); err != nil || json.Unmarshal(b, &exp) != nil {
				t.Fatalf("expected content: %v", err)
			}
			if got := rawSchema(t, path); got != c.version {
				t.Fatalf("the fixture has schema version %d, not %d", got, c.version)
			}
			db, err := Open(path, Options{Logger: testLogger(t)})
			if err != nil {
				t.Fatalf("open and migrate: %v", err)
			}
			defer db.Close()
			if err := db.CheckConsistency(nil); err != nil {
				t.Fatal(err)
			}
			if db.Node() != exp.Node {
				t.Errorf("node %s, want %s", db.Node(), exp.Node)
			}
			checkFixture(t, db, &exp)

			// The migrated store takes writes: a message after the last
			// one of the forum, with a client id of its own, then one a
			// day later, which turns the generations of client ids: the
			// ones written before the migration are still recognised.
			m := exp.Messages[0]
			now := time.Now().UnixMilli()
			for i, at := range []int64{now, now + (IdemWindow + time.Hour).Milliseconds()} {
				err = db.Update(context.Background(), func(tx *Tx) error {
					last, err := tx.LastEvent(m.Room)
					if err != nil {
						return err
					}
					if _, err := tx.AppendEvent(m.Room, Event{Seq: last.Seq + 1, Ord: last.Ord + 1, TS: at, Flags: Countable, Frame: []byte(`{}`)}); err != nil {
						return err
					}
					return tx.PutIdem(m.User, fmt.Sprintf("after-migration-%d", i), m.Room, last.Seq+1, at)
				})
				if err != nil {
					t.Fatalf("write %d after migration: %v", i, err)
				}
			}
			db.View(func(tx *Tx) error {
				if room, seq, _, ok := tx.Idem(m.User, m.CID); !ok || room != m.Room || seq != m.Seq {
					t.Errorf("a day after the migration, client id %s: %s %d %v", m.CID, room, seq, ok)
				}
				return nil
			})
			if err := db.CheckConsistency(nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func rawSchema(t *testing.T, path string) int {
	t.Helper()
	b, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	v := 0
	b.View(func(tx *bolt.Tx) error {
		if s := tx.Bucket(bMeta).Get(kSchema); len(s) == 8 {
			v = int(binary.BigEndian.Uint64(s))
		}
		return nil
	})
	return v
}

func checkFixture(t *testing.T, db *DB, exp *fixtureExpected) {
	t.Helper()
	err := db.View(func(tx *Tx) error {
		for email, id := range exp.Users {
			if u, err := tx.UserByEmail(email); err != nil || u.ID != id || u.State != UserActive {
				t.Errorf("user %s: %+v %v", email, u, err)
			}
		}
		for _, email := range exp.Pending {
			if u, err := tx.UserByEmail(email); err != nil || u.State == UserActive {
				t.Errorf("pending registration %s: %+v %v", email, u, err)
			}
		}
		if d, err := tx.Domains(); err != nil || !slices.Equal(d, exp.Domains) {
			t.Errorf("domains %v %v, want %v", d, err, exp.Domains)
		}
		for id, name := range exp.Rooms {
			r, err := tx.Room(id)
			if err != nil || r.Name != name || (name == "") != (r.Kind == Direct) {
				t.Errorf("room %s: %+v %v", id, r, err)
			}
		}
		for _, m := range exp.Messages {
			ev, err := tx.Event(m.Room, m.Seq)
			if err != nil {
				t.Errorf("event %d of %s: %v", m.Seq, m.Room, err)
				continue
			}
			var f struct {
				From, CID, Type, Body string
				Deleted               bool
			}
			if err := json.Unmarshal(ev.Frame, &f); err != nil {
				t.Errorf("event %d of %s: %v", m.Seq, m.Room, err)
			}
			// A tombstone keeps no client id (nor content).
			wantCID := m.CID
			if m.Deleted {
				wantCID = ""
			}
			if f.From != m.User || f.CID != wantCID || f.Type != m.Type || f.Body != m.Body || f.Deleted != m.Deleted || (ev.Flags&Redacted != 0) != m.Deleted {
				t.Errorf("event %d of %s is %+v (flags %b), want %+v", m.Seq, m.Room, f, ev.Flags, m)
			}
			// The idempotency key still answers with the same event, so a
			// client resending after the upgrade creates nothing.
			if room, seq, _, ok := tx.Idem(m.User, m.CID); !ok || room != m.Room || seq != m.Seq {
				t.Errorf("client id %s of %s: %s %d %v", m.CID, m.User, room, seq, ok)
			}
		}
		for _, want := range exp.Files {
			f, err := tx.File(want.ID)
			if err != nil || f.Name != want.Name || f.Size != want.Size || f.Room != want.Room || f.Seq == 0 {
				t.Errorf("file %s: %+v %v", want.ID, f, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
