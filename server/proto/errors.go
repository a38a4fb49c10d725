package proto

import (
	"errors"
	"fmt"
)

// Error codes are part of the protocol: clients switch on them, so they
// never change meaning. Messages are for people and may change.
const (
	CodeBadRequest         = "bad_request"          // malformed or incomplete request
	CodeBadFrame           = "bad_frame"            // websocket frame that does not decode
	CodeUnknownType        = "unknown_type"         // frame or event type this version does not know
	CodeTooLarge           = "too_large"            // body, frame or field over its limit
	CodeUnsupportedMedia   = "unsupported_media"    // wrong Content-Type
	CodeUnauthorized       = "unauthorized"         // no valid session
	CodeForbidden          = "forbidden"            // authenticated but not allowed
	CodeNotFound           = "not_found"            // no such thing, or not visible to you
	CodeNotMember          = "not_member"           // the room exists but you (or the person you act on) are not in it
	CodeConflict           = "conflict"             // the request contradicts the current state
	CodeGone               = "gone"                 // the target was deleted
	CodeRateLimited        = "rate_limited"         // slow down; see retry_after
	CodeTooManySockets     = "too_many_connections" // the account has as many websockets open as allowed
	CodeRequestTimeout     = "request_timeout"      // the request body arrived too slowly
	CodeInternal           = "internal"             // our fault; retry later
	CodeUnavailable        = "unavailable"          // the node is shutting down or overloaded
	CodeEmailInvalid       = "email_invalid"        // not a well-formed address
	CodeEmailNotAllowed    = "email_domain_not_allowed"
	CodeWeakPassword       = "weak_password"
	CodeNameInvalid        = "name_invalid"         // display name too long, or with invisible or direction-changing characters; detail says which
	CodeBadCredentials     = "bad_credentials"      // wrong e-mail or password (never says which)
	CodeWrongPassword      = "wrong_password"       // changing the password: the current one given is wrong
	CodeAccountInactive    = "account_inactive"     // not verified, waiting for approval, deactivated
	CodeAccountExpired     = "account_expired"      // must be renewed by e-mail
	CodeInvalidToken       = "invalid_token"        // unknown, used or expired one-time token
	CodeSetupDone          = "setup_done"           // the first administrator exists already
	CodeExternalForbidden  = "external_not_allowed" // externals may not do this / join this room
	CodeLastOwner          = "last_owner"           // the last owner must hand over before leaving
	CodeEpochMismatch      = "epoch_mismatch"       // an MLS message for another epoch than the room's; see Epoch
	CodeRemovePending      = "remove_pending"       // commit the removal of Devices (people who left) first
	CodeNotInGroup         = "not_in_group"         // this device is not in the room's MLS group
	CodeTooManyInvitations = "too_many_invitations" // too many of your invitations of externals are pending
	CodeHomeUnreachable    = "home_unreachable"     // the room's home administration did not answer: nothing was done there, retry with the same id
)

// Error is an error the protocol reports to a client: a stable code and a
// message for people.
type Error struct {
	Code string
	// Detail refines Code where a client shows different help (for
	// weak_password: password_too_short, password_too_common, …).
	Detail  string
	Message string
	// RetryAfter, in seconds, accompanies CodeRateLimited.
	RetryAfter int
	// Epoch, the room's current epoch, accompanies CodeEpochMismatch.
	Epoch *uint64
	// Devices, the MLS identities to remove, accompany CodeRemovePending.
	Devices []string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with the given code.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// AsError returns the *Error in err's chain, or nil.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}
