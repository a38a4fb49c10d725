package media

import (
	"errors"
	"fmt"
)

// Error is an error a client may see, with a stable code. The package's
// sentinel errors are *Error values; functions wrap them with context, so
// compare with errors.Is and read the code with ErrorCode.
type Error struct {
	code string
	msg  string
}

func (e *Error) Error() string { return "media: " + e.msg }

// Code returns the error's stable lower_snake code, for the wire.
func (e *Error) Code() string { return e.code }

// The sentinel errors of the package. Those of the bytes on disk
// (not_found, too_large, offset_mismatch…) are package blob's.
var (
	ErrImageTooLarge = &Error{"image_too_large", "image has too many pixels"}
	ErrImageInvalid  = &Error{"image_invalid", "not a readable PNG, JPEG or GIF image"}
	// ErrUndecryptable reports an encrypted file, or a sealed file key,
	// that does not open: a wrong key, a tampered or truncated blob, or
	// not the "relais file v1" format.
	ErrUndecryptable = &Error{"undecryptable", "encrypted file does not open with the given key"}
)

// RefusedError is returned when the built-in policy refuses a file before
// it is stored (by its name or declared type).
type RefusedError struct {
	Verdict Verdict
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("media: refused (%s): %s", e.Verdict.Code, e.Verdict.Reason)
}

// Code returns the verdict's code.
func (e *RefusedError) Code() string { return e.Verdict.Code }

// ErrorCode returns the stable code of the first error in err's chain that
// has one (an *Error or *RefusedError of this package, an error of
// package blob), or "" if none does.
func ErrorCode(err error) string {
	var c interface{ Code() string }
	if errors.As(err, &c) {
		return c.Code()
	}
	return ""
}
