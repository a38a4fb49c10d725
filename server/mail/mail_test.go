package mail

import (
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/quotedprintable"
	netmail "net/mail"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func testSender(t testing.TB) sender {
	t.Helper()
	from, err := parseFrom("Relais – Mairie de Lyon <no-reply@chat.mairie-lyon.fr>")
	if err != nil {
		t.Fatal(err)
	}
	return from
}

// parseBuilt builds m and parses the result as a mail client would.
func parseBuilt(t testing.TB, m Message) (*netmail.Message, string, error) {
	t.Helper()
	to, err := m.Validate()
	if err != nil {
		return nil, "", err
	}
	raw, err := build(testSender(t), to, m, time.Date(2026, 3, 3, 14, 5, 0, 0, time.UTC))
	if err != nil {
		return nil, "", err
	}
	for _, line := range strings.Split(string(raw), "\r\n") {
		if len(line) > 78 && !strings.Contains(line, ": ") {
			t.Errorf("line longer than 78 characters: %q", line)
		}
		if strings.ContainsAny(line, "\r\n") {
			t.Errorf("bare CR or LF in %q", line)
		}
	}
	msg, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("built message does not parse: %v\n%s", err, raw)
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
	if err != nil {
		t.Fatalf("body is not quoted-printable: %v", err)
	}
	return msg, strings.ReplaceAll(string(body), "\r\n", "\n"), nil
}

func TestBuild(t *testing.T) {
	m := Message{
		To:      "Jean.Dupont@Elysee.FR",
		Subject: "Confirmez votre adresse e-mail – Relais",
		Text:    "Bonjour,\r\n\r\nUne ligne très longue " + strings.Repeat("é", 100) + "\n.ligne qui commence par un point\nFrom début\nfin   \n",
	}
	msg, body, err := parseBuilt(t, m)
	if err != nil {
		t.Fatal(err)
	}
	h := msg.Header
	for name, want := range map[string]string{
		"From":                      `=?utf-8?q?Relais_=E2=80=93_Mairie_de_Lyon?= <no-reply@chat.mairie-lyon.fr>`,
		"To":                        "jean.dupont@elysee.fr",
		"Date":                      "Tue, 03 Mar 2026 14:05:00 +0000",
		"Mime-Version":              "1.0",
		"Content-Type":              "text/plain; charset=utf-8",
		"Content-Transfer-Encoding": "quoted-printable",
		"Auto-Submitted":            "auto-generated",
	} {
		if got := h.Get(name); got != want {
			t.Errorf("%s: %q, want %q", name, got, want)
		}
	}
	var dec mime.WordDecoder
	if subject, err := dec.DecodeHeader(h.Get("Subject")); err != nil || subject != m.Subject {
		t.Errorf("Subject decodes to %q, %v; want %q", subject, err, m.Subject)
	}
	if id := h.Get("Message-Id"); !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, "@chat.mairie-lyon.fr>") || len(id) != 1+32+1+len("chat.mairie-lyon.fr")+1 {
		t.Errorf("Message-ID %q", id)
	}
	if want := strings.ReplaceAll(m.Text, "\r\n", "\n"); body != want {
		t.Errorf("body %q, want %q", body, want)
	}
	if _, err := msg.Header.Date(); err != nil {
		t.Errorf("Date: %v", err)
	}
}

