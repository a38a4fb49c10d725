package mailaddr

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

func testPolicy(t testing.TB) Policy {
	t.Helper()
	p, err := ParsePolicy([]string{"elysee.fr", "*.gouv.fr"})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHostileRejected(t *testing.T) {
	if len(hostile) < 100 {
		t.Fatalf("hostile table has %d cases, want at least 100", len(hostile))
	}
	p := testPolicy(t)
	seen := map[string]bool{}
	for _, tc := range hostile {
		if seen[tc.name] {
			t.Errorf("duplicate case name %q", tc.name)
		}
		seen[tc.name] = true
		t.Run(tc.name, func(t *testing.T) {
			a, err := p.Check(tc.in)
			if err == nil {
				t.Fatalf("Check(%q) accepted as %q", tc.in, a)
			}
			var e *Error
			if !errors.As(err, &e) || (e.Code != CodeInvalid && e.Code != CodeDomainNotAllowed) {
				t.Fatalf("Check(%q) error %v has no known code", tc.in, err)
			}
			if a != (Address{}) {
				t.Errorf("Check(%q) returned non-zero address %q with error", tc.in, a)
			}
			if len(tc.in) >= 6 && strings.Contains(err.Error(), tc.in) {
				t.Errorf("error %q echoes the input", err)
			}
		})
	}
}

// TestLookAlikeALabels builds the A-labels of look-alike domains with a
// lenient punycode encoder and checks that they are refused in both forms.
func TestLookAlikeALabels(t *testing.T) {
	p := testPolicy(t)
	for _, u := range []string{
		"\u0435lysee.fr",                // Cyrillic е
		"elys\u0435\u0435.fr",           // two Cyrillic е
		"\u0435ly\u0455\u0435\u0435.fr", // Cyrillic е and ѕ
		"elys\u00e9e.fr",                // é
		"\u00e9lys\u00e9e.fr",           // é twice
		"a.g\u043euv.fr",                // Cyrillic о
		"a.g\u03bfuv.fr",                // Greek ο
		"a.gouv.f\u0433",                // Cyrillic г
	} {
		a, err := idna.Punycode.ToASCII(u)
		if err != nil {
			t.Fatalf("punycode %q: %v", u, err)
		}
		for _, in := range []string{"x@" + u, "x@" + a} {
			if got, err := p.Check(in); err == nil {
				t.Errorf("Check(%q) accepted as %q", in, got)
			}
		}
	}
}

func TestParseAccepted(t *testing.T) {
	for _, tc := range []struct {
		name, in, want, unicode string
	}{
		{"plain", "jean.dupont@elysee.fr", "jean.dupont@elysee.fr", "elysee.fr"},
		{"case folded", "Jean.Dupont@Elysee.FR", "jean.dupont@elysee.fr", "elysee.fr"},
		{"sub-addressing", "a+tag@elysee.fr", "a+tag@elysee.fr", "elysee.fr"},
		{"sub-domain", "agent@interieur.gouv.fr", "agent@interieur.gouv.fr", "interieur.gouv.fr"},
		{"deep sub-domain", "agent@a.b.c.gouv.fr", "agent@a.b.c.gouv.fr", "a.b.c.gouv.fr"},
		{"hyphens", "jean-pierre.le-gall@mairie-lyon.fr", "jean-pierre.le-gall@mairie-lyon.fr", "mairie-lyon.fr"},
		{"underscore and apostrophe", "_jean_o'neil@elysee.fr", "_jean_o'neil@elysee.fr", "elysee.fr"},
		{"digits", "agent007@75.gouv.fr", "agent007@75.gouv.fr", "75.gouv.fr"},
		{"single char parts", "x@a.fr", "x@a.fr", "a.fr"},
		{"idn sub-domain", "agent@\u00e9conomie.gouv.fr", "agent@xn--conomie-9xa.gouv.fr", "\u00e9conomie.gouv.fr"},
		{"idn upper case folded", "Agent@\u00c9CONOMIE.Gouv.FR", "agent@xn--conomie-9xa.gouv.fr", "\u00e9conomie.gouv.fr"},
		{"a-label kept", "agent@xn--conomie-9xa.gouv.fr", "agent@xn--conomie-9xa.gouv.fr", "\u00e9conomie.gouv.fr"},
		{"a-label upper case", "agent@XN--CONOMIE-9XA.gouv.fr", "agent@xn--conomie-9xa.gouv.fr", "\u00e9conomie.gouv.fr"},
		{"idn tld", "x@example.xn--p1ai", "x@example.xn--p1ai", "example.\u0440\u0444"},
		{"german idn", "x@B\u00fccher.de", "x@xn--bcher-kva.de", "b\u00fccher.de"},
		{"cyrillic idn", "x@\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444", "x@xn--e1afmkfd.xn--p1ai", "\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444"},
		{"arabic idn", "x@\u0645\u062b\u0627\u0644.gouv.fr", "x@xn--mgbh0fb.gouv.fr", "\u0645\u062b\u0627\u0644.gouv.fr"},
		{"japanese idn", "x@\u4f8b\u3048.jp", "x@xn--r8jz45g.jp", "\u4f8b\u3048.jp"},
		{"max local", strings.Repeat("a", 64) + "@elysee.fr", strings.Repeat("a", 64) + "@elysee.fr", "elysee.fr"},
		{"max label", "x@" + strings.Repeat("a", 63) + ".fr", "x@" + strings.Repeat("a", 63) + ".fr", strings.Repeat("a", 63) + ".fr"},
		{"numeric label not tld", "x@1.gouv.fr", "x@1.gouv.fr", "1.gouv.fr"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := Parse(tc.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if a.String() != tc.want {
				t.Errorf("Parse(%q) = %q, want %q", tc.in, a, tc.want)
			}
			if got := a.DomainUnicode(); got != tc.unicode {
				t.Errorf("DomainUnicode() = %q, want %q", got, tc.unicode)
			}
			again, err := Parse(a.String())
			if err != nil || again != a {
				t.Errorf("canonical form %q re-parses to %q, %v", a, again, err)
			}
		})
	}
}

func TestCheckAccepted(t *testing.T) {
	p := testPolicy(t)
	for _, tc := range []struct{ in, want string }{
		{"Jean.Dupont@Elysee.FR", "jean.dupont@elysee.fr"},
		{"a+tag@elysee.fr", "a+tag@elysee.fr"},
		{"agent@interieur.gouv.fr", "agent@interieur.gouv.fr"},
		{"agent@dgfip.finances.gouv.fr", "agent@dgfip.finances.gouv.fr"},
		{"agent@\u00e9conomie.gouv.fr", "agent@xn--conomie-9xa.gouv.fr"},
		{"AGENT@PREFECTURE.GOUV.FR", "agent@prefecture.gouv.fr"},
	} {
		a, err := p.Check(tc.in)
		if err != nil {
			t.Errorf("Check(%q): %v", tc.in, err)
			continue
		}
		if a.String() != tc.want {
			t.Errorf("Check(%q) = %q, want %q", tc.in, a, tc.want)
		}
	}
}

func TestErrorCodes(t *testing.T) {
	p := testPolicy(t)
	_, err := p.Check("x@gmail.com")
	if !errors.Is(err, ErrDomainNotAllowed) || errors.Is(err, ErrInvalid) {
		t.Errorf("well-formed foreign address: %v, want %s", err, CodeDomainNotAllowed)
	}
	_, err = p.Check("x@gmail.com@elysee.fr")
	if !errors.Is(err, ErrInvalid) || errors.Is(err, ErrDomainNotAllowed) {
		t.Errorf("malformed address: %v, want %s", err, CodeInvalid)
	}
	var e *Error
	if !errors.As(err, &e) || e.Code != "email_invalid" || e.Reason == "" {
		t.Errorf("error %#v: want code email_invalid and a reason", err)
	}
	_, err = ParsePolicy([]string{"*.fr"})
	if !errors.Is(err, ErrDomainInvalid) {
		t.Errorf("ParsePolicy(*.fr): %v, want %s", err, CodeDomainInvalid)
	}
	_, err = Policy{}.Check("x@elysee.fr")
	if !errors.Is(err, ErrDomainNotAllowed) {
		t.Errorf("zero policy: %v, want %s", err, CodeDomainNotAllowed)
	}
}

func TestParsePolicy(t *testing.T) {
	for _, tc := range []struct {
		name    string
		entries []string
		want    []string // nil: error expected
	}{
		{"exact and wildcard", []string{"elysee.fr", "*.gouv.fr"}, []string{"*.gouv.fr", "elysee.fr"}},
		{"case folded and deduplicated", []string{"Elysee.FR", "elysee.fr", "*.GOUV.fr"}, []string{"*.gouv.fr", "elysee.fr"}},
		{"idn", []string{"\u00e9lys\u00e9e.fr", "*.\u00e9conomie.gouv.fr"}, []string{"*.xn--conomie-9xa.gouv.fr", "xn--lyse-9oad.fr"}},
		{"both forms of one domain", []string{"gouv.fr", "*.gouv.fr"}, []string{"*.gouv.fr", "gouv.fr"}},
		{"empty", nil, []string{}},
		{"wildcard tld", []string{"*.fr"}, nil},
		{"bare wildcard", []string{"*"}, nil},
		{"tld", []string{"fr"}, nil},
		{"inner wildcard", []string{"a.*.gouv.fr"}, nil},
		{"double wildcard", []string{"*.*.gouv.fr"}, nil},
		{"glued wildcard", []string{"*gouv.fr"}, nil},
		{"trailing dot", []string{"elysee.fr."}, nil},
		{"leading dot", []string{".gouv.fr"}, nil},
		{"space", []string{" elysee.fr"}, nil},
		{"address", []string{"x@elysee.fr"}, nil},
		{"ip", []string{"127.0.0.1"}, nil},
		{"empty entry", []string{""}, nil},
		{"ideographic stop", []string{"*.gouv\u3002fr"}, nil},
		{"one bad entry spoils all", []string{"elysee.fr", "bad..fr"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy(tc.entries)
			if tc.want == nil {
				if err == nil {
					t.Fatalf("ParsePolicy(%q) = %q, want error", tc.entries, p.Entries())
				}
				if !errors.Is(err, ErrDomainInvalid) {
					t.Errorf("error %v, want code %s", err, CodeDomainInvalid)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePolicy(%q): %v", tc.entries, err)
			}
			got := p.Entries()
			if strings.Join(got, " ") != strings.Join(tc.want, " ") {
				t.Errorf("Entries() = %q, want %q", got, tc.want)
			}
			again, err := ParsePolicy(got)
			if err != nil || strings.Join(again.Entries(), " ") != strings.Join(got, " ") {
				t.Errorf("entries do not round-trip: %q, %v", again.Entries(), err)
			}
		})
	}
}

func TestPolicyAllows(t *testing.T) {
	p := testPolicy(t)
	for _, tc := range []struct {
		domain string
		want   bool
	}{
		{"elysee.fr", true},
		{"ELYSEE.FR", true},
		{"a.gouv.fr", true},
		{"a.b.c.gouv.fr", true},
		{"xn--conomie-9xa.gouv.fr", true},
		{"\u00e9conomie.gouv.fr", true},
		{"gouv.fr", false},
		{"mail.elysee.fr", false},
		{"xelysee.fr", false},
		{"evil-elysee.fr", false},
		{"elysee.fr.evil.com", false},
		{"agouv.fr", false},
		{"gouv.fr.evil.com", false},
		{".gouv.fr", false},
		{"a..gouv.fr", false},
		{"elysee.fr.", false},
		{"a.gouv.fr.", false},
		{"", false},
		{"fr", false},
		{"elys\u00e9e.fr", false},
		{"a.g\u043euv.fr", false},
		{"elysee\u3002fr", false},
		{"x@elysee.fr", false},
		{strings.Repeat("a.", 200) + "gouv.fr", false},
	} {
		if got := p.Allows(tc.domain); got != tc.want {
			t.Errorf("Allows(%q) = %v, want %v", tc.domain, got, tc.want)
		}
	}
	if (Policy{}).Allows("elysee.fr") {
		t.Error("zero Policy allows elysee.fr")
	}
}

func TestPolicyWithWithout(t *testing.T) {
	p := testPolicy(t)
	q, err := p.With("mairie-lyon.fr", "*.Interieur.gouv.fr")
	if err != nil {
		t.Fatal(err)
	}
	if want := "*.gouv.fr *.interieur.gouv.fr elysee.fr mairie-lyon.fr"; strings.Join(q.Entries(), " ") != want {
		t.Errorf("With: %q, want %q", q.Entries(), want)
	}
	if p.Allows("mairie-lyon.fr") {
		t.Error("With modified its receiver")
	}
	if !q.Allows("mairie-lyon.fr") {
		t.Error("With: added domain not allowed")
	}
	r, err := q.Without("ELYSEE.fr", "*.gouv.fr", "absent.fr")
	if err != nil {
		t.Fatal(err)
	}
	if want := "*.interieur.gouv.fr mairie-lyon.fr"; strings.Join(r.Entries(), " ") != want {
		t.Errorf("Without: %q, want %q", r.Entries(), want)
	}
	if !q.Allows("elysee.fr") || r.Allows("elysee.fr") || r.Allows("a.gouv.fr") || !r.Allows("a.interieur.gouv.fr") {
		t.Error("Without: wrong matches")
	}
	if _, err := q.With("*.fr"); err == nil {
		t.Error("With(*.fr) accepted")
	}
	if _, err := q.Without("bad..fr"); err == nil {
		t.Error("Without(bad..fr) accepted")
	}
}

func TestDisplayName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"jean-pierre.dupont", "Jean-Pierre Dupont"},
		{"marie.le.gall", "Marie Le Gall"},
		{"j.dupont", "J. Dupont"},
		{"jean.p.dupont", "Jean P. Dupont"},
		{"Jean.Dupont", "Jean Dupont"},
		{"jean.dupont+chat", "Jean Dupont"},
		{"jean.dupont2", "Jean Dupont"},
		{"jean.dupont.75", "Jean Dupont"},
		{"jean_dupont", "Jean Dupont"},
		{"jean..dupont", "Jean Dupont"},
		{"o'neil.sean", "O'Neil Sean"},
		{"jean--pierre.dupont-", "Jean-Pierre Dupont"},
		{"contact", "Contact"},
		{"secretariat-dg", "Secretariat-Dg"},
		{"12345", "12345"},
		{"123+tag", "123"},
		{"_", "_"},
		{"", ""},
		{"h\u00e9l\u00e8ne.martin", "H\u00e9l\u00e8ne Martin"},
	} {
		if got := DisplayName(tc.in); got != tc.want {
			t.Errorf("DisplayName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// FuzzCheck checks the security properties of Policy.Check on any input:
// whatever is accepted is canonical, plain ASCII with one '@', and in an
// allowed domain on a label boundary.
func FuzzCheck(f *testing.F) {
	for _, tc := range hostile {
		if len(tc.in) <= 2*MaxInput {
			f.Add(tc.in)
		}
	}
	for _, s := range []string{
		"jean.dupont@elysee.fr", "a+tag@elysee.fr", "agent@interieur.gouv.fr",
		"agent@\u00e9conomie.gouv.fr", "agent@xn--conomie-9xa.gouv.fr", "x@a.b.gouv.fr",
	} {
		f.Add(s)
	}
	p := testPolicy(f)
	f.Fuzz(func(t *testing.T, s string) {
		pa, perr := Parse(s)
		if perr == nil {
			again, err := Parse(pa.String())
			if err != nil || again != pa {
				t.Fatalf("Parse(%q) = %q, which re-parses to %q, %v", s, pa, again, err)
			}
		}
		a, err := p.Check(s)
		if err != nil {
			return
		}
		if perr != nil || a != pa {
			t.Fatalf("Check(%q) = %q but Parse = %q, %v", s, a, pa, perr)
		}
		c := a.String()
		if strings.Count(c, "@") != 1 {
			t.Fatalf("Check(%q) = %q: not exactly one @", s, c)
		}
		for i := 0; i < len(c); i++ {
			if c[i] <= ' ' || c[i] >= utf8.RuneSelf {
				t.Fatalf("Check(%q) = %q: byte %#x", s, c, c[i])
			}
		}
		if again, err := Parse(c); err != nil || again.String() != c {
			t.Fatalf("Check(%q) = %q, which re-parses to %q, %v", s, c, again, err)
		}
		d := a.Domain
		if !strings.HasSuffix(c, "@"+d) {
			t.Fatalf("Check(%q) = %q: domain %q is not the suffix", s, c, d)
		}
		if d != "elysee.fr" {
			label, ok := strings.CutSuffix(d, ".gouv.fr")
			if !ok || label == "" || strings.HasSuffix(label, ".") || strings.HasPrefix(label, ".") {
				t.Fatalf("Check(%q) accepted domain %q", s, d)
			}
		}
	})
}
