package mail

import (
	"strings"
	"testing"
	"time"
)

func TestTemplates(t *testing.T) {
	paris := time.FixedZone("CEST", 2*3600) // Europe/Paris in summer, without tzdata
	tp := Templates{Node: "Relais – Mairie de Lyon", Location: paris}
	expires := time.Date(2026, 3, 31, 23, 30, 0, 0, time.UTC) // 1 April in Paris
	for _, tc := range []struct {
		name string
		m    Message
		want []string // in this order in the text
	}{
		{"verification", tp.Verification("jean.dupont@elysee.fr", "https://chat.lyon.fr/v/abc", "482913"),
			[]string{"Bonjour", "création de votre compte sur Relais – Mairie de Lyon", "https://chat.lyon.fr/v/abc", "482913", "Hello", "https://chat.lyon.fr/v/abc", "482913", "never ask for your password"}},
		{"password reset", tp.PasswordReset("jean.dupont@elysee.fr", "https://chat.lyon.fr/r/abc"),
			[]string{"nouveau mot de passe", "https://chat.lyon.fr/r/abc", "Hello", "new password", "https://chat.lyon.fr/r/abc"}},
		{"renewal", tp.Renewal("jean.dupont@elysee.fr", "https://chat.lyon.fr/n/abc", expires),
			[]string{"avant le mercredi 1er avril 2026", "https://chat.lyon.fr/n/abc", "before Wednesday 1 April 2026", "https://chat.lyon.fr/n/abc"}},
		{"invitation", tp.Invitation("c.martin@prestataire.fr", "mairie-lyon.fr", "https://chat.lyon.fr/i/abc"),
			[]string{"administration mairie-lyon.fr vous invite", "https://chat.lyon.fr/i/abc", "administration mairie-lyon.fr invites you", "https://chat.lyon.fr/i/abc"}},
		{"already registered", tp.AlreadyRegistered("jean.dupont@elysee.fr", "https://chat.lyon.fr/login", "https://chat.lyon.fr/reset"),
			[]string{"déjà un compte", "https://chat.lyon.fr/login", "https://chat.lyon.fr/reset", "already have an account", "https://chat.lyon.fr/login", "https://chat.lyon.fr/reset"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.m.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if tc.m.To == "" || !strings.Contains(tc.m.Subject, " / ") || !strings.HasSuffix(tc.m.Subject, "Relais – Mairie de Lyon") {
				t.Errorf("subject %q should be bilingual and name the node", tc.m.Subject)
			}
			text := tc.m.Text
			if !strings.HasPrefix(text, "(English version below)\n\nBonjour,") {
				t.Errorf("text should start in French: %q", text[:min(60, len(text))])
			}
			fr, en, ok := strings.Cut(text, separator)
			if !ok || !strings.Contains(fr, "Bonjour") || !strings.Contains(en, "Hello") {
				t.Fatalf("text is not French then English:\n%s", text)
			}
			rest := text
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("%q missing (or out of order) in:\n%s", w, text)
				}
				rest = rest[i+len(w):]
			}
			for _, line := range strings.Split(text, "\n") {
				if strings.HasSuffix(line, " ") && line != "-- " {
					t.Errorf("trailing space in %q", line)
				}
			}
			t.Logf("Subject: %s\n\n%s", tc.m.Subject, text)
		})
	}
}

func TestTemplatesVerificationWithoutCode(t *testing.T) {
	m := Templates{}.Verification("a@b.fr", "https://x/v", "")
	if strings.Contains(m.Text, "code") {
		t.Errorf("mentions a code:\n%s", m.Text)
	}
	if !strings.HasSuffix(m.Subject, "– Relais") {
		t.Errorf("default node name missing from %q", m.Subject)
	}
}

func TestTemplatesHostileNames(t *testing.T) {
	m := Templates{Node: "Mairie\r\nBcc: x@gmail.com"}.Invitation("a@b.fr",
		"mairie\r\n.fr\u202e\u200b "+strings.Repeat("x", 200),
		"https://chat.lyon.fr/i/abc")
	if _, err := m.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	for _, bad := range []string{"\r", "\u202e", "\u200b", "mairie\n", strings.Repeat("x", 81)} {
		if strings.Contains(m.Text, bad) || strings.Contains(m.Subject, bad) {
			t.Errorf("message contains %q:\n%s\n%s", bad, m.Subject, m.Text)
		}
	}
}

func TestFrenchDate(t *testing.T) {
	for _, tc := range []struct {
		t    time.Time
		want string
	}{
		{time.Date(2026, 3, 3, 12, 0, 0, 0, time.UTC), "mardi 3 mars 2026"},
		{time.Date(2026, 2, 1, 12, 0, 0, 0, time.UTC), "dimanche 1er février 2026"},
		{time.Date(2026, 8, 15, 12, 0, 0, 0, time.UTC), "samedi 15 août 2026"},
		{time.Date(2026, 12, 31, 12, 0, 0, 0, time.UTC), "jeudi 31 décembre 2026"},
	} {
		if got := frenchDate(tc.t); got != tc.want {
			t.Errorf("frenchDate(%v) = %q, want %q", tc.t, got, tc.want)
		}
	}
}

func TestClean(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"  Jean   Dupont ", 80, "Jean Dupont"},
		{"a\r\nb\tc\x00d", 80, "a b c d"},
		{"a\u202eb\u200bc\ufeffd", 80, "a b c d"},
		{"a\u2028b", 80, "a b"},
		{"\xffabc", 80, "abc"},
		{"abcdef", 4, "abc…"},
		{"éééééé", 4, "ééé…"},
		{"ab cdef", 4, "ab…"},
	} {
		if got := clean(tc.in, tc.max); got != tc.want {
			t.Errorf("clean(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}
