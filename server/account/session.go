package account

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"time"

	"relais/server/id"
	"relais/server/mail"
	"relais/server/mailaddr"
	"relais/server/password"
	"relais/server/proto"
	"relais/server/store"
)

// Login is a successful sign-in.
type Login struct {
	Token   string
	User    store.User
	Session store.Session
}

var errBadCredentials = proto.Errorf(proto.CodeBadCredentials, "wrong e-mail address or password")

// errWrongPassword refuses a password change whose current password is
// wrong; the person is signed in, so there is no address to keep secret.
var errWrongPassword = proto.Errorf(proto.CodeWrongPassword, "the current password is wrong")

// Login checks an address and password and opens a session on a new
// device. Unknown addresses and wrong passwords take the same time and give
// the same error.
//
// Only failures spend the sign-in budgets (see Service.loginNet): a person
// signing in often, or registering, is never slowed down, and an attacker
// failing from one network does not lock the owner out of another.
func (s *Service) Login(ctx context.Context, req proto.LoginRequest, ip string) (Login, error) {
	addr, err := mailaddr.Parse(req.Email)
	email := ""
	if err == nil {
		email = addr.String()
	}
	fails := s.loginFailures(ip, email)
	if err := fails.check(); err != nil {
		return Login{}, err
	}
	if err != nil || len(req.Password) > password.DefaultPolicy.MaxBytes {
		password.DummyVerify(ctx, req.Password, s.cfg.Password)
		fails.fail()
		return Login{}, errBadCredentials
	}
	var u store.User
	err = s.db.View(func(tx *store.Tx) error {
		var err error
		u, err = tx.UserByEmail(email)
		return err
	})
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Password == "") {
		password.DummyVerify(ctx, req.Password, s.cfg.Password)
		fails.fail()
		return Login{}, errBadCredentials
	}
	if err != nil {
		return Login{}, err
	}
	ok, err := password.Verify(ctx, u.Password, req.Password)
	if err != nil {
		return Login{}, err
	}
	if !ok {
		fails.fail()
		s.log.Info("sign-in refused: wrong password", "user", u.ID)
		return Login{}, errBadCredentials
	}
	// Only someone who knows the password learns the account's state.
	switch u.State {
	case store.UserActive:
	case store.UserUnverified:
		return Login{}, accountInactive("confirm your address with the link we sent first")
	case store.UserPending:
		return Login{}, accountInactive("your registration is waiting for an administrator's approval")
	default:
		return Login{}, accountInactive("this account is deactivated")
	}
	if s.expired(u) {
		s.sendRenewal(ctx, u)
		return Login{}, proto.Errorf(proto.CodeAccountExpired, "your account has expired: we sent you a link to renew it")
	}
	rehash := password.NeedsRehash(u.Password, s.cfg.Password)
	var newHash string
	if rehash {
		if newHash, err = password.Hash(ctx, req.Password, s.cfg.Password); err != nil {
			return Login{}, err
		}
	}
	token, hash := newToken()
	now := s.now()
	dev := id.NewDevice()
	sess := store.Session{UserID: u.ID, DeviceID: dev, Name: defaultDeviceName(req.Device, dev), Created: now, LastSeen: now}
	err = s.db.Update(ctx, func(tx *store.Tx) error {
		if rehash {
			cur, err := tx.User(u.ID)
			if err != nil {
				return err
			}
			cur.Password = newHash
			if err := tx.PutUser(cur); err != nil {
				return err
			}
		}
		return tx.CreateSession(hash, sess)
	})
	if err != nil {
		return Login{}, err
	}
	s.log.Info("signed in", "user", u.ID, "device", sess.DeviceID)
	s.alertSignIn(sess)
	return Login{Token: token, User: u, Session: sess}, nil
}

func accountInactive(msg string) error { return proto.Errorf(proto.CodeAccountInactive, "%s", msg) }

// expired reports whether an account's validity has run out.
func (s *Service) expired(u store.User) bool {
	return !u.Expires.IsZero() && s.now().After(u.Expires)
}

// Identity is what a valid session token proves.
type Identity struct {
	TokenHash []byte
	Session   store.Session
	User      store.User
}

