package chat_test

import (
	"fmt"
	"slices"
	"testing"
	"time"
	"unicode/utf16"

	"relais/server/bus"
	"relais/server/chat"
	"relais/server/proto"
	"relais/server/store"
)

// say sends a text message and returns its seq.
func (w *world) say(a chat.Actor, room, body string) uint64 {
	w.t.Helper()
	w.n++
	ack, err := w.c.Send(w.ctx, a, &proto.ClientFrame{T: proto.TSend, ID: fmt.Sprintf("m%d", w.n), Room: room, Type: proto.EvText, Body: body})
	w.must(err)
	return ack.Seq
}

// edit and del change a message through chat.Send.
func (w *world) edit(a chat.Actor, room string, seq uint64, body string) {
	w.t.Helper()
	w.n++
	_, err := w.c.Send(w.ctx, a, &proto.ClientFrame{T: proto.TSend, ID: fmt.Sprintf("e%d", w.n), Room: room, Type: proto.EvEdit, Target: seq, Body: body})
	w.must(err)
}

func (w *world) del(a chat.Actor, room string, seq uint64) {
	w.t.Helper()
	w.n++
	_, err := w.c.Send(w.ctx, a, &proto.ClientFrame{T: proto.TSend, ID: fmt.Sprintf("d%d", w.n), Room: room, Type: proto.EvDelete, Target: seq})
	w.must(err)
}

// found returns the seqs a search finds, in its order.
func found(res proto.SearchResult) []uint64 {
	var out []uint64
	for _, h := range res.Hits {
		out = append(out, h.Seq)
	}
	return out
}

// marked returns the highlighted parts of each hit's body.
func marked(h proto.SearchHit) []string {
	u := utf16.Encode([]rune(h.Body))
	var out []string
	for _, m := range h.Marks {
		out = append(out, string(utf16.Decode(u[m[0]:m[1]])))
	}
	return out
}

// TestSearchMatchesWordsAccentInsensitive: every word of the query must be
// a word of the message, accents and case aside, the last one as a prefix;
// the matching words are marked, in UTF-16 offsets (an emoji before them
// counts two).
func TestSearchMatchesWordsAccentInsensitive(t *testing.T) {
	w := newWorld(t)
	alice := w.user(false)
	room := w.group(store.Forum, alice)
	body := "😀 Réunion budgétaire: le NŒUD du problème, l'École"
	seq := w.say(alice, room, body)
	w.say(alice, room, "rien à voir")
	for _, c := range []struct {
		q     string
		found bool
		marks []string
	}{
		{"reunion", true, []string{"Réunion"}},
		{"RÉUNION", true, []string{"Réunion"}},
		{"réun", true, []string{"Réunion"}},
		{"reunion budg", true, []string{"Réunion", "budgétaire"}},
		{"budgetaire reunion", true, []string{"Réunion", "budgétaire"}},
		{"noeud", true, []string{"NŒUD"}},
		{"ecole", true, []string{"École"}},
		{"budget reunion", false, nil}, // "budget" is not a prefix term: it must be a whole word
		{"reunion ", true, []string{"Réunion"}},
		{"reun ", false, nil},           // a query ending in a space asks for whole words
		{"reunion budget ", false, nil}, // a trailing space makes the last word whole too
		{"réunion mensuelle", false, nil},
		{"eunion", false, nil}, // a prefix of a word, not any part of it
	} {
		t.Run(c.q, func(t *testing.T) {
			res, err := w.c.Search(alice, c.q, room, "", 0)
			w.must(err)
			if !c.found {
				if len(res.Hits) != 0 {
					t.Fatalf("found %v", found(res))
				}
				return
			}
			if got := found(res); !slices.Equal(got, []uint64{seq}) {
				t.Fatalf("found %v, want [%d]", got, seq)
			}
			if got := marked(res.Hits[0]); !slices.Equal(got, c.marks) {
				t.Fatalf("marks %q, want %q", got, c.marks)
			}
		})
	}
}

// TestSearchNeverFindsDeletedOrReplacedText: a deleted message is not
// found, nor the former words of an edited one, and the index keeps none
// of their words.
func TestSearchNeverFindsDeletedOrReplacedText(t *testing.T) {
	w := newWorld(t)
	alice := w.user(false)
	room := w.group(store.Forum, alice)
	gone := w.say(alice, room, "le mot de passe est tournesol")
	edited := w.say(alice, room, "rendez-vous jeudi à Lyon")
	w.del(alice, room, gone)
	w.edit(alice, room, edited, "rendez-vous vendredi à Lyon")
	for q, want := range map[string][]uint64{"tournesol": nil, "passe": nil, "jeudi": nil, "vendredi": {edited}, "lyon": {edited}} {
		res, err := w.c.Search(alice, q, room, "", 0)
		w.must(err)
		if got := found(res); !slices.Equal(got, want) {
			t.Errorf("%q found %v, want %v", q, got, want)
		}
	}
	w.must(w.db.View(func(tx *store.Tx) error {
		for _, word := range []string{"tournesol", "passe", "jeudi"} {
			if seqs, _ := tx.SearchPostings(room, word, false, 0, 10); len(seqs) != 0 {
				t.Errorf("the index still holds %q for %v", word, seqs)
			}
		}
		return nil
	}))
}

