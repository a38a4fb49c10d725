package chat_test

import (
	"fmt"
	"slices"
	"testing"
	"unicode/utf16"

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
			res, err := w.c.Search(alice, c.q, room, 0, 0)
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
