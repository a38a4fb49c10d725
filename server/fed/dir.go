package fed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"relais/server/id"
	"relais/server/proto"
)

// The directory across the mesh: a search by name asks every peer at once
// and waits at most DirTimeout. Each administration answers for its own
// agents only, with what its local directory shows (names, never
// addresses), and the asking side shows each person with the name it
// pinned for their administration.
const (
	OpDirSearch = "dir_search"
	DirTimeout  = 1500 * time.Millisecond
	// dirMaxQuery bounds the query a peer may send.
	dirMaxQuery = 200
)

// DirQuery is the body of a dir_search request.
type DirQuery struct {
	Q     string `json:"q"`
	Limit int    `json:"limit"`
}

// DirEntry is one person in a dir_search answer.
type DirEntry struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Org    string `json:"org,omitempty"`
	Tag    string `json:"tag"`
	Active bool   `json:"active"`
}

// DirAnswer is the body of a dir_search answer.
type DirAnswer struct {
	Users []DirEntry `json:"users"`
}

// ServeDirectory answers the peers' directory searches with local (the
// node's own directory search, which already leaves out whom it hides).
func (s *Service) ServeDirectory(local func(q string, limit int) ([]proto.Profile, error)) {
	s.cfg.Link.Handle(OpDirSearch, func(ctx context.Context, from AdminID, body []byte) ([]byte, error) {
		q, err := DecodeDirQuery(body)
		if err != nil {
			s.log.Warn("directory search of a peer refused", "peer", from, "err", err)
			return nil, &RemoteError{Code: proto.CodeBadRequest, Reason: err.Error()}
		}
		users, err := local(q.Q, q.Limit)
		if err != nil {
			return nil, err
		}
		out := DirAnswer{Users: []DirEntry{}}
		for _, u := range users {
			// Only this administration's own agents: never an external,
			// nor anyone a peer's node would answer for.
			if u.External || id.Home(u.ID) != s.cfg.Node {
				continue
			}
			out.Users = append(out.Users, DirEntry{ID: u.ID, Name: u.Name, Org: u.Org, Tag: u.Tag, Active: u.Active})
		}
		return json.Marshal(out)
	})
}

// DecodeDirQuery decodes a peer's dir_search body strictly and clamps its
// limit.
func DecodeDirQuery(body []byte) (DirQuery, error) {
	var q DirQuery
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&q); err != nil || dec.More() {
		return DirQuery{}, errors.New("dir_search: body does not decode")
	}
	if len(q.Q) > dirMaxQuery {
		return DirQuery{}, errors.New("dir_search: query too long")
	}
	q.Limit = min(max(q.Limit, 1), 50)
	return q, nil
}

// DecodeDirAnswer decodes peer's dir_search answer, keeping only well-formed
// entries of people homed on one of the peer's pinned nodes.
func DecodeDirAnswer(peer Peer, body []byte, limit int) ([]proto.Profile, error) {
	var a DirAnswer
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil || dec.More() {
		return nil, errors.New("dir_search answer does not decode")
	}
	var out []proto.Profile
	for _, e := range a.Users {
		if len(out) >= limit {
			break
		}
		if !id.Valid(id.User, e.ID) || !slices.Contains(peer.Nodes, id.Home(e.ID)) ||
			e.Name == "" || len(e.Name) > 200 || len(e.Org) > 200 || len(e.Tag) > 16 {
			continue
		}
		out = append(out, proto.Profile{ID: e.ID, Name: e.Name, Org: e.Org, Tag: e.Tag, Active: e.Active,
			Admin: peer.Name, AdminID: string(peer.ID)})
	}
	return out, nil
}

// SearchDirectory asks every peer for people whose name matches q, in
// parallel and for at most DirTimeout. partial says a peer did not
// answer (link down, too slow, or an answer that does not decode).
func (s *Service) SearchDirectory(ctx context.Context, q string, limit int) (users []proto.Profile, partial bool) {
	peers := s.cfg.Link.List()
	if len(peers) == 0 || q == "" {
		return nil, false
	}
	body, _ := json.Marshal(DirQuery{Q: q, Limit: limit})
	ctx, cancel := context.WithTimeout(ctx, DirTimeout)
	defer cancel()
	results := make([][]proto.Profile, len(peers))
	failed := make([]bool, len(peers))
	var wg sync.WaitGroup
	for i, p := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ans, err := s.cfg.Link.Request(ctx, p.ID, OpDirSearch, body)
			if err == nil {
				results[i], err = DecodeDirAnswer(p, ans, limit)
			}
			if err != nil {
				failed[i] = true
				s.log.Debug("directory search: a peer did not answer", "peer", p.ID, "err", err)
			}
		}()
	}
	wg.Wait()
	for i := range peers {
		users = append(users, results[i]...)
		partial = partial || failed[i]
	}
	slices.SortStableFunc(users, func(a, b proto.Profile) int {
		if a.Name < b.Name {
			return -1
		} else if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return users, partial
}
