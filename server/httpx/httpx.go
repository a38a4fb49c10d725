// Package httpx is the node's one HTTP layer, shared by the JSON API
// (package api), the attachments' routes (package files) and the
// websocket upgrade (package ws): the session token of a request, strict
// JSON bodies, JSON answers, and the one table of stable error codes to
// HTTP statuses (StatusOf) behind every error answer.
package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"relais/server/proto"
)

// CookieName is the browser session cookie.
const CookieName = "relais_session"

// TokenFrom returns the session token of a request: the bearer token, or
// the session cookie. cookie reports which.
func TokenFrom(r *http.Request) (token string, cookie bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t), false
		}
		return "", false
	}
	if c, err := r.Cookie(CookieName); err == nil {
		return c.Value, true
	}
	return "", false
}

type ridKey struct{}

// WithRequestID returns r carrying the request id that error answers and
// logs name.
func WithRequestID(r *http.Request, rid string) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), ridKey{}, rid))
}

// RequestID returns the request id set by WithRequestID, or "".
func RequestID(r *http.Request) string {
	s, _ := r.Context().Value(ridKey{}).(string)
	return s
}

// Handle adapts a handler that returns its error: the error is answered
// by WriteError.
func Handle(log *slog.Logger, fn func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(w, r); err != nil {
			WriteError(w, r, log, err)
		}
	}
}

// Authed adapts a handler that needs a session: resolve turns the
// request's token (TokenFrom) into the caller, or an error (unauthorized)
// that is answered without calling fn.
func Authed[T any](log *slog.Logger, resolve func(token string) (T, error), fn func(http.ResponseWriter, *http.Request, T) error) http.HandlerFunc {
	return Handle(log, func(w http.ResponseWriter, r *http.Request) error {
		token, _ := TokenFrom(r)
		who, err := resolve(token)
		if err != nil {
			return err
		}
		return fn(w, r, who)
	})
}

// Decode reads a JSON request body strictly: JSON content type, at most
// max bytes (too_large), no unknown fields, nothing after the object
// (bad_request).
func Decode(w http.ResponseWriter, r *http.Request, v any, max int64) error {
	if err := RequireJSON(r); err != nil {
		return err
	}
	err := DecodeJSON(http.MaxBytesReader(w, r.Body, max), v)
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return proto.Errorf(proto.CodeTooLarge, "body over %d bytes", max)
	}
	return err
}

// RequireJSON refuses a request body that is not declared as JSON
// (unsupported_media).
func RequireJSON(r *http.Request) error {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "application/json" {
		return proto.Errorf(proto.CodeUnsupportedMedia, "send application/json")
	}
	return nil
}

// DecodeJSON decodes one JSON value from rd strictly: no unknown fields,
// nothing after it. A malformed body is bad_request; a protocol error of
// the reader (request_timeout) and a *http.MaxBytesError are returned as
// they are.
func DecodeJSON(rd io.Reader, v any) error {
	dec := json.NewDecoder(rd)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		if pe := proto.AsError(err); pe != nil {
			return pe // request_timeout
		}
		return proto.Errorf(proto.CodeBadRequest, "body is not the expected JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return proto.Errorf(proto.CodeBadRequest, "unexpected data after the JSON body")
	}
	return nil
}
