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
	// SessionIdle is how long a session lives without being used, unless
	// Config.SessionLifetime says otherwise.
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
	// SessionLifetime is how long a session lives without being used
	// (SessionIdle when zero); SessionMaxAge, when not zero, how long it
	// lives at most from its sign-in, used or not.
	SessionLifetime, SessionMaxAge time.Duration
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

	// byIP and byEmail limit the requests of registration, reset and
	// setup. Sign-in and verification draw on budgets of failures only,
	// their own: a client network's (failNet), an address's from one
	// network (failAddrNet) and an address's from everywhere, the ceiling
	// (failAddr). Successes never spend them.
	byIP, byEmail                     *ratelimit.Limiter
	loginNet, loginAddrNet, loginAddr *ratelimit.Limiter
	guessNet, guessAddr               *ratelimit.Limiter

	mailq      chan mailJob
	mailMu     sync.Mutex // guards mailClosed and sends on mailq
	mailClosed bool
	mailDone   chan struct{} // closed when the queue's goroutine ends
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
	if cfg.SessionLifetime <= 0 {
		cfg.SessionLifetime = SessionIdle
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
		// Failed sign-ins. From one network: 20, then one every 6 s,
		// whatever the addresses. On one address from one network: 5,
		// then one a minute. On one address from everywhere: 100, then
		// one every 10 s; a network's own limit refills at a sixth of
		// that, so it takes failures from more than six networks at once
		// to keep the owner out from their own network.
		s.loginNet = ratelimit.New(1.0/6, 20)
		s.loginAddrNet = ratelimit.New(1.0/60, 5)
		s.loginAddr = ratelimit.New(1.0/10, 100)
		// Wrong verification codes: 10 per address then one an hour (at
		// most 34 a day), 20 per network then one every 5 minutes.
		s.guessAddr = ratelimit.New(1.0/3600, 10)
		s.guessNet = ratelimit.New(1.0/300, 20)
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
	if cfg.Mailer != nil {
		s.mailq, s.mailDone = make(chan mailJob, mailQueue), make(chan struct{})
		go s.sendQueued()
	}
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
// NewSessionToken returns a fresh random token and the hash under which
// the store keeps it (the store never holds a token itself). It is what
// Login hands out; `relais bench` uses it to write the sessions of the
// accounts it provisions directly in its own store.
func NewSessionToken() (token string, hash []byte) { return newToken() }

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
	if ip != "" {
		if err := take(s.byIP, ip); err != nil {
			return err
		}
	}
	if email != "" {
		return take(s.byEmail, email)
	}
	return nil
}

// take spends a token of key's bucket, or says how long to wait.
func take(l *ratelimit.Limiter, key string) error {
	if ok, wait := l.Allow(key); !ok {
		return rateLimited(wait)
	}
	return nil
}

func rateLimited(wait time.Duration) error {
	e := proto.Errorf(proto.CodeRateLimited, "too many attempts: try again later")
	e.RetryAfter = int(wait/time.Second) + 1
	return e
}

// failures is one budget of failures across several buckets: a request is
// refused while one of them is empty, and only a failure spends them.
type failures []budget

// budget is one key's bucket of a limiter.
type budget struct {
	lim *ratelimit.Limiter
	key string
}

// check refuses when one of the budgets is spent, without spending any.
func (f failures) check() error {
	for _, b := range f {
		if ok, wait := b.lim.Peek(b.key); !ok {
			return rateLimited(wait)
		}
	}
	return nil
}

// fail spends one failure of every budget.
func (f failures) fail() {
	for _, b := range f {
		b.lim.Allow(b.key)
	}
}

// loginFailures are the budgets of failed sign-ins for an address (empty
// when the address does not parse) from a client.
func (s *Service) loginFailures(ip, email string) failures {
	netKey := ratelimit.Network(ip)
	f := failures{{s.loginNet, netKey}}
	if email != "" {
		f = append(f, budget{s.loginAddrNet, email + "\x00" + netKey}, budget{s.loginAddr, email})
	}
	return f
}

// guessFailures are the budgets of wrong verification codes and links.
func (s *Service) guessFailures(ip, email string) failures {
	f := failures{{s.guessNet, ratelimit.Network(ip)}}
	if email != "" {
		f = append(f, budget{s.guessAddr, email})
	}
	return f
}

// sendNow delivers a message before answering, for the messages whose
// failure the requester must hear of (an invitation they sent).
func (s *Service) sendNow(ctx context.Context, m mail.Message) error {
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

// mailQueue bounds the messages waiting for the relay; when it is full
// new ones are dropped (and logged): a request never waits for the relay,
// so that its time says nothing about whether a message went out.
const mailQueue = 256

// mailJob makes a message when its turn comes; ok false means none is to
// be sent.
type mailJob func(ctx context.Context) (m mail.Message, ok bool)

// send queues a message for the relay and returns at once; the answer of
// a request must not depend on whether, or how fast, mail went out.
func (s *Service) send(m mail.Message) {
	s.queue(func(context.Context) (mail.Message, bool) { return m, true })
}

// queue adds a job to the mail queue, or drops it (logged) when the queue
// is full.
func (s *Service) queue(job mailJob) {
	if s.mailq == nil {
		return
	}
	s.mailMu.Lock()
	defer s.mailMu.Unlock()
	if s.mailClosed {
		s.log.Error("mail queue closed: message dropped")
		return
	}
	select {
	case s.mailq <- job:
	default:
		s.log.Error("mail queue full: message dropped")
	}
}

// Close sends what the mail queue holds and ends its goroutine; mail asked
// for afterwards is dropped. The store must still be open: queued jobs
// read it.
func (s *Service) Close() {
	if s.mailq == nil {
		return
	}
	s.mailMu.Lock()
	if !s.mailClosed {
		s.mailClosed = true
		close(s.mailq)
	}
	s.mailMu.Unlock()
	<-s.mailDone
}

// sendQueued runs the queued jobs one at a time, until Close.
func (s *Service) sendQueued() {
	defer close(s.mailDone)
	for job := range s.mailq {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if m, ok := job(ctx); ok {
			if err := s.cfg.Mailer.Send(ctx, m); err != nil {
				s.log.Error("sending mail failed", "subject", m.Subject, "err", err)
			}
		}
		cancel()
	}
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
