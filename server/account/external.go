package account

import (
	"context"
	"errors"
	"time"

	"relais/server/id"
	"relais/server/mailaddr"
	"relais/server/password"
	"relais/server/proto"
	"relais/server/store"
)

// Limits of invitations of externals, which mail any outside address:
// they keep an agent's account (or a stolen session) from turning the
// node into a mail cannon.
const (
	// MaxPendingInvitations is how many invitations of externals one
	// inviter may have pending (mailed, not yet accepted nor expired).
	MaxPendingInvitations = 50
	// InvitationMailsPerInviter is how many invitation mails one inviter
	// may cause in 24 hours.
	InvitationMailsPerInviter = 20
	// InvitationMailsPerAddress is how many invitation mails one address
	// may receive in 24 hours. While an invitation to an address is
	// pending, further invitations to it (into any room, by anyone) are
	// added to it and send no mail at all.
	InvitationMailsPerAddress = 1
)

// InviteExternal returns the account of an external correspondent invited
// by e-mail to a room, creating it if needed, and sends the invitation
// (with no relay, the invitation waits for an operator to hand the link
// over: see Invitations). While an invitation to the address is pending,
// nothing is mailed: the caller's invitation to the room joins the
// pending one. It says which of these happened (proto.Invitation…). It
// implements chat.Inviter (asserted in package node).
func (s *Service) InviteExternal(ctx context.Context, inviter store.User, email string, room store.Room) (string, string, error) {
	addr, err := mailaddr.Parse(email)
	if err != nil {
		return "", "", proto.Errorf(proto.CodeEmailInvalid, "this is not a valid e-mail address")
	}
	if s.policy.Load().Allows(addr.Domain) {
		return "", "", proto.Errorf(proto.CodeConflict, "this address belongs to an administration served by this node: invite the person by name")
	}
	token, hash := newToken()
	var u store.User
	var counted time.Time // when this invitation's mail was counted
	mail := false
	err = s.db.Update(ctx, func(tx *store.Tx) error {
		var err error
		mail, counted = false, time.Time{}
		u, err = tx.UserByEmail(addr.String())
		created := errors.Is(err, store.ErrNotFound)
		switch {
		case created:
			u = store.User{ID: id.NewUser(s.db.Node()), Email: addr.String(), Name: mailaddr.DisplayName(addr.Local),
				Org: addr.DomainUnicode(), State: store.UserInvited, External: true, Created: s.now()}
		case err != nil:
			return err
		case !u.External:
			return proto.Errorf(proto.CodeConflict, "this address belongs to an agent: invite the person by name")
		case u.State == store.UserDeactivated:
			return proto.Errorf(proto.CodeForbidden, "this external account is deactivated")
		}
		if u.State != store.UserInvited {
			return nil // an active external is simply invited to the room
		}
		pendingTo, pendingBy, err := s.pendingInvitations(tx, u.ID, inviter.ID)
		if err != nil {
			return err
		}
		if pendingTo {
			return nil // the pending invitation's mail is enough
		}
		if pendingBy >= MaxPendingInvitations {
			return proto.Errorf(proto.CodeTooManyInvitations,
				"you have %d invitations waiting to be accepted: withdraw some or wait", pendingBy)
		}
		now := s.now()
		if err := s.invitationMails.take(now, "by:"+inviter.ID, InvitationMailsPerInviter,
			"to:"+addr.String(), InvitationMailsPerAddress); err != nil {
			return err
		}
		counted = now
		if created {
			if err := tx.CreateUser(u); err != nil {
				return err
			}
		}
		mail = true
		return tx.PutToken(hash, store.Token{Kind: store.TokenInvitation, UserID: u.ID, RoomID: room.ID, By: inviter.ID,
			Expires: s.now().Add(invitationTTL)})
	})
	if err != nil {
		if !counted.IsZero() {
			s.invitationMails.giveBack(counted, "by:"+inviter.ID, "to:"+addr.String())
		}
		return "", "", err
	}
	if mail {
		if err := s.sendNow(ctx, s.cfg.Templates.Invitation(u.Email, inviter.Org, s.link("/invite", token))); err != nil {
			// Not mailed: drop the token, so that it does not count as
			// pending and absorb the next attempt without a mail, and
			// do not count the mail.
			s.invitationMails.giveBack(counted, "by:"+inviter.ID, "to:"+addr.String())
			if derr := s.db.Update(context.WithoutCancel(ctx), func(tx *store.Tx) error { return tx.DeleteToken(hash) }); derr != nil {
				s.log.Error("dropping an unsent invitation", "user", u.ID, "err", derr)
			}
			return "", "", err
		}
		s.log.Info("external invited", "user", u.ID, "room", room.ID, "by", inviter.ID, "mailed", s.cfg.Mailer != nil)
		if s.cfg.Mailer == nil {
			return u.ID, proto.InvitationApproval, nil
		}
		return u.ID, proto.InvitationMailed, nil
	}
	return u.ID, proto.InvitationPending, nil
}

