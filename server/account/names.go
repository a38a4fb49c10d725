package account

import (
	"strings"
	"unicode/utf8"

	"relais/server/proto"
)

// Reasons a display name is refused, the detail of a name_invalid error.
const (
	NameTooLong   = "too_long"
	NameInvalid   = "not_utf8"
	NameControl   = proto.TextControl   // C0 or C1 control characters
	NameInvisible = proto.TextInvisible // zero-width, bidi controls and other format characters
	NameEmpty     = "empty"
)

// CheckName returns a display name with runs of spaces made one, or an
// error with code name_invalid. Names are shown to everyone next to
// messages: characters one cannot see (zero-width spaces, joiners, the
// byte order mark) would let two names that look the same differ, and
// bidi overrides and isolates would let a name reorder the text around
// it ("‮gpj.exe"), so both are refused, with every other format
// character (Unicode category Cf), private-use and unassigned code point.
func CheckName(given string) (string, error) {
	return checkText(given, proto.MaxName, "the name must be at most 100 characters")
}

// checkText applies the rules of CheckName with a limit of max
// characters, saying tooLong over it.
func checkText(given string, max int, tooLong string) (string, error) {
	if !utf8.ValidString(given) {
		return "", nameError(NameInvalid, "the name is not valid text")
	}
	name := strings.Join(strings.Fields(given), " ")
	if name == "" {
		return "", nameError(NameEmpty, "a name cannot be empty")
	}
	if utf8.RuneCountInString(name) > max {
		return "", nameError(NameTooLong, "%s", tooLong)
	}
	switch proto.TextFault(name) {
	case proto.TextControl:
		return "", nameError(NameControl, "the name contains control characters")
	case "":
	default:
		return "", nameError(NameInvisible, "the name contains invisible or direction-changing characters")
	}
	return name, nil
}

func nameError(detail, format string, args ...any) error {
	e := proto.Errorf(proto.CodeNameInvalid, format, args...)
	e.Detail = detail
	return e
}
