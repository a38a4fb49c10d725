package search

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"relais/server/proto"
)

// TestSearchParsesQueries: words are folded and split as the index splits
// them; the last is a prefix unless the query ends after it; an empty or
// oversized query is refused with a stable code.
func TestSearchParsesQueries(t *testing.T) {
	for _, c := range []struct {
		q      string
		terms  []string
		prefix bool
		code   string
	}{
		{"Réunion", []string{"reunion"}, true, ""},
		{"  réunion   BUDGÉT ", []string{"reunion", "budget"}, false, ""},
		{"l'œuvre", []string{"l", "oeuvre"}, true, ""},
		{"chat chat", []string{"chat", "chat"}, true, ""},
		{"chat chat chien", []string{"chat", "chien"}, true, ""},
		{"«  »  !?", nil, false, proto.CodeBadRequest},
		{"", nil, false, proto.CodeBadRequest},
		{"a b c d e f g h i", nil, false, proto.CodeTooLarge},
		{"\xff", nil, false, proto.CodeBadRequest},
	} {
		t.Run(c.q, func(t *testing.T) {
			q, err := Parse(c.q)
			if c.code != "" {
				if pe := proto.AsError(err); pe == nil || pe.Code != c.code {
					t.Fatalf("err = %v, want %s", err, c.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(q.Terms, c.terms) || q.Prefix != c.prefix {
				t.Fatalf("got %q prefix %v, want %q prefix %v", q.Terms, q.Prefix, c.terms, c.prefix)
			}
		})
	}
}

// TestSearchCursorsHaveOneSpelling: a cursor reads back as the position it
// was made from, and anything else is refused.
func TestSearchCursorsHaveOneSpelling(t *testing.T) {
	p := Position{TS: 1764686400000, Room: "r-nabcdefgh-abcdefghijklmnop", Seq: 12}
	if got, err := ParseCursor(p.Cursor()); err != nil || got != p {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, s := range []string{"", "1.2", "1.2.r-x", "+1.2.r-nabcdefgh-abcdefghijklmnop", "01.2.r-nabcdefgh-abcdefghijklmnop", "-1.2.r-nabcdefgh-abcdefghijklmnop", "1.-2.r-nabcdefgh-abcdefghijklmnop"} {
		if _, err := ParseCursor(s); proto.AsError(err) == nil {
			t.Errorf("%q accepted (%v)", s, err)
		}
	}
}

// FuzzSearchQuery: the query parser never panics; a query it accepts has
// 1 to MaxTerms non-empty terms of at most store.MaxWord bytes, and
// matches its own text, with marks that are ascending ranges inside it.
func FuzzSearchQuery(f *testing.F) {
	for _, s := range []string{"réunion budg", "l'œuvre ", "😀 ÉCOLE", "a\u0301b", "ǅ ß ﬁ", "", " ", "\xff\xfe", strings.Repeat("é", 120)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := Parse(s)
		if err != nil {
			if proto.AsError(err) == nil {
				t.Fatalf("error without a code: %v", err)
			}
			return
		}
		if len(q.Terms) == 0 || len(q.Terms) > MaxTerms {
			t.Fatalf("%d terms", len(q.Terms))
		}
		for _, term := range q.Terms {
			if term == "" || len(term) > 48 || !utf8.ValidString(term) {
				t.Fatalf("term %q", term)
			}
		}
		if d, _ := q.Driver(); d == "" {
			t.Fatal("no driving term")
		}
		marks, ok := q.Match(s)
		if !ok {
			t.Fatalf("%q does not match itself (%q)", s, q.Terms)
		}
		n, end := len(utf16.Encode([]rune(s))), 0
		for _, m := range marks {
			if m[0] < end || m[1] <= m[0] || m[1] > n {
				t.Fatalf("marks %v in %d units", marks, n)
			}
			end = m[1]
		}
	})
}

// FuzzSearchCursor: the cursor parser never panics and accepts only what
// Cursor writes.
func FuzzSearchCursor(f *testing.F) {
	for _, s := range []string{"1764686400000.12.r-nabcdefgh-abcdefghijklmnop", "0.0.", "1..r", "9999999999999999999.1.r-a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseCursor(s)
		if err != nil {
			if proto.AsError(err) == nil {
				t.Fatalf("error without a code: %v", err)
			}
			return
		}
		if p.Cursor() != s {
			t.Fatalf("%q read as %+v", s, p)
		}
	})
}