// pendingInvitations reports whether an invitation to userID is pending,
// and how many invitations by inviterID are.
func (s *Service) pendingInvitations(tx *store.Tx, userID, inviterID string) (to bool, by int, err error) {
	now := s.now()
	invited := map[string]bool{}
	err = tx.Tokens(func(_ []byte, t store.Token) bool {
		if t.Kind != store.TokenInvitation || now.After(t.Expires) {
			return true
		}
		if t.UserID == userID {
			to = true
		}
		if t.By == inviterID && !invited[t.UserID] {
			if u, err := tx.User(t.UserID); err == nil && u.State == store.UserInvited {
				invited[t.UserID] = true
				by++
			}
		}
		return true
	})
	return to, by, err
}

// Invitation is a pending invitation of an external, for operators of a
// node without a relay.
type Invitation struct {
	UserID  string
	Email   string
	RoomID  string
	By      string
	Expires time.Time
}

// Invitations lists pending invitations of externals.
func (s *Service) Invitations() ([]Invitation, error) {
	var out []Invitation
	err := s.db.View(func(tx *store.Tx) error {
		return tx.Tokens(func(_ []byte, t store.Token) bool {
			if t.Kind != store.TokenInvitation || s.now().After(t.Expires) {
				return true
			}
			if u, err := tx.User(t.UserID); err == nil && u.State == store.UserInvited {
				out = append(out, Invitation{UserID: u.ID, Email: u.Email, RoomID: t.RoomID, By: t.By, Expires: t.Expires})
			}
			return true
		})
	})
	return out, err
}

// ApproveInvitation is the operator's approval of an invitation when no
// relay is configured: it returns a fresh link to hand to the external,
// replacing earlier ones.
func (s *Service) ApproveInvitation(ctx context.Context, email string) (string, error) {
	addr, err := mailaddr.Parse(email)
	if err != nil {
		return "", proto.Errorf(proto.CodeEmailInvalid, "this is not a valid e-mail address")
	}
	token, hash := newToken()
	err = s.db.Update(ctx, func(tx *store.Tx) error {
		u, err := tx.UserByEmail(addr.String())
		if err != nil || u.State != store.UserInvited {
			return proto.Errorf(proto.CodeNotFound, "no pending invitation for this address")
		}
		var latest store.Token
		var old [][]byte
		if err := tx.Tokens(func(h []byte, t store.Token) bool {
			if t.Kind == store.TokenInvitation && t.UserID == u.ID {
				old = append(old, h)
				if t.Expires.After(latest.Expires) {
					latest = t
				}
			}
			return true
		}); err != nil {
			return err
		}
		if len(old) == 0 {
			return proto.Errorf(proto.CodeNotFound, "no pending invitation for this address")
		}
		for _, h := range old {
			if err := tx.DeleteToken(h); err != nil {
				return err
			}
		}
		latest.Expires = s.now().Add(invitationTTL)
		return tx.PutToken(hash, latest)
	})
	if err != nil {
		return "", err
	}
	return s.link("/invite", token), nil
}

// InvitationInfo describes an invitation to the person opening its link.
type InvitationInfo struct {
	RoomName string `json:"room_name"`
	By       string `json:"by"`
	Name     string `json:"name"`
}

