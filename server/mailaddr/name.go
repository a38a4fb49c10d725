package mailaddr

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// DisplayName derives a "Prénom Nom" style name from a local part, for
// people who have not chosen a name yet: "jean-pierre.dupont" gives
// "Jean-Pierre Dupont", "marie.le.gall" gives "Marie Le Gall" and
// "j.dupont" gives "J. Dupont". A "+tag" and digits are dropped; '.' and '_'
// separate words, '-' and '\” are kept inside them. When nothing is left it
// falls back to the local part with its first letter capitalised. Accents
// cannot be recovered from an ASCII local part, so "helene" gives "Helene";
// the user can correct the name.
func DisplayName(local string) string {
	local = strings.ToLower(local)
	if i := strings.IndexByte(local, '+'); i >= 0 {
		local = local[:i]
	}
	var words []string
	for _, part := range strings.FieldsFunc(local, func(r rune) bool { return r == '.' || r == '_' }) {
		if w := word(part); w != "" {
			words = append(words, w)
		}
	}
	if len(words) == 0 {
		return capitalise(local)
	}
	return strings.Join(words, " ")
}

// word capitalises each hyphen- or apostrophe-separated piece of part,
// dropping digits and other characters; a single letter becomes an initial.
func word(part string) string {
	var b strings.Builder
	start := true // next letter begins a piece
	letters := 0
	for _, r := range part {
		switch {
		case unicode.IsLetter(r):
			if start {
				r = unicode.ToUpper(r)
			}
			b.WriteRune(r)
			start = false
			letters++
		case r == '-' || r == '\'':
			// Keep one separator between two letters only.
			if !start {
				b.WriteRune(r)
				start = true
			}
		}
	}
	w := strings.TrimRight(b.String(), "-'")
	switch letters {
	case 0:
		return ""
	case 1:
		return w + "."
	}
	return w
}

func capitalise(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return ""
	}
	return string(unicode.ToUpper(r)) + s[n:]
}
