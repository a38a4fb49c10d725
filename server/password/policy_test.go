package password

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	hints := []string{"jean-pierre.dupont", "elysee"}
	for _, tc := range []struct {
		name, password string
		code           string // "" = accepted
	}{
		{"passphrase", "cheval agrafe batterie", ""},
		{"ten characters", "k7#Pq2!vLz", ""},
		{"accents count as one character each", "éléphant\u00e9\u00e8", ""},
		{"ten accented characters", "ééééééééèà", ""},
		{"short accented", "ééééééééè", CodeTooShort},
		{"nine characters", "k7#Pq2!vL", CodeTooShort},
		{"empty", "", CodeTooShort},
		{"256 bytes", strings.Repeat("ab", 128), ""},
		{"257 bytes", strings.Repeat("ab", 128) + "c", CodeTooLong},
		{"long multibyte", strings.Repeat("é", 129), CodeTooLong},
		{"invalid utf-8", "abcdefghij\xff", CodeInvalid},
		{"nul", "abcdefghij\x00k", CodeInvalid},
		{"newline", "abcdefghij\nk", CodeInvalid},
		{"tab", "abcde\tfghijk", CodeInvalid},
		{"repeated ascii", "aaaaaaaaaaaa", CodeRepeated},
		{"repeated digit", "0000000000", CodeRepeated},
		{"repeated multibyte", "éééééééééééé", CodeRepeated},
		{"relais", "MonRelais2024!", CodePersonal},
		{"relais upper case", "xxRELAISxxxx", CodePersonal},
		{"local part", "jean-pierre.dupont!", CodePersonal},
		{"first name from local part", "Jean1234567!", CodePersonal},
		{"last name from local part", "xyzDUPONTxyz", CodePersonal},
		{"domain label", "elysee-2024-xx", CodePersonal},
		{"short hint piece ignored", "jp-is-not-a-hint", ""},
		{"common", "azertyuiop", CodeCommon},
		{"common upper case", "AZERTYUIOP", CodeCommon},
		{"common french", "motdepasse", CodeCommon},
		{"common digits", "1234567890", CodeCommon},
		{"common keyboard walk", "1q2w3e4r5t", CodeCommon},
		{"common with digits", "soleil2024!", CodeCommon},
		{"common with leading digits", "2024marseille", CodeCommon},
		{"common with symbols", "!!bonjour!!", CodeCommon},
		{"common substituted", "P@ssw0rd2024", CodeCommon},
		{"common substituted french", "m0tdep@sse!", CodeCommon},
		{"common with substituted suffix", "chouchou1234", CodeCommon},
		{"doudou", "doudou12345", CodeCommon},
		{"loulou", "Loulou!!2023", CodeCommon},
		{"iloveyou", "iloveyou123", CodeCommon},
		{"common inside is fine", "soleil-de-mon-jardin", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check(tc.password, hints...)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("Check: %v, want nil", err)
				}
				return
			}
			var e *PolicyError
			if !errors.As(err, &e) || e.Code != tc.code {
				t.Fatalf("Check: %v, want code %s", err, tc.code)
			}
			if !errors.Is(err, &PolicyError{Code: tc.code}) {
				t.Errorf("errors.Is does not match code %s", tc.code)
			}
			if len(tc.password) > 3 && strings.Contains(err.Error(), tc.password) {
				t.Errorf("error %q contains the password", err)
			}
		})
	}
}

func TestCommonList(t *testing.T) {
	if n := len(common); n < 500 {
		t.Fatalf("common list has %d entries", n)
	}
	for _, w := range []string{"azerty", "motdepasse", "soleil", "doudou", "marseille", "bonjour", "loulou", "chouchou", "123456789", "azertyuiop", "password", "qwerty"} {
		if _, ok := common[w]; !ok {
			t.Errorf("%q missing from the common list", w)
		}
	}
	for w := range common {
		if w != strings.ToLower(w) || strings.TrimSpace(w) != w || strings.HasPrefix(w, "#") {
			t.Errorf("bad entry %q", w)
		}
	}
	if !errors.Is(Check("azertyuiop"), ErrTooCommon) {
		t.Error("errors.Is(Check(azertyuiop), ErrTooCommon) = false")
	}
}

func TestCustomPolicy(t *testing.T) {
	p := Policy{MinLength: 12, MaxBytes: 20}
	if err := p.Check("k7#Pq2!vLz"); !errors.Is(err, ErrTooShort) {
		t.Errorf("10 characters with MinLength 12: %v", err)
	}
	if err := p.Check("k7#Pq2!vLzk7#Pq2!vLz1"); !errors.Is(err, ErrTooLong) {
		t.Errorf("21 bytes with MaxBytes 20: %v", err)
	}
	if err := p.Check("k7#Pq2!vLzk7#"); err != nil {
		t.Errorf("13 characters: %v", err)
	}
}
