package httpx

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"relais/server/proto"
)

// FuzzDecode: every JSON body of the API goes through Decode. Whatever the
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
		err := Decode(httptest.NewRecorder(), r, &req, 64<<10)
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

// TestErrorAnswers pins the one mapper: a protocol error answers its
// code's status and its code, an unknown code is a client error, any
// other error is a 500 whose details stay in the log.
func TestErrorAnswers(t *testing.T) {
	for _, c := range []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"not found", proto.Errorf(proto.CodeNotFound, "no such file"), 404, proto.CodeNotFound},
		{"quota", proto.Errorf(proto.CodeQuotaExceeded, "full"), 413, proto.CodeQuotaExceeded},
		{"quarantined", proto.Errorf(proto.CodeQuarantined, "infected"), 410, proto.CodeQuarantined},
		{"sockets", &proto.Error{Code: proto.CodeTooManySockets, Message: "close tabs", RetryAfter: 60}, 429, proto.CodeTooManySockets},
		{"unknown code", proto.Errorf("no_such_code", "?"), 400, "no_such_code"},
		{"plain error", errors.New("disk on fire at /var/lib/relais"), 500, proto.CodeInternal},
	} {
		t.Run(c.name, func(t *testing.T) {
			var logs strings.Builder
			log := slog.New(slog.NewTextHandler(&logs, nil))
			w := httptest.NewRecorder()
			r := WithRequestID(httptest.NewRequest("GET", "/api/v1/x", nil), "rid42")
			WriteError(w, r, log, c.err)
			var body struct {
				Error struct {
					Code, Message string
					RetryAfter    int `json:"retry_after"`
				}
			}
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if w.Code != c.status || body.Error.Code != c.code || w.Header().Get("Cache-Control") != "no-store" {
				t.Fatalf("status %d code %q headers %v, want %d %q", w.Code, body.Error.Code, w.Header(), c.status, c.code)
			}
			if pe := proto.AsError(c.err); pe != nil && pe.RetryAfter > 0 &&
				(w.Header().Get("Retry-After") != "60" || body.Error.RetryAfter != 60) {
				t.Fatalf("retry after: header %q body %d", w.Header().Get("Retry-After"), body.Error.RetryAfter)
			}
			if c.code == proto.CodeInternal {
				if strings.Contains(w.Body.String(), "disk on fire") || !strings.Contains(body.Error.Message, "rid42") {
					t.Fatalf("internal error answered %q", w.Body.String())
				}
				if !strings.Contains(logs.String(), "disk on fire") || !strings.Contains(logs.String(), "err=") {
					t.Fatalf("internal error not logged under err: %q", logs.String())
				}
			}
		})
	}
}

// TestTokenFrom: the bearer token wins over the cookie, and a malformed
// Authorization header gives no token rather than the cookie's.
func TestTokenFrom(t *testing.T) {
	for _, c := range []struct {
		name, auth, cookie, token string
		fromCookie                bool
	}{
		{"bearer", "Bearer abc", "", "abc", false},
		{"cookie", "", "def", "def", true},
		{"bearer over cookie", "Bearer abc", "def", "abc", false},
		{"basic is no token", "Basic YTpi", "def", "", false},
		{"nothing", "", "", "", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			if c.auth != "" {
				r.Header.Set("Authorization", c.auth)
			}
			if c.cookie != "" {
				r.AddCookie(&http.Cookie{Name: CookieName, Value: c.cookie})
			}
			if tok, ck := TokenFrom(r); tok != c.token || ck != c.fromCookie {
				t.Fatalf("TokenFrom = %q, %v; want %q, %v", tok, ck, c.token, c.fromCookie)
			}
		})
	}
}
