package password

import (
	"bufio"
	_ "embed"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Stable error codes of Check, for the HTTP error mapper and the client.
const (
	CodeTooShort = "password_too_short" // fewer than MinLength characters
	CodeTooLong  = "password_too_long"  // more than MaxBytes bytes
	CodeInvalid  = "password_invalid"   // not UTF-8, or control characters
	CodeCommon   = "password_too_common"
	CodePersonal = "password_contains_personal_info" // contains a hint
	CodeRepeated = "password_repeated_character"     // one character repeated
)

// PolicyError is the error Check returns. Code is one of the Code constants;
// Reason is an English explanation for tests and logs, and never contains
// the password.
type PolicyError struct {
	Code   string
	Reason string
}

func (e *PolicyError) Error() string { return "password: " + e.Code + ": " + e.Reason }

// Is reports whether target is a *PolicyError with the same code and no
// reason, so that errors.Is(err, ErrTooCommon) works.
func (e *PolicyError) Is(target error) bool {
	t, ok := target.(*PolicyError)
	return ok && t.Reason == "" && t.Code == e.Code
}

// Sentinel errors for errors.Is.
var (
	ErrTooShort  = &PolicyError{Code: CodeTooShort}
	ErrTooLong   = &PolicyError{Code: CodeTooLong}
	ErrInvalid   = &PolicyError{Code: CodeInvalid}
	ErrTooCommon = &PolicyError{Code: CodeCommon}
	ErrPersonal  = &PolicyError{Code: CodePersonal}
	ErrRepeated  = &PolicyError{Code: CodeRepeated}
)

// Policy is the rule a new password must satisfy.
type Policy struct {
	// MinLength is the minimum number of characters, counted in Unicode
	// code points as typed.
	MinLength int
	// MaxBytes is the maximum length in bytes of the UTF-8 encoding.
	MaxBytes int
}

// DefaultPolicy: at least 10 characters, at most 256 bytes.
var DefaultPolicy = Policy{MinLength: 10, MaxBytes: 256}

// Check checks password against DefaultPolicy; see Policy.Check.
func Check(password string, hints ...string) error {
	return DefaultPolicy.Check(password, hints...)
}

// builtinHints are refused in every password.
var builtinHints = []string{"relais"}

// Check returns nil if password is acceptable, or a *PolicyError saying
// why not. It refuses, in this order: too long; invalid UTF-8 or control
// characters; too short; one character repeated; a password that contains,
// ignoring case, "relais" or one of hints (pass the e-mail local part and
// the first label of the domain; a hint is also split on punctuation, so
// "jean.dupont" refuses "jean" and "dupont", and pieces shorter than four
// characters are ignored); a password in the embedded list of most common
// passwords, also after removing leading and trailing digits and
// punctuation ("Soleil2024!") and undoing common substitutions
// ("P@ssw0rd").
func (p Policy) Check(password string, hints ...string) error {
	if len(password) > p.MaxBytes {
		return &PolicyError{CodeTooLong, "more than the maximum number of bytes"}
	}
	if !utf8.ValidString(password) {
		return &PolicyError{CodeInvalid, "not valid UTF-8"}
	}
	for _, r := range password {
		if unicode.IsControl(r) {
			return &PolicyError{CodeInvalid, "control character"}
		}
	}
	if n := utf8.RuneCountInString(password); n < p.MinLength {
		return &PolicyError{CodeTooShort, "fewer than the minimum number of characters"}
	}
	if repeated(password) {
		return &PolicyError{CodeRepeated, "one character repeated"}
	}
	lower := strings.ToLower(password)
	for _, h := range builtinHints {
		if strings.Contains(lower, h) {
			return &PolicyError{CodePersonal, "contains the product name"}
		}
	}
	for _, h := range hints {
		for _, piece := range hintPieces(h) {
			if strings.Contains(lower, piece) {
				return &PolicyError{CodePersonal, "contains a hint"}
			}
		}
	}
	if isCommon(lower) {
		return &PolicyError{CodeCommon, "in the list of most common passwords"}
	}
	return nil
}

func repeated(s string) bool {
	first, n := utf8.DecodeRuneInString(s)
	for _, r := range s[n:] {
		if r != first {
			return false
		}
	}
	return true
}

// hintPieces returns the lower-case hint, if at least 3 characters long,
// and its letter-and-digit runs of at least 4 characters.
func hintPieces(h string) []string {
	h = strings.ToLower(h)
	var out []string
	if utf8.RuneCountInString(h) >= 3 {
		out = append(out, h)
	}
	fields := strings.FieldsFunc(h, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	for _, f := range fields {
		if f != h && utf8.RuneCountInString(f) >= 4 {
			out = append(out, f)
		}
	}
	return out
}

//go:embed common.txt
var commonList string

// common is the set of common passwords, built from commonList at init.
var common = func() map[string]struct{} {
	m := make(map[string]struct{}, 1500)
	sc := bufio.NewScanner(strings.NewReader(commonList))
	for sc.Scan() {
		w := strings.TrimSpace(sc.Text())
		if w != "" && w[0] != '#' {
			m[strings.ToLower(w)] = struct{}{}
		}
	}
	return m
}()

// leet undoes the most common character substitutions.
var leet = strings.NewReplacer("@", "a", "4", "a", "0", "o", "1", "i", "!", "i", "3", "e", "$", "s", "5", "s", "7", "t", "€", "e")

// isCommon reports whether the lower-cased password, or its core without
// leading and trailing digits and punctuation, is a common password, as is
// or with substitutions undone.
func isCommon(lower string) bool {
	trimmed := strings.TrimFunc(lower, func(r rune) bool {
		return unicode.IsDigit(r) || unicode.IsPunct(r) || unicode.IsSymbol(r) || unicode.IsSpace(r)
	})
	for _, c := range []string{lower, trimmed, leet.Replace(lower), leet.Replace(trimmed)} {
		if _, ok := common[c]; ok {
			return true
		}
	}
	return false
}
