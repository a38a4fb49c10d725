package proto

import (
	"strings"
	"unicode/utf8"

	"relais/server/id"
)

// MaxSearch is the most hits one search answers.
const MaxSearch = 50

// SearchHit is one message a search found, in the "hits" of its result.
type SearchHit struct {
	Room string `json:"room"`
	Seq  uint64 `json:"seq"`
	TS   int64  `json:"ts"`
	From string `json:"from"`
	Body string `json:"body"`
	// Marks are the [start, end) ranges of the words that matched, in
	// UTF-16 code units of Body.
	Marks [][2]int `json:"marks"`
}

// SearchResult is the data of the result of a "search". When More is
// set, Cursor, sent back in the next search, gives the next page.
type SearchResult struct {
	Hits   []SearchHit `json:"hits"`
	More   bool        `json:"more,omitempty"`
	Cursor string      `json:"cursor,omitempty"`
}

func (f *ClientFrame) validateSearch() error {
	if f.ID == "" {
		return Errorf(CodeBadRequest, "search needs an id")
	}
	if f.Room != "" && !id.Valid(id.Room, f.Room) {
		return Errorf(CodeBadRequest, "search needs a valid room, or none")
	}
	if utf8.RuneCountInString(f.Q) > MaxQuery {
		return Errorf(CodeTooLarge, "query too long")
	}
	if strings.TrimSpace(f.Q) == "" || !utf8.ValidString(f.Q) {
		return Errorf(CodeBadRequest, "search needs a query")
	}
	if len(f.Cursor) > 128 {
		return Errorf(CodeBadRequest, "cursor is not one this node gave")
	}
	if f.Limit < 0 || f.Limit > MaxSearch {
		return Errorf(CodeBadRequest, "limit must be between 1 and %d", MaxSearch)
	}
	return nil
}
