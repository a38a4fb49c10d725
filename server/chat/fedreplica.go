package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"relais/server/fed"
	"relais/server/id"
	"relais/server/proto"
	"relais/server/store"
)

// The replica side of a shared room: verifying, applying, catching up
// (federation.go).

// handleRoomEvent takes records the home pushes.
func (s *Service) handleRoomEvent(ctx context.Context, from fed.AdminID, body []byte) ([]byte, error) {
	b, err := fed.ParseBatchFrame(body)
	if err != nil {
		return nil, s.refuse(from, "room_event", proto.CodeBadRequest, err)
	}
	if err := s.apply(ctx, from, b); err != nil {
		return nil, err
	}
	return nil, nil
}

// errGap says a batch does not follow the end of the chain: pull.
var errGap = errors.New("chat: records after a gap")

// errUnknownRoom says records came for a room this node holds no
// replica of, without the snapshot to start one: pull from the start.
var errUnknownRoom = errors.New("chat: records of a room not held here")

// apply verifies a batch from a room's home and stores it; a gap or an
// unknown room starts a pull instead. Anything that fails a check is
// refused, logged, and nothing of the batch is stored.
func (s *Service) apply(ctx context.Context, from fed.AdminID, b fed.Batch) error {
	room := ""
	if b.Snapshot != nil {
		room = b.Snapshot.Room
	} else if len(b.Records) > 0 {
		room = b.Records[0].Order.Room
	} else {
		return nil
	}
	if n := len(b.Records); n > 0 {
		s.fed.mu.Lock()
		s.fed.seen[room] = max(s.fed.seen[room], b.Records[n-1].Order.Seq)
		s.fed.mu.Unlock()
	}
	err := s.applyBatch(ctx, from, room, b)
	switch {
	case errors.Is(err, errGap), errors.Is(err, errUnknownRoom):
		go s.pull(from, room)
		return nil
	case err != nil:
		return s.refuse(from, "room_event", proto.CodeForbidden, err)
	}
	return nil
}

func (s *Service) applyBatch(ctx context.Context, from fed.AdminID, room string, b fed.Batch) error {
	fd := s.fed
	if home, ok := fd.dir.AdminOf(room); !ok || home != from || id.Home(room) == s.node {
		return fmt.Errorf("%w: %s sent events of %s, which it is not the home of", fed.ErrAuthority, from, room)
	}
	// The signatures, the costly part, are checked on every core before
	// the write; the chain, which depends on what is stored, inside it.
	signed := make([]error, len(b.Records))
	var wg sync.WaitGroup
	workers := min(runtime.GOMAXPROCS(0), len(b.Records))
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(b.Records); i += workers {
				signed[i] = fd.dir.Verify(&b.Records[i], nil)
			}
		}()
	}
	wg.Wait()
	return s.update(ctx, func(tx *store.Tx) error {
		head, held := tx.FedHead(room)
		chained := held
		if b.Snapshot != nil && (!held || b.Snapshot.Seq > head.Seq) {
			if err := fd.dir.VerifySnapshot(b.Snapshot); err != nil {
				return err
			}
			if err := s.applySnapshot(tx, b.Snapshot); err != nil {
				return err
			}
			head, held, chained = store.FedHead{Seq: b.Snapshot.Seq}, true, false
		}
		if !held {
			return errUnknownRoom
		}
		for i := range b.Records {
			rec := &b.Records[i]
			seq := rec.Order.Seq
			if seq <= head.Seq {
				if err := s.same(tx, rec); err != nil {
					return err
				}
				continue
			}
			if seq != head.Seq+1 {
				return errGap
			}
			var prev *fed.Hash
			if chained {
				prev = (*fed.Hash)(&head.Hash)
			}
			if signed[i] != nil {
				return signed[i]
			}
			if err := fed.CheckChain(rec.Order, prev); err != nil {
				return err
			}
			if err := s.applyRecord(tx, rec); err != nil {
				return err
			}
			head, chained = store.FedHead{Seq: seq, Hash: rec.Order.EventHash}, true
		}
		return nil
	})
}

