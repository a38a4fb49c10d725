// Package account owns who may use the node: the registration rule
// (allowed e-mail domains), verification by e-mail or operator approval,
// passwords, sessions and devices, external correspondents, account expiry
// and the first administrator.
package account

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"relais/server/bus"
	"relais/server/mail"
	"relais/server/mailaddr"
	"relais/server/password"
	"relais/server/proto"
	"relais/server/ratelimit"
	"relais/server/store"
)

// Lifetimes of one-time tokens and sessions.
const (
	verifyTTL     = 48 * time.Hour
	resetTTL      = time.Hour
	renewTTL      = 30 * 24 * time.Hour
	setupTTL      = 7 * 24 * time.Hour
	invitationTTL = 14 * 24 * time.Hour
	// SessionIdle is how long a session lives without being used.
	SessionIdle = 30 * 24 * time.Hour
	// renewBefore is how long before expiry the renewal mail goes out.
	renewBefore = 30 * 24 * time.Hour
)

// Config configures the service.
type Config struct {
	// Domains are the operator's allowed registration domains from the
	// configuration (a.gouv.fr, *.gouv.fr); they are merged with the ones
	// added at run time, which the store keeps.
	Domains []string
	// PublicURL is the node's address as users reach it, for links in
	// e-mails (https://chat.mairie.fr).
	PublicURL string
	// Mailer sends e-mail; nil means no relay: registrations and
	// invitations wait for an operator.
	Mailer    mail.Sender
	Templates mail.Templates
	// Validity makes accounts expire unless renewed by e-mail; zero means
	// accounts never expire.
	Validity time.Duration
	// ExpirySweep is how often expired accounts are signed out; zero
	// means DefaultExpirySweep.
	ExpirySweep time.Duration
	// RateLimits turns on the per-address and per-client limits.
	RateLimits bool
	// Password are the hashing parameters of new hashes.
	Password password.Params
	Logger   *slog.Logger
	Now      func() time.Time
}

// Joiner lets an invited external join the room they were invited to once
// their account exists; the chat service implements it.
type Joiner interface {
	JoinInvited(ctx context.Context, userID, roomID string) error
}

// Service implements accounts.
type Service struct {
	db     *store.DB
	bus    bus.Bus
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	policy atomic.Pointer[mailaddr.Policy]
	joiner Joiner

	byIP, byEmail *ratelimit.Limiter
	// invitationMails counts invitation mails per inviter and per
	// address, whatever RateLimits says: it is a limit of abuse, not of
	// guessing.
	invitationMails dailyCounter

	touchMu sync.Mutex
	touched map[string]time.Time // session hash → last time written
}

