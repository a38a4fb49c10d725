package proto

import (
	"unicode"
	"unicode/utf8"
)

// Why a name cannot be shown as it is (TextFault, and the detail of
// CodeNameInvalid).
const (
	TextControl   = "control"   // C0 or C1 control characters
	TextInvisible = "invisible" // format characters (bidi overrides and isolates, zero-width, BOM…), private use, unassigned, odd spaces
	TextInvalid   = "invalid"   // not UTF-8
)

// TextFault says why s, a name that other people will read (a display
// name, a room's name), cannot be shown as it is, or "" when it can. A
// name that reorders or hides its own characters could pass for another.
func TextFault(s string) string {
	if !utf8.ValidString(s) {
		return TextInvalid
	}
	for _, r := range s {
		switch {
		case unicode.IsControl(r):
			return TextControl
		case r != ' ' && !unicode.IsPrint(r):
			// Cf (format), Co (private use), Cs, Cn (unassigned), and
			// spaces other than the plain one.
			return TextInvisible
		}
	}
	return ""
}
