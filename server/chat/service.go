// Package chat is the domain logic of rooms: who may do what, the events of
// each room's log, membership, read markers, unread counts and the
// directory. It works over the store and publishes committed events on the
// bus; it knows nothing of HTTP or websockets.
package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync/atomic"
	"time"

	"relais/server/bus"
	"relais/server/proto"
	"relais/server/ratelimit"
	"relais/server/store"
)

// Actor is who performs an action: a signed-in user on one device.
type Actor struct {
	User     string
	Device   string
	External bool
}

// Inviter creates the account of an external correspondent invited by
// e-mail, and sends the invitation. The account service implements it.
type Inviter interface {
	// InviteExternal returns the id of the external account for email,
	// creating it (state invited) and sending the invitation to the room if
	// needed. It fails with proto code email_invalid for a malformed
	// address and conflict for an address of an administration (agents
	// are invited by name, not as externals).
	// The outcome is one of proto.InvitationMailed, InvitationApproval
	// and InvitationPending.
	InviteExternal(ctx context.Context, inviter store.User, email string, room store.Room) (userID, outcome string, err error)
}

// Files keeps the attachments that events refer to; the files service
// implements it. Its methods run inside the store's write transaction of
// the event (they touch only tx, never call Update or View), so that a
// file's record and the event that carries it change together.
type Files interface {
	// Attach checks that the file exists, belongs to the user, was
	// uploaded for the room, is not posted yet and not quarantined, and
	// returns the metadata to put in the event (in an encrypted room, only
	// its id, size and state).
	Attach(tx *store.Tx, userID, roomID, fileID string) (proto.File, error)
	// Posted records that event seq of the room carries the file.
	Posted(tx *store.Tx, roomID string, seq uint64, fileID string) error
	// Released is called when event seq, which carries the file, is
	// deleted: the file goes, and its content once no other file has it.
	Released(tx *store.Tx, roomID string, seq uint64, fileID string) error
}

// Options configure a Service.
type Options struct {
	Logger  *slog.Logger
	Now     func() time.Time
	Inviter Inviter
	Files   Files
	// RateLimits turns on the limits of KeyPackage claims (keys.go).
	RateLimits bool
	// LowKeysEvery is the least time between two low_keys frames of one
	// device (default 30 s).
	LowKeysEvery time.Duration
}

// Service implements the rooms of one node.
type Service struct {
	db      *store.DB
	bus     bus.Bus
	log     *slog.Logger
	now     func() time.Time
	node    string
	inviter Inviter
	files   Files

	// claimsByTarget and claimsByPair limit KeyPackage claims (nil: no
	// limits); lowKeys coalesces low_keys frames (keys.go).
	claimsByTarget, claimsByPair *ratelimit.Limiter
	// resolveByPeer limits peers' lookups of agents by address
	// (fedshared.go), always.
	resolveByPeer *ratelimit.Limiter
	lowKeys       lowKeysNotices

	// published is the feed position of the last event handed to the bus.
	published atomic.Uint64
	// messages counts the messages sent since start (not edits,
	// reactions or deletions), for the admin page's chart.
	messages atomic.Uint64

	stats *Stats

	// fed shares rooms with other administrations (nil: none; federation.go).
	fed *federation
}

// MessagesSent is the number of messages sent since the service started.
func (s *Service) MessagesSent() uint64 { return s.messages.Load() }

// New returns a Service over db publishing on b.
func New(db *store.DB, b bus.Bus, opts Options) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Service{
		db: db, bus: b, log: opts.Logger.With("component", "chat"), now: opts.Now,
		node: db.Node(), inviter: opts.Inviter, files: opts.Files, stats: newStats(),
		resolveByPeer: ratelimit.New(1/resolveEvery.Seconds(), ResolveBurst),
	}
	if opts.RateLimits {
		s.claimsByTarget = ratelimit.New(claimTargetRate, ClaimTargetBurst)
		s.claimsByPair = ratelimit.New(claimPairRate, ClaimPairBurst)
	}
	s.lowKeys.every = opts.LowKeysEvery
	if s.lowKeys.every == 0 {
		s.lowKeys.every = 30 * time.Second
	}
	return s
}

// SetInviter sets the external inviter after construction (the account
// service is built after the chat service it calls back into).
func (s *Service) SetInviter(i Inviter) { s.inviter = i }

// SetFiles sets the attachment checker after construction.
func (s *Service) SetFiles(f Files) { s.files = f }

