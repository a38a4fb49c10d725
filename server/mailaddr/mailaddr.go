// Package mailaddr parses e-mail addresses strictly and decides which domains
// may register on the node.
//
// It is the registration security boundary. The 2019 Tchap flaw, where an
// address such as someone@gmail.com@elysee.fr passed a lenient check, is
// impossible by construction: [Parse] accepts only the plain form
// local@domain with exactly one '@', a dot-atom local part made of a small
// ASCII alphabet, and a domain made of LDH labels (or internationalized
// labels that are valid IDNA2008 and are converted to their A-label form).
// Quoted local parts, comments, display names, percent and bang routing,
// source routes, IP literals, whitespace, control characters and Unicode
// separators or '@' look-alikes are all rejected rather than interpreted.
//
// A [Policy] lists the allowed domains, exact ("elysee.fr") or strict
// sub-domains ("*.gouv.fr"), and matches on label boundaries only.
//
// Errors are [*Error] values with a stable Code for the HTTP error mapper.
// Their Reason never contains the address, so they may be logged.
package mailaddr

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// Limits, in bytes, from RFC 5321 section 4.5.3.1 and RFC 1035. Domain
// lengths are measured in A-label (ASCII) form.
const (
	// MaxInput is the largest input Parse looks at; longer input is
	// rejected before any other work.
	MaxInput = 320
	// MaxAddress is the longest canonical address (the RFC 5321 path limit
	// of 256 minus the angle brackets).
	MaxAddress = 254
	// MaxLocal is the longest local part.
	MaxLocal = 64
	// MaxDomain is the longest domain, without a trailing dot.
	MaxDomain = 253
	// MaxLabel is the longest domain label.
	MaxLabel = 63
)

// Stable error codes, for the HTTP error mapper and the client.
const (
	// CodeInvalid: the input is not an address Relais accepts.
	CodeInvalid = "email_invalid"
	// CodeDomainNotAllowed: the address is well-formed but its domain is
	// not in the node's allowed domains.
	CodeDomainNotAllowed = "email_domain_not_allowed"
	// CodeDomainInvalid: an allowed-domain entry given by an operator is
	// not a valid domain or wildcard.
	CodeDomainInvalid = "domain_invalid"
)

// Error is the error returned by this package. Code is one of the Code
// constants; Reason explains the rejection in English for tests and logs and
// never contains the address itself.
type Error struct {
	Code   string
	Reason string
}

func (e *Error) Error() string {
	if e.Reason == "" {
		return "mailaddr: " + e.Code
	}
	return "mailaddr: " + e.Code + ": " + e.Reason
}

// Is reports whether target is one of the sentinel errors carrying the same
// code, so that errors.Is(err, ErrInvalid) works whatever the reason.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Reason == "" && t.Code == e.Code
}

// Sentinel errors for errors.Is; the errors returned carry a Reason too.
var (
	ErrInvalid          = &Error{Code: CodeInvalid}
	ErrDomainNotAllowed = &Error{Code: CodeDomainNotAllowed}
	ErrDomainInvalid    = &Error{Code: CodeDomainInvalid}
)

func invalid(reason string) error { return &Error{Code: CodeInvalid, Reason: reason} }

// Address is a parsed, canonical e-mail address. Both parts are lower-case
// ASCII; Domain is in A-label form ("xn--…" for internationalized labels).
// Only Parse and Policy.Check produce valid Addresses.
type Address struct {
	Local  string
	Domain string
}

// String returns the canonical form local@domain, or "" for the zero
// Address.
func (a Address) String() string {
	if a.Local == "" && a.Domain == "" {
		return ""
	}
	return a.Local + "@" + a.Domain
}

// DomainUnicode returns the domain for display, with A-labels converted
// back to Unicode ("xn--lyse-9oad.fr" becomes "élysée.fr"). It returns Domain
// unchanged if the conversion fails, which cannot happen for an Address
// returned by Parse.
func (a Address) DomainUnicode() string {
	u, err := registration.ToUnicode(a.Domain)
	if err != nil {
		return a.Domain
	}
	return u
}

