package api

import "testing"

// TestPreferredLang: English only when the header ranks it above French;
// French for everything else, including headers that do not parse.
func TestPreferredLang(t *testing.T) {
	for _, c := range []struct{ header, want string }{
		{"", "fr"},
		{"fr", "fr"},
		{"en", "en"},
		{"EN-us", "en"},
		{"en-GB,en;q=0.9,fr;q=0.5", "en"},
		{"fr-FR,fr;q=0.9,en;q=0.8", "fr"},
		{"fr;q=0.5,en;q=0.5", "fr"},
		{"de,en;q=0.5,fr;q=0.4", "en"},
		{"de-DE,de;q=0.9", "fr"},
		{"en;q=0", "fr"},
		{"en;q=2", "fr"},
		{"en;q=NaN", "fr"},
		{"en;q=abc,fr;q=0.1", "fr"},
		{"*", "fr"},
		{";;;,,,", "fr"},
	} {
		if got := preferredLang(c.header); got != c.want {
			t.Errorf("preferredLang(%q) = %q, want %q", c.header, got, c.want)
		}
	}
}

// FuzzPreferredLang: any header gives one of the client's languages.
func FuzzPreferredLang(f *testing.F) {
	f.Add("en-GB,en;q=0.9,fr;q=0.5")
	f.Add("fr;q=0.1,en;q=1e-9")
	f.Fuzz(func(t *testing.T, header string) {
		if got := preferredLang(header); manifestDescriptions[got] == "" {
			t.Fatalf("preferredLang(%q) = %q, not a client language", header, got)
		}
	})
}
