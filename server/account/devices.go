package account

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"relais/server/proto"
	"relais/server/store"
)

// MaxDeviceName is the longest device name, in characters.
const MaxDeviceName = 60

// TSignIn is the frame type of the "new sign-in to your account" alert
// (see PROTOCOL.md).
const TSignIn = "signin"

// SignInAlert is pushed to a user's connected devices when one of their
// sessions is created. It names the new device and when; it carries no
// address: the node keeps no client IP with a session, and a notice
// shown on a screen is not where to learn one.
type SignInAlert struct {
	T      string    `json:"t"`
	Device string    `json:"device"`
	Name   string    `json:"name"`
	At     time.Time `json:"at"`
}

// defaultDeviceName is the name a new session gets from what the client
// says it is (its browser and system), followed by a short tag of the
// device id, so that two "Chrome · Linux" of one person still differ in
// the list where they revoke one. Text that could not be shown as it is
// gives way to a plain "Appareil".
func defaultDeviceName(given, deviceID string) string {
	s := strings.Join(strings.Fields(given), " ")
	if s == "" || proto.TextFault(s) != "" {
		s = "Appareil"
	}
	const room = MaxDeviceName - 7 // " · " and the tag
	if utf8.RuneCountInString(s) > room {
		s = strings.TrimSpace(string([]rune(s)[:room]))
	}
	return s + " · " + proto.UserTag(deviceID)
}

// CheckDeviceName returns a device name with runs of spaces made one, or
// an error with code name_invalid and the detail of CheckName: the name
// is shown in security notices, where a name that hides or reorders its
// characters could pass for another device.
func CheckDeviceName(given string) (string, error) {
	return checkText(given, MaxDeviceName, "a device name must be at most 60 characters")
}

// RenameDevice renames one of the user's own devices; another user's
// device id is not found, exactly like an unknown one.
func (s *Service) RenameDevice(ctx context.Context, userID, deviceID, name string) (string, error) {
	name, err := CheckDeviceName(name)
	if err != nil {
		return "", err
	}
	err = s.db.Update(ctx, func(tx *store.Tx) error { return tx.RenameDevice(userID, deviceID, name) })
	if errors.Is(err, store.ErrNotFound) {
		return "", proto.Errorf(proto.CodeNotFound, "no such device")
	}
	if err != nil {
		return "", err
	}
	return name, nil
}

// alertSignIn tells the user's other connected devices that sess was
// created. The subject is the user's own: nobody else's connections get
// it.
func (s *Service) alertSignIn(sess store.Session) {
	frame := proto.Encode(SignInAlert{T: TSignIn, Device: sess.DeviceID, Name: sess.Name, At: sess.Created})
	env := proto.AppendEnvelope(nil, proto.Envelope{Kind: proto.EnvUser, Frame: frame})
	if err := s.bus.Publish(proto.SubjectUser(sess.UserID), env); err != nil {
		s.log.Error("publish sign-in alert", "user", sess.UserID, "err", err)
	}
}
