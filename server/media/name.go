package media

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of SanitizeName.
const (
	// MaxNameBytes is the longest name SanitizeName returns, in bytes; file
	// systems commonly allow 255.
	MaxNameBytes = 180
	// FallbackName replaces a name with nothing usable left.
	FallbackName = "fichier"
	maxExtBytes  = 16
)

// SanitizeName turns a name given by a user into one that is safe to offer
// in a Content-Disposition header and to save on Windows, macOS or Linux.
// It keeps the last element of a Unix or Windows path; drops control,
// format (bidirectional overrides, zero-width characters) and private-use
// characters and invalid UTF-8; turns other spaces into one plain space and
// the characters Windows forbids (and look-alike slashes) into '_'; trims
// leading and trailing dots and spaces; prefixes reserved device names (CON,
// NUL, COM1…) with '_'; and shortens the name to MaxNameBytes, keeping its
// extension. Letters of every script are kept. A name with nothing left
// becomes FallbackName. SanitizeName is idempotent.
//
// The result is for display and downloads only: the package never uses a
// name in a path.
func SanitizeName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	var b strings.Builder
	b.Grow(len(name))
	space := false
	for i, r := range name {
		switch {
		case r == utf8.RuneError && isInvalidAt(name, i):
			continue
		case unicode.IsSpace(r):
			if !space {
				b.WriteByte(' ')
			}
			space = true
			continue
		case unicode.IsControl(r), unicode.In(r, unicode.Cf, unicode.Co, unicode.Cs), isNonCharacter(r):
			continue
		case strings.ContainsRune(`<>:"|?*`, r), isSlashLike(r):
			r = '_'
		}
		space = false
		b.WriteRune(r)
	}
	name = strings.Trim(b.String(), ". ")
	if name == "" {
		return FallbackName
	}
	if isReserved(name) {
		name = "_" + name
	}
	if len(name) > MaxNameBytes {
		stem, ext := name, ""
		if i := strings.LastIndexByte(name, '.'); i > 0 && len(name)-i <= maxExtBytes && !strings.Contains(name[i:], " ") {
			stem, ext = name[:i], name[i:]
		}
		stem = strings.TrimRight(cutUTF8(stem, MaxNameBytes-len(ext)), ". ")
		if stem == "" {
			stem = FallbackName
		}
		name = stem + ext
	}
	return name
}

func isInvalidAt(s string, i int) bool {
	r, n := utf8.DecodeRuneInString(s[i:])
	return r == utf8.RuneError && n <= 1
}

func isNonCharacter(r rune) bool {
	return r >= 0xFDD0 && r <= 0xFDEF || r&0xFFFE == 0xFFFE
}

func isSlashLike(r rune) bool {
	switch r {
	case '\u2044', '\u2215', '\u29F8', '\u29F9', '\uFF0F', '\uFF3C', '\u2216', '\uFE68':
		return true
	}
	return false
}

// cutUTF8 returns the longest prefix of s of at most n bytes that ends on a
// rune boundary.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// isReserved reports whether Windows treats name as a device, whatever its
// extension: CON, PRN, AUX, NUL, COM0-9, LPT0-9 (and the superscript
// digits), CONIN$, CONOUT$.
func isReserved(name string) bool {
	base, _, _ := strings.Cut(name, ".")
	base = strings.ToUpper(strings.TrimRight(base, " "))
	switch base {
	case "CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$":
		return true
	}
	if p, ok := strings.CutPrefix(base, "COM"); ok && isDeviceDigit(p) {
		return true
	}
	if p, ok := strings.CutPrefix(base, "LPT"); ok && isDeviceDigit(p) {
		return true
	}
	return false
}

func isDeviceDigit(s string) bool {
	switch s {
	case "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "¹", "²", "³":
		return true
	}
	return false
}

// contentDisposition formats a Content-Disposition header value for a name
// already passed through SanitizeName: an ASCII filename for old clients and
// an RFC 5987 filename* with the full UTF-8 name.
func contentDisposition(disposition, name string) string {
	var ascii, ext strings.Builder
	plain := true
	for _, r := range name {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' || r == '%' {
			ascii.WriteByte('_')
			plain = false
			continue
		}
		ascii.WriteRune(r)
	}
	v := disposition + `; filename="` + ascii.String() + `"`
	if plain {
		return v
	}
	const hexDigits = "0123456789ABCDEF"
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c < 0x80 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$&+-.^_`|~", c) >= 0) {
			ext.WriteByte(c)
			continue
		}
		ext.WriteByte('%')
		ext.WriteByte(hexDigits[c>>4])
		ext.WriteByte(hexDigits[c&15])
	}
	return v + "; filename*=UTF-8''" + ext.String()
}
