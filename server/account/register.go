package account

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"relais/server/id"
	"relais/server/mailaddr"
	"relais/server/password"
	"relais/server/proto"
	"relais/server/store"
)

// Registration outcomes, the "status" of a successful registration. They
// depend only on the node's configuration, never on whether the address
// already has an account, so that registration does not reveal who has one.
const (
	StatusVerificationSent = "verification_sent"
	StatusPendingApproval  = "pending_approval"
)

// Register starts a registration for an address of an allowed domain. With
// an SMTP relay the address is verified by a link and a code; without
// one, the account waits for an operator's approval.
func (s *Service) Register(ctx context.Context, req proto.RegisterRequest, ip string) (status string, err error) {
	if err := s.limit(ip, ""); err != nil {
		return "", err
	}
	addr, err := s.policy.Load().Check(req.Email)
	if err != nil {
		return "", emailError(err)
	}
	if err := s.limit("", addr.String()); err != nil {
		return "", err
	}
	if err := password.Check(req.Password, hints(addr)...); err != nil {
		return "", passwordError(err)
	}
	name, err := displayName(req.DisplayName, addr)
	if err != nil {
		return "", err
	}
	// Hash before looking the address up, so that both paths take the
	// same time.
	hash, err := password.Hash(ctx, req.Password, s.cfg.Password)
	if err != nil {
		return "", err
	}
	status = StatusPendingApproval
	if s.cfg.Mailer != nil {
		status = StatusVerificationSent
	}
	now := s.now()
	u := store.User{
		ID: id.NewUser(s.db.Node()), Email: addr.String(), Name: name, Org: addr.DomainUnicode(),
		Password: hash, State: store.UserPending, Created: now,
	}
	if s.cfg.Mailer != nil {
		u.State = store.UserUnverified
	}
	token, tokenHash := newToken()
	code := newCode()
	var existing *store.User
	err = s.db.Update(ctx, func(tx *store.Tx) error {
		existing = nil
		old, err := tx.UserByEmail(u.Email)
		switch {
		case err == nil && old.State == store.UserUnverified:
			// A new registration of an address not proven yet: it takes
			// the place of the earlier one, whose link and code die. Only
			// whoever knows the new password and reads the mail can
			// complete it; an earlier registrant, reading no mail, is
			// simply out.
			old.Password, old.Name = hash, name
			if err := tx.PutUser(old); err != nil {
				return err
			}
			if err := s.deleteTokens(tx, old.ID, store.TokenVerify); err != nil {
				return err
			}
			u = old
		case err == nil:
			existing = &old
			return nil
		case errors.Is(err, store.ErrNotFound):
			if err := tx.CreateUser(u); err != nil {
				return err
			}
		default:
			return err
		}
		if u.State != store.UserUnverified {
			return nil
		}
		exp := now.Add(verifyTTL)
		if err := tx.PutToken(tokenHash, store.Token{Kind: store.TokenVerify, UserID: u.ID, Expires: exp}); err != nil {
			return err
		}
		return tx.PutToken(codeKey(u.Email), store.Token{Kind: store.TokenVerify, UserID: u.ID, Expires: exp, Secret: hashToken(code)})
	})
	if err != nil {
		return "", err
	}
	switch {
	case existing != nil:
		// Tell the owner of the address, not the requester.
		if s.cfg.Mailer != nil {
			resetToken, resetHash := newToken()
			if existing.State == store.UserActive {
				if err := s.db.Update(ctx, func(tx *store.Tx) error {
					return tx.PutToken(resetHash, store.Token{Kind: store.TokenReset, UserID: existing.ID, Expires: now.Add(resetTTL)})
				}); err != nil {
					return "", err
				}
			}
			s.send(s.cfg.Templates.AlreadyRegistered(existing.Email, s.cfg.PublicURL+"/", s.link("/reset", resetToken)))
		}
		s.log.Info("registration for an existing account", "user", existing.ID)
	case u.State == store.UserUnverified:
		s.send(s.cfg.Templates.Verification(u.Email, s.link("/verify", token), code))
		s.log.Info("registration, verification sent", "user", u.ID)
	default:
		s.log.Info("registration waits for approval", "user", u.ID)
	}
	return status, nil
}