// TestSearchChecksEachRoomsAccess is the attack of a reader searching
// what they may not read: a private room they are not in, one they left,
// a forum they have not joined (an agent) or cannot see (an external), an
// encrypted room. Each is refused by name and absent from a search of all
// rooms.
func TestSearchChecksEachRoomsAccess(t *testing.T) {
	w := newWorld(t)
	alice, mallory, ext := w.user(false), w.user(false), w.user(true)
	private, err := w.c.CreateRoom(w.ctx, alice, chat.CreateRoomRequest{Kind: store.Group, Name: "Privé", Encrypted: ptr(false)})
	w.must(err)
	left, err := w.c.CreateRoom(w.ctx, alice, chat.CreateRoomRequest{Kind: store.Group, Name: "Quittée", Encrypted: ptr(false)})
	w.must(err)
	w.must(w.c.Invite(w.ctx, alice, left, mallory.User))
	w.must(w.c.Join(w.ctx, mallory, left))
	forum := w.group(store.Forum, alice)
	encrypted, err := w.c.CreateRoom(w.ctx, alice, chat.CreateRoomRequest{Kind: store.Group, Name: "Chiffrée"})
	w.must(err)
	w.must(w.c.Invite(w.ctx, alice, encrypted, mallory.User))
	w.must(w.c.Join(w.ctx, mallory, encrypted))
	w.say(alice, private, "secret confidentiel")
	w.say(alice, forum, "secret du forum")
	w.must(w.c.Leave(w.ctx, mallory, left))
	w.say(alice, left, "secret après son départ")
	mine := w.group(store.Forum, mallory)
	own := w.say(mallory, mine, "pas de secret ici")

	for _, c := range []struct {
		name string
		who  chat.Actor
		room string
		code string
	}{
		{"private room not joined", mallory, private, proto.CodeNotFound},
		{"room left", mallory, left, proto.CodeNotFound},
		{"forum not joined", mallory, forum, proto.CodeNotMember},
		{"forum, external", ext, forum, proto.CodeNotFound},
		{"encrypted room", mallory, encrypted, proto.CodeBadRequest},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := w.c.Search(c.who, "secret", c.room, "", 0)
			if codeOf(err) != c.code {
				t.Fatalf("err = %v (hits %v), want %s", err, found(res), c.code)
			}
		})
	}
	for _, who := range []chat.Actor{mallory, ext} {
		res, err := w.c.Search(who, "secret", "", "", 0)
		w.must(err)
		for _, h := range res.Hits {
			if h.Room != mine || h.Seq != own {
				t.Errorf("%s found %s/%d: %q", who.User, h.Room, h.Seq, h.Body)
			}
		}
	}
}

// TestSearchPagesThroughBoundedResults: a page holds at most the limit
// asked, newest first, and its cursor leads to the next page until every
// hit was seen once, in a room and across rooms, even when many messages
// share one millisecond (the clock here stands still).
func TestSearchPagesThroughBoundedResults(t *testing.T) {
	w := newWorld(t)
	still := time.Now()
	w.c = chat.New(w.db, bus.Discard{}, chat.Options{Now: func() time.Time { return still }})
	alice := w.user(false)
	a, b := w.group(store.Forum, alice), w.group(store.Forum, alice)
	var want []uint64
	for i := range 70 {
		room := a
		if i%3 == 0 {
			room = b
		}
		seq := w.say(alice, room, fmt.Sprintf("point %d du dossier", i))
		if room == a {
			want = append(want, seq)
		}
		w.say(alice, room, "autre chose")
	}
	slices.Reverse(want)
	for _, c := range []struct {
		name  string
		room  string
		total int
	}{{"one room", a, len(want)}, {"all rooms", "", 70}} {
		t.Run(c.name, func(t *testing.T) {
			var got []proto.SearchHit
			var cursor string
			for page := 0; ; page++ {
				if page > 10 {
					t.Fatal("the pages do not end")
				}
				res, err := w.c.Search(alice, "dossier", c.room, cursor, 20)
				w.must(err)
				if len(res.Hits) > 20 {
					t.Fatalf("page of %d hits", len(res.Hits))
				}
				got = append(got, res.Hits...)
				if !res.More {
					break
				}
				cursor = res.Cursor
			}
			if len(got) != c.total {
				t.Fatalf("%d hits, want %d", len(got), c.total)
			}
			seen := map[string]bool{}
			for i, h := range got {
				k := fmt.Sprint(h.Room, h.Seq)
				if seen[k] {
					t.Fatalf("%s found twice", k)
				}
				seen[k] = true
				if i > 0 && h.TS > got[i-1].TS {
					t.Fatalf("hit %d is newer than the one before it", i)
				}
			}
			if c.room != "" && !slices.Equal(found(proto.SearchResult{Hits: got}), want) {
				t.Fatalf("found %v, want %v", found(proto.SearchResult{Hits: got}), want)
			}
		})
	}
}

// TestSearchStopsAfterItsChecksAndResumes: a query whose first word is in
// more messages than one request checks stops there, says more, and its
// cursor resumes below: the old message holding both words is found on a
// later page, not lost.
func TestSearchStopsAfterItsChecksAndResumes(t *testing.T) {
	w := newWorld(t)
	alice := w.user(false)
	room := w.group(store.Forum, alice)
	old := w.say(alice, room, "dossier rarissime")
	for i := range 1100 {
		w.say(alice, room, fmt.Sprint("dossier numéro ", i))
	}
	for _, scope := range []string{room, ""} {
		var got []uint64
		cursor, pages := "", 0
		for {
			res, err := w.c.Search(alice, "dossier rari", scope, cursor, 20)
			w.must(err)
			pages++
			got = append(got, found(res)...)
			if !res.More {
				break
			}
			if res.Cursor == cursor || pages > 5 {
				t.Fatalf("scope %q: page %d does not move on (cursor %q)", scope, pages, cursor)
			}
			cursor = res.Cursor
		}
		if !slices.Equal(got, []uint64{old}) || pages < 2 {
			t.Fatalf("scope %q: found %v in %d pages, want [%d] past the first page", scope, got, pages, old)
		}
	}
}
