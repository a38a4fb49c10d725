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

// The sentinel errors of the package.
var (
	ErrNotFound       = &Error{"not_found", "no such upload or blob"}
	ErrBadRequest     = &Error{"bad_request", "invalid upload request"}
	ErrTooLarge       = &Error{"too_large", "larger than allowed"}
	ErrQuota          = &Error{"quota_exceeded", "storage quota exceeded"}
	ErrTooManyUploads = &Error{"too_many_uploads", "too many unfinished uploads"}
	ErrOffset         = &Error{"offset_mismatch", "chunk does not start where the upload stands"}
	ErrInterrupted    = &Error{"interrupted", "chunk ended early; resume from the upload's offset"}
	ErrIncomplete     = &Error{"incomplete", "upload has fewer bytes than declared"}
	ErrBusy           = &Error{"busy", "another chunk of this upload is being written"}
	ErrImageTooLarge  = &Error{"image_too_large", "image has too many pixels"}
	ErrImageInvalid   = &Error{"image_invalid", "not a readable PNG, JPEG or GIF image"}
	// ErrUndecryptable reports an encrypted file, or a sealed file key,
	// that does not open: a wrong key, a tampered or truncated blob, or
	// not the "relais file v1" format.
	ErrUndecryptable = &Error{"undecryptable", "encrypted file does not open with the given key"}
)

// OffsetError is returned by Store.WriteChunk when a chunk does not start
// at the upload's current offset: a replayed, overlapping or skipping
// chunk. The client resumes by sending from Offset. errors.Is(err,
// ErrOffset) reports true.
type OffsetError struct {
	ID     string
	Offset int64 // where the upload stands
	Got    int64 // where the refused chunk started
}

func (e *OffsetError) Error() string {
	return fmt.Sprintf("media: upload %s: chunk at offset %d, upload is at %d", e.ID, e.Got, e.Offset)
}

// Is makes errors.Is(err, ErrOffset) true.
func (e *OffsetError) Is(target error) bool { return target == ErrOffset }

// Code returns ErrOffset's code.
func (e *OffsetError) Code() string { return ErrOffset.code }

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
// has one (an *Error, *OffsetError or *RefusedError), or "" if none does.
func ErrorCode(err error) string {
	var c interface{ Code() string }
	if errors.As(err, &c) {
		return c.Code()
	}
	return ""
}