// same checks that a record this node already holds is the one it
// received before: a home that rewrites a past sequence is refused.
func (s *Service) same(tx *store.Tx, rec *fed.Record) error {
	raw, err := tx.FedRecord(rec.Order.Room, rec.Order.Seq)
	if errors.Is(err, store.ErrNotFound) {
		return nil // before this node's first event of the room
	}
	if err != nil {
		return err
	}
	held, err := fed.ParseRecord(raw)
	if err != nil {
		return err
	}
	if held.Order.EventHash != rec.Order.EventHash {
		return fmt.Errorf("%w: the home rewrote event %d of %s", fed.ErrChain, rec.Order.Seq, rec.Order.Room)
	}
	return nil
}

func (s *Service) applySnapshot(tx *store.Tx, snap *fed.Snapshot) error {
	var st roomState
	if err := json.Unmarshal(snap.State, &st); err != nil {
		return fmt.Errorf("%w: snapshot state: %v", fed.ErrMalformed, err)
	}
	if st.Room.ID != snap.Room {
		return fmt.Errorf("%w: snapshot of another room", fed.ErrMalformed)
	}
	if _, err := tx.Room(snap.Room); errors.Is(err, store.ErrNotFound) {
		if err := tx.CreateRoom(st.Room); err != nil {
			return err
		}
	} else if err != nil {
		return err
	} else if err := tx.PutRoom(st.Room); err != nil {
		return err
	}
	for _, m := range st.Members {
		if !id.Valid(id.User, m.UserID) {
			return fmt.Errorf("%w: snapshot member %q", fed.ErrMalformed, m.UserID)
		}
		if err := tx.PutMember(snap.Room, m.UserID, m.Membership); err != nil {
			return err
		}
	}
	return indexDM(tx, st.Room)
}

// indexDM records a replica of a direct room as the two people's direct
// room once both are in it, unless they have one already (homed here):
// opening a conversation with someone then finds it.
func indexDM(tx *store.Tx, r store.Room) error {
	if r.Kind != store.Direct {
		return nil
	}
	members, err := tx.Members(r.ID)
	if err != nil || len(members) != 2 {
		return err
	}
	a, b := members[0].UserID, members[1].UserID
	if _, err := tx.DM(a, b); errors.Is(err, store.ErrNotFound) {
		return tx.PutDM(a, b, r.ID)
	} else if err != nil {
		return err
	}
	return nil
}

