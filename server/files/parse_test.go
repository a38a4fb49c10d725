package files

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"relais/server/id"
	"relais/server/proto"
)

func TestParseOffset(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1", 1, true},
		{"1048576", 1 << 20, true},
		{"999999999999999999", 999999999999999999, true},
		{"", 0, false},
		{"00", 0, false},
		{"01", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{" 1", 0, false},
		{"1 ", 0, false},
		{"1e6", 0, false},
		{"0x10", 0, false},
		{"1000000000000000000", 0, false}, // 19 digits
		{"٣", 0, false},                   // a digit of another script
	} {
		got, err := parseOffset(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseOffset(%q) = %d, %v", tc.in, got, err)
		}
	}
}

// FuzzParseOffset: an accepted offset is the canonical decimal form of a
// non-negative number, and every refusal is bad_request.
func FuzzParseOffset(f *testing.F) {
	for _, s := range []string{"0", "42", "007", "-1", "18446744073709551616", "1e3", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := parseOffset(s)
		if err != nil {
			if pe := proto.AsError(err); pe == nil || pe.Code != proto.CodeBadRequest {
				t.Fatalf("error %v", err)
			}
			return
		}
		if n < 0 || strconv.FormatInt(n, 10) != s {
			t.Fatalf("parseOffset(%q) = %d", s, n)
		}
	})
}

const testRoom = "r-nabcdefgh-abcdefghijklmnop"

func TestParseBegin(t *testing.T) {
	good := `{"room":"` + testRoom + `","name":"a.pdf","size":10,"type":"application/pdf"}`
	if req, err := parseBegin([]byte(good)); err != nil || req.Size != 10 || req.Name != "a.pdf" {
		t.Fatalf("%+v %v", req, err)
	}
	enc := `{"room":"` + testRoom + `","name":"","size":0,"encrypted":{"enc":"AQID","sealed":"BAUG"}}`
	if req, err := parseBegin([]byte(enc)); err != nil || string(req.Encrypted.Enc) != "\x01\x02\x03" {
		t.Fatalf("%+v %v", req, err)
	}
	for name, body := range map[string]string{
		"not JSON":        `room=x`,
		"bad room":        `{"room":"r-x","name":"a","size":1}`,
		"negative size":   `{"room":"` + testRoom + `","name":"a","size":-5}`,
		"fractional size": `{"room":"` + testRoom + `","name":"a","size":1.5}`,
		"unknown field":   `{"room":"` + testRoom + `","name":"a","size":1,"path":"/etc"}`,
		"trailing data":   `{"room":"` + testRoom + `","name":"a","size":1} {}`,
		"long name":       `{"room":"` + testRoom + `","name":"` + strings.Repeat("a", 2000) + `","size":1}`,
		"type with CRLF":  `{"room":"` + testRoom + `","name":"a","size":1,"type":"text/plain\r\nX: y"}`,
		"empty sealed":    `{"room":"` + testRoom + `","name":"a","size":1,"encrypted":{"enc":"AQID"}}`,
		"bad base64":      `{"room":"` + testRoom + `","name":"a","size":1,"encrypted":{"enc":"***","sealed":"AA=="}}`,
		"null":            `null`,
		"array":           `[]`,
	} {
		if _, err := parseBegin([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := parseBegin(make([]byte, maxBeginBody+1)); proto.AsError(err).Code != proto.CodeTooLarge {
		t.Errorf("oversized body: %v", err)
	}
}

// FuzzParseBegin: whatever the body, parseBegin answers a protocol error
// or a request within every limit.
func FuzzParseBegin(f *testing.F) {
	f.Add([]byte(`{"room":"` + testRoom + `","name":"a.pdf","size":10,"type":"application/pdf"}`))
	f.Add([]byte(`{"room":"` + testRoom + `","name":"../../x","size":0,"encrypted":{"enc":"AQID","sealed":"BAUG"}}`))
	f.Add([]byte(`{"room":"` + testRoom + `","name":"\u0000","size":9223372036854775807}`))
	f.Add([]byte(`{"size":1e400}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := parseBegin(body)
		if err != nil {
			if proto.AsError(err) == nil {
				t.Fatalf("not a protocol error: %v", err)
			}
			return
		}
		switch {
		case !id.Valid(id.Room, req.Room), req.Size < 0, len(req.Name) > maxNameInput,
			len(req.Type) > maxTypeInput, !utf8.ValidString(req.Type), strings.ContainsAny(req.Type, "\x00\r\n"):
			t.Fatalf("accepted %+v", req)
		case req.Encrypted != nil && (len(req.Encrypted.Enc) == 0 || len(req.Encrypted.Sealed) == 0 ||
			len(req.Encrypted.Enc) > maxEncLen || len(req.Encrypted.Sealed) > maxSealedLen):
			t.Fatalf("accepted sealed key %+v", req.Encrypted)
		}
		if _, err := json.Marshal(req); err != nil {
			t.Fatal(err)
		}
	})
}