// Recover publishes the committed events that a crash may have left
// unpublished (the transactional outbox), in commit order.
func (s *Service) Recover(ctx context.Context) error {
	var entries []store.FeedEntry
	var frames [][]byte
	err := s.db.View(func(tx *store.Tx) error {
		return tx.Feed(tx.FeedPublished(), func(e store.FeedEntry) bool {
			ev, err := tx.Event(e.RoomID, e.Seq)
			if err != nil {
				return true // the room's log was truncated; nothing to publish
			}
			entries = append(entries, e)
			frames = append(frames, ev.Frame)
			return true
		})
	})
	if err != nil {
		return fmt.Errorf("chat: read feed: %w", err)
	}
	for i, e := range entries {
		env := proto.AppendEnvelope(nil, proto.Envelope{Kind: proto.EnvEvent, Seq: e.Seq, Frame: frames[i]})
		if err := s.bus.Publish(proto.SubjectEvents(e.RoomID), env); err != nil {
			return fmt.Errorf("chat: republish: %w", err)
		}
		s.published.Store(e.GSeq)
	}
	if len(entries) > 0 {
		s.log.Info("republished events left by a crash", "events", len(entries))
		last := entries[len(entries)-1].GSeq
		return s.db.Update(ctx, func(tx *store.Tx) error { return tx.MarkFeedPublished(last, len(entries)) })
	}
	return nil
}

// Close records how far publication got, once nothing writes any more,
// so that a clean restart republishes nothing and says nothing of a
// crash. The outbox otherwise trails publication by up to 128 events.
func (s *Service) Close(ctx context.Context) error {
	s.StopFederation()
	p := s.published.Load()
	var behind bool
	if err := s.db.View(func(tx *store.Tx) error {
		behind = p > tx.FeedPublished()
		return nil
	}); err != nil || !behind {
		return err
	}
	if err := s.db.Update(ctx, func(tx *store.Tx) error { return tx.MarkFeedPublished(p, math.MaxInt) }); err != nil {
		return fmt.Errorf("chat: mark the outbox published: %w", err)
	}
	return nil
}

func (s *Service) nowMS() int64 { return s.now().UnixMilli() }

// appendEvent stores ev as the next event of its room, inside the writer's
// transaction, and publishes it once committed. It fills ev.T, Seq and TS.
func (s *Service) appendEvent(tx *store.Tx, ev *proto.Event, flags byte, memberOp byte, member string) (store.Event, error) {
	if s.Remote(ev.Room) {
		// Only the home orders a room's events; a replica applies them
		// (federation.go). What is not carried to the home is refused.
		return store.Event{}, proto.Errorf(proto.CodeForbidden, "this room is homed in another administration, which does not take this request from here yet")
	}
	last, err := tx.LastEvent(ev.Room)
	if err != nil {
		return store.Event{}, err
	}
	ev.T = proto.TEvent
	ev.Seq = last.Seq + 1
	// Timestamps never go back within a room, even if the clock does.
	ev.TS = max(s.nowMS(), last.TS)
	se := store.Event{Seq: ev.Seq, Ord: last.Ord, TS: ev.TS, Flags: flags, Frame: proto.Encode(ev)}
	if flags&store.Countable != 0 {
		se.Ord++
	}
	gseq, err := tx.AppendEvent(ev.Room, se)
	if err != nil {
		return store.Event{}, err
	}
	if err := s.ordered(tx, ev, se); err != nil {
		return store.Event{}, err
	}
	return se, s.publishCommitted(tx, ev.Room, se, gseq, memberOp, member)
}

// publishCommitted publishes an appended event once its transaction
// commits, and lets the outbox shrink as publication progresses.
func (s *Service) publishCommitted(tx *store.Tx, roomID string, se store.Event, gseq uint64, memberOp byte, member string) error {
	// A little per write.
	if p := s.published.Load(); p > tx.FeedPublished()+128 {
		if err := tx.MarkFeedPublished(p, 256); err != nil {
			return err
		}
	}
	env := proto.AppendEnvelope(make([]byte, 0, len(se.Frame)+12+len(member)), proto.Envelope{
		Kind: proto.EnvEvent, Seq: se.Seq, MemberOp: memberOp, Member: member, Frame: se.Frame,
	})
	subject := proto.SubjectEvents(roomID)
	tx.OnCommit(func() {
		s.publish(subject, env)
		s.published.Store(gseq)
	})
	return nil
}

func (s *Service) publish(subject string, data []byte) {
	if err := s.bus.Publish(subject, data); err != nil && !errors.Is(err, bus.ErrClosed) {
		// The event is committed: clients get it when they resync, and
		// the outbox republishes it after a restart.
		s.log.Error("publish failed", "subject", subject, "err", err)
	}
}

// expired reports whether an account's validity has run out (the account
// service signs such accounts out).
func (s *Service) expired(u store.User) bool {
	return !u.Expires.IsZero() && s.now().After(u.Expires)
}

