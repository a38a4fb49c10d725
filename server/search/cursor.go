package search

import (
	"strconv"
	"strings"

	"relais/server/id"
	"relais/server/proto"
)

// Position is the place of a message in the order of search results:
// newest first, then by room, then by seq, latest first. Timestamps are
// milliseconds and several messages may share one: the room and the seq
// tell them apart.
type Position struct {
	TS   int64
	Room string
	Seq  uint64
}

// Before reports whether p comes before o in the results.
func (p Position) Before(o Position) bool {
	switch {
	case p.TS != o.TS:
		return p.TS > o.TS
	case p.Room != o.Room:
		return p.Room < o.Room
	}
	return p.Seq > o.Seq
}

// Cursor is how a position travels to the client and back: "ts.seq.room".
func (p Position) Cursor() string {
	return strconv.FormatInt(p.TS, 10) + "." + strconv.FormatUint(p.Seq, 10) + "." + p.Room
}

// ParseCursor reads a cursor a client sent back.
func ParseCursor(s string) (Position, error) {
	bad := proto.Errorf(proto.CodeBadRequest, "cursor is not one this node gave")
	ts, rest, ok := strings.Cut(s, ".")
	if !ok {
		return Position{}, bad
	}
	seq, room, ok := strings.Cut(rest, ".")
	if !ok || !id.Valid(id.Room, room) {
		return Position{}, bad
	}
	var p Position
	var err error
	if p.TS, err = strconv.ParseInt(ts, 10, 64); err != nil || p.TS < 0 {
		return Position{}, bad
	}
	if p.Seq, err = strconv.ParseUint(seq, 10, 64); err != nil {
		return Position{}, bad
	}
	p.Room = room
	if p.Cursor() != s {
		// One spelling per position ("+1", "01" are not).
		return Position{}, bad
	}
	return p, nil
}
