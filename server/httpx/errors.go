package httpx

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"relais/server/proto"
)

// statusOf is the one mapping of protocol error codes to HTTP statuses
// (read with StatusOf): the API, the attachments' routes and the
// websocket upgrade answer through it.
var statusOf = map[string]int{
	proto.CodeBadRequest:        http.StatusBadRequest,
	proto.CodeBadFrame:          http.StatusBadRequest,
	proto.CodeUnknownType:       http.StatusBadRequest,
	proto.CodeTooLarge:          http.StatusRequestEntityTooLarge,
	proto.CodeUnsupportedMedia:  http.StatusUnsupportedMediaType,
	proto.CodeUnauthorized:      http.StatusUnauthorized,
	proto.CodeForbidden:         http.StatusForbidden,
	proto.CodeNotFound:          http.StatusNotFound,
	proto.CodeNotMember:         http.StatusForbidden,
	proto.CodeConflict:          http.StatusConflict,
	proto.CodeGone:              http.StatusGone,
	proto.CodeRateLimited:       http.StatusTooManyRequests,
	proto.CodeTooManySockets:    http.StatusTooManyRequests,
	proto.CodeRequestTimeout:    http.StatusRequestTimeout,
	proto.CodeInternal:          http.StatusInternalServerError,
	proto.CodeUnavailable:       http.StatusServiceUnavailable,
	proto.CodeHomeUnreachable:   http.StatusServiceUnavailable,
	proto.CodeEmailInvalid:      http.StatusBadRequest,
	proto.CodeEmailNotAllowed:   http.StatusForbidden,
	proto.CodeWeakPassword:      http.StatusBadRequest,
	proto.CodeBadCredentials:    http.StatusUnauthorized,
	proto.CodeWrongPassword:     http.StatusForbidden,
	proto.CodeAccountInactive:   http.StatusForbidden,
	proto.CodeAccountExpired:    http.StatusForbidden,
	proto.CodeInvalidToken:      http.StatusBadRequest,
	proto.CodeSetupDone:         http.StatusConflict,
	proto.CodeExternalForbidden: http.StatusForbidden,
	proto.CodeLastOwner:         http.StatusConflict,

	// Attachments.
	proto.CodeQuotaExceeded:      http.StatusRequestEntityTooLarge,
	proto.CodeTooManyUploads:     http.StatusTooManyRequests,
	proto.CodeOffsetMismatch:     http.StatusConflict,
	proto.CodeInterrupted:        http.StatusBadRequest,
	proto.CodeIncomplete:         http.StatusConflict,
	proto.CodeBusy:               http.StatusConflict,
	proto.CodeBlockedType:        http.StatusUnsupportedMediaType,
	proto.CodeArchiveBomb:        http.StatusUnprocessableEntity,
	proto.CodeArchiveNested:      http.StatusUnprocessableEntity,
	proto.CodeArchiveEncrypted:   http.StatusUnprocessableEntity,
	proto.CodeArchiveInvalid:     http.StatusUnprocessableEntity,
	proto.CodeImageTooLarge:      http.StatusUnprocessableEntity,
	proto.CodeImageInvalid:       http.StatusUnprocessableEntity,
	proto.CodeUndecryptable:      http.StatusUnprocessableEntity,
	proto.CodeInfected:           http.StatusUnprocessableEntity,
	proto.CodeScannerUnavailable: http.StatusServiceUnavailable,
	proto.CodeScanPending:        http.StatusForbidden,
	proto.CodeQuarantined:        http.StatusGone,
	proto.CodeNotEncrypted:       http.StatusBadRequest,
}

// errorBody is the JSON of every error answer:
// {"error":{"code":"…","message":"…"}}.
type errorBody struct {
	Error struct {
		Code       string `json:"code"`
		Detail     string `json:"detail,omitempty"`
		Message    string `json:"message"`
		RetryAfter int    `json:"retry_after,omitempty"`
	} `json:"error"`
}

// StatusOf returns the HTTP status of a protocol error code; a code
// missing from the table is a client error (400).
func StatusOf(code string) int {
	if status, ok := statusOf[code]; ok {
		return status
	}
	return http.StatusBadRequest
}

// WriteError answers err: a protocol error with its status and code, any
// other error as a logged internal error whose details stay in the log.
// The answer is never cached.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	pe := proto.AsError(err)
	if pe == nil {
		if errors.Is(err, http.ErrHandlerTimeout) || errors.Is(r.Context().Err(), err) {
			pe = proto.Errorf(proto.CodeUnavailable, "the request was cancelled")
		} else {
			log.Error("request failed", "method", r.Method, "path", r.URL.Path, "request_id", RequestID(r), "err", err)
			pe = proto.Errorf(proto.CodeInternal, "internal error (request %s)", RequestID(r))
		}
	} else {
		log.Debug("request refused", "method", r.Method, "path", r.URL.Path, "request_id", RequestID(r), "code", pe.Code)
	}
	var body errorBody
	body.Error.Code, body.Error.Detail, body.Error.Message, body.Error.RetryAfter = pe.Code, pe.Detail, pe.Message, pe.RetryAfter
	if pe.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(pe.RetryAfter))
	}
	WriteJSON(w, StatusOf(pe.Code), body)
}

// WriteJSON answers v as JSON with status; JSON answers are never cached.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(proto.Encode(v))
}