// applyRecord stores one verified record in the replica: the checks that
// need the room's state, then the event and its effects, as the home made
// them.
func (s *Service) applyRecord(tx *store.Tx, rec *fed.Record) error {
	var ev proto.Event
	if err := json.Unmarshal(rec.Frame, &ev); err != nil {
		return fmt.Errorf("%w: event frame: %v", fed.ErrMalformed, err)
	}
	o := rec.Origin
	switch {
	case ev.T != proto.TEvent || ev.Room != o.Room || ev.Seq != rec.Order.Seq || ev.From != o.Sender || ev.Type != o.Type ||
		ev.CID != "" && ev.CID != o.CID || eventContent(&ev).hash() != o.Content:
		return fmt.Errorf("%w: the event is not what its origin signed", fed.ErrSignature)
	}
	m, err := tx.Member(ev.Room, ev.From)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	selfJoin := ev.Type == proto.EvMember && ev.Action == proto.ActJoin && ev.User == ev.From
	if ev.Type != proto.EvCreate && !selfJoin && !m.Active() {
		return fmt.Errorf("%w: %s is not a member of %s", fed.ErrAuthority, ev.From, ev.Room)
	}
	if ev.Type != proto.EvCreate && !selfJoin {
		if err := replicaAllowed(tx, &ev, m); err != nil {
			return err
		}
	}
	flags, memberOp, member := byte(0), proto.MemberNone, ""
	switch ev.Type {
	case proto.EvText, proto.EvFile, proto.EvEncrypted:
		flags = store.Countable
	case proto.EvEdit, proto.EvDelete, proto.EvReact, proto.EvUnreact:
		if err := s.mutate(tx, &ev); err != nil {
			return err
		}
	case proto.EvSettings:
		r, err := tx.Room(ev.Room)
		if err != nil {
			return err
		}
		if ev.Name != nil {
			r.Name = *ev.Name
		}
		if ev.Topic != nil {
			r.Topic = *ev.Topic
		}
		if ev.Externals != nil {
			r.Externals = *ev.Externals
		}
		if err := tx.PutRoom(r); err != nil {
			return err
		}
	case proto.EvMember:
		memberOp, member = memberOpOf(ev.Action), ev.User
	}
	last, err := tx.LastEvent(ev.Room)
	if err != nil {
		return err
	}
	se := store.Event{Seq: ev.Seq, Ord: last.Ord, TS: ev.TS, Flags: flags, Frame: rec.Frame}
	if flags&store.Countable != 0 {
		se.Ord++
	}
	var announce func() error
	if memberOp == proto.MemberAdd && !s.remoteUser(ev.User) {
		announce = s.notifyUserFirst(tx, ev.User, ev.Room)
	}
	gseq, err := tx.AppendReplica(ev.Room, se)
	if err != nil {
		return err
	}
	if err := tx.PutFedRecord(ev.Room, ev.Seq, rec.Order.EventHash, fed.AppendRecord(nil, rec)); err != nil {
		return err
	}
	if err := s.publishCommitted(tx, ev.Room, se, gseq, memberOp, member); err != nil {
		return err
	}
	if ev.Type == proto.EvMLSCommit && ev.Epoch != nil {
		// The replica follows the group's epoch for its members' room
		// frames; the home alone is the Delivery Service.
		g, err := tx.MLSGroup(ev.Room)
		if err != nil {
			return err
		}
		g.Epoch = max(g.Epoch, *ev.Epoch+1)
		if err := tx.PutMLSGroup(ev.Room, g); err != nil {
			return err
		}
	}
	if ev.Type == proto.EvMember {
		if err := s.applyMember(tx, &ev, se); err != nil {
			return err
		}
		if announce != nil {
			return announce()
		}
		if !s.remoteUser(ev.User) {
			return s.notifyUser(tx, ev.User, ev.Room)
		}
	}
	if flags&store.Countable != 0 {
		for _, u := range ev.Mentions {
			if !s.remoteUser(u) {
				if err := tx.AddMention(u, ev.Room, ev.Seq); err != nil {
					return err
				}
			}
		}
		if !s.remoteUser(ev.From) {
			if err := tx.PutRead(ev.Room, ev.From, se.Seq, se.Ord); err != nil {
				return err
			}
		}
	}
	return nil
}

// replicaAllowed checks, against the replica's state, that the sender's
// role allows what the event does: a home cannot make its members'
// nodes show a kick by a plain member. (The rank rules, a moderator
// removing members only, stay the home's.)
func replicaAllowed(tx *store.Tx, ev *proto.Event, m store.Membership) error {
	room, err := tx.Room(ev.Room)
	if err != nil {
		return err
	}
	act := ActSend
	switch ev.Type {
	case proto.EvMember:
		switch ev.Action {
		case proto.ActInvite:
			act = ActInvite
		case proto.ActJoin: // another's join: a direct room brought back
			if room.Kind != store.Direct {
				act = ActInvite
			}
		case proto.ActKick:
			act = ActRemove
		case proto.ActBan, proto.ActUnban:
			act = ActBan
		case proto.ActRole:
			act = ActChangeRole
		case proto.ActLeave:
			if ev.User != ev.From {
				return fmt.Errorf("%w: %s left for %s", fed.ErrAuthority, ev.From, ev.User)
			}
			act = ActLeave
		}
	case proto.EvSettings:
		act = ActRename
		if ev.Externals != nil {
			act = ActSettings
		}
	case proto.EvDelete, proto.EvEdit:
		t, err := target(tx, ev.Room, ev.Target)
		if err != nil {
			return fmt.Errorf("%w: %s/%d targets %d: %v", fed.ErrMalformed, ev.Room, ev.Seq, ev.Target, err)
		}
		if t.ev.From != ev.From {
			if ev.Type == proto.EvEdit {
				return fmt.Errorf("%w: %s edited a message of %s", fed.ErrAuthority, ev.From, t.ev.From)
			}
			act = ActDeleteOthers
		}
	}
	if !Allowed(room.Kind, m.Role, act) {
		return fmt.Errorf("%w: %s (%s) may not %s in %s", fed.ErrAuthority, ev.From, m.Role, act, ev.Room)
	}
	return nil
}

