package account

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"relais/server/proto"
)

// FuzzCheckName: an accepted name is valid text of at most MaxName
// characters, with nothing invisible, no control and no bidi control in
// it, and checking it again gives it back unchanged; a refused one gets
// name_invalid with a detail.
func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"Jean Dupont", "  Zoé   L’Hôte ", "Jean \u202Egpj.exe", "a\u200Bb", "\uFEFF", "\x00", "\xff", "محمد", strings.Repeat("é", 101)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, err := CheckName(s)
		if err != nil {
			var pe *proto.Error
			if !errors.As(err, &pe) || pe.Code != proto.CodeNameInvalid || pe.Detail == "" {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		if !utf8.ValidString(name) || name == "" || utf8.RuneCountInString(name) > proto.MaxName {
			t.Fatalf("%q accepted as %q", s, name)
		}
		for _, r := range name {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || (unicode.IsSpace(r) && r != ' ') || (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069) {
				t.Fatalf("%q accepted with %U", s, r)
			}
		}
		if again, err := CheckName(name); err != nil || again != name {
			t.Fatalf("%q: checked again %q %v", name, again, err)
		}
	})
}