// PeekInvitation tells the invited person who invited them where, before
// they choose a password.
func (s *Service) PeekInvitation(token string) (InvitationInfo, error) {
	var info InvitationInfo
	err := s.db.View(func(tx *store.Tx) error {
		t, err := tx.Token(hashToken(token))
		if err != nil || t.Kind != store.TokenInvitation || s.now().After(t.Expires) {
			return proto.Errorf(proto.CodeInvalidToken, "this invitation is not valid or has expired")
		}
		if r, err := tx.Room(t.RoomID); err == nil {
			info.RoomName = r.Name
		}
		if by, err := tx.User(t.By); err == nil {
			info.By = by.Name
		}
		if u, err := tx.User(t.UserID); err == nil {
			info.Name = u.Name
		}
		return nil
	})
	return info, err
}

// AcceptInvitation sets the external's password (and name), activates the
// account, joins the room of the invitation and signs the external in.
func (s *Service) AcceptInvitation(ctx context.Context, req proto.AcceptRequest, device, ip string) (Login, error) {
	if err := s.limit(ip, ""); err != nil {
		return Login{}, err
	}
	var t store.Token
	var u store.User
	if err := s.db.View(func(tx *store.Tx) error {
		var err error
		t, err = tx.Token(hashToken(req.Token))
		if err != nil || t.Kind != store.TokenInvitation || s.now().After(t.Expires) {
			return proto.Errorf(proto.CodeInvalidToken, "this invitation is not valid or has expired")
		}
		u, err = tx.User(t.UserID)
		if err != nil || u.State != store.UserInvited {
			return proto.Errorf(proto.CodeInvalidToken, "this invitation was already used")
		}
		return nil
	}); err != nil {
		return Login{}, err
	}
	addr, err := mailaddr.Parse(u.Email)
	if err != nil {
		return Login{}, err
	}
	if err := password.Check(req.Password, hints(addr)...); err != nil {
		return Login{}, passwordError(err)
	}
	name := u.Name
	if req.DisplayName != "" {
		if name, err = displayName(req.DisplayName, addr); err != nil {
			return Login{}, err
		}
	}
	hash, err := password.Hash(ctx, req.Password, s.cfg.Password)
	if err != nil {
		return Login{}, err
	}
	token, sessHash := newToken()
	now := s.now()
	dev := id.NewDevice()
	sess := store.Session{UserID: u.ID, DeviceID: dev, Name: defaultDeviceName(device, dev), Created: now, LastSeen: now}
	err = s.db.Update(ctx, func(tx *store.Tx) error {
		cur, err := tx.User(u.ID)
		if err != nil || cur.State != store.UserInvited {
			return proto.Errorf(proto.CodeInvalidToken, "this invitation was already used")
		}
		cur.Password, cur.Name, cur.State = hash, name, store.UserActive
		s.startValidity(&cur)
		u = cur
		if err := tx.PutUser(cur); err != nil {
			return err
		}
		if err := s.deleteTokens(tx, u.ID, store.TokenInvitation); err != nil {
			return err
		}
		return tx.CreateSession(sessHash, sess)
	})
	if err != nil {
		return Login{}, err
	}
	if s.joiner != nil && t.RoomID != "" {
		if err := s.joiner.JoinInvited(ctx, u.ID, t.RoomID); err != nil {
			s.log.Warn("external could not join the room of the invitation", "user", u.ID, "room", t.RoomID, "err", err)
		}
	}
	s.log.Info("external joined", "user", u.ID)
	return Login{Token: token, User: u, Session: sess}, nil
}

// sendRenewal mails a renewal link to an account that expires soon or has
// expired.
func (s *Service) sendRenewal(ctx context.Context, u store.User) {
	if s.cfg.Mailer == nil {
		return
	}
	if ok, _ := s.byEmail.Allow("renew:" + u.Email); !ok {
		return
	}
	token, hash := newToken()
	// Earlier links stay valid until one is used: two mails sent close
	// together (the reminder and a refused sign-in) must not cancel each
	// other.
	if err := s.db.Update(ctx, func(tx *store.Tx) error {
		return tx.PutToken(hash, store.Token{Kind: store.TokenRenew, UserID: u.ID, Expires: s.now().Add(renewTTL)})
	}); err != nil {
		s.log.Error("renewal token", "user", u.ID, "err", err)
		return
	}
	s.send(s.cfg.Templates.Renewal(u.Email, s.link("/renew", token), u.Expires))
}

