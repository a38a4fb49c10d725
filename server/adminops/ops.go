// Package adminops owns the administrative actions: one function per
// action, called by both the operator's unix socket (server/admin) and the
// admin page's HTTP endpoints (server/api), and each written to the audit
// log with who did it, from where, on what, and how it ended. Neither
// caller checks or changes anything itself.
package adminops

import (
	"context"
	"log/slog"
	"relais/server/fed"
	"slices"
	"strings"
	"time"

	"relais/server/account"
	"relais/server/mailaddr"
	"relais/server/proto"
	"relais/server/series"
	"relais/server/store"
)

// The actions, as the audit log names them. They are stable: filters and
// exported logs use them.
const (
	ActApprove           = "user.approve"
	ActDeactivate        = "user.deactivate"
	ActReactivate        = "user.reactivate"
	ActPromote           = "user.promote"
	ActResetPassword     = "user.reset_password"
	ActDomainsAdd        = "domains.add"
	ActDomainsRemove     = "domains.remove"
	ActInvitationApprove = "invitation.approve"
	ActSetupLink         = "setup_link"
)

// Actions lists every action, for the page's filter.
var Actions = []string{ActApprove, ActDeactivate, ActReactivate, ActPromote, ActResetPassword,
	ActDomainsAdd, ActDomainsRemove, ActInvitationApprove, ActSetupLink}

// CLIActor is the audit log's actor of the admin socket.
const CLIActor = "cli"

// SocketAddr is the audit log's "from where" of the admin socket.
const SocketAddr = "admin.sock"

// Actor is who asks for an action and from where.
type Actor struct {
	// User is the administrator's user id; empty for the admin socket.
	User string
	// Unix is the system account on the other end of the admin socket.
	Unix string
	// Addr is the client's IP address, or SocketAddr.
	Addr string
}

// CLI is the actor of the admin socket, used by the system account unix.
func CLI(unix string) Actor { return Actor{Unix: unix, Addr: SocketAddr} }

// Config is what the service reads.
type Config struct {
	Accounts *account.Service
	DB       *store.DB
	// Health are the node's health details (also `relais admin health`).
	Health func() map[string]any
	// Series is the activity ring; nil shows no chart.
	Series *series.Ring
	// Antivirus returns the antivirus state; nil when there is none.
	Antivirus func(context.Context) any
	// Disk returns the figures of the data directory's disk.
	Disk func() Disk
	// Peers lists the peered administrations; nil without federation.
	Peers  func() ([]fed.PeerInfo, error)
	Logger *slog.Logger
	Now    func() time.Time
}

// Service performs and audits administrative actions.
type Service struct {
	cfg Config
	log *slog.Logger
}

// New returns the service.
func New(cfg Config) *Service {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, log: cfg.Logger.With("component", "adminops")}
}

// HasMailer reports whether the node sends mail (reset links are then
// mailed, not shown on the page).
func (s *Service) HasMailer() bool { return s.cfg.Accounts.HasMailer() }