// displayName checks a name given at registration, or derives one from the
// address ("jean.dupont" → "Jean Dupont").
func displayName(given string, addr mailaddr.Address) (string, error) {
	name := strings.Join(strings.Fields(given), " ")
	if name == "" {
		return mailaddr.DisplayName(addr.Local), nil
	}
	return CheckName(name)
}

// CodeDigits is the length of a verification code. With at most
// maxGuesses wrong guesses per code and the per-address budget of wrong
// guesses (guessAddr: 34 a day), the odds of guessing one in a year are
// 34 × 365 / 10^10, about 1 in 800,000.
const CodeDigits = 10

// maxGuesses wrong codes or passwords burn a registration's link and code.
const maxGuesses = 5

// newCode returns the code of a verification mail, for typing on another
// device than the one the mail was read on.
func newCode() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(10_000_000_000))
	return fmt.Sprintf("%010d", n.Int64())
}

// codeKey is where the code of an address's registration is stored: one
// per address, so that a new one replaces the old and wrong guesses are
// counted against it.
func codeKey(email string) []byte { return hashToken("code\x00" + email) }

// normalizeCode drops the spaces and dashes people type inside codes.
func normalizeCode(code string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, code)
}

var errInvalidVerify = proto.Errorf(proto.CodeInvalidToken, "this link, code or password is not valid, or the link has expired")

// Verify activates an account from its e-mail link or code and the
// password given at registration. The mail alone proves the address but
// not who registered: a victim following the mail of a registration made
// in their name by someone else must not activate it with that someone's
// password. Wrong guesses count against the code (maxGuesses burn it) and
// against budgets of their own, per address and per client network.
func (s *Service) Verify(ctx context.Context, req proto.VerifyRequest, ip string) error {
	var key []byte
	var email string
	switch {
	case req.Token != "" && len(req.Token) <= 128:
		key = hashToken(req.Token)
	case req.Email != "" && req.Code != "":
		addr, err := mailaddr.Parse(req.Email)
		if err != nil {
			return errInvalidVerify
		}
		email, key = addr.String(), codeKey(addr.String())
	default:
		return proto.Errorf(proto.CodeBadRequest, "give the token of the link, or the address and the code")
	}
	if req.Password == "" || len(req.Password) > password.DefaultPolicy.MaxBytes {
		return proto.Errorf(proto.CodeBadRequest, "give the password you registered with")
	}
	fails := s.guessFailures(ip, email)
	if err := fails.check(); err != nil {
		return err
	}
	var t store.Token
	var u store.User
	err := s.db.View(func(tx *store.Tx) error {
		var err error
		if t, err = tx.Token(key); err != nil || t.Kind != store.TokenVerify || s.now().After(t.Expires) {
			return errInvalidVerify
		}
		if u, err = tx.User(t.UserID); err != nil {
			return errInvalidVerify
		}
		return nil
	})
	if err != nil {
		if err == errInvalidVerify {
			fails.fail()
		}
		return err
	}
	right := req.Code == "" || subtle.ConstantTimeCompare(hashToken(normalizeCode(strings.TrimSpace(req.Code))), t.Secret) == 1
	if right {
		// Only a right code costs a hash: wrong guesses stay cheap to
		// refuse.
		if right, err = password.Verify(ctx, u.Password, req.Password); err != nil {
			return err
		}
	}
	activated := false
	err = s.db.Update(ctx, func(tx *store.Tx) error {
		activated = false
		cur, err := tx.Token(key)
		if err != nil || cur.UserID != u.ID || !bytes.Equal(cur.Secret, t.Secret) {
			// Used or replaced meanwhile.
			return errInvalidVerify
		}
		if !right {
			cur.Tries++
			if cur.Tries >= maxGuesses {
				return s.deleteTokens(tx, u.ID, store.TokenVerify)
			}
			return tx.PutToken(key, cur)
		}
		now, err := tx.User(u.ID)
		if err != nil || now.Password != u.Password {
			return errInvalidVerify
		}
		if err := s.deleteTokens(tx, u.ID, store.TokenVerify); err != nil {
			return err
		}
		if now.State != store.UserUnverified {
			return nil
		}
		now.State = store.UserActive
		s.startValidity(&now)
		activated = true
		return tx.PutUser(now)
	})
	if err == nil && !right {
		err = errInvalidVerify
	}
	if err == errInvalidVerify {
		fails.fail()
	}
	if activated {
		s.log.Info("address verified", "user", u.ID)
	}
	return err
}