// New returns the service, merging the configured domains into the stored
// ones.
func New(ctx context.Context, db *store.DB, b bus.Bus, cfg Config) (*Service, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Password == (password.Params{}) {
		cfg.Password = password.Default
	}
	if _, err := url.Parse(cfg.PublicURL); err != nil || cfg.PublicURL == "" {
		return nil, fmt.Errorf("account: public URL %q: invalid", cfg.PublicURL)
	}
	s := &Service{db: db, bus: b, cfg: cfg, log: cfg.Logger.With("component", "account"), now: cfg.Now,
		touched: map[string]time.Time{}}
	if cfg.RateLimits {
		// Per client address: a burst of 20 then one every 6 s; per
		// e-mail address: 5 then one a minute.
		s.byIP = ratelimit.New(1.0/6, 20)
		s.byEmail = ratelimit.New(1.0/60, 5)
	}
	if _, err := mailaddr.ParsePolicy(cfg.Domains); err != nil {
		return nil, fmt.Errorf("account: allowed domains: %w", err)
	}
	var stored []string
	err := db.Update(ctx, func(tx *store.Tx) error {
		var err error
		if stored, err = tx.Domains(); err != nil {
			return err
		}
		merged := stored
		for _, d := range cfg.Domains {
			if !slices.Contains(merged, d) {
				merged = append(merged, d)
			}
		}
		if len(merged) != len(stored) {
			stored = merged
			return tx.PutDomains(merged)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("account: store domains: %w", err)
	}
	p, err := mailaddr.ParsePolicy(stored)
	if err != nil {
		return nil, fmt.Errorf("account: stored domains: %w", err)
	}
	s.policy.Store(&p)
	return s, nil
}

// SetJoiner sets the chat service used when an external accepts an
// invitation.
func (s *Service) SetJoiner(j Joiner) { s.joiner = j }

// Domains returns the allowed registration domains.
func (s *Service) Domains() []string { return s.policy.Load().Entries() }

// AddDomains allows more registration domains.
func (s *Service) AddDomains(ctx context.Context, entries ...string) error {
	return s.changeDomains(ctx, func(p mailaddr.Policy) (mailaddr.Policy, error) { return p.With(entries...) })
}

// RemoveDomains stops allowing registration domains. Domains given in the
// configuration come back at the next start, so they cannot be removed
// here.
func (s *Service) RemoveDomains(ctx context.Context, entries ...string) error {
	for _, e := range entries {
		if slices.Contains(s.cfg.Domains, e) {
			return proto.Errorf(proto.CodeConflict, "%s is set in the configuration: remove it there", e)
		}
	}
	return s.changeDomains(ctx, func(p mailaddr.Policy) (mailaddr.Policy, error) { return p.Without(entries...) })
}

func (s *Service) changeDomains(ctx context.Context, change func(mailaddr.Policy) (mailaddr.Policy, error)) error {
	var next mailaddr.Policy
	err := s.db.Update(ctx, func(tx *store.Tx) error {
		cur, err := tx.Domains()
		if err != nil {
			return err
		}
		p, err := mailaddr.ParsePolicy(cur)
		if err != nil {
			return err
		}
		if next, err = change(p); err != nil {
			return proto.Errorf(proto.CodeBadRequest, "%v", err)
		}
		return tx.PutDomains(next.Entries())
	})
	if err != nil {
		return err
	}
	s.policy.Store(&next)
	return nil
}

// newToken returns a random secret for a link or cookie and its hash, the
// only form that is stored.
func newToken() (token string, hash []byte) {
	b := make([]byte, 32)
	rand.Read(b)
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, hashToken(token)
}

func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

func (s *Service) link(path, token string) string {
	return s.cfg.PublicURL + path + "?token=" + url.QueryEscape(token)
}

// limit applies the per-client and per-address rate limits of a sensitive
// endpoint.
func (s *Service) limit(ip, email string) error {
	for _, l := range []struct {
		lim *ratelimit.Limiter
		key string
	}{{s.byIP, ip}, {s.byEmail, email}} {
		if l.key == "" {
			continue
		}
		if ok, wait := l.lim.Allow(l.key); !ok {
			e := proto.Errorf(proto.CodeRateLimited, "too many attempts: try again later")
			e.RetryAfter = int(wait/time.Second) + 1
			return e
		}
	}
	return nil
}

// send delivers a message in the background of the request's context; a
// failure is logged (without the address) and reported.
func (s *Service) send(ctx context.Context, m mail.Message) error {
	if s.cfg.Mailer == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if err := s.cfg.Mailer.Send(ctx, m); err != nil {
		s.log.Error("sending mail failed", "subject", m.Subject, "err", err)
		return proto.Errorf(proto.CodeUnavailable, "the message could not be sent: try again later")
	}
	return nil
}

// HasMailer reports whether the node sends e-mail.
func (s *Service) HasMailer() bool { return s.cfg.Mailer != nil }

func emailError(err error) error {
	var me *mailaddr.Error
	if errors.As(err, &me) && me.Code == mailaddr.CodeDomainNotAllowed {
		return proto.Errorf(proto.CodeEmailNotAllowed, "registration is open only to the addresses of the administrations served by this node")
	}
	return proto.Errorf(proto.CodeEmailInvalid, "this is not a valid e-mail address")
}

func passwordError(err error) error {
	var pe *password.PolicyError
	if errors.As(err, &pe) {
		e := proto.Errorf(proto.CodeWeakPassword, "%s", pe.Reason)
		e.Detail = pe.Code
		return e
	}
	return err
}

// hints are the words a user's password may not contain.
func hints(a mailaddr.Address) []string {
	first := a.Domain
	for i := range first {
		if first[i] == '.' {
			first = first[:i]
			break
		}
	}
	return []string{a.Local, first}
}
