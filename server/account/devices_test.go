package account

import (
	"strings"
	"testing"
	"unicode/utf8"

	"relais/server/proto"
)

// TestDeviceDefaultNameIsShowableAndTagged: whatever a client says it
// is, the default name is showable text within the limit, ends with the
// device's tag, and two devices of one kind differ.
func TestDeviceDefaultNameIsShowableAndTagged(t *testing.T) {
	for _, given := range []string{"Chrome · Linux", "", "  ", "Evil\u202eexe", "a\x00b", strings.Repeat("Navigateur ", 20), "\xff"} {
		got := defaultDeviceName(given, "d-one")
		if proto.TextFault(got) != "" || utf8.RuneCountInString(got) > MaxDeviceName || !strings.HasSuffix(got, " · "+proto.UserTag("d-one")) {
			t.Errorf("defaultDeviceName(%q) = %q", given, got)
		}
	}
	if defaultDeviceName("Chrome · Linux", "d-one") == defaultDeviceName("Chrome · Linux", "d-two") {
		t.Error("two Chrome · Linux devices have the same default name")
	}
}

// FuzzCheckDeviceName: an accepted name is showable, within the limit,
// and accepted again unchanged.
func FuzzCheckDeviceName(f *testing.F) {
	for _, s := range []string{"Poste du bureau", "  a  b ", "\u202e", "\u200b", "\x07", strings.Repeat("é", 61), "\xff", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name, err := CheckDeviceName(s)
		if err != nil {
			if proto.AsError(err) == nil || proto.AsError(err).Code != proto.CodeNameInvalid {
				t.Fatalf("%q: %v", s, err)
			}
			return
		}
		if proto.TextFault(name) != "" || utf8.RuneCountInString(name) > MaxDeviceName || name == "" {
			t.Fatalf("%q accepted as %q", s, name)
		}
		if again, err := CheckDeviceName(name); err != nil || again != name {
			t.Fatalf("%q: not stable: %q %v", name, again, err)
		}
	})
}