// notifyUser publishes, once committed, the room as userID now sees it to
// all of that user's devices.
func (s *Service) notifyUser(tx *store.Tx, userID, roomID string) error {
	r, err := s.summary(tx, userID, roomID)
	if err != nil {
		return err
	}
	env := proto.AppendEnvelope(nil, proto.Envelope{Kind: proto.EnvUser, Frame: proto.Encode(r)})
	subject := proto.SubjectUser(userID)
	tx.OnCommit(func() { s.publish(subject, env) })
	return nil
}

// notifyUserFirst reserves the publication of the room as userID sees it
// ahead of the events this transaction appends next, so that a user who
// gains access learns of the room before its events reach them. Call the
// returned function once the transaction's writes are done: it builds the
// frame from the final state.
func (s *Service) notifyUserFirst(tx *store.Tx, userID, roomID string) func() error {
	var env []byte
	subject := proto.SubjectUser(userID)
	tx.OnCommit(func() { s.publish(subject, env) })
	return func() error {
		r, err := s.summary(tx, userID, roomID)
		if err != nil {
			return err
		}
		env = proto.AppendEnvelope(nil, proto.Envelope{Kind: proto.EnvUser, Frame: proto.Encode(r)})
		return nil
	}
}

// publishEphemeral sends a frame to a room's connected members without
// storing it.
func (s *Service) publishEphemeral(roomID string, frame []byte) {
	s.publish(proto.SubjectEphemeral(roomID), proto.AppendEnvelope(nil, proto.Envelope{Kind: proto.EnvEphemeral, Frame: frame}))
}

// PublishUser sends a frame to every connected device of a user.
func (s *Service) PublishUser(userID string, frame []byte) {
	s.publish(proto.SubjectUser(userID), proto.AppendEnvelope(nil, proto.Envelope{Kind: proto.EnvUser, Frame: frame}))
}

// errNotFound hides whether a private room exists.
func errNotFound() error { return proto.Errorf(proto.CodeNotFound, "no such room") }

// access loads a room and the actor's membership, and checks that the
// actor is joined and may perform act. Private rooms the actor is not in
// are reported as not found.
func access(tx *store.Tx, a Actor, roomID string, act Action) (store.Room, store.Membership, error) {
	r, err := tx.Room(roomID)
	if errors.Is(err, store.ErrNotFound) {
		return r, store.Membership{}, errNotFound()
	}
	if err != nil {
		return r, store.Membership{}, err
	}
	m, err := tx.Member(roomID, a.User)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !m.Active()) {
		if r.Kind == store.Forum && !a.External {
			return r, m, proto.Errorf(proto.CodeNotMember, "join the forum first")
		}
		return r, m, errNotFound()
	}
	if err != nil {
		return r, m, err
	}
	if !Allowed(r.Kind, m.Role, act) {
		return r, m, proto.Errorf(proto.CodeForbidden, "your role in this room does not allow this")
	}
	return r, m, nil
}

// summary builds the "room" frame of a room as userID sees it.
func (s *Service) summary(tx *store.Tx, userID, roomID string) (proto.Room, error) {
	r, err := tx.Room(roomID)
	if err != nil {
		return proto.Room{}, fmt.Errorf("summary of %s: %w", roomID, err)
	}
	m, err := tx.Member(roomID, userID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return proto.Room{}, err
	}
	out := proto.Room{
		T: proto.TRoom, ID: r.ID, Kind: string(r.Kind), Name: r.Name, Topic: r.Topic,
		Externals: r.Externals, Encrypted: r.Encrypted, Role: string(m.Role), State: string(m.State),
	}
	if m.State == "" {
		out.State = string(store.Left)
	}
	if m.State == store.Invited {
		out.InvitedBy = m.By
	}
	if m.State != store.Joined && m.State != store.Invited {
		return out, nil // a room one has left shows no more than that
	}
	members, err := tx.Members(roomID)
	if err != nil {
		return out, err
	}
	for _, e := range members {
		if e.State == store.Joined || e.State == store.Invited {
			out.Members = append(out.Members, proto.Member{User: e.UserID, Role: string(e.Role), State: string(e.State)})
			if e.State == store.Joined {
				out.Count++
			}
		}
	}
	last, err := tx.LastEvent(roomID)
	if err != nil {
		return out, err
	}
	out.LastSeq, out.LastTS = last.Seq, last.TS
	if m.State == store.Joined {
		readSeq, readOrd := tx.Read(roomID, userID)
		out.ReadSeq = readSeq
		if last.Ord > readOrd {
			out.Unread = int(last.Ord - readOrd)
		}
		out.Mentions = tx.Mentions(userID, roomID, readSeq)
		if r.Encrypted {
			if out.Epoch, err = mlsEpoch(tx, roomID); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// update runs fn through the store's group-commit writer.
func (s *Service) update(ctx context.Context, fn func(tx *store.Tx) error) error {
	return s.db.Update(ctx, fn)
}
