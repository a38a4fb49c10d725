package files

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	"relais/server/id"
	"relais/server/proto"
)

// Limits of an upload request.
const (
	maxBeginBody  = 16 << 10
	maxNameInput  = 1024 // bytes of the name as sent, before SanitizeName
	maxTypeInput  = 255
	maxEncLen     = 4096 // the HPKE encapsulated key (1,120 bytes for X-Wing)
	maxSealedLen  = 256  // the sealed 32-byte file key and its tag
	maxOffsetText = 18   // digits: offsets stay below 10^18 bytes
)

// BeginRequest is the body of POST /api/v1/media/uploads.
type BeginRequest struct {
	Room string `json:"room"`
	// Name is the file's name, sanitized by the node; in an encrypted
	// room a client may send a neutral one (the real name travels inside
	// the MLS message).
	Name string `json:"name"`
	// Size is the exact number of bytes that will be sent.
	Size int64 `json:"size"`
	// Type is the content type the client believes the file has; it is
	// checked against the blocked types and never served.
	Type string `json:"type,omitempty"`
	// Encrypted is, in an encrypted room of a node that scans them, the
	// file key sealed to the node's scanner key.
	Encrypted *SealedKey `json:"encrypted,omitempty"`
}

// SealedKey is a file key sealed to the scanner key with HPKE: the
// encapsulated key and the ciphertext, in base64 in JSON.
type SealedKey struct {
	Enc    []byte `json:"enc"`
	Sealed []byte `json:"sealed"`
}

// parseBegin decodes and validates an upload request body: JSON, no
// unknown fields, nothing after the object, every field within its
// limits. Errors are bad_request (or too_large for an oversized body).
func parseBegin(body []byte) (BeginRequest, error) {
	var req BeginRequest
	if len(body) > maxBeginBody {
		return req, proto.Errorf(proto.CodeTooLarge, "upload request over %d bytes", maxBeginBody)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return BeginRequest{}, proto.Errorf(proto.CodeBadRequest, "upload request is not the expected JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return BeginRequest{}, proto.Errorf(proto.CodeBadRequest, "unexpected data after the upload request")
	}
	switch {
	case !id.Valid(id.Room, req.Room):
		return BeginRequest{}, proto.Errorf(proto.CodeBadRequest, "an upload needs a valid room")
	case req.Size < 0:
		return BeginRequest{}, proto.Errorf(proto.CodeBadRequest, "size must be the file's exact size in bytes")
	case len(req.Name) > maxNameInput:
		return BeginRequest{}, proto.Errorf(proto.CodeBadRequest, "name over %d bytes", maxNameInput)
	case len(req.Type) > maxTypeInput || !utf8.ValidString(req.Type) || strings.ContainsAny(req.Type, "\x00\r\n"):
		return BeginRequest{}, proto.Errorf(proto.CodeBadRequest, "type must be a content type such as application/pdf")
	}
	if k := req.Encrypted; k != nil {
		if len(k.Enc) == 0 || len(k.Enc) > maxEncLen || len(k.Sealed) == 0 || len(k.Sealed) > maxSealedLen {
			return BeginRequest{}, proto.Errorf(proto.CodeBadRequest, "encrypted needs enc and sealed: the file key sealed to the scanner key")
		}
	}
	return req, nil
}

// parseOffset reads the offset query parameter of a chunk: a decimal
// number of bytes, digits only, without sign or leading zeros.
func parseOffset(s string) (int64, error) {
	bad := proto.Errorf(proto.CodeBadRequest, "offset must be the number of bytes already sent, in decimal")
	if s == "" || len(s) > maxOffsetText || (len(s) > 1 && s[0] == '0') {
		return 0, bad
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, bad
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}
