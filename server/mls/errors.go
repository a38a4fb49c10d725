package mls

import (
	"errors"
	"fmt"
)

// Code is the stable, machine-readable class of an *Error. It is meant to
// be sent to clients as is.
type Code string

// Error codes.
const (
	// CodeMalformed: the input is not a valid encoding of the expected
	// structure (truncated, non-minimal length, unknown enum value, trailing
	// bytes, a rule of RFC 9420 §6 broken, ...).
	CodeMalformed Code = "mls_malformed"
	// CodeUnsupportedVersion: a ProtocolVersion other than mls10.
	CodeUnsupportedVersion Code = "mls_unsupported_version"
	// CodeUnsupportedWireFormat: an unknown wire format, or one other than
	// the caller asked for (a Welcome given to ParseKeyPackage).
	CodeUnsupportedWireFormat Code = "mls_unsupported_wire_format"
	// CodeUnsupportedCipherSuite: a KeyPackage whose cipher suite this
	// package does not know, so its KeyPackageRef cannot be computed.
	CodeUnsupportedCipherSuite Code = "mls_unsupported_cipher_suite"
	// CodeTooLarge: the input exceeds the configured size limit.
	CodeTooLarge Code = "mls_too_large"
)

// Sentinels, one per Code, for errors.Is: errors.Is(err, ErrMalformed)
// reports whether err is an *Error with CodeMalformed.
var (
	ErrMalformed              = &Error{Code: CodeMalformed}
	ErrUnsupportedVersion     = &Error{Code: CodeUnsupportedVersion}
	ErrUnsupportedWireFormat  = &Error{Code: CodeUnsupportedWireFormat}
	ErrUnsupportedCipherSuite = &Error{Code: CodeUnsupportedCipherSuite}
	ErrTooLarge               = &Error{Code: CodeTooLarge}
)

// Error is the error returned by every parser of this package.
type Error struct {
	// Code is the stable class of the error.
	Code Code
	// Field is the dotted path of the field at fault, following the names
	// of RFC 9420 ("public_message.sender.leaf_index",
	// "key_package.leaf_node.credential.identity"); empty for the
	// sentinels and for errors about the input as a whole.
	Field string
	// Err says what was wrong with the field ("truncated", "non-minimal
	// variable-length integer", ...); nil for the sentinels.
	Err error
}

// Error returns "code: field: reason".
func (e *Error) Error() string {
	s := string(e.Code)
	if e.Field != "" {
		s += ": " + e.Field
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns what was wrong with the field.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel of e's Code.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Field == "" && t.Err == nil && t.Code == e.Code
}

// Reasons wrapped by *Error. They are unexported: callers branch on Code,
// people read the message.
var (
	errTruncated     = errors.New("truncated")
	errNonMinimal    = errors.New("non-minimal variable-length integer")
	errVarintPrefix  = errors.New("invalid variable-length integer prefix 0b11")
	errBeyondEnd     = errors.New("declared length exceeds the remaining input")
	errTrailingBytes = errors.New("trailing bytes")
	errBadElements   = errors.New("vector length is not a multiple of the element size")
	errBadValue      = errors.New("invalid value")
)

func malformed(field string, err error) *Error {
	return &Error{Code: CodeMalformed, Field: field, Err: err}
}

// badValue reports an invalid or unsupported enum value.
func badValue(field string, format string, args ...any) *Error {
	return malformed(field, fmt.Errorf("%w: "+format, append([]any{errBadValue}, args...)...))
}

// within prefixes the field of err, which must come from this package, with
// the path of the enclosing structure. It allocates only on the error path.
func within(prefix string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		if e.Field == "" {
			e.Field = prefix
		} else {
			e.Field = prefix + "." + e.Field
		}
	}
	return err
}
