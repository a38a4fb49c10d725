package files

import (
	"bytes"
	"strings"
	"unicode/utf8"

	"relais/server/httpx"
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

// parseBegin decodes and validates an upload request body: JSON, no
// unknown fields, nothing after the object, every field within its
// limits. Errors are bad_request (or too_large for an oversized body).
func parseBegin(body []byte) (proto.UploadRequest, error) {
	var req proto.UploadRequest
	if len(body) > maxBeginBody {
		return req, proto.Errorf(proto.CodeTooLarge, "upload request over %d bytes", maxBeginBody)
	}
	if err := httpx.DecodeJSON(bytes.NewReader(body), &req); err != nil {
		return proto.UploadRequest{}, err
	}
	switch {
	case !id.Valid(id.Room, req.Room):
		return proto.UploadRequest{}, proto.Errorf(proto.CodeBadRequest, "an upload needs a valid room")
	case req.Size < 0:
		return proto.UploadRequest{}, proto.Errorf(proto.CodeBadRequest, "size must be the file's exact size in bytes")
	case len(req.Name) > maxNameInput:
		return proto.UploadRequest{}, proto.Errorf(proto.CodeBadRequest, "name over %d bytes", maxNameInput)
	case len(req.Type) > maxTypeInput || !utf8.ValidString(req.Type) || strings.ContainsAny(req.Type, "\x00\r\n"):
		return proto.UploadRequest{}, proto.Errorf(proto.CodeBadRequest, "type must be a content type such as application/pdf")
	}
	if k := req.Encrypted; k != nil {
		if len(k.Enc) == 0 || len(k.Enc) > maxEncLen || len(k.Sealed) == 0 || len(k.Sealed) > maxSealedLen {
			return proto.UploadRequest{}, proto.Errorf(proto.CodeBadRequest, "encrypted needs enc and sealed: the file key sealed to the scanner key")
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
