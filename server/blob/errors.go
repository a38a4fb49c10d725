package blob

import (
	"errors"
	"fmt"
)

// Error is an error a client may see, with a stable code. The package's
// sentinel errors are *Error values; functions wrap them with context, so
// compare with errors.Is and read the code with Code.
type Error struct {
	code string
	msg  string
}

func (e *Error) Error() string { return "blob: " + e.msg }

// Code returns the error's stable lower_snake code, for the wire.
func (e *Error) Code() string { return e.code }

// The sentinel errors of the package.
var (
	ErrNotFound    = &Error{"not_found", "no such upload or blob"}
	ErrBadRequest  = &Error{"bad_request", "invalid upload"}
	ErrTooLarge    = &Error{"too_large", "larger than allowed"}
	ErrOffset      = &Error{"offset_mismatch", "chunk does not start where the upload stands"}
	ErrInterrupted = &Error{"interrupted", "chunk ended early; resume from the upload's offset"}
	ErrIncomplete  = &Error{"incomplete", "upload has fewer bytes than declared"}
	ErrBusy        = &Error{"busy", "another chunk of this upload is being written"}
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
	return fmt.Sprintf("blob: upload %s: chunk at offset %d, upload is at %d", e.ID, e.Got, e.Offset)
}

// Is makes errors.Is(err, ErrOffset) true.
func (e *OffsetError) Is(target error) bool { return target == ErrOffset }

// Code returns ErrOffset's code.
func (e *OffsetError) Code() string { return ErrOffset.code }

// Code returns the stable code of the first error in err's chain that has
// one, or "" if none does.
func Code(err error) string {
	var c interface{ Code() string }
	if errors.As(err, &c) {
		return c.Code()
	}
	return ""
}
