package chat

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"relais/server/proto"
	"relais/server/search"
	"relais/server/store"
)

// Bounds of one search: the messages checked against the query, in one
// room and in all, whatever the index proposes.
const (
	searchChecksPerRoom = 1000
	searchChecks        = 5000
	searchDefaultLimit  = 20
)

// Search finds the messages of unencrypted rooms the actor may read that
// hold every word of query (the last one as a prefix), newest first. With
// roomID it searches that room, before being a seq; without, every room
// the actor has joined, before being a timestamp. Encrypted rooms are
// never searched: the node holds only their ciphertext, which clients
// search themselves once decrypted. Deleted messages are never found: the
// index drops their words with their content.
func (s *Service) Search(a Actor, query, roomID string, before uint64, limit int) (proto.SearchResult, error) {
	q, err := search.Parse(query)
	if err != nil {
		return proto.SearchResult{}, err
	}
	if limit <= 0 || limit > proto.MaxSearch {
		limit = searchDefaultLimit
	}
	res := proto.SearchResult{Hits: []proto.SearchHit{}}
	err = s.db.View(func(tx *store.Tx) error {
		if roomID != "" {
			room, _, err := access(tx, a, roomID, ActRead)
			if err != nil {
				return err
			}
			if room.Encrypted {
				return proto.Errorf(proto.CodeBadRequest, "this room is end-to-end encrypted: only your devices can search it")
			}
			c, err := searchRoom(tx, q, roomID, before, 0, limit, searchChecksPerRoom)
			res.Hits, res.More = c.hits, c.more
			if c.more {
				res.Before = c.nextSeq
			}
			return err
		}
		return searchAll(tx, a, q, before, limit, &res)
	})
	return res, err
}

// searchAll searches every unencrypted room the actor has joined and
// keeps the newest hits across them.
func searchAll(tx *store.Tx, a Actor, q search.Query, beforeTS uint64, limit int, res *proto.SearchResult) error {
	rooms, err := tx.UserRooms(a.User)
	if err != nil {
		return err
	}
	budget := searchChecks
	var cutTS uint64 // newest timestamp below which a truncated room may hold more
	for _, id := range rooms {
		if budget <= 0 {
			res.More = true
			break
		}
		room, _, err := access(tx, a, id, ActRead)
		if err != nil {
			var pe *proto.Error
			if errors.As(err, &pe) {
				continue // invited, left or not allowed to read: not searched
			}
			return err
		}
		if room.Encrypted {
			continue
		}
		perRoom := min(budget, searchChecksPerRoom)
		c, err := searchRoom(tx, q, id, 0, beforeTS, limit, perRoom)
		if err != nil {
			return err
		}
		budget -= c.checked
		res.Hits = append(res.Hits, c.hits...)
		if c.more {
			res.More = true
			if len(c.hits) < limit {
				// The room ran out of checks before finding enough: the
				// next page starts where it stopped.
				cutTS = max(cutTS, uint64(c.nextTS))
			}
		}
	}
	slices.SortStableFunc(res.Hits, func(x, y proto.SearchHit) int {
		switch {
		case x.TS > y.TS:
			return -1
		case x.TS < y.TS:
			return 1
		}
		return 0
	})
	if cutTS > 0 {
		// Hits older than where a room stopped come on the next page, in
		// order with what that room still holds.
		res.Hits = slices.DeleteFunc(res.Hits, func(h proto.SearchHit) bool { return uint64(h.TS) < cutTS })
	}
	if len(res.Hits) > limit {
		res.Hits, res.More = res.Hits[:limit], true
	}
	if res.More {
		res.Before = cutTS
		if len(res.Hits) > 0 {
			res.Before = max(uint64(res.Hits[len(res.Hits)-1].TS), cutTS)
		}
	}
	return nil
}

// roomSearch is what searchRoom found in one room.
type roomSearch struct {
	hits []proto.SearchHit
	// more says the room may hold other hits, below nextSeq (older than
	// nextTS, the timestamp of the last message checked).
	more    bool
	nextSeq uint64
	nextTS  int64
	checked int
}

// searchRoom returns up to limit hits of one room, newest first, with seq
// below beforeSeq and timestamp below beforeTS (0: no bound), checking at
// most checks messages.
func searchRoom(tx *store.Tx, q search.Query, roomID string, beforeSeq, beforeTS uint64, limit, checks int) (roomSearch, error) {
	var out roomSearch
	term, prefix := q.Driver()
	seqs, truncated := tx.SearchPostings(roomID, term, prefix, beforeSeq, checks+1)
	if len(seqs) > checks {
		seqs, out.more = seqs[:checks], true
	}
	out.more = out.more || truncated
	for _, seq := range seqs {
		if len(out.hits) == limit {
			out.more, out.nextSeq = true, seq+1
			return out, nil
		}
		out.nextSeq = seq
		out.checked++
		rec, err := tx.Event(roomID, seq)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return out, err
		}
		out.nextTS = rec.TS
		if rec.Flags&store.Redacted != 0 || (beforeTS != 0 && uint64(rec.TS) >= beforeTS) {
			continue
		}
		var ev proto.Event
		if err := json.Unmarshal(rec.Frame, &ev); err != nil {
			return out, fmt.Errorf("decode stored event %s/%d: %w", roomID, seq, err)
		}
		if ev.Deleted || (ev.Type != proto.EvText && ev.Type != proto.EvFile) {
			continue
		}
		marks, ok := q.Match(ev.Body)
		if !ok {
			continue
		}
		out.hits = append(out.hits, proto.SearchHit{Room: roomID, Seq: seq, TS: ev.TS, From: ev.From, Body: ev.Body, Marks: marks})
	}
	return out, nil
}