// ErrUnauthorized means there is no valid session.
var ErrUnauthorized = proto.Errorf(proto.CodeUnauthorized, "sign in first")

// Resolve checks a session token: the session must exist and not be idle
// for too long, and its user must be active and not expired.
func (s *Service) Resolve(token string) (Identity, error) {
	if token == "" || len(token) > 128 {
		return Identity{}, ErrUnauthorized
	}
	hash := hashToken(token)
	var ident Identity
	err := s.db.View(func(tx *store.Tx) error {
		sess, err := tx.Session(hash)
		if err != nil {
			return ErrUnauthorized
		}
		u, err := tx.User(sess.UserID)
		if err != nil {
			return ErrUnauthorized
		}
		ident = Identity{TokenHash: hash, Session: sess, User: u}
		return nil
	})
	if err != nil {
		return Identity{}, err
	}
	if ident.User.State != store.UserActive || s.expired(ident.User) || s.sessionDead(ident.Session) {
		return Identity{}, ErrUnauthorized
	}
	s.touch(hash)
	return ident, nil
}

// sessionDead reports whether a session was unused for longer than its
// lifetime, or is older than the maximum age.
func (s *Service) sessionDead(sess store.Session) bool {
	now := s.now()
	return now.Sub(sess.LastSeen) > s.cfg.SessionLifetime ||
		(s.cfg.SessionMaxAge > 0 && now.Sub(sess.Created) > s.cfg.SessionMaxAge)
}

// ExpireSessions deletes the sessions past their lifetime or maximum age
// and closes their connections: Resolve refuses them already, but an open
// websocket was authenticated once, when it opened. Run from Maintain.
func (s *Service) ExpireSessions(ctx context.Context) error {
	// Find them in one read, so that the hourly pass writes only for the
	// users that have some.
	var users []string
	if err := s.db.View(func(tx *store.Tx) error {
		var err error
		if e := tx.Users(func(u store.User) bool {
			var devs []store.Device
			if devs, err = tx.Devices(u.ID); err != nil {
				return false
			}
			if slices.ContainsFunc(devs, func(d store.Device) bool { return s.sessionDead(d.Session) }) {
				users = append(users, u.ID)
			}
			return true
		}); e != nil {
			return e
		}
		return err
	}); err != nil {
		return err
	}
	for _, u := range users {
		if err := s.revoke(ctx, u, func(d store.Device) bool { return s.sessionDead(d.Session) }); err != nil {
			return err
		}
	}
	return nil
}

// SessionLifetime is how long a session lives unused (for the cookie).
func (s *Service) SessionLifetime() time.Duration { return s.cfg.SessionLifetime }

// touch records that a session was used, writing at most every few
// minutes per session.
func (s *Service) touch(hash []byte) {
	now := s.now()
	key := string(hash)
	s.touchMu.Lock()
	last, ok := s.touched[key]
	if ok && now.Sub(last) < 5*time.Minute {
		s.touchMu.Unlock()
		return
	}
	s.touched[key] = now
	if len(s.touched) > 100_000 {
		clear(s.touched)
	}
	s.touchMu.Unlock()
	go s.db.Update(context.Background(), func(tx *store.Tx) error {
		err := tx.TouchSession(hash, now)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return err
	})
}

// Logout ends the session of token.
func (s *Service) Logout(ctx context.Context, token string) error {
	ident, err := s.Resolve(token)
	if err != nil {
		return err
	}
	return s.revoke(ctx, ident.User.ID, func(d store.Device) bool { return bytes.Equal(d.TokenHash, ident.TokenHash) })
}

// Devices lists a user's signed-in devices.
func (s *Service) Devices(userID string) ([]store.Device, error) {
	var out []store.Device
	err := s.db.View(func(tx *store.Tx) error {
		var err error
		out, err = tx.Devices(userID)
		return err
	})
	return out, err
}

// RevokeDevice signs a user's device out.
func (s *Service) RevokeDevice(ctx context.Context, userID, deviceID string) error {
	found := false
	err := s.revoke(ctx, userID, func(d store.Device) bool {
		if d.DeviceID == deviceID {
			found = true
		}
		return d.DeviceID == deviceID
	})
	if err == nil && !found {
		return proto.Errorf(proto.CodeNotFound, "no such device")
	}
	return err
}