// Parse parses s as an e-mail address and returns its canonical form.
//
// The accepted grammar is deliberately narrower than RFC 5322:
//
//   - exactly one '@', nothing around the address (no display name, no
//     angle brackets, no comments, no whitespace);
//   - a local part of at most 64 bytes made of dot-separated atoms of ASCII
//     letters, digits and the characters _ - + ' (no quoting, no
//     backslash, no '%' or '!' routing, no other atext), beginning with a
//     letter, a digit or '_', with no empty atom; '+' sub-addressing is
//     allowed and kept;
//   - a domain of at least two labels separated by ASCII '.', with no
//     empty label and no trailing dot. A label is LDH (letters, digits,
//     hyphens, not beginning or ending with a hyphen, no "--" in the third
//     and fourth positions except a valid "xn--" A-label) or a Unicode label
//     valid for IDNA2008 registration, which is converted to its A-label.
//     The top-level label is not all digits; IP literals are refused;
//   - at most 63 bytes per label, 253 for the domain and 254 for the whole
//     address, measured in canonical (ASCII) form.
//
// Both parts are case-folded. Unicode labels are accepted only in NFC form
// and with letters whose lower case is not ASCII (so "É" folds to "é", but
// the Kelvin sign or a dotted capital I, which fold to ASCII letters, are
// refused rather than silently turned into another domain).
func Parse(s string) (Address, error) {
	if len(s) > MaxInput {
		return Address{}, invalid("input too long")
	}
	if s == "" {
		return Address{}, invalid("empty input")
	}
	at := strings.IndexByte(s, '@')
	if at < 0 {
		return Address{}, invalid("missing @")
	}
	if strings.IndexByte(s[at+1:], '@') >= 0 {
		return Address{}, invalid("more than one @")
	}
	local, err := parseLocal(s[:at])
	if err != nil {
		return Address{}, err
	}
	domain, err := parseDomain(s[at+1:])
	if err != nil {
		return Address{}, err
	}
	if len(local)+1+len(domain) > MaxAddress {
		return Address{}, invalid("address too long")
	}
	return Address{Local: local, Domain: domain}, nil
}

// localChar reports whether c may appear in a local part atom.
func localChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	case c == '_', c == '-', c == '+', c == '\'':
		return true
	}
	return false
}

func parseLocal(s string) (string, error) {
	if s == "" {
		return "", invalid("empty local part")
	}
	if len(s) > MaxLocal {
		return "", invalid("local part too long")
	}
	c := s[0]
	if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
		if c == '.' {
			return "", invalid("local part begins with a dot")
		}
		return "", invalid("local part must begin with a letter, a digit or '_'")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.':
			if i == len(s)-1 {
				return "", invalid("local part ends with a dot")
			}
			if s[i+1] == '.' {
				return "", invalid("consecutive dots in local part")
			}
		case c >= utf8.RuneSelf:
			return "", invalid("non-ASCII character in local part")
		case !localChar(c):
			return "", invalid("character not allowed in local part")
		}
	}
	return strings.ToLower(s), nil
}

// registration validates labels for IDNA2008 registration: no mapping at
// all, so width variants, mapped separators, ignored code points
// (zero-width characters, soft hyphen), upper case and non-NFC input are
// errors; STD3 ASCII rules, hyphen and joiner rules, the Bidi rule and DNS
// lengths are checked.
var registration = idna.New(idna.ValidateForRegistration())

// lookup is the UTS #46 lookup profile that mail software uses to resolve
// a Unicode domain. A Unicode label is accepted only if the lookup mapping of
// the original label agrees with our stricter conversion, so that what we
// store is what a mail server would deliver to.
var lookup = idna.New(idna.MapForLookup(), idna.BidiRule(), idna.Transitional(false))

