package chat_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"relais/server/bus"
	"relais/server/chat"
	"relais/server/proto"
	"relais/server/search"
	"relais/server/store"
)

// searchCorpus is 100 000 messages of 12 words in 10 forums, the words
// drawn from 5 000 with a Zipf law (a few very common, most rare), and one
// message holding "tournesol".
type searchCorpus struct {
	s     *chat.Service
	db    *store.DB
	a     chat.Actor
	rooms []string
}

var (
	corpusOnce sync.Once
	corpus     searchCorpus
	corpusErr  error
)

func openSearchCorpus(b *testing.B) *searchCorpus {
	corpusOnce.Do(func() { corpusErr = fillSearchCorpus(b.TempDir()) })
	if corpusErr != nil {
		b.Fatal(corpusErr)
	}
	return &corpus
}

func fillSearchCorpus(dir string) error {
	// The fill is not what is measured: no fsync.
	db, err := store.Open(filepath.Join(dir, "relais.db"), store.Options{NoSync: true})
	if err != nil {
		return err
	}
	s := chat.New(db, bus.Discard{}, chat.Options{})
	ctx := context.Background()
	a := chat.Actor{User: "u-" + db.Node() + "-abcdefghijklmnop", Device: "d-abcdefghijklmnop"}
	vocab := make([]string, 5000)
	for i := range vocab {
		vocab[i] = fmt.Sprintf("mot%dé", i)
	}
	vocab[0], vocab[1], vocab[2] = "projet", "réunion", "budget"
	var rooms []string
	for i := range 10 {
		r, err := s.CreateRoom(ctx, a, chat.CreateRoomRequest{Kind: store.Forum, Name: fmt.Sprint("Forum ", i)})
		if err != nil {
			return err
		}
		rooms = append(rooms, r)
	}
	const total, writers = 100_000, 50
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			zipf := rand.NewZipf(rand.New(rand.NewPCG(uint64(w), 8)), 1.1, 1, uint64(len(vocab)-1))
			for i := w; i < total; i += writers {
				words := make([]string, 12)
				for j := range words {
					words[j] = vocab[zipf.Uint64()]
				}
				if i == total/2 {
					words[5] = "tournesol"
				}
				f := &proto.ClientFrame{T: proto.TSend, ID: fmt.Sprint("m", i), Room: rooms[rng.IntN(len(rooms))], Type: proto.EvText, Body: strings.Join(words, " ")}
				if _, err := s.Send(ctx, a, f); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	corpus = searchCorpus{s: s, db: db, a: a, rooms: rooms}
	return nil
}

var searchQueries = []string{"tournesol", "projet", "reunion budget", "proj", "mot4999é mot1"}

// BenchmarkSearch100k measures chat.Service.Search through the index over
// 100 000 forum messages, in one forum (10 000 messages) and in all ten,
// for a word in one message, a word in most, two words, a prefix.
func BenchmarkSearch100k(b *testing.B) {
	c := openSearchCorpus(b)
	for _, scope := range []string{"room", "all"} {
		for _, q := range searchQueries {
			b.Run(scope+"/"+strings.ReplaceAll(q, " ", "+"), func(b *testing.B) {
				room := ""
				if scope == "room" {
					room = c.rooms[0]
				}
				b.ReportAllocs()
				hits := 0
				for b.Loop() {
					res, err := c.s.Search(c.a, q, room, "", 20)
					if err != nil {
						b.Fatal(err)
					}
					hits = len(res.Hits)
				}
				b.ReportMetric(float64(hits), "hits")
			})
		}
	}
}

// BenchmarkSearchScan100k measures the alternative to the index: reading
// the rooms' logs newest first, decoding and matching every message until
// 20 hits, over the same corpus.
func BenchmarkSearchScan100k(b *testing.B) {
	c := openSearchCorpus(b)
	for _, scope := range []string{"room", "all"} {
		for _, qs := range searchQueries {
			b.Run(scope+"/"+strings.ReplaceAll(qs, " ", "+"), func(b *testing.B) {
				q, err := search.Parse(qs)
				if err != nil {
					b.Fatal(err)
				}
				rooms := c.rooms
				if scope == "room" {
					rooms = rooms[:1]
				}
				hits := 0
				for b.Loop() {
					hits = 0
					err := c.db.View(func(tx *store.Tx) error {
						for _, r := range rooms {
							n := 0
							err := tx.Events(r, ^uint64(0), true, func(e store.Event) bool {
								var ev proto.Event
								if json.Unmarshal(e.Frame, &ev) == nil && !ev.Deleted {
									if _, ok := q.Match(ev.Body); ok {
										n++
									}
								}
								return n < 20
							})
							if err != nil {
								return err
							}
							hits += n
						}
						return nil
					})
					if err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(min(hits, 20)), "hits")
			})
		}
	}
}