// Renew extends an account's validity from its renewal link.
func (s *Service) Renew(ctx context.Context, token, ip string) error {
	if err := s.limit(ip, ""); err != nil {
		return err
	}
	var userID string
	err := s.db.Update(ctx, func(tx *store.Tx) error {
		t, err := tx.Token(hashToken(token))
		if err != nil || t.Kind != store.TokenRenew || s.now().After(t.Expires) {
			return proto.Errorf(proto.CodeInvalidToken, "this link is not valid or has expired")
		}
		u, err := tx.User(t.UserID)
		if err != nil {
			return proto.Errorf(proto.CodeInvalidToken, "this link is not valid or has expired")
		}
		userID = u.ID
		if u.State != store.UserActive {
			return accountInactive("this account is deactivated")
		}
		s.startValidity(&u)
		if err := tx.PutUser(u); err != nil {
			return err
		}
		return s.deleteTokens(tx, u.ID, store.TokenRenew)
	})
	if err == nil {
		s.log.Info("account renewed", "user", userID)
	}
	return err
}

// Maintain runs the periodic work until ctx ends: expired tokens and
// abandoned registrations are removed, renewal mails go out before
// accounts expire.
// Every cfg.ExpirySweep, accounts whose validity ran out are signed out.
func (s *Service) Maintain(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	sweep := s.cfg.ExpirySweep
	if sweep <= 0 {
		sweep = DefaultExpirySweep
	}
	st := time.NewTicker(sweep)
	defer st.Stop()
	for {
		if err := s.expireTokens(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("expire tokens", "err", err)
		}
		s.remindRenewals(ctx)
		if err := s.ExpireSessions(ctx); err != nil && ctx.Err() == nil {
			s.log.Error("expire sessions", "err", err)
		}
	sweeping:
		for {
			if err := s.SignOutExpired(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("sign out expired accounts", "err", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-st.C:
			case <-t.C:
				break sweeping
			}
		}
	}
}

// DefaultExpirySweep is how often, by default, accounts whose validity
// ran out are signed out.
const DefaultExpirySweep = time.Minute

// SignOutExpired revokes every session of the active accounts whose
// validity has run out, closing their connections, as deactivation does:
// expiry happens by time passing, and a socket opened before it must not
// outlive it. Their devices are then listed inactive.
func (s *Service) SignOutExpired(ctx context.Context) error {
	if s.cfg.Validity == 0 {
		return nil
	}
	var due []string
	if err := s.db.View(func(tx *store.Tx) error {
		return tx.Users(func(u store.User) bool {
			if u.State == store.UserActive && s.expired(u) {
				if d, err := tx.Devices(u.ID); err == nil && len(d) > 0 {
					due = append(due, u.ID)
				}
			}
			return true
		})
	}); err != nil {
		return err
	}
	for _, userID := range due {
		if err := s.revoke(ctx, userID, func(store.Device) bool { return true }); err != nil {
			return err
		}
		s.log.Info("account expired: signed out", "user", userID)
	}
	return nil
}

func (s *Service) remindRenewals(ctx context.Context) {
	if s.cfg.Validity == 0 || s.cfg.Mailer == nil {
		return
	}
	var due []store.User
	s.db.View(func(tx *store.Tx) error {
		pending := map[string]bool{}
		tx.Tokens(func(_ []byte, t store.Token) bool {
			if t.Kind == store.TokenRenew {
				pending[t.UserID] = true
			}
			return true
		})
		return tx.Users(func(u store.User) bool {
			if u.State == store.UserActive && !u.Expires.IsZero() && !pending[u.ID] && u.Expires.Sub(s.now()) < renewBefore {
				due = append(due, u)
			}
			return true
		})
	})
	for _, u := range due {
		if ctx.Err() != nil {
			return
		}
		s.sendRenewal(ctx, u)
	}
}
