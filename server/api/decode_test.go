package api

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"relais/server/proto"
)

// FuzzDecode: every JSON body of the API goes through decode. Whatever the
// bytes, it answers nil or a proto error with a stable 4xx code, never a
// panic or an internal error, and an accepted body is one object with only
// known fields.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"email":"a@b.fr","password":"x"}`, `{}`, `{"email":1}`, `{"other":true}`,
		`{"email":"a"} {"email":"b"}`, `[`, ``, `null`, `{"email":"\u0000"}`,
		`{"email":"a","email":"b"}`, strings.Repeat(`[`, 10000),
	} {
		f.Add(s, "application/json")
	}
	f.Add(`{}`, "text/plain")
	f.Add(`{}`, "application/json; charset=utf-8")
	f.Fuzz(func(t *testing.T, body, contentType string) {
		r := httptest.NewRequest("POST", "/api/v1/login", strings.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		var req struct {
			Email    string `json:"email"`
			Password string `json:"password"`
		}
		err := decode(httptest.NewRecorder(), r, &req)
		if err == nil {
			return
		}
		var pe *proto.Error
		if !errors.As(err, &pe) {
			t.Fatalf("decode(%q) = %v, not a proto error", body, err)
		}
		switch pe.Code {
		case proto.CodeBadRequest, proto.CodeTooLarge, proto.CodeUnsupportedMedia:
		default:
			t.Fatalf("decode(%q) = code %q", body, pe.Code)
		}
	})
}
