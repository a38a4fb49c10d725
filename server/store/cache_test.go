package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestWriteCacheHoldsOnlyCommittedState writes the cached records (room,
// membership, MLS group, last event) in transactions that fail after the
// write, alone and batched with writes that succeed, and checks that the
// next write transactions read exactly what a read-only transaction reads
// from the file.
func TestWriteCacheHoldsOnlyCommittedState(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	const rooms = 8
	refused := errors.New("refused after writing")
	if err := db.Update(ctx, func(tx *Tx) error {
		for i := range rooms {
			id := fmt.Sprintf("r%d", i)
			if err := tx.CreateRoom(Room{ID: id, Kind: Group, Name: "v0", Created: time.Unix(0, 0).UTC()}); err != nil {
				return err
			}
			if err := tx.PutMember(id, "u", Membership{Role: Member, State: Joined, By: "v0"}); err != nil {
				return err
			}
			if err := tx.PutMLSGroup(id, MLSGroup{Pending: []string{"v0"}}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	// change writes version v into room i's four cached records, in one
	// write transaction, after reading them (so that they are cached).
	change := func(tx *Tx, i, v int) error {
		id := fmt.Sprintf("r%d", i)
		r, err := tx.Room(id)
		if err != nil {
			return err
		}
		if _, err := tx.Member(id, "u"); err != nil {
			return err
		}
		if _, err := tx.MLSGroup(id); err != nil {
			return err
		}
		last, err := tx.LastEvent(id)
		if err != nil {
			return err
		}
		r.Name = fmt.Sprintf("v%d", v)
		if err := tx.PutRoom(r); err != nil {
			return err
		}
		if err := tx.PutMember(id, "u", Membership{Role: Member, State: Joined, By: r.Name}); err != nil {
			return err
		}
		if err := tx.PutMLSGroup(id, MLSGroup{Epoch: uint64(v), Pending: []string{r.Name}}); err != nil {
			return err
		}
		_, err = tx.AppendEvent(id, Event{Seq: last.Seq + 1, Ord: last.Ord + 1, TS: int64(v), Frame: []byte(r.Name)})
		return err
	}

	for round := 1; round <= 20; round++ {
		var wg sync.WaitGroup
		errs := make([]error, rooms)
		for i := range rooms {
			wg.Go(func() {
				errs[i] = db.Update(ctx, func(tx *Tx) error {
					if err := change(tx, i, round); err != nil {
						return err
					}
					if (i+round)%3 == 0 {
						return refused
					}
					return nil
				})
			})
		}
		wg.Wait()
		for i, err := range errs {
			if want := (i+round)%3 == 0; want != errors.Is(err, refused) {
				t.Fatalf("round %d room %d: %v", round, i, err)
			}
		}
		type state struct {
			r    Room
			m    Membership
			g    MLSGroup
			last Event
		}
		read := func(tx *Tx, i int) (s state, err error) {
			id := fmt.Sprintf("r%d", i)
			if s.r, err = tx.Room(id); err != nil {
				return s, err
			}
			if s.m, err = tx.Member(id, "u"); err != nil {
				return s, err
			}
			if s.g, err = tx.MLSGroup(id); err != nil {
				return s, err
			}
			s.last, err = tx.LastEvent(id)
			return s, err
		}
		for i := range rooms {
			var inFile, inWriter state
			if err := db.View(func(tx *Tx) (err error) { inFile, err = read(tx, i); return err }); err != nil {
				t.Fatal(err)
			}
			if err := db.Update(ctx, func(tx *Tx) (err error) { inWriter, err = read(tx, i); return err }); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(inFile) != fmt.Sprint(inWriter) {
				t.Fatalf("round %d room %d: the writer reads\n%v\nthe file holds\n%v", round, i, inWriter, inFile)
			}
			if inFile.r.Name != inFile.m.By || len(inFile.g.Pending) != 1 || inFile.g.Pending[0] != inFile.r.Name {
				t.Fatalf("round %d room %d: records of different transactions: %+v", round, i, inFile)
			}
		}
	}
}

// TestWriteCacheValuesAreCopies checks that a caller changing what it was
// given does not change what the next transaction reads.
func TestWriteCacheValuesAreCopies(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	if err := db.Update(ctx, func(tx *Tx) error {
		return tx.PutMLSGroup("r", MLSGroup{Epoch: 1, Pending: []string{"a"}})
	}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := db.Update(ctx, func(tx *Tx) error {
			g, err := tx.MLSGroup("r")
			if err != nil {
				return err
			}
			if len(g.Pending) != 1 || g.Pending[0] != "a" {
				t.Fatalf("pending %v, want [a]", g.Pending)
			}
			g.Pending[0] = "changed by a caller"
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}
