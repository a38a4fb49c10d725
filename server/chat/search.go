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
	searchMinChecks     = 20
	searchDefaultLimit  = 20
)

// Search finds the messages of unencrypted rooms the actor may read that
// hold every word of query (the last one as a prefix), newest first: in
// roomID, or in every room the actor has joined when it is "". cursor,
// from the previous page's result, continues it. Encrypted rooms are
// never searched: the node holds only their ciphertext, which clients
// search themselves once decrypted. Deleted messages are never found: the
// index drops their words with their content.
func (s *Service) Search(a Actor, query, roomID, cursor string, limit int) (proto.SearchResult, error) {
	q, err := search.Parse(query)
	if err != nil {
		return proto.SearchResult{}, err
	}
	var after *search.Position
	if cursor != "" {
		p, err := search.ParseCursor(cursor)
		if err != nil {
			return proto.SearchResult{}, err
		}
		after = &p
	}
	if limit <= 0 || limit > proto.MaxSearch {
		limit = searchDefaultLimit
	}
	res := proto.SearchResult{Hits: []proto.SearchHit{}}
	err = s.db.View(func(tx *store.Tx) error {
		rooms := []string{roomID}
		if roomID != "" {
			room, _, err := access(tx, a, roomID, ActRead)
			if err != nil {
				return err
			}
			if room.Encrypted {
				return proto.Errorf(proto.CodeBadRequest, "this room is end-to-end encrypted: only your devices can search it")
			}
		} else if rooms, err = readable(tx, a); err != nil {
			return err
		}
		return searchRooms(tx, q, rooms, after, limit, &res)
	})
	return res, err
}

// readable lists the unencrypted rooms the actor has joined and may read.
func readable(tx *store.Tx, a Actor) ([]string, error) {
	ids, err := tx.UserRooms(a.User)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, id := range ids {
		room, _, err := access(tx, a, id, ActRead)
		if proto.AsError(err) != nil {
			continue // invited, or not allowed to read
		}
		if err != nil {
			return nil, err
		}
		if !room.Encrypted {
			out = append(out, id)
		}
	}
	return out, nil
}

// searchRooms keeps the first limit hits, in result order, across rooms.
// A room that stops early (it found limit hits, or ran out of checks)
// holds back the page: no hit after where it stopped is given before the
// room's own further hits, so pages neither skip nor repeat.
func searchRooms(tx *store.Tx, q search.Query, rooms []string, after *search.Position, limit int, res *proto.SearchResult) error {
	budget := searchChecks
	var stop *search.Position
	for i, id := range rooms {
		// Each room gets its share of what is left, and a few checks
		// whatever happens, so that a room ahead in the list cannot
		// starve the others and every page moves on.
		share := min(searchChecksPerRoom, max(searchMinChecks, budget/(len(rooms)-i)))
		c, err := searchRoom(tx, q, id, after, limit, share)
		if err != nil {
			return err
		}
		budget -= c.checked
		res.Hits = append(res.Hits, c.hits...)
		if c.more {
			res.More = true
			if stop == nil || c.stop.Before(*stop) {
				stop = &c.stop
			}
		}
	}
	pos := func(h proto.SearchHit) search.Position { return search.Position{TS: h.TS, Room: h.Room, Seq: h.Seq} }
	slices.SortFunc(res.Hits, func(x, y proto.SearchHit) int {
		if pos(x).Before(pos(y)) {
			return -1
		}
		return 1
	})
	if stop != nil {
		res.Hits = slices.DeleteFunc(res.Hits, func(h proto.SearchHit) bool { return stop.Before(pos(h)) })
	}
	if len(res.Hits) > limit {
		res.Hits, res.More = res.Hits[:limit], true
		p := pos(res.Hits[limit-1])
		stop = &p
	}
	if res.More {
		res.Cursor = stop.Cursor()
	}
	return nil
}

// roomSearch is what searchRoom found in one room.
type roomSearch struct {
	hits []proto.SearchHit
	// more says the room may hold other hits, after stop.
	more    bool
	stop    search.Position
	checked int
}

// searchRoom returns up to limit hits of one room after the position
// after (nil: from the newest), checking at most checks messages.
func searchRoom(tx *store.Tx, q search.Query, roomID string, after *search.Position, limit, checks int) (roomSearch, error) {
	var out roomSearch
	var beforeSeq uint64
	if after != nil && after.Room == roomID {
		beforeSeq = after.Seq
	}
	term, prefix := q.Driver()
	// Postings are read a chunk at a time: a common word needs few of
	// them for a page.
	chunk := min(checks+1, 4*limit+1)
	seqs, truncated := tx.SearchPostings(roomID, term, prefix, beforeSeq, chunk)
	full := len(seqs) == chunk
	for i := 0; i < len(seqs); i++ {
		seq := seqs[i]
		if out.checked == checks {
			out.more = true
			break
		}
		if i == len(seqs)-1 && full {
			// The last of a full chunk: read the next one, from here.
			next, _ := tx.SearchPostings(roomID, term, prefix, seq+1, chunk)
			full = len(next) == chunk
			seqs = append(seqs[:i], next...)
			seq = seqs[i]
		}
		rec, err := tx.Event(roomID, seq)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return out, err
		}
		out.checked++
		p := search.Position{TS: rec.TS, Room: roomID, Seq: seq}
		out.stop = p
		if rec.Flags&store.Redacted != 0 || (after != nil && !after.Before(p)) {
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
		if len(out.hits) == limit {
			out.more = true
			return out, nil
		}
	}
	out.more = out.more || truncated
	if out.checked == 0 {
		out.more = false // nothing to continue after
	}
	return out, nil
}
