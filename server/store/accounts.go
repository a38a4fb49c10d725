package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"
)

// ErrNotFound is returned when a record does not exist.
var ErrNotFound = errors.New("store: not found")

// ErrExists is returned when a unique record already exists.
var ErrExists = errors.New("store: already exists")

// UserState is where an account stands.
type UserState string

// The states of an account.
const (
	UserUnverified  UserState = "unverified"  // waits for its e-mail link
	UserPending     UserState = "pending"     // waits for an operator's approval
	UserActive      UserState = "active"      // may sign in
	UserDeactivated UserState = "deactivated" // sessions revoked, may not sign in
	UserInvited     UserState = "invited"     // external invited, has not set a password yet
)

// User is an account.
type User struct {
	ID       string    `json:"id"`
	Email    string    `json:"email"` // canonical address; never shown to other users
	Name     string    `json:"name"`
	Org      string    `json:"org"` // administration shown next to the name (the e-mail domain by default)
	Password string    `json:"pw,omitempty"`
	State    UserState `json:"state"`
	External bool      `json:"ext,omitempty"`
	Admin    bool      `json:"admin,omitempty"`
	Created  time.Time `json:"created"`
	// Expires is when the account stops being able to sign in unless
	// renewed; zero means never.
	Expires time.Time `json:"expires,omitzero"`
}

// listed reports whether the user appears in the directory.
func (u *User) listed() bool { return u.State == UserActive && !u.External }

// Session is a signed-in device.
type Session struct {
	UserID   string    `json:"user"`
	DeviceID string    `json:"device"`
	Name     string    `json:"name"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"seen"`
}

// TokenKind says what a one-time token is for.
type TokenKind string

// The kinds of one-time token.
const (
	TokenVerify     TokenKind = "verify"
	TokenReset      TokenKind = "reset"
	TokenRenew      TokenKind = "renew"
	TokenSetup      TokenKind = "setup"
	TokenInvitation TokenKind = "invite"
)

// Token is a one-time secret sent by e-mail or printed for an operator.
// Only its hash is stored.
type Token struct {
	Kind    TokenKind `json:"kind"`
	UserID  string    `json:"user,omitempty"`
	RoomID  string    `json:"room,omitempty"`
	By      string    `json:"by,omitempty"` // who created it (invitations)
	Expires time.Time `json:"expires"`
	// Secret is the hash of a short secret checked against this token
	// (the code of a verification mail, stored under a key derived from
	// the address); Tries counts wrong guesses of it.
	Secret []byte `json:"secret,omitempty"`
	Tries  int    `json:"tries,omitempty"`
}

// FoldName returns the form of a name used for directory search: no
// accents, lower case, single spaces.
func FoldName(s string) string {
	t := transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
	out, _, err := transform.String(t, s)
	if err != nil {
		out = s
	}
	return strings.Join(strings.Fields(strings.ToLower(out)), " ")
}

// nameKeys returns the directory keys of a name: one per word start, so
// that a prefix seek finds any word ("dupont" in "jean dupont").
func nameKeys(name, userID string) [][]byte {
	f := FoldName(name)
	var keys [][]byte
	for i := 0; i < len(f); i++ {
		if i == 0 || f[i-1] == ' ' || f[i-1] == '-' || f[i-1] == '\'' {
			keys = append(keys, join(f[i:], userID))
		}
	}
	return keys
}

func (tx *Tx) indexName(u *User, add bool) error {
	names := tx.bucket(bNames)
	for _, k := range nameKeys(u.Name, u.ID) {
		var err error
		if add {
			err = names.Put(k, nil)
		} else {
			err = names.Delete(k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func join(parts ...string) []byte {
	n := len(parts) - 1
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	for i, p := range parts {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, p...)
	}
	return b
}

func encode(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("store: encode %T: %v", v, err))
	}
	return b
}

func decode(b []byte, v any) error {
	if b == nil {
		return ErrNotFound
	}
	return json.Unmarshal(b, v)
}

// User returns the user with the given id.
func (tx *Tx) User(userID string) (User, error) {
	var u User
	err := decode(tx.bucket(bUsers).Get([]byte(userID)), &u)
	return u, err
}

// UserByEmail returns the user with the given canonical address.
func (tx *Tx) UserByEmail(email string) (User, error) {
	v := tx.bucket(bEmails).Get([]byte(email))
	if v == nil {
		return User{}, ErrNotFound
	}
	return tx.User(string(v))
}

// CreateUser stores a new user; ErrExists if the address is taken.
func (tx *Tx) CreateUser(u User) error {
	if tx.bucket(bEmails).Get([]byte(u.Email)) != nil {
		return ErrExists
	}
	if tx.bucket(bUsers).Get([]byte(u.ID)) != nil {
		return ErrExists
	}
	if err := tx.bucket(bEmails).Put([]byte(u.Email), []byte(u.ID)); err != nil {
		return err
	}
	return tx.putUser(nil, &u)
}

// PutUser replaces an existing user and keeps the indexes in step. The
// e-mail address of a user never changes.
func (tx *Tx) PutUser(u User) error {
	old, err := tx.User(u.ID)
	if err != nil {
		return err
	}
	if old.Email != u.Email {
		return fmt.Errorf("store: e-mail of %s cannot change", u.ID)
	}
	return tx.putUser(&old, &u)
}

func (tx *Tx) putUser(old, u *User) error {
	if old != nil && old.listed() {
		if err := tx.indexName(old, false); err != nil {
			return err
		}
	}
	if u.listed() {
		if err := tx.indexName(u, true); err != nil {
			return err
		}
	}
	return tx.bucket(bUsers).Put([]byte(u.ID), encode(u))
}

// DeleteUser removes a user that never became active (an abandoned
// registration), with its address.
func (tx *Tx) DeleteUser(userID string) error {
	u, err := tx.User(userID)
	if err != nil {
		return err
	}
	if u.listed() {
		if err := tx.indexName(&u, false); err != nil {
			return err
		}
	}
	if err := tx.bucket(bEmails).Delete([]byte(u.Email)); err != nil {
		return err
	}
	return tx.bucket(bUsers).Delete([]byte(userID))
}

// Users calls fn for every user in id order until fn returns false.
func (tx *Tx) Users(fn func(User) bool) error {
	c := tx.bucket(bUsers).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var u User
		if err := decode(v, &u); err != nil {
			return fmt.Errorf("store: user %s: %w", k, err)
		}
		if !fn(u) {
			return nil
		}
	}
	return nil
}