// startValidity sets the expiry of an account that becomes active.
func (s *Service) startValidity(u *store.User) {
	if s.cfg.Validity > 0 {
		u.Expires = s.now().Add(s.cfg.Validity)
	}
}

// deleteTokens removes the tokens of a kind that belong to a user.
func (s *Service) deleteTokens(tx *store.Tx, userID string, kind store.TokenKind) error {
	var hashes [][]byte
	if err := tx.Tokens(func(h []byte, t store.Token) bool {
		if t.UserID == userID && t.Kind == kind {
			hashes = append(hashes, h)
		}
		return true
	}); err != nil {
		return err
	}
	for _, h := range hashes {
		if err := tx.DeleteToken(h); err != nil {
			return err
		}
	}
	return nil
}

// Approve activates an account waiting for an operator (no SMTP relay),
// or an unverified one the operator vouches for.
func (s *Service) Approve(ctx context.Context, email string) error {
	return s.changeUser(ctx, email, func(tx *store.Tx, u *store.User) error {
		switch u.State {
		case store.UserPending, store.UserUnverified:
		case store.UserActive:
			return proto.Errorf(proto.CodeConflict, "this account is already active")
		default:
			return proto.Errorf(proto.CodeConflict, "this account is %s", u.State)
		}
		u.State = store.UserActive
		s.startValidity(u)
		return s.deleteTokens(tx, u.ID, store.TokenVerify)
	})
}

// changeUser loads the user of an address, lets change modify it and
// stores it, in one transaction.
func (s *Service) changeUser(ctx context.Context, email string, change func(*store.Tx, *store.User) error) error {
	addr, err := mailaddr.Parse(email)
	if err != nil {
		return proto.Errorf(proto.CodeEmailInvalid, "this is not a valid e-mail address")
	}
	return s.db.Update(ctx, func(tx *store.Tx) error {
		u, err := tx.UserByEmail(addr.String())
		if errors.Is(err, store.ErrNotFound) {
			return proto.Errorf(proto.CodeNotFound, "no account for this address")
		}
		if err != nil {
			return err
		}
		if err := change(tx, &u); err != nil {
			return err
		}
		return tx.PutUser(u)
	})
}

// SetupLink returns a one-time link that creates the first administrator,
// or "" when an administrator exists. Each call replaces the previous
// link.
func (s *Service) SetupLink(ctx context.Context) (string, error) {
	token, hash := newToken()
	done := false
	err := s.db.Update(ctx, func(tx *store.Tx) error {
		has, err := tx.HasAdmin()
		if err != nil || has {
			done = has
			return err
		}
		if err := s.deleteTokens(tx, "", store.TokenSetup); err != nil {
			return err
		}
		return tx.PutToken(hash, store.Token{Kind: store.TokenSetup, Expires: s.now().Add(setupTTL)})
	})
	if err != nil || done {
		return "", err
	}
	return s.link("/setup", token), nil
}

