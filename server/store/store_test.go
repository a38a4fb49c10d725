package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openTest(t testing.TB) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "relais.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestUpdateGroupCommitIsolatesFailures(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	committed := make([]bool, n)
	var mu sync.Mutex
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = db.Update(ctx, func(tx *Tx) error {
				u := User{ID: fmt.Sprintf("u%03d", i), Email: fmt.Sprintf("u%d@x.fr", i), Name: "N", State: UserActive}
				if err := tx.CreateUser(u); err != nil {
					return err
				}
				if i%7 == 0 {
					return fmt.Errorf("refused %d", i) // after a write: must be rolled back
				}
				tx.OnCommit(func() { mu.Lock(); committed[i] = true; mu.Unlock() })
				return nil
			})
		}()
	}
	wg.Wait()
	err := db.View(func(tx *Tx) error {
		for i := range n {
			_, err := tx.User(fmt.Sprintf("u%03d", i))
			switch {
			case i%7 == 0:
				if errs[i] == nil || !errors.Is(err, ErrNotFound) || committed[i] {
					t.Errorf("%d: refused write left traces: err=%v get=%v committed=%v", i, errs[i], err, committed[i])
				}
			default:
				if errs[i] != nil || err != nil || !committed[i] {
					t.Errorf("%d: write lost: err=%v get=%v committed=%v", i, errs[i], err, committed[i])
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestUpdatePanicIsAnError(t *testing.T) {
	db := openTest(t)
	err := db.Update(context.Background(), func(tx *Tx) error { panic("boom") })
	if err == nil {
		t.Fatal("panic not reported")
	}
	if err := db.Update(context.Background(), func(tx *Tx) error { return nil }); err != nil {
		t.Fatalf("writer dead after panic: %v", err)
	}
}

func TestClosedStoreRefuses(t *testing.T) {
	db := openTest(t)
	db.Close()
	if err := db.Update(context.Background(), func(*Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Update after Close: %v", err)
	}
	if err := db.View(func(*Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("View after Close: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestEventsLog(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	room := Room{ID: "r1", Kind: Group, Name: "G", Creator: "u1"}
	if err := db.Update(ctx, func(tx *Tx) error { return tx.CreateRoom(room) }); err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 10; i++ {
		err := db.Update(ctx, func(tx *Tx) error {
			last, err := tx.LastEvent("r1")
			if err != nil {
				return err
			}
			flags, ord := byte(0), last.Ord
			if i%2 == 0 {
				flags, ord = Countable, ord+1
			}
			_, err = tx.AppendEvent("r1", Event{Seq: last.Seq + 1, Ord: ord, TS: int64(i) * 1000, Flags: flags, Frame: []byte(fmt.Sprintf(`{"seq":%d}`, last.Seq+1))})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err := db.Update(ctx, func(tx *Tx) error {
		_, err := tx.AppendEvent("r1", Event{Seq: 5, Frame: []byte("x")})
		return err
	})
	if !errors.Is(err, ErrSeq) {
		t.Fatalf("out-of-sequence append: %v", err)
	}
	db.View(func(tx *Tx) error {
		last, err := tx.LastEvent("r1")
		if last.Seq != 10 || last.Ord != 5 || last.TS != 10000 || err != nil {
			t.Errorf("LastEvent = %+v, %v", last, err)
		}
		for _, c := range []struct {
			name     string
			from     uint64
			backward bool
			want     []uint64
		}{
			{"forward from 8", 8, false, []uint64{8, 9, 10}},
			{"backward from 3", 3, true, []uint64{3, 2, 1}},
			{"backward past end", 99, true, []uint64{10, 9, 8}},
			{"forward past end", 11, false, nil},
		} {
			var got []uint64
			tx.Events("r1", c.from, c.backward, func(ev Event) bool {
				got = append(got, ev.Seq)
				return len(got) < 3
			})
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("%s: got %v want %v", c.name, got, c.want)
			}
		}
		ev, err := tx.Event("r1", 4)
		if err != nil || string(ev.Frame) != `{"seq":4}` || ev.Ord != 2 || ev.TS != 4000 || ev.Flags != Countable {
			t.Errorf("Event(4) = %+v %v", ev, err)
		}
		var feed []FeedEntry
		tx.Feed(7, func(e FeedEntry) bool { feed = append(feed, e); return true })
		if len(feed) != 3 || feed[0].Seq != 8 || feed[0].RoomID != "r1" {
			t.Errorf("feed after 7 = %+v", feed)
		}
		return nil
	})
	db.Update(ctx, func(tx *Tx) error { return tx.MarkFeedPublished(8, 100) })
	db.View(func(tx *Tx) error {
		var feed []uint64
		tx.Feed(0, func(e FeedEntry) bool { feed = append(feed, e.GSeq); return true })
		if fmt.Sprint(feed) != "[9 10]" || tx.FeedPublished() != 8 || tx.FeedHead() != 10 {
			t.Errorf("after MarkFeedPublished: feed %v published %d head %d", feed, tx.FeedPublished(), tx.FeedHead())
		}
		return nil
	})
}

func TestDirectorySearch(t *testing.T) {
	db := openTest(t)
	users := []User{
		{ID: "u1", Email: "helene.dupont@a.fr", Name: "Hélène Dupont", State: UserActive},
		{ID: "u2", Email: "jean-pierre.martin@a.fr", Name: "Jean-Pierre Martin", State: UserActive},
		{ID: "u3", Email: "ext@b.fr", Name: "Hélène Externe", State: UserActive, External: true},
		{ID: "u4", Email: "pending@a.fr", Name: "Hélène Pending", State: UserPending},
	}
	db.Update(context.Background(), func(tx *Tx) error {
		for _, u := range users {
			if err := tx.CreateUser(u); err != nil {
				return err
			}
		}
		return nil
	})
	cases := []struct{ q, want string }{
		{"Helene", "[u1]"},
		{"hélène d", "[u1]"},
		{"DUP", "[u1]"},
		{"pierre", "[u2]"},
		{"martin", "[u2]"},
		{"externe", "[]"},
		{"pending", "[]"},
		{"", "[]"},
		{"zzz", "[]"},
	}
	for _, c := range cases {
		db.View(func(tx *Tx) error {
			got, err := tx.SearchNames(c.q, 10)
			ids := []string{}
			for _, u := range got {
				ids = append(ids, u.ID)
			}
			if err != nil || fmt.Sprint(ids) != c.want {
				t.Errorf("SearchNames(%q) = %v, %v; want %s", c.q, ids, err, c.want)
			}
			return nil
		})
	}
	// Renaming and deactivating keep the index in step.
	db.Update(context.Background(), func(tx *Tx) error {
		u, _ := tx.User("u1")
		u.Name = "Hélène Durand"
		if err := tx.PutUser(u); err != nil {
			return err
		}
		u2, _ := tx.User("u2")
		u2.State = UserDeactivated
		return tx.PutUser(u2)
	})
	db.View(func(tx *Tx) error {
		for q, want := range map[string]int{"dupont": 0, "durand": 1, "martin": 0} {
			got, _ := tx.SearchNames(q, 10)
			if len(got) != want {
				t.Errorf("after update SearchNames(%q) = %d users, want %d", q, len(got), want)
			}
		}
		return nil
	})
}

func TestBackupIsConsistentWhileWriting(t *testing.T) {
	db := openTest(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The writes are under way, not merely started, when the snapshot is
	// taken: the writer says when some have committed.
	const underWay = 50
	started := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		committed := 0
		for i := 0; ctx.Err() == nil && i < 5000; i++ {
			err := db.Update(ctx, func(tx *Tx) error {
				return tx.CreateUser(User{ID: fmt.Sprintf("u%05d", i), Email: fmt.Sprintf("%d@a.fr", i), State: UserActive, Name: "X"})
			})
			if err == nil {
				if committed++; committed == underWay {
					close(started)
				}
			}
		}
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatalf("fewer than %d writes committed in 10s", underWay)
	}
	var buf bytes.Buffer
	if _, err := db.Backup(&buf); err != nil {
		t.Fatal(err)
	}
	cancel()
	wg.Wait()
	path := filepath.Join(t.TempDir(), "copy.db")
	if err := writeFile(path, buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	copyDB, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("snapshot does not open: %v", err)
	}
	defer copyDB.Close()
	if copyDB.Node() != db.Node() {
		t.Errorf("node id not preserved")
	}
	// Every user in the snapshot has its e-mail index entry: the snapshot
	// is one transaction's view.
	copyDB.View(func(tx *Tx) error {
		n := 0
		tx.Users(func(u User) bool {
			n++
			if _, err := tx.UserByEmail(u.Email); err != nil {
				t.Errorf("user %s without index in snapshot", u.ID)
			}
			return true
		})
		t.Logf("snapshot holds %d users", n)
		if n < underWay {
			t.Errorf("snapshot holds %d users, but %d had committed before it was taken", n, underWay)
		}
		return nil
	})
}

func TestMigrations(t *testing.T) {
	t.Run("empty store gets the latest version", func(t *testing.T) {
		db := openTest(t)
		db.View(func(tx *Tx) error {
			if v := tx.bucket(bMeta).Get(kSchema); string(v) != string(u64(uint64(SchemaVersion()))) {
				t.Errorf("schema = %x, want %d", v, SchemaVersion())
			}
			return nil
		})
		if db.Node() == "" {
			t.Error("no node id")
		}
	})
	t.Run("populated store is migrated forward and keeps its data", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "relais.db")
		db, err := Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		node := db.Node()
		db.Update(context.Background(), func(tx *Tx) error {
			return tx.CreateUser(User{ID: "u1", Email: "a@b.fr", Name: "Anne Bé", State: UserActive})
		})
		db.Close()

		// A future migration, as the next release would add it.
		ran := 0
		next := append(append([]migration{}, migrations...), migration{"test: add a bucket", func(tx *bolt.Tx) error {
			ran++
			_, err := tx.CreateBucket([]byte("future"))
			return err
		}})
		b, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := migrate(b, next, testLogger(t)); err != nil {
			t.Fatal(err)
		}
		// Running again is a no-op.
		if err := migrate(b, next, testLogger(t)); err != nil || ran != 1 {
			t.Fatalf("second migrate: err %v, ran %d", err, ran)
		}
		b.View(func(tx *bolt.Tx) error {
			if tx.Bucket([]byte("future")) == nil {
				t.Error("migration not applied")
			}
			return nil
		})
		b.Close()

		// The current binary refuses a store from the future.
		if _, err := Open(path, Options{}); err == nil {
			t.Fatal("opened a store newer than the binary")
		}
		b, _ = bolt.Open(path, 0o600, nil)
		b.Update(func(tx *bolt.Tx) error { return tx.Bucket(bMeta).Put(kSchema, u64(uint64(SchemaVersion()))) })
		b.Close()
		db, err = Open(path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		db.View(func(tx *Tx) error {
			u, err := tx.UserByEmail("a@b.fr")
			if err != nil || u.Name != "Anne Bé" || db.Node() != node {
				t.Errorf("data lost across migration: %+v %v", u, err)
			}
			return nil
		})
	})
}

func BenchmarkAppendGroupCommit(b *testing.B) {
	for _, writers := range []int{1, 64, 256} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			db := openTest(b)
			ctx := context.Background()
			rooms := make([]string, writers)
			for i := range rooms {
				rooms[i] = fmt.Sprintf("r%04d", i)
				db.Update(ctx, func(tx *Tx) error { return tx.CreateRoom(Room{ID: rooms[i], Kind: Group}) })
			}
			frame := bytes.Repeat([]byte("x"), 1024)
			b.SetBytes(1024)
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			per := b.N/writers + 1
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range per {
						err := db.Update(ctx, func(tx *Tx) error {
							last, err := tx.LastEvent(rooms[w])
							if err != nil {
								return err
							}
							_, err = tx.AppendEvent(rooms[w], Event{Seq: last.Seq + 1, Ord: last.Ord + 1, TS: 1, Flags: Countable, Frame: frame})
							return err
						})
						if err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
		})
	}
}

// TestClientIDsLastOneToTwoWindows: a client id is recognised for at least
// IdemWindow and forgotten after two, the older generation being dropped
// whole.
func TestClientIDsLastOneToTwoWindows(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	w := IdemWindow.Milliseconds()
	t0 := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC).UnixMilli()
	put := func(cid string, at int64) {
		t.Helper()
		if err := db.Update(ctx, func(tx *Tx) error { return tx.PutIdem("u1", cid, "r1", uint64(at), at) }); err != nil {
			t.Fatal(err)
		}
	}
	known := func(cid string) bool {
		var ok bool
		db.View(func(tx *Tx) error { _, _, _, ok = tx.Idem("u1", cid); return nil })
		return ok
	}
	steps := []struct {
		at    int64
		cid   string
		known []string
		gone  []string
	}{
		{t0, "a", []string{"a"}, nil},
		{t0 + w - 1, "b", []string{"a", "b"}, nil},
		{t0 + w, "c", []string{"a", "b", "c"}, nil}, // turn: a and b in the older generation
		{t0 + 2*w - 1, "d", []string{"a", "b", "c", "d"}, nil},
		{t0 + 2*w, "e", []string{"c", "d", "e"}, []string{"a", "b"}}, // turn: a and b dropped
		{t0 + 10*w, "f", []string{"f"}, []string{"c", "d", "e"}},     // after a long silence, one turn
	}
	for _, s := range steps {
		put(s.cid, s.at)
		for _, cid := range s.known {
			if !known(cid) {
				t.Errorf("after %s at t0%+dms: %s forgotten", s.cid, s.at-t0, cid)
			}
		}
		for _, cid := range s.gone {
			if known(cid) {
				t.Errorf("after %s at t0%+dms: %s still known", s.cid, s.at-t0, cid)
			}
		}
	}
}

// TestWriterStats: a lone writer commits each write on its own; writers
// in parallel share commits; the counts add up.
func TestWriterStats(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	write := func(i int) error {
		return db.Update(ctx, func(tx *Tx) error { return tx.PutIdem("u", fmt.Sprint(i), "r", 1, 1) })
	}
	before := db.WriterStats()
	for i := range 20 {
		if err := write(i); err != nil {
			t.Fatal(err)
		}
	}
	lone := db.WriterStats().Sub(before)
	if lone.Commits != 20 || lone.Writes != 20 || lone.Pages == 0 || lone.Busy <= 0 {
		t.Fatalf("lone writer: %+v, want 20 commits of one write", lone)
	}
	const writers, each = 32, 20
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := write(1000 + w*each + i); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	many := db.WriterStats().Sub(before).Sub(lone)
	if many.Writes != writers*each || many.Commits >= many.Writes/2 {
		t.Fatalf("%d parallel writers: %+v, want %d writes sharing commits", writers, many, writers*each)
	}
}