// revoke deletes the sessions of a user that match, and closes their
// connections.
func (s *Service) revoke(ctx context.Context, userID string, match func(store.Device) bool) error {
	var devices []string
	err := s.db.Update(ctx, func(tx *store.Tx) error {
		devices = devices[:0]
		all, err := tx.Devices(userID)
		if err != nil {
			return err
		}
		for _, d := range all {
			if !match(d) {
				continue
			}
			if err := tx.DeleteSession(d.TokenHash); err != nil {
				return err
			}
			devices = append(devices, d.DeviceID)
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, d := range devices {
		s.publishRevoke(userID, d)
	}
	return nil
}

func (s *Service) publishRevoke(userID, deviceID string) {
	env := proto.AppendEnvelope(nil, proto.Envelope{Kind: proto.EnvRevoke, Member: deviceID})
	if err := s.bus.Publish(proto.SubjectUser(userID), env); err != nil {
		s.log.Error("publish revocation", "user", userID, "err", err)
	}
}

// ChangePassword replaces a user's password after checking the current
// one, and signs out every other device. Wrong current passwords spend
// the budgets of failed sign-ins from ip and for the address: a stolen
// session must not become a way to guess the password faster than the
// sign-in form allows.
func (s *Service) ChangePassword(ctx context.Context, ident Identity, current, next, ip string) error {
	fails := s.loginFailures(ip, ident.User.Email)
	if err := fails.check(); err != nil {
		return err
	}
	if len(current) > password.DefaultPolicy.MaxBytes {
		fails.fail()
		return errWrongPassword
	}
	ok, err := password.Verify(ctx, ident.User.Password, current)
	if err != nil {
		return err
	}
	if !ok {
		fails.fail()
		s.log.Info("password change refused: wrong current password", "user", ident.User.ID)
		return errWrongPassword
	}
	if err := s.setPassword(ctx, ident.User.ID, next); err != nil {
		return err
	}
	return s.revoke(ctx, ident.User.ID, func(d store.Device) bool { return !bytes.Equal(d.TokenHash, ident.TokenHash) })
}

func (s *Service) setPassword(ctx context.Context, userID, next string) error {
	u, err := s.db.User(userID)
	if err != nil {
		return err
	}
	addr, err := mailaddr.Parse(u.Email)
	if err != nil {
		return err
	}
	if err := password.Check(next, hints(addr)...); err != nil {
		return passwordError(err)
	}
	hash, err := password.Hash(ctx, next, s.cfg.Password)
	if err != nil {
		return err
	}
	return s.db.Update(ctx, func(tx *store.Tx) error {
		u, err := tx.User(userID)
		if err != nil {
			return err
		}
		u.Password = hash
		if err := tx.PutUser(u); err != nil {
			return err
		}
		// Whoever holds a reset link asked for before must not undo the
		// change.
		return s.deleteTokens(tx, userID, store.TokenReset)
	})
}

// RequestReset sends a password reset link to an active account's
// address. The answer is the same whether or not the address has an
// account, and so is the work done before answering: none. Looking the
// address up, storing the token (a disk write only when there is an
// account) and mailing happen in the mail queue after the answer, so that
// neither the store nor the relay's latency nor a failure tells.
func (s *Service) RequestReset(ctx context.Context, email, ip string) error {
	if err := s.limit(ip, ""); err != nil {
		return err
	}
	addr, err := mailaddr.Parse(email)
	if err != nil {
		return proto.Errorf(proto.CodeEmailInvalid, "this is not a valid e-mail address")
	}
	if err := s.limit("", addr.String()); err != nil {
		return err
	}
	if s.cfg.Mailer == nil {
		return proto.Errorf(proto.CodeUnavailable, "this node sends no e-mail: ask an administrator to reset your password")
	}
	email = addr.String()
	s.queue(func(ctx context.Context) (mail.Message, bool) {
		link, _, err := s.resetLink(ctx, email)
		if err != nil {
			if !errors.Is(err, store.ErrNotFound) {
				s.log.Error("reset link", "err", err)
			}
			return mail.Message{}, false
		}
		return s.cfg.Templates.PasswordReset(email, link), true
	})
	return nil
}

// resetLink creates a reset token for the active account of an address,
// or returns store.ErrNotFound after the same work.
func (s *Service) resetLink(ctx context.Context, email string) (link, userID string, err error) {
	token, hash := newToken()
	err = s.db.Update(ctx, func(tx *store.Tx) error {
		u, err := tx.UserByEmail(email)
		if err != nil {
			return err
		}
		if u.State != store.UserActive {
			return store.ErrNotFound
		}
		userID = u.ID
		return tx.PutToken(hash, store.Token{Kind: store.TokenReset, UserID: u.ID, Expires: s.now().Add(resetTTL)})
	})
	if err != nil {
		return "", "", err
	}
	return s.link("/reset", token), userID, nil
}

// AdminResetLink signs every device of an account out and returns a
// reset link for the operator to pass on; with a relay it is also mailed.
func (s *Service) AdminResetLink(ctx context.Context, email string) (string, error) {
	addr, err := mailaddr.Parse(email)
	if err != nil {
		return "", proto.Errorf(proto.CodeEmailInvalid, "this is not a valid e-mail address")
	}
	link, userID, err := s.resetLink(ctx, addr.String())
	if errors.Is(err, store.ErrNotFound) {
		return "", proto.Errorf(proto.CodeNotFound, "no active account for this address")
	}
	if err != nil {
		return "", err
	}
	if err := s.revoke(ctx, userID, func(store.Device) bool { return true }); err != nil {
		return "", err
	}
	s.send(s.cfg.Templates.PasswordReset(addr.String(), link))
	return link, nil
}

// ConfirmReset sets a new password from a reset link and signs every
// device out.
func (s *Service) ConfirmReset(ctx context.Context, token, next, ip string) error {
	if err := s.limit(ip, ""); err != nil {
		return err
	}
	var userID string
	if err := s.db.View(func(tx *store.Tx) error {
		t, err := tx.Token(hashToken(token))
		if err != nil || t.Kind != store.TokenReset || s.now().After(t.Expires) {
			return proto.Errorf(proto.CodeInvalidToken, "this link is not valid or has expired")
		}
		userID = t.UserID
		return nil
	}); err != nil {
		return err
	}
	// setPassword deletes this link with the other reset links.
	if err := s.setPassword(ctx, userID, next); err != nil {
		return err
	}
	s.log.Info("password reset", "user", userID)
	return s.revoke(ctx, userID, func(store.Device) bool { return true })
}

// SetDisplayName changes how a user appears to others.
func (s *Service) SetDisplayName(ctx context.Context, userID, name string) error {
	name, err := CheckName(name)
	if err != nil {
		return err
	}
	return s.db.Update(ctx, func(tx *store.Tx) error {
		u, err := tx.User(userID)
		if err != nil {
			return err
		}
		u.Name = name
		return tx.PutUser(u)
	})
}

// SetActive deactivates an account (every session is revoked at once) or
// reactivates it.
func (s *Service) SetActive(ctx context.Context, email string, active bool) error {
	var userID string
	err := s.changeUser(ctx, email, func(tx *store.Tx, u *store.User) error {
		userID = u.ID
		switch {
		case active && u.State == store.UserDeactivated:
			u.State = store.UserActive
			s.startValidity(u)
		case !active && u.State != store.UserDeactivated:
			u.State = store.UserDeactivated
		default:
			return proto.Errorf(proto.CodeConflict, "the account is already %s", u.State)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if !active {
		s.log.Info("account deactivated", "user", userID)
		return s.revoke(ctx, userID, func(store.Device) bool { return true })
	}
	s.log.Info("account reactivated", "user", userID)
	return nil
}

// Users lists every account, for operators.
func (s *Service) Users() ([]store.User, error) {
	var out []store.User
	err := s.db.View(func(tx *store.Tx) error {
		return tx.Users(func(u store.User) bool {
			u.Password = ""
			out = append(out, u)
			return true
		})
	})
	return out, err
}
