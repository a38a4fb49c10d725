package chat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"relais/server/fed"
	"relais/server/id"
	"relais/server/mailaddr"
	"relais/server/proto"
	"relais/server/store"
)

// What else crosses the link for shared rooms: receipts and typing, the
// agent behind an address, the forum directory (federation.go).

// shareEphemeral sends a member's receipt or typing notice of a shared
// room across: to the home for a room homed elsewhere, to every
// administration with members for a room homed here (but back to the one
// it came from). Best effort, as on one node.
func (s *Service) shareEphemeral(e fed.Ephemeral, except fed.AdminID) {
	fd := s.fed
	if fd == nil {
		return
	}
	var to []fed.AdminID
	s.db.View(func(tx *store.Tx) error {
		if _, shared := tx.FedHead(e.Room); !shared {
			return nil
		}
		if id.Home(e.Room) != s.node {
			if home, ok := fd.dir.AdminOf(e.Room); ok {
				to = append(to, home)
			}
			return nil
		}
		peers, err := s.peersIn(tx, e.Room)
		for p := range peers {
			if p != except {
				to = append(to, p)
			}
		}
		return err
	})
	body := fed.AppendEphemeral(nil, e)
	for _, p := range to {
		if err := fd.Transport.Push(p, fed.OpRoomEphemeral, body); err != nil {
			s.log.Debug("ephemeral push failed", "peer", p, "err", err)
		}
	}
}

// handleRoomEphemeral takes a receipt or typing notice from the member's
// administration, or from the room's home relaying it.
func (s *Service) handleRoomEphemeral(ctx context.Context, from fed.AdminID, body []byte) ([]byte, error) {
	fd := s.fed
	e, err := fed.ParseEphemeral(body)
	if err != nil {
		return nil, s.refuse(from, fed.OpRoomEphemeral, proto.CodeBadRequest, err)
	}
	userAdmin, _ := fd.dir.AdminOf(e.User)
	home, _ := fd.dir.AdminOf(e.Room)
	if userAdmin != from && (home != from || userAdmin == fd.Self.ID) {
		return nil, s.refuse(from, fed.OpRoomEphemeral, proto.CodeForbidden,
			fmt.Errorf("%w: %s spoke for %s in %s", fed.ErrAuthority, from, e.User, e.Room))
	}
	a := Actor{User: e.User}
	if e.Kind == fed.EphTyping {
		if err := s.db.View(func(tx *store.Tx) error { _, _, err := access(tx, a, e.Room, ActSend); return err }); err != nil {
			return nil, s.refuse(from, fed.OpRoomEphemeral, proto.CodeForbidden, err)
		}
		s.publishEphemeral(e.Room, proto.Encode(proto.Typing{T: proto.TTypingEv, Room: e.Room, User: e.User, On: e.On}))
	} else if err := s.update(ctx, func(tx *store.Tx) error {
		if _, _, err := access(tx, a, e.Room, ActRead); err != nil {
			return err
		}
		ev, err := tx.Event(e.Room, e.Seq)
		if err != nil {
			return nil // before this node's first event of the room: nothing to mark
		}
		if cur, _ := tx.Read(e.Room, e.User); e.Seq <= cur {
			return nil
		}
		if err := tx.PutRead(e.Room, e.User, e.Seq, ev.Ord); err != nil {
			return err
		}
		receipt := proto.Encode(proto.Receipt{T: proto.TReceipt, Room: e.Room, User: e.User, Seq: e.Seq})
		tx.OnCommit(func() { s.publishEphemeral(e.Room, receipt) })
		return nil
	}); err != nil {
		return nil, s.refuse(from, fed.OpRoomEphemeral, proto.CodeForbidden, err)
	}
	if id.Home(e.Room) == s.node {
		s.shareEphemeral(e, from)
	}
	return nil, nil
}

// OpResolveUser asks a peer for the agent behind an address of one of its
// domains: body {"email"}, answer {"id","name"}. The address goes only to
// the administration that serves its domain; the answer never carries it.
const OpResolveUser = "resolve_user"

// A peer may ask for this many agents at once, then one every
// resolveEvery: enough for an administration inviting a service, too slow
// to walk our address book (8,640 guesses a day at most). It holds even
// with rate limits off, like the invitations of externals.
const (
	ResolveBurst = 60
	resolveEvery = 10 * time.Second
)

type resolveQuery struct {
	Email string `json:"email"`
}

type resolveAnswer struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// resolvePeerAddress returns the id of the agent of a peered
// administration behind email; ok is false when no peer serves the
// address's domain (then it is an external's).
func (s *Service) resolvePeerAddress(ctx context.Context, email string) (userID string, ok bool, err error) {
	fd := s.fed
	if fd == nil {
		return "", false, nil
	}
	addr, perr := mailaddr.Parse(email)
	if perr != nil {
		return "", false, nil // the external path reports the malformed address
	}
	p, served := fd.Transport.ByDomain(addr.Domain)
	if !served || p.ID == fd.Self.ID {
		return "", false, nil
	}
	rctx, cancel := context.WithTimeout(ctx, fd.SendTimeout)
	defer cancel()
	ans, err := fd.Transport.Request(rctx, p.ID, OpResolveUser, proto.Encode(resolveQuery{Email: addr.String()}))
	if err != nil {
		var re *fed.RemoteError
		if errors.As(err, &re) {
			return "", true, proto.Errorf(re.Code, "%s", re.Reason)
		}
		return "", true, proto.Errorf(proto.CodeHomeUnreachable, "the administration of this address does not answer; retry later")
	}
	var r resolveAnswer
	if err := decodeStrict(ans, &r); err != nil || !id.Valid(id.User, r.ID) {
		return "", true, s.refuse(p.ID, OpResolveUser, proto.CodeInternal, fmt.Errorf("answer: %v", err))
	}
	if a, _ := fd.dir.AdminOf(r.ID); a != p.ID {
		return "", true, s.refuse(p.ID, OpResolveUser, proto.CodeForbidden, fmt.Errorf("%w: %s answered with a user of %s", fed.ErrAuthority, p.ID, a))
	}
	return r.ID, true, nil
}