// parseDomain validates s and returns it in canonical lower-case A-label
// form.
func parseDomain(s string) (string, error) {
	if s == "" {
		return "", invalid("empty domain")
	}
	if s[0] == '[' {
		return "", invalid("IP literals are not allowed")
	}
	if !utf8.ValidString(s) {
		return "", invalid("domain is not valid UTF-8")
	}
	if s[len(s)-1] == '.' {
		return "", invalid("domain ends with a dot")
	}
	labels := strings.Split(s, ".")
	if len(labels) < 2 {
		return "", invalid("domain needs at least two labels")
	}
	ascii := make([]string, len(labels))
	unicodeForm := make([]string, len(labels))
	idn := false
	for i, l := range labels {
		a, u, err := parseLabel(l)
		if err != nil {
			return "", err
		}
		ascii[i], unicodeForm[i] = a, u
		idn = idn || a != u
	}
	d := strings.Join(ascii, ".")
	if len(d) > MaxDomain {
		return "", invalid("domain too long")
	}
	if allDigits(ascii[len(ascii)-1]) {
		return "", invalid("numeric top-level domain")
	}
	// Whole-domain check: the Bidi rule spans labels (RFC 5893 section 2),
	// and converting the Unicode form must give back exactly the labels we
	// validated one by one.
	if idn {
		a, err := registration.ToASCII(strings.Join(unicodeForm, "."))
		if err != nil || a != d {
			return "", invalid("domain is not a valid internationalized name")
		}
	}
	return d, nil
}

// parseLabel validates one label (split on ASCII '.') and returns its
// A-label and U-label forms, both lower case.
func parseLabel(l string) (ascii, uni string, err error) {
	if l == "" {
		return "", "", invalid("empty domain label")
	}
	if !isASCII(l) {
		return parseULabel(l)
	}
	if len(l) > MaxLabel {
		return "", "", invalid("domain label too long")
	}
	l = strings.ToLower(l)
	for i := 0; i < len(l); i++ {
		c := l[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return "", "", invalid("character not allowed in domain")
		}
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return "", "", invalid("domain label begins or ends with a hyphen")
	}
	if len(l) < 4 || l[2:4] != "--" {
		return l, l, nil
	}
	if !strings.HasPrefix(l, "xn--") {
		return "", "", invalid("reserved domain label (hyphens in third and fourth positions)")
	}
	// An A-label must decode to a valid U-label that encodes back to
	// exactly the same A-label.
	u, err := registration.ToUnicode(l)
	if err != nil || u == l || isASCII(u) || strings.Contains(u, ".") {
		return "", "", invalid("invalid punycode label")
	}
	if err := checkULabel(u); err != nil {
		return "", "", err
	}
	if back, err := registration.ToASCII(u); err != nil || back != l {
		return "", "", invalid("non-canonical punycode label")
	}
	return l, u, nil
}

// parseULabel handles a label containing non-ASCII characters.
func parseULabel(l string) (ascii, uni string, err error) {
	if len(l) > 4*MaxLabel {
		return "", "", invalid("domain label too long")
	}
	var b strings.Builder
	b.Grow(len(l))
	for _, r := range l {
		switch {
		case r == utf8.RuneError:
			return "", "", invalid("domain is not valid UTF-8")
		case r < utf8.RuneSelf:
			r = unicode.ToLower(r)
			if !('a' <= r && r <= 'z' || '0' <= r && r <= '9' || r == '-') {
				return "", "", invalid("character not allowed in domain")
			}
		default:
			lr := unicode.ToLower(r)
			if lr < utf8.RuneSelf {
				return "", "", invalid("non-ASCII character folding to ASCII in domain")
			}
			r = lr
		}
		b.WriteRune(r)
	}
	u := b.String()
	if err := checkULabel(u); err != nil {
		return "", "", err
	}
	a, err := registration.ToASCII(u)
	if err != nil || !strings.HasPrefix(a, "xn--") || strings.Contains(a, ".") {
		return "", "", invalid("domain is not a valid internationalized name")
	}
	if len(a) > MaxLabel {
		return "", "", invalid("domain label too long")
	}
	// What resolvers do with the original label must agree with what we
	// store (this rejects anything the lookup mapping would change
	// beyond case, such as a label turning into several).
	if la, err := lookup.ToASCII(l); err != nil || la != a {
		return "", "", invalid("domain is not a valid internationalized name")
	}
	return a, u, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
