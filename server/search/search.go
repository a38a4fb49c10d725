// Package search parses search queries and matches them against a
// message's text: the words of a query, folded as the store's index folds
// them (store.Tokens), must all be in the text, the last one as a prefix
// of a word ("réun" finds "Réunion"). It marks where they are, for the
// client to highlight. It does no I/O.
package search

import (
	"unicode/utf16"
	"unicode/utf8"

	"relais/server/proto"
	"relais/server/store"
)

// MaxTerms bounds the words of one query.
const MaxTerms = 8

// Query is a parsed query: every term must match a word of the text
// exactly, the last one as a prefix when Prefix is set.
type Query struct {
	Terms  []string
	Prefix bool
}

// Parse reads a query typed by a user. A query with no word, or more than
// MaxTerms words, is refused with a proto error (bad_request, too_large).
func Parse(q string) (Query, error) {
	if len(q) > 4*proto.MaxQuery || !utf8.ValidString(q) {
		return Query{}, proto.Errorf(proto.CodeBadRequest, "a query is at most %d characters of text", proto.MaxQuery)
	}
	toks := store.Tokens(q)
	if len(toks) == 0 {
		return Query{}, proto.Errorf(proto.CodeBadRequest, "a query needs at least one word")
	}
	if len(toks) > MaxTerms {
		return Query{}, proto.Errorf(proto.CodeTooLarge, "a query has at most %d words", MaxTerms)
	}
	var out Query
	seen := map[string]bool{}
	for i, t := range toks {
		last := i == len(toks)-1
		if seen[t.Word] && !last {
			continue
		}
		seen[t.Word] = true
		out.Terms = append(out.Terms, t.Word)
	}
	// A query ending in a space or punctuation ("budget ") asks for whole
	// words only.
	out.Prefix = toks[len(toks)-1].End == len(q)
	return out, nil
}

// Driver is the term whose postings drive the search: the longest exact
// term (the rarest, most likely), or the prefix when it is the only one.
func (q Query) Driver() (term string, prefix bool) {
	n := len(q.Terms)
	exact := q.Terms
	if q.Prefix {
		exact = q.Terms[:n-1]
	}
	for _, t := range exact {
		if len(t) > len(term) {
			term = t
		}
	}
	if term == "" {
		return q.Terms[n-1], q.Prefix
	}
	return term, false
}

// Match reports whether text holds every term of q, and where the words
// that match are, as [start, end) offsets in UTF-16 code units (the
// indexes of a JavaScript string).
func (q Query) Match(text string) ([][2]int, bool) {
	toks := store.Tokens(text)
	found := make([]bool, len(q.Terms))
	var marks [][2]int
	for _, t := range toks {
		hit := false
		for i, term := range q.Terms {
			if t.Word == term || (q.Prefix && i == len(q.Terms)-1 && hasPrefix(t.Word, term)) {
				found[i], hit = true, true
			}
		}
		if hit {
			marks = append(marks, [2]int{t.Start, t.End})
		}
	}
	for _, f := range found {
		if !f {
			return nil, false
		}
	}
	return utf16Offsets(text, marks), true
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

// utf16Offsets turns ascending, disjoint byte ranges of text into UTF-16
// ranges.
func utf16Offsets(text string, marks [][2]int) [][2]int {
	out := make([][2]int, len(marks))
	u, next := 0, 0
	pos := func(target int) int {
		for next < target {
			r, n := utf8.DecodeRuneInString(text[next:])
			u += utf16.RuneLen(r) // an invalid byte decodes as U+FFFD, one unit, as in JavaScript
			next += n
		}
		return u
	}
	for i, m := range marks {
		out[i] = [2]int{pos(m[0]), pos(m[1])}
	}
	return out
}
