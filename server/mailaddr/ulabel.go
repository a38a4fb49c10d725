package mailaddr

import (
	"unicode"
)

// checkULabel applies the rules that golang.org/x/net/idna leaves out, on a
// lower-case U-label: the idna package accepts code points that are valid
// in UTS #46 but not in IDNA2008 (emoji, symbols, punctuation: the NV8 and
// XV8 sets) and does not implement the CONTEXTO rules of RFC 5892. We are
// stricter than both:
//
//   - every character is a letter, a combining mark, a decimal digit or
//     '-' (this excludes symbols, punctuation, spaces and format
//     characters whatever the idna tables say);
//   - the CONTEXTO characters (middle dot, Greek keraia, Hebrew geresh and
//     gershayim, katakana middle dot) are refused outright, and
//     Arabic-Indic and extended Arabic-Indic digits are not mixed;
//   - the label is in one script, or in one of the combinations UTS #39
//     calls "highly restrictive" (Latin with Han and Japanese kana, Latin
//     with Han and Bopomofo, Latin with Han and Hangul), so that "gоuv"
//     with a Cyrillic "о" cannot be registered even under an allowed parent.
func checkULabel(u string) error {
	var (
		arabicIndic, extArabicIndic bool
		scripts                     scriptSet
	)
	for _, r := range u {
		switch {
		case r == '-':
			continue
		case r == 0x00B7, r == 0x0375, r == 0x05F3, r == 0x05F4, r == 0x30FB:
			return invalid("contextual character not allowed in domain")
		case 0x0660 <= r && r <= 0x0669:
			arabicIndic = true
		case 0x06F0 <= r && r <= 0x06F9:
			extArabicIndic = true
		}
		if !(unicode.IsLetter(r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Mc, r) || unicode.Is(unicode.Nd, r)) {
			return invalid("character not allowed in domain")
		}
		scripts.add(r)
	}
	if arabicIndic && extArabicIndic {
		return invalid("mixed Arabic-Indic digits in domain")
	}
	if !scripts.restrictive() {
		return invalid("mixed scripts in domain label")
	}
	return nil
}

// scriptSet records the scripts of a label's characters, ignoring Common
// and Inherited (digits, combining marks).
type scriptSet struct {
	latin, han, kana, bopomofo, hangul bool
	other                              string // the one other script seen
	mixed                              bool   // two other scripts, or one with Han or Latin
}

// commonScripts are tried first: they cover nearly every real label.
var commonScripts = []string{"Latin", "Greek", "Cyrillic", "Arabic", "Hebrew", "Han", "Hiragana", "Katakana", "Hangul"}

func scriptOf(r rune) string {
	if unicode.Is(unicode.Common, r) || unicode.Is(unicode.Inherited, r) {
		return ""
	}
	for _, name := range commonScripts {
		if unicode.Is(unicode.Scripts[name], r) {
			return name
		}
	}
	for name, table := range unicode.Scripts {
		if unicode.Is(table, r) {
			return name
		}
	}
	return "Unknown"
}

func (s *scriptSet) add(r rune) {
	switch name := scriptOf(r); name {
	case "":
	case "Latin":
		s.latin = true
	case "Han":
		s.han = true
	case "Hiragana", "Katakana":
		s.kana = true
	case "Bopomofo":
		s.bopomofo = true
	case "Hangul":
		s.hangul = true
	default:
		if s.other != "" && s.other != name {
			s.mixed = true
		}
		s.other = name
	}
}

// restrictive reports whether the scripts seen form a single script or an
// allowed CJK combination.
func (s *scriptSet) restrictive() bool {
	if s.mixed {
		return false
	}
	cjk := 0
	for _, b := range []bool{s.kana, s.bopomofo, s.hangul} {
		if b {
			cjk++
		}
	}
	if s.other != "" {
		// Greek, Cyrillic, Arabic…: alone only.
		return !s.latin && !s.han && cjk == 0
	}
	// Latin, Han and at most one of kana, Bopomofo, Hangul; Latin alone and
	// Han alone are covered too.
	return cjk <= 1
}
