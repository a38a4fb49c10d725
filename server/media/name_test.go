package media

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestSanitizeName(t *testing.T) {
	long := strings.Repeat("é", 150) + ".pdf"
	cases := []struct{ in, want string }{
		{"rapport.pdf", "rapport.pdf"},
		{"Compte rendu – réunion 12.docx", "Compte rendu – réunion 12.docx"},
		{"会议记录.txt", "会议记录.txt"},
		{"Ελληνικά αρχεία.odt", "Ελληνικά αρχεία.odt"},
		{"../../etc/passwd", "passwd"},
		{`C:\Users\agent\Bureau\note.txt`, "note.txt"},
		{"dir/", "fichier"},
		{"", "fichier"},
		{"..", "fichier"},
		{" . ", "fichier"},
		{".htaccess", "htaccess"},
		{"name.txt.", "name.txt"},
		{"a\x00b\x1fc\x7f.txt", "abc.txt"},
		{"tab\there\nnewline.txt", "tab here newline.txt"},
		{"many     spaces.txt", "many spaces.txt"},
		{"facture\u202Efdp.exe", "facturefdp.exe"},
		{"zero\u200Bwidth\uFEFF.txt", "zerowidth.txt"},
		{"private\uE000use.txt", "privateuse.txt"},
		{`what?<is>:this|"*.txt`, "what__is__this___.txt"},
		{"fake\u2215slash.txt", "fake_slash.txt"},
		{"CON", "_CON"},
		{"con.txt", "_con.txt"},
		{"LPT1.tar.gz", "_LPT1.tar.gz"},
		{"COM¹", "_COM¹"},
		{"CONSOLE.txt", "CONSOLE.txt"},
		{"bad\xffutf8.txt", "badutf8.txt"},
		{long, strings.Repeat("é", 88) + ".pdf"},
		{strings.Repeat("a", 300), strings.Repeat("a", MaxNameBytes)},
		{strings.Repeat("a", 300) + ".exe", strings.Repeat("a", MaxNameBytes-4) + ".exe"},
	}
	for _, tc := range cases {
		if got := SanitizeName(tc.in); got != tc.want {
			t.Errorf("SanitizeName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func FuzzSanitizeName(f *testing.F) {
	for _, s := range []string{"a.txt", "../x", "CON.txt", "\u202Eexe.pdf", " .. ", strings.Repeat("ab.", 100), "é\xff", "LPT¹", "a/b\\c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out := SanitizeName(in)
		if out == "" || len(out) > MaxNameBytes || !utf8.ValidString(out) {
			t.Fatalf("SanitizeName(%q) = %q", in, out)
		}
		if strings.ContainsAny(out, `/\<>:"|?*`) {
			t.Fatalf("SanitizeName(%q) = %q keeps a forbidden character", in, out)
		}
		for _, r := range out {
			if unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Co) || r != ' ' && unicode.IsSpace(r) {
				t.Fatalf("SanitizeName(%q) = %q keeps %U", in, out, r)
			}
		}
		if strings.HasPrefix(out, ".") || strings.HasPrefix(out, " ") || strings.HasSuffix(out, ".") || strings.HasSuffix(out, " ") || strings.Contains(out, "  ") {
			t.Fatalf("SanitizeName(%q) = %q", in, out)
		}
		if isReserved(out) {
			t.Fatalf("SanitizeName(%q) = %q is a reserved name", in, out)
		}
		if again := SanitizeName(out); again != out {
			t.Fatalf("not idempotent: %q → %q → %q", in, out, again)
		}
		cd := contentDisposition("attachment", out)
		if strings.ContainsAny(cd, "\r\n\x00") || !utf8.ValidString(cd) {
			t.Fatalf("Content-Disposition %q", cd)
		}
		for i := 0; i < len(cd); i++ {
			if cd[i] >= 0x80 {
				t.Fatalf("Content-Disposition %q is not ASCII", cd)
			}
		}
	})
}

func TestContentDisposition(t *testing.T) {
	cases := []struct{ name, want string }{
		{"rapport.pdf", `attachment; filename="rapport.pdf"`},
		{"Été 2026.pdf", `attachment; filename="_t_ 2026.pdf"; filename*=UTF-8''%C3%89t%C3%A9%202026.pdf`},
		{"100%.txt", `attachment; filename="100_.txt"; filename*=UTF-8''100%25.txt`},
	}
	for _, tc := range cases {
		if got := contentDisposition("attachment", tc.name); got != tc.want {
			t.Errorf("contentDisposition(%q) = %s, want %s", tc.name, got, tc.want)
		}
	}
}