func TestBuildASCIISubject(t *testing.T) {
	msg, _, err := parseBuilt(t, Message{To: "a@b.fr", Subject: "Hello", Text: "x"})
	if err != nil {
		t.Fatal(err)
	}
	if got := msg.Header.Get("Subject"); got != "Hello" {
		t.Errorf("Subject %q, want Hello unencoded", got)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    Message
		ok   bool
	}{
		{"plain", Message{To: "a@b.fr", Subject: "s", Text: "t"}, true},
		{"empty subject and text", Message{To: "a@b.fr"}, true},
		{"max subject", Message{To: "a@b.fr", Subject: strings.Repeat("é", MaxSubject)}, true},
		{"subject too long", Message{To: "a@b.fr", Subject: strings.Repeat("é", MaxSubject+1)}, false},
		{"crlf in subject", Message{To: "a@b.fr", Subject: "s\r\nBcc: x@gmail.com"}, false},
		{"lf in subject", Message{To: "a@b.fr", Subject: "s\nBcc: x@gmail.com"}, false},
		{"cr in subject", Message{To: "a@b.fr", Subject: "s\rx"}, false},
		{"nul in subject", Message{To: "a@b.fr", Subject: "s\x00"}, false},
		{"line separator in subject", Message{To: "a@b.fr", Subject: "s\u2028x"}, false},
		{"invalid utf-8 subject", Message{To: "a@b.fr", Subject: "s\xff"}, false},
		{"crlf in to", Message{To: "a@b.fr\r\nBcc: x@gmail.com"}, false},
		{"two recipients", Message{To: "a@b.fr, x@gmail.com"}, false},
		{"display name", Message{To: "A <a@b.fr>"}, false},
		{"tchap flaw", Message{To: "x@gmail.com@b.fr"}, false},
		{"empty to", Message{}, false},
		{"invalid utf-8 text", Message{To: "a@b.fr", Text: "\xff"}, false},
		{"text too long", Message{To: "a@b.fr", Text: strings.Repeat("x", MaxText+1)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.m.Validate()
			if tc.ok && err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrInvalidMessage) {
				t.Fatalf("Validate: %v, want ErrInvalidMessage", err)
			}
		})
	}
}

func TestParseFrom(t *testing.T) {
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"no-reply@chat.mairie.fr", true},
		{"Relais <no-reply@chat.mairie.fr>", true},
		{`"Mairie de Lyon, Relais" <no-reply@chat.mairie.fr>`, true},
		{"=?utf-8?q?Mairie?= <no-reply@chat.mairie.fr>", true},
		{"", false},
		{"no-reply", false},
		{"a@b.fr, c@d.fr", false},
		{`"x@gmail.com"@b.fr`, false},
		{"x@gmail.com@b.fr", false},
		{"Relais <no-reply@chat.mairie.fr>\r\nBcc: x@gmail.com", false},
	} {
		_, err := parseFrom(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("parseFrom(%q): %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

// FuzzBuild checks that no subject or text can add a header, change the
// recipient or be altered in transit.
func FuzzBuild(f *testing.F) {
	f.Add("a@b.fr", "Bonjour", "Texte\n")
	f.Add("a@b.fr", "s\r\nBcc: x@gmail.com", "x\r\n.\r\nMAIL FROM:<x@y.fr>\r\n")
	f.Add("a@b.fr", "=?utf-8?q?x?=", "=?utf-8?q?x?=\n\n\n")
	f.Add("a@b.fr", strings.Repeat("é ", 60), strings.Repeat("ligne ", 100))
	from := testSender(f)
	f.Fuzz(func(t *testing.T, to, subject, text string) {
		m := Message{To: to, Subject: subject, Text: text}
		rcpt, err := m.Validate()
		if err != nil {
			return
		}
		raw, err := build(from, rcpt, m, time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		msg, err := netmail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("does not parse: %v\n%q", err, raw)
		}
		if len(msg.Header) != 9 {
			t.Fatalf("%d header fields, want 9: %q", len(msg.Header), msg.Header)
		}
		if got := msg.Header.Get("To"); got != rcpt.String() || len(msg.Header["To"]) != 1 {
			t.Fatalf("To %q, want %q", msg.Header["To"], rcpt)
		}
		var dec mime.WordDecoder
		got, err := dec.DecodeHeader(msg.Header.Get("Subject"))
		// An ASCII subject that looks like an encoded word is sent as is
		// and decoded by readers, and spaces around a header value are not
		// significant: both are harmless for display text.
		if err != nil || (strings.TrimSpace(got) != strings.TrimSpace(subject) && !strings.Contains(subject, "=?")) {
			t.Fatalf("Subject %q decodes to %q, %v", subject, got, err)
		}
		body, err := io.ReadAll(quotedprintable.NewReader(msg.Body))
		if err != nil {
			t.Fatal(err)
		}
		want := strings.ReplaceAll(strings.ReplaceAll(text, "\r\n", "\n"), "\r", "\n")
		if gotText := strings.ReplaceAll(string(body), "\r\n", "\n"); strings.TrimSuffix(gotText, "\n") != strings.TrimSuffix(want, "\n") {
			t.Fatalf("text %q arrives as %q", want, gotText)
		}
		for i := 0; i < len(raw); i++ {
			if raw[i] >= utf8.RuneSelf {
				t.Fatalf("non-ASCII byte in message at %d", i)
			}
		}
	})
}