func memberOpOf(action string) byte {
	switch action {
	case proto.ActJoin:
		return proto.MemberAdd
	case proto.ActLeave, proto.ActKick, proto.ActBan:
		return proto.MemberRemove
	}
	return proto.MemberNone
}

// applyMember stores the membership a member event states.
func (s *Service) applyMember(tx *store.Tx, ev *proto.Event, at store.Event) error {
	old, err := tx.Member(ev.Room, ev.User)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	m := store.Membership{Role: old.Role, State: old.State, By: ev.From, Since: time.UnixMilli(ev.TS)}
	if m.Role == "" {
		m.Role = store.Member
	}
	switch ev.Action {
	case proto.ActInvite:
		m.State = store.Invited
	case proto.ActJoin:
		m.State, m.By = store.Joined, old.By
		if ev.Role != "" {
			m.Role = store.Role(ev.Role)
		}
	case proto.ActLeave, proto.ActKick, proto.ActUnban:
		m.State = store.Left
	case proto.ActBan:
		m.State = store.Banned
	case proto.ActRole:
		m.Role, m.By = store.Role(ev.Role), old.By
	default:
		return fmt.Errorf("%w: member action %q", fed.ErrMalformed, ev.Action)
	}
	if err := s.setMember(tx, ev.Room, ev.User, m, at); err != nil {
		return err
	}
	r, err := tx.Room(ev.Room)
	if err != nil {
		return err
	}
	return indexDM(tx, r)
}

// mutate applies an edit, deletion or reaction to the message it targets,
// as the home did.
func (s *Service) mutate(tx *store.Tx, ev *proto.Event) error {
	t, err := target(tx, ev.Room, ev.Target)
	if err != nil {
		return fmt.Errorf("%w: %s/%d targets %d: %v", fed.ErrMalformed, ev.Room, ev.Seq, ev.Target, err)
	}
	switch ev.Type {
	case proto.EvEdit:
		t.ev.Body, t.ev.Edited = ev.Body, max(ev.TS, t.ev.TS)
	case proto.EvDelete:
		t.ev = proto.Event{T: t.ev.T, Room: t.ev.Room, Seq: t.ev.Seq, TS: t.ev.TS, From: t.ev.From, Dev: t.ev.Dev, Type: t.ev.Type, Deleted: true}
		t.rec.Flags |= store.Redacted
	case proto.EvReact:
		if t.ev.Reactions == nil {
			t.ev.Reactions = map[string][]string{}
		}
		t.ev.Reactions[ev.Key] = append(t.ev.Reactions[ev.Key], ev.From)
	case proto.EvUnreact:
		users := t.ev.Reactions[ev.Key][:0:0]
		for _, u := range t.ev.Reactions[ev.Key] {
			if u != ev.From {
				users = append(users, u)
			}
		}
		if len(users) == 0 {
			delete(t.ev.Reactions, ev.Key)
		} else {
			t.ev.Reactions[ev.Key] = users
		}
	}
	return t.save(tx)
}