// SetupNeeded reports whether the node still has no administrator.
func (s *Service) SetupNeeded() (bool, error) {
	var has bool
	err := s.db.View(func(tx *store.Tx) error {
		var err error
		has, err = tx.HasAdmin()
		return err
	})
	return !has, err
}

// Setup creates the first administrator with the setup link's token, and
// the allowed domains if given. The administrator's address must be in an
// allowed domain.
func (s *Service) Setup(ctx context.Context, req proto.SetupRequest, ip string) error {
	if err := s.limit(ip, ""); err != nil {
		return err
	}
	policy := *s.policy.Load()
	if len(req.Domains) > 0 {
		var err error
		if policy, err = policy.With(req.Domains...); err != nil {
			return proto.Errorf(proto.CodeBadRequest, "allowed domains: %v", err)
		}
	}
	addr, err := policy.Check(req.Email)
	if err != nil {
		return emailError(err)
	}
	if err := password.Check(req.Password, hints(addr)...); err != nil {
		return passwordError(err)
	}
	name, err := displayName(req.DisplayName, addr)
	if err != nil {
		return err
	}
	hash, err := password.Hash(ctx, req.Password, s.cfg.Password)
	if err != nil {
		return err
	}
	u := store.User{ID: id.NewUser(s.db.Node()), Email: addr.String(), Name: name, Org: addr.DomainUnicode(),
		Password: hash, State: store.UserActive, Admin: true, Created: s.now()}
	err = s.db.Update(ctx, func(tx *store.Tx) error {
		t, err := tx.Token(hashToken(req.Token))
		if err != nil || t.Kind != store.TokenSetup || s.now().After(t.Expires) {
			return proto.Errorf(proto.CodeInvalidToken, "this setup link is not valid: use the last one the node printed")
		}
		if has, err := tx.HasAdmin(); err != nil {
			return err
		} else if has {
			return proto.Errorf(proto.CodeSetupDone, "the node already has an administrator")
		}
		if err := s.deleteTokens(tx, "", store.TokenSetup); err != nil {
			return err
		}
		if err := tx.PutDomains(policy.Entries()); err != nil {
			return err
		}
		old, err := tx.UserByEmail(u.Email)
		if err == nil {
			// The address registered before setup: promote it.
			old.Admin, old.State, old.Password = true, store.UserActive, hash
			return tx.PutUser(old)
		}
		return tx.CreateUser(u)
	})
	if err != nil {
		return err
	}
	s.policy.Store(&policy)
	s.log.Info("first administrator created", "user", u.ID)
	return nil
}

// PromoteAdmin makes an active account an administrator (relais admin).
func (s *Service) PromoteAdmin(ctx context.Context, email string) error {
	return s.changeUser(ctx, email, func(_ *store.Tx, u *store.User) error {
		if u.State != store.UserActive || u.External {
			return proto.Errorf(proto.CodeConflict, "only an active agent can be an administrator")
		}
		u.Admin = true
		return nil
	})
}

// expireTokens removes expired tokens and registrations never verified;
// run from Maintain.
func (s *Service) expireTokens(ctx context.Context) error {
	now := s.now()
	return s.db.Update(ctx, func(tx *store.Tx) error {
		var expired [][]byte
		var stale []string
		if err := tx.Tokens(func(h []byte, t store.Token) bool {
			if now.After(t.Expires) {
				expired = append(expired, h)
			}
			return true
		}); err != nil {
			return err
		}
		for _, h := range expired {
			if err := tx.DeleteToken(h); err != nil {
				return err
			}
		}
		if err := tx.Users(func(u store.User) bool {
			if u.State == store.UserUnverified && now.Sub(u.Created) > verifyTTL+time.Hour {
				stale = append(stale, u.ID)
			}
			return true
		}); err != nil {
			return err
		}
		for _, id := range stale {
			if err := tx.DeleteUser(id); err != nil {
				return err
			}
		}
		return nil
	})
}