// handleResolveUser answers a peer's question for the agent behind an
// address: only active agents, never externals, never the address back.
func (s *Service) handleResolveUser(_ context.Context, from fed.AdminID, body []byte) ([]byte, error) {
	var q resolveQuery
	if len(body) > 512 || decodeStrict(body, &q) != nil {
		return nil, s.refuse(from, OpResolveUser, proto.CodeBadRequest, errors.New("malformed query"))
	}
	if ok, wait := s.resolveByPeer.Allow(string(from)); !ok {
		return nil, &fed.RemoteError{Code: proto.CodeRateLimited, Reason: fmt.Sprintf("too many address lookups from your administration: retry in %s", wait.Round(time.Second))}
	}
	addr, err := mailaddr.Parse(q.Email)
	if err != nil {
		return nil, &fed.RemoteError{Code: proto.CodeEmailInvalid, Reason: "not a well-formed address"}
	}
	var u store.User
	err = s.db.View(func(tx *store.Tx) (err error) { u, err = tx.UserByEmail(addr.String()); return err })
	if err != nil || u.State != store.UserActive || u.External {
		return nil, &fed.RemoteError{Code: proto.CodeNotFound, Reason: "no agent with this address"}
	}
	return proto.Encode(resolveAnswer{ID: u.ID, Name: u.Name}), nil
}

// decodeStrict decodes one JSON object with no unknown fields.
func decodeStrict(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data")
	}
	return nil
}

// OpForumSearch lists the forums of an administration whose name matches:
// body {"q","limit"}, answer {"forums":[ForumInfo]}. Forums are open to
// every agent by design; the listing spans the mesh.
const OpForumSearch = "forum_search"

// forumTimeout bounds how long a forum listing waits for the peers.
const forumTimeout = 1500 * time.Millisecond

type forumQuery struct {
	Q     string `json:"q"`
	Limit int    `json:"limit"`
}

type forumAnswer struct {
	Forums []ForumInfo `json:"forums"`
}

// peerForums asks every peer for its forums matching query, for at most
// forumTimeout; a peer that does not answer in time is left out.
func (s *Service) peerForums(a Actor, query string, limit int, local []ForumInfo) []ForumInfo {
	fd := s.fed
	if fd == nil {
		return nil
	}
	peers := fd.Transport.List()
	ctx, cancel := context.WithTimeout(context.Background(), forumTimeout)
	defer cancel()
	body := proto.Encode(forumQuery{Q: query, Limit: limit})
	results := make([][]ForumInfo, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ans, err := fd.Transport.Request(ctx, p.ID, OpForumSearch, body)
			if err != nil {
				s.log.Debug("forum listing: a peer did not answer", "peer", p.ID, "err", err)
				return
			}
			var fa forumAnswer
			if len(ans) > 256<<10 || decodeStrict(ans, &fa) != nil || len(fa.Forums) > limit {
				s.log.Warn("federation message refused", "peer", p.ID, "op", OpForumSearch, "err", "malformed answer")
				return
			}
			for _, f := range fa.Forums {
				if home, _ := fd.dir.AdminOf(f.ID); home != p.ID || !id.Valid(id.Room, f.ID) ||
					proto.TextFault(f.Name) != "" || proto.TextFault(f.Topic) != "" || f.Count < 0 ||
					utf8.RuneCountInString(f.Name) > proto.MaxName || utf8.RuneCountInString(f.Topic) > proto.MaxTopic {
					s.log.Warn("federation message refused", "peer", p.ID, "op", OpForumSearch, "err", "a forum not of that administration, or a bad name")
					return
				}
			}
			results[i] = fa.Forums
			for j := range results[i] {
				results[i][j].Admin = p.Name
			}
		}()
	}
	wg.Wait()
	var out []ForumInfo
	seen := map[string]bool{}
	for _, f := range local {
		seen[f.ID] = true // a replica held here is listed already
	}
	s.db.View(func(tx *store.Tx) error {
		for _, r := range results {
			for _, f := range r {
				if seen[f.ID] {
					continue
				}
				m, err := tx.Member(f.ID, a.User)
				f.Joined = err == nil && m.State == store.Joined
				out = append(out, f)
			}
		}
		return nil
	})
	return out
}

// handleForumSearch answers a peer's forum listing with this
// administration's own forums.
func (s *Service) handleForumSearch(_ context.Context, from fed.AdminID, body []byte) ([]byte, error) {
	var q forumQuery
	if len(body) > 1024 || decodeStrict(body, &q) != nil || len(q.Q) > proto.MaxQuery || q.Limit < 1 || q.Limit > 50 {
		return nil, s.refuse(from, OpForumSearch, proto.CodeBadRequest, errors.New("malformed query"))
	}
	// Only forums homed here: a replica of another's forum is that
	// administration's to list.
	out, err := s.localForums("", q.Q, q.Limit, func(r string) bool { return id.Home(r) == s.node })
	if err != nil {
		return nil, err
	}
	return proto.Encode(forumAnswer{Forums: out}), nil
}