// pull catches a replica up from its home, a batch at a time.
func (s *Service) pull(home fed.AdminID, room string) {
	fd := s.fed
	fd.mu.Lock()
	if fd.pulling[room] {
		fd.mu.Unlock()
		return
	}
	fd.pulling[room] = true
	fd.mu.Unlock()
	defer func() {
		fd.mu.Lock()
		delete(fd.pulling, room)
		fd.mu.Unlock()
	}()
	head := func() (seq uint64) {
		s.db.View(func(tx *store.Tx) error {
			h, _ := tx.FedHead(room)
			seq = h.Seq
			return nil
		})
		return seq
	}
	type answer struct {
		b   fed.Batch
		err error
	}
	fetch := func(after uint64) <-chan answer {
		c := make(chan answer, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*fd.SendTimeout)
			defer cancel()
			ans, err := fd.Transport.Request(ctx, home, fed.OpRoomSync, fed.AppendSyncRequest(nil, fed.SyncRequest{Room: room, After: after, Max: fed.MaxBatch}))
			if err != nil {
				c <- answer{err: err}
				return
			}
			b, err := fed.ParseBatchFrame(ans)
			c <- answer{b, err}
		}()
		return c
	}
	after := head()
	pending := fetch(after)
	for {
		a := <-pending
		if a.err != nil {
			s.log.Debug("pull failed", "room", room, "home", home, "err", a.err)
			return
		}
		b := a.b
		if len(b.Records) == 0 && b.Snapshot == nil {
			return
		}
		// The next batch is asked for while this one is stored: the
		// home's answer and this node's write overlap. A batch may stop
		// short of MaxBatch by weight, so ask until nothing comes.
		var next uint64
		if n := len(b.Records); n > 0 {
			next = b.Records[n-1].Order.Seq
			pending = fetch(next)
		}
		if err := s.applyBatch(context.Background(), home, room, b); err != nil {
			s.log.Warn("federation message refused", "peer", home, "op", "room_sync", "room", room, "err", err)
			return
		}
		if got := head(); got <= after || next == 0 || got != next {
			// Nothing new, a snapshot alone, or not where the batch
			// ended: ask again from what is stored, once.
			if got <= after {
				return
			}
			pending = fetch(got)
			next = got
		}
		after = next
	}
}

// linkUp catches up with an administration whose link just came up: pull
// every room it is the home of, and tell it of the rooms it is entitled
// to here, so that it pulls those it missed.
func (s *Service) linkUp(peer fed.AdminID) {
	s.pullFrom(func(a fed.AdminID) bool { return a == peer })
	s.retryWelcomes(peer)
	var last [][]byte
	s.db.View(func(tx *store.Tx) error {
		rooms, err := tx.FedPeerRooms(string(peer))
		if err != nil {
			return err
		}
		for _, r := range rooms {
			h, ok := tx.FedHead(r)
			if !ok {
				continue
			}
			if raw, err := tx.FedRecord(r, h.Seq); err == nil {
				if rec, err := fed.ParseRecord(raw); err == nil {
					last = append(last, fed.AppendBatchFrame(nil, &fed.Batch{Records: []fed.Record{rec}}))
				}
			}
		}
		return nil
	})
	for _, b := range last {
		s.fed.Transport.Push(peer, fed.OpRoomEvent, b)
	}
}

// pullFrom pulls every replica whose home's administration keep accepts.
func (s *Service) pullFrom(keep func(fed.AdminID) bool) {
	type held struct {
		room string
		home fed.AdminID
	}
	var rooms []held
	s.db.View(func(tx *store.Tx) error {
		return tx.FedHeads(func(room string, _ store.FedHead) bool {
			if id.Home(room) != s.node {
				if a, ok := s.fed.dir.AdminOf(room); ok && keep(a) {
					rooms = append(rooms, held{room, a})
				}
			}
			return true
		})
	})
	for _, r := range rooms {
		s.pull(r.home, r.room)
	}
}

func (s *Service) syncLoop() {
	t := time.NewTicker(s.fed.SyncEvery)
	defer t.Stop()
	for {
		select {
		case <-s.fed.stop:
			return
		case <-t.C:
			s.pullFrom(func(fed.AdminID) bool { return true })
		}
	}
}

// Lag reports how many events this node's copies of the rooms homed in
// peer are behind what that peer has shown of them (pushed or answered),
// for health; ok is false when federation is off.
func (s *Service) Lag(peer fed.AdminID) (events int64, ok bool) {
	fd := s.fed
	if fd == nil {
		return 0, false
	}
	fd.mu.Lock()
	seen := make(map[string]uint64, len(fd.seen))
	for r, q := range fd.seen {
		if a, _ := fd.dir.AdminOf(r); a == peer {
			seen[r] = q
		}
	}
	fd.mu.Unlock()
	s.db.View(func(tx *store.Tx) error {
		for r, q := range seen {
			if h, _ := tx.FedHead(r); q > h.Seq {
				events += int64(q - h.Seq)
			}
		}
		return nil
	})
	return events, true
}