// record appends the audit entry of an action that ended with err. The
// write outlives a cancelled request: the action may have happened.
func (s *Service) record(ctx context.Context, a Actor, action, target string, err error) {
	e := store.AuditEntry{Time: s.cfg.Now().UTC(), Actor: a.User, Unix: a.Unix, Addr: a.Addr, Action: action, Target: target, Outcome: "ok"}
	if e.Actor == "" {
		e.Actor = CLIActor
	}
	if err != nil {
		e.Outcome = proto.CodeInternal
		if pe := proto.AsError(err); pe != nil {
			e.Outcome = pe.Code
		}
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if werr := s.cfg.DB.Update(ctx, func(tx *store.Tx) error { return tx.AppendAudit(e) }); werr != nil {
		s.log.Error("audit entry not written", "action", action, "actor", e.Actor, "err", werr)
	}
}

// Do runs an administrative action whose logic lives in another package
// (federation peering) and audits it like the others. fn returns what
// it acted on, for the log: never an e-mail address.
func (s *Service) Do(ctx context.Context, a Actor, action string, fn func(context.Context) (target string, err error)) error {
	target, err := fn(ctx)
	s.record(ctx, a, action, target, err)
	return err
}

// userID is the id of the account of an address, "" when there is none:
// the audit log names users by id, never by address.
func (s *Service) userID(email string) string {
	addr, err := mailaddr.Parse(email)
	if err != nil {
		return ""
	}
	var id string
	s.cfg.DB.View(func(tx *store.Tx) error {
		u, err := tx.UserByEmail(addr.String())
		id = u.ID
		return err
	})
	return id
}

// onUser runs an action on the account of an address and audits it.
func (s *Service) onUser(ctx context.Context, a Actor, action, email string, fn func(context.Context, string) error) error {
	err := fn(ctx, email)
	s.record(ctx, a, action, s.userID(email), err)
	return err
}

// Approve activates a registration waiting for an operator.
func (s *Service) Approve(ctx context.Context, a Actor, email string) error {
	return s.onUser(ctx, a, ActApprove, email, s.cfg.Accounts.Approve)
}

// Deactivate signs an account out everywhere and blocks it.
func (s *Service) Deactivate(ctx context.Context, a Actor, email string) error {
	return s.onUser(ctx, a, ActDeactivate, email, func(ctx context.Context, e string) error { return s.cfg.Accounts.SetActive(ctx, e, false) })
}

// Reactivate lets a deactivated account sign in again.
func (s *Service) Reactivate(ctx context.Context, a Actor, email string) error {
	return s.onUser(ctx, a, ActReactivate, email, func(ctx context.Context, e string) error { return s.cfg.Accounts.SetActive(ctx, e, true) })
}

// Promote makes an account an administrator.
func (s *Service) Promote(ctx context.Context, a Actor, email string) error {
	return s.onUser(ctx, a, ActPromote, email, s.cfg.Accounts.PromoteAdmin)
}

// ResetPassword signs an account out everywhere and returns a reset link
// (also mailed when the node has a relay).
func (s *Service) ResetPassword(ctx context.Context, a Actor, email string) (string, error) {
	var link string
	err := s.onUser(ctx, a, ActResetPassword, email, func(ctx context.Context, e string) (err error) {
		link, err = s.cfg.Accounts.AdminResetLink(ctx, e)
		return err
	})
	return link, err
}

// ApproveInvitation returns a fresh invitation link for an external.
func (s *Service) ApproveInvitation(ctx context.Context, a Actor, email string) (string, error) {
	var link string
	err := s.onUser(ctx, a, ActInvitationApprove, email, func(ctx context.Context, e string) (err error) {
		link, err = s.cfg.Accounts.ApproveInvitation(ctx, e)
		return err
	})
	return link, err
}

// AddDomains allows more registration domains and returns them all.
// A domain a peered administration serves is refused (its users are that
// administration's: registering them here would let this node speak for
// them), as peering refuses a peer claiming one of ours.
func (s *Service) AddDomains(ctx context.Context, a Actor, domains []string) ([]string, error) {
	return s.changeDomains(ctx, a, ActDomainsAdd, domains, func(ctx context.Context, ds ...string) error {
		if err := s.notServedByPeers(ds); err != nil {
			return err
		}
		return s.cfg.Accounts.AddDomains(ctx, ds...)
	})
}

func (s *Service) notServedByPeers(domains []string) error {
	if s.cfg.Peers == nil {
		return nil
	}
	peers, err := s.cfg.Peers()
	if err != nil {
		return err
	}
	for _, d := range domains {
		for _, p := range peers {
			for _, pd := range p.Domains {
				if fed.DomainsOverlap(d, pd) {
					e := proto.Errorf(proto.CodeConflict, "%s is served by the peered administration %s (%s)", d, p.Name, pd)
					e.Detail = "domain_in_use"
					return e
				}
			}
		}
	}
	return nil
}

// RemoveDomains stops allowing registration domains and returns the rest.
func (s *Service) RemoveDomains(ctx context.Context, a Actor, domains []string) ([]string, error) {
	return s.changeDomains(ctx, a, ActDomainsRemove, domains, s.cfg.Accounts.RemoveDomains)
}

func (s *Service) changeDomains(ctx context.Context, a Actor, action string, domains []string, fn func(context.Context, ...string) error) ([]string, error) {
	if len(domains) == 0 {
		return nil, proto.Errorf(proto.CodeBadRequest, "name at least one domain")
	}
	err := fn(ctx, domains...)
	s.record(ctx, a, action, strings.Join(domains, " "), err)
	if err != nil {
		return nil, err
	}
	return s.cfg.Accounts.Domains(), nil
}

// Domains returns the allowed registration domains.
func (s *Service) Domains() []string { return s.cfg.Accounts.Domains() }

// SetupLink makes a new one-time link to create the first administrator.
func (s *Service) SetupLink(ctx context.Context, a Actor) (string, error) {
	l, err := s.cfg.Accounts.SetupLink(ctx)
	if err == nil && l == "" {
		err = proto.Errorf(proto.CodeSetupDone, "the node already has an administrator")
	}
	s.record(ctx, a, ActSetupLink, "", err)
	return l, err
}

// UserInfo is a line of the users list.
type UserInfo struct {
	ID    string          `json:"id"`
	Email string          `json:"email"`
	Name  string          `json:"name"`
	State store.UserState `json:"state"`
	// Unproven says that nothing proved the registrant reads the address:
	// a registration waiting for approval (no relay) or for its mail.
	// Anyone can register any address of an allowed domain; approve only
	// after checking with the person.
	Unproven bool      `json:"unproven,omitempty"`
	External bool      `json:"external,omitempty"`
	Admin    bool      `json:"admin,omitempty"`
	Created  time.Time `json:"created"`
	Expires  time.Time `json:"expires,omitzero"`
}

// Users lists the accounts whose address or name contains query (every
// account when it is empty), in the store's order.
func (s *Service) Users(query string) ([]UserInfo, error) {
	users, err := s.cfg.Accounts.Users()
	if err != nil {
		return nil, err
	}
	q := store.FoldName(query)
	out := make([]UserInfo, 0, len(users))
	for _, u := range users {
		if q != "" && !strings.Contains(strings.ToLower(u.Email), q) && !strings.Contains(store.FoldName(u.Name), q) {
			continue
		}
		out = append(out, UserInfo{ID: u.ID, Email: u.Email, Name: u.Name, State: u.State,
			Unproven: u.State == store.UserPending || u.State == store.UserUnverified,
			External: u.External, Admin: u.Admin, Created: u.Created, Expires: u.Expires})
	}
	return out, nil
}

// Invitations lists the pending invitations of externals.
func (s *Service) Invitations() ([]account.Invitation, error) { return s.cfg.Accounts.Invitations() }

// RoomInfo is a line of the rooms list: sizes and activity, never
// content. Only forums, which every agent finds in the directory, have
// their name shown; other rooms' names are for their members.
type RoomInfo struct {
	ID        string         `json:"id"`
	Kind      store.RoomKind `json:"kind"`
	Name      string         `json:"name,omitempty"`
	Encrypted bool           `json:"encrypted,omitempty"`
	Externals bool           `json:"externals,omitempty"`
	Members   int            `json:"members"`
	Created   time.Time      `json:"created"`
	Last      time.Time      `json:"last,omitzero"`
}

// maxRooms bounds the rooms list.
const maxRooms = 500

// Rooms lists the most recently active rooms (at most maxRooms) and how
// many rooms there are.
func (s *Service) Rooms() (rooms []RoomInfo, total int, err error) {
	err = s.cfg.DB.View(func(tx *store.Tx) error {
		return tx.Rooms(func(r store.RoomInfo) bool {
			total++
			info := RoomInfo{ID: r.Room.ID, Kind: r.Room.Kind, Encrypted: r.Room.Encrypted, Externals: r.Room.Externals,
				Members: r.Members, Created: r.Room.Created, Last: r.Last}
			if r.Room.Kind == store.Forum {
				info.Name = r.Room.Name
			}
			rooms = append(rooms, info)
			return true
		})
	})
	slices.SortFunc(rooms, func(a, b RoomInfo) int { return b.Last.Compare(a.Last) })
	if len(rooms) > maxRooms {
		rooms = rooms[:maxRooms]
	}
	return rooms, total, err
}

// Overview is the page's state of the node: health (TLS, federation when
// present), disk, antivirus.
type Overview struct {
	Health    map[string]any `json:"health"`
	Disk      Disk           `json:"disk"`
	Antivirus any            `json:"antivirus,omitempty"`
	Mail      bool           `json:"mail"`
}

// Overview gathers the node's state.
func (s *Service) Overview(ctx context.Context) Overview {
	o := Overview{Health: map[string]any{"status": "ok"}, Mail: s.HasMailer()}
	if s.cfg.Health != nil {
		o.Health = s.cfg.Health()
	}
	if s.cfg.Disk != nil {
		o.Disk = s.cfg.Disk()
	}
	if s.cfg.Antivirus != nil {
		o.Antivirus = s.cfg.Antivirus(ctx)
	}
	return o
}

// Series returns the last minutes of activity.
func (s *Service) Series(minutes int) (series.Snapshot, error) {
	if s.cfg.Series == nil {
		return series.Snapshot{}, proto.Errorf(proto.CodeUnavailable, "this node keeps no activity series")
	}
	return s.cfg.Series.Snapshot(minutes), nil
}