// SearchNames returns up to limit active agents with a word of their name
// starting with the folded query, in name order: "dup" and "Helene" find
// "Hélène Dupont".
func (tx *Tx) SearchNames(query string, limit int) ([]User, error) {
	q := []byte(FoldName(query))
	if len(q) == 0 || limit <= 0 {
		return nil, nil
	}
	var out []User
	seen := map[string]bool{}
	c := tx.bucket(bNames).Cursor()
	for k, _ := c.Seek(q); k != nil && bytes.HasPrefix(k, q) && len(out) < limit; k, _ = c.Next() {
		sep := bytes.LastIndexByte(k, 0)
		uid := string(k[sep+1:])
		if sep < 0 || seen[uid] {
			continue
		}
		seen[uid] = true
		u, err := tx.User(uid)
		if err != nil {
			return nil, fmt.Errorf("store: directory entry %s: %w", uid, err)
		}
		out = append(out, u)
	}
	return out, nil
}

// CreateSession stores a session under the hash of its token and indexes
// it as a device of its user.
func (tx *Tx) CreateSession(tokenHash []byte, s Session) error {
	if err := tx.bucket(bSessions).Put(tokenHash, encode(s)); err != nil {
		return err
	}
	return tx.bucket(bDevices).Put(join(s.UserID, s.DeviceID), tokenHash)
}

// Session returns the session stored under a token hash.
func (tx *Tx) Session(tokenHash []byte) (Session, error) {
	var s Session
	err := decode(tx.bucket(bSessions).Get(tokenHash), &s)
	return s, err
}

// TouchSession records when a session was last seen.
func (tx *Tx) TouchSession(tokenHash []byte, seen time.Time) error {
	s, err := tx.Session(tokenHash)
	if err != nil {
		return err
	}
	s.LastSeen = seen
	return tx.bucket(bSessions).Put(tokenHash, encode(s))
}

// RenameDevice sets the name of one of a user's devices, or returns
// ErrNotFound when the user has no such device: a device id names a
// session only together with its user.
func (tx *Tx) RenameDevice(userID, deviceID, name string) error {
	hash := tx.bucket(bDevices).Get(join(userID, deviceID))
	if hash == nil {
		return ErrNotFound
	}
	s, err := tx.Session(hash)
	if err != nil {
		return err
	}
	s.Name = name
	return tx.bucket(bSessions).Put(clone(hash), encode(s))
}

// Device is a session with the hash that identifies it.
type Device struct {
	Session
	TokenHash []byte
}

// Devices returns the sessions of a user.
func (tx *Tx) Devices(userID string) ([]Device, error) {
	var out []Device
	prefix := join(userID, "")
	c := tx.bucket(bDevices).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		s, err := tx.Session(v)
		if err != nil {
			continue
		}
		out = append(out, Device{Session: s, TokenHash: clone(v)})
	}
	return out, nil
}

// DeleteSession removes one session (a device).
func (tx *Tx) DeleteSession(tokenHash []byte) error {
	s, err := tx.Session(tokenHash)
	if err != nil {
		return err
	}
	if err := tx.bucket(bDevices).Delete(join(s.UserID, s.DeviceID)); err != nil {
		return err
	}
	return tx.bucket(bSessions).Delete(tokenHash)
}

// PutToken stores a one-time token under its hash.
func (tx *Tx) PutToken(tokenHash []byte, t Token) error {
	return tx.bucket(bTokens).Put(tokenHash, encode(t))
}

// Token returns a token by hash.
func (tx *Tx) Token(tokenHash []byte) (Token, error) {
	var t Token
	err := decode(tx.bucket(bTokens).Get(tokenHash), &t)
	return t, err
}

// DeleteToken removes a token.
func (tx *Tx) DeleteToken(tokenHash []byte) error {
	return tx.bucket(bTokens).Delete(tokenHash)
}

// Tokens calls fn for every stored token until it returns false; used to
// expire old tokens and to list invitations.
func (tx *Tx) Tokens(fn func(hash []byte, t Token) bool) error {
	c := tx.bucket(bTokens).Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var t Token
		if err := decode(v, &t); err != nil {
			return fmt.Errorf("store: token: %w", err)
		}
		if !fn(clone(k), t) {
			return nil
		}
	}
	return nil
}

// Domains returns the allowed registration domains stored by operators.
func (tx *Tx) Domains() ([]string, error) {
	var d []string
	v := tx.bucket(bMeta).Get(kDomains)
	if v == nil {
		return nil, nil
	}
	err := json.Unmarshal(v, &d)
	return d, err
}

// PutDomains replaces the allowed registration domains.
func (tx *Tx) PutDomains(d []string) error {
	return tx.bucket(bMeta).Put(kDomains, encode(d))
}

// HasAdmin reports whether an active administrator exists.
func (tx *Tx) HasAdmin() (bool, error) {
	found := false
	err := tx.Users(func(u User) bool {
		found = u.Admin && u.State == UserActive
		return !found
	})
	return found, err
}
