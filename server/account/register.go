package account

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
	"unicode/utf8"

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

// RegisterRequest is the body of POST /api/v1/register.
type RegisterRequest struct {
	Email       string `json:"email"`
	Password    string `json:"password"`
	DisplayName string `json:"display_name,omitempty"`
}

// Register starts a registration for an address of an allowed domain. With
// an SMTP relay the address is verified by a link and a code; without
// one, the account waits for an operator's approval.
func (s *Service) Register(ctx context.Context, req RegisterRequest, ip string) (status string, err error) {
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
			// A second try before verifying: take the new password and
			// name, send a new link.
			old.Password, old.Name = hash, name
			if err := tx.PutUser(old); err != nil {
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
		return tx.PutToken(codeHash(u.Email, code), store.Token{Kind: store.TokenVerify, UserID: u.ID, Expires: exp})
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
			s.send(ctx, s.cfg.Templates.AlreadyRegistered(existing.Email, s.cfg.PublicURL+"/", s.link("/reset", resetToken)))
		}
		s.log.Info("registration for an existing account", "user", existing.ID)
	case u.State == store.UserUnverified:
		if err := s.send(ctx, s.cfg.Templates.Verification(u.Email, s.link("/verify", token), code)); err != nil {
			return "", err
		}
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
	if utf8.RuneCountInString(name) > proto.MaxName || !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return "", proto.Errorf(proto.CodeBadRequest, "the name must be at most %d characters", proto.MaxName)
	}
	return name, nil
}

// newCode returns the 6-digit code of a verification mail, for typing on
// another device than the one the mail was read on.
func newCode() string {
	n, _ := rand.Int(rand.Reader, big.NewInt(1_000_000))
	return fmt.Sprintf("%06d", n.Int64())
}

func codeHash(email, code string) []byte { return hashToken("code\x00" + email + "\x00" + code) }

// VerifyRequest is the body of POST /api/v1/verify: the token of the link,
// or the address and the code.
type VerifyRequest struct {
	Token string `json:"token,omitempty"`
	Email string `json:"email,omitempty"`
	Code  string `json:"code,omitempty"`
}

// Verify activates an account from its e-mail link or code.
func (s *Service) Verify(ctx context.Context, req VerifyRequest, ip string) error {
	if err := s.limit(ip, ""); err != nil {
		return err
	}
	var hash []byte
	switch {
	case req.Token != "" && len(req.Token) <= 128:
		hash = hashToken(req.Token)
	case req.Email != "" && req.Code != "":
		addr, err := mailaddr.Parse(req.Email)
		if err != nil {
			return proto.Errorf(proto.CodeInvalidToken, "this code is not valid")
		}
		// Codes are short: the per-address limit is what makes guessing
		// them hopeless.
		if err := s.limit("", addr.String()); err != nil {
			return err
		}
		hash = codeHash(addr.String(), strings.TrimSpace(req.Code))
	default:
		return proto.Errorf(proto.CodeBadRequest, "give the token of the link, or the address and the code")
	}
	var userID string
	err := s.db.Update(ctx, func(tx *store.Tx) error {
		t, err := tx.Token(hash)
		if err != nil || t.Kind != store.TokenVerify || s.now().After(t.Expires) {
			return proto.Errorf(proto.CodeInvalidToken, "this link or code is not valid or has expired")
		}
		u, err := tx.User(t.UserID)
		if err != nil {
			return proto.Errorf(proto.CodeInvalidToken, "this link or code is not valid or has expired")
		}
		userID = u.ID
		if err := s.deleteTokens(tx, u.ID, store.TokenVerify); err != nil {
			return err
		}
		if u.State != store.UserUnverified {
			return nil
		}
		u.State = store.UserActive
		s.startValidity(&u)
		return tx.PutUser(u)
	})
	if err == nil {
		s.log.Info("address verified", "user", userID)
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

// SetupRequest is the body of POST /api/v1/setup.
type SetupRequest struct {
	Token       string   `json:"token"`
	Email       string   `json:"email"`
	Password    string   `json:"password"`
	DisplayName string   `json:"display_name,omitempty"`
	Domains     []string `json:"domains,omitempty"`
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
func (s *Service) Setup(ctx context.Context, req SetupRequest, ip string) error {
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
