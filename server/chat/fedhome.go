package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"relais/server/fed"
	"relais/server/id"
	"relais/server/proto"
	"relais/server/store"
)

// The home side of a shared room: ordering, signing, pushing, answering
// pulls (federation.go).

// ordered runs inside the writer's transaction for each event appended at
// the home: for a room shared with other administrations, it signs the
// event's place in the chain, keeps the record for catch-up and pushes it
// once committed to every administration with members in the room.
func (s *Service) ordered(tx *store.Tx, ev *proto.Event, se store.Event) error {
	fd := s.fed
	if fd == nil || id.Home(ev.Room) != s.node {
		return nil
	}
	head, shared := tx.FedHead(ev.Room)
	// The administration of a member this event adds or removes: it
	// gains a right to the room from here (with a snapshot of the state
	// before), or loses it after here.
	var newPeer, lostPeer fed.AdminID
	var right store.FedRoomPeer
	if ev.Type == proto.EvMember && s.remoteUser(ev.User) {
		a, _ := fd.dir.AdminOf(ev.User)
		var has bool
		var err error
		if right, has, err = tx.FedRoomPeer(ev.Room, string(a)); err != nil {
			return err
		}
		switch memberOpOf(ev.Action) {
		case proto.MemberRemove:
			if has && right.Until == 0 {
				if others, err := s.othersOf(tx, ev.Room, a, ev.User); err != nil {
					return err
				} else if !others {
					lostPeer = a
				}
			}
		default:
			if !has || right.Until != 0 {
				newPeer = a
			}
		}
	}
	if !shared && newPeer == "" {
		return nil
	}
	if lostPeer != "" {
		right.Until = se.Seq
		if err := tx.PutFedRoomPeer(ev.Room, string(lostPeer), right); err != nil {
			return err
		}
	}
	rec := fed.Record{Frame: se.Frame}
	fd.mu.Lock()
	so := fd.origins[ev.From]
	fd.mu.Unlock()
	c := eventContent(ev)
	switch {
	case so != nil:
		if so.o.Type != ev.Type || so.o.Content != c.hash() || so.o.Room != ev.Room {
			return proto.Errorf(proto.CodeForbidden, "this request would make an event its administration did not sign")
		}
		rec.Origin, rec.OriginSig = so.o, so.sig
		so.seq = se.Seq
	case s.remoteUser(ev.From):
		return proto.Errorf(proto.CodeInternal, "an event of a remote user without their administration's signature")
	default:
		rec.Origin = fed.Origin{Room: ev.Room, Sender: ev.From, Admin: fd.Self.ID, CID: ev.CID, TS: ev.TS, Type: ev.Type, Content: c.hash()}
		rec.OriginSig = fed.SignOrigin(fd.Self.Key, rec.Origin)
	}
	rec.Order = fed.Order{Room: ev.Room, Seq: se.Seq, EventHash: fed.HashOf(se.Frame)}
	if shared {
		rec.Order.Prev = head.Hash
	}
	rec.OrderSig = fed.SignOrder(fd.Self.Key, rec.Order)
	if err := tx.PutFedRecord(ev.Room, se.Seq, rec.Order.EventHash, fed.AppendRecord(nil, &rec)); err != nil {
		return err
	}
	var snap *fed.Snapshot
	if newPeer != "" {
		var err error
		if snap, err = s.snapshot(tx, ev.Room, se.Seq-1); err != nil {
			return err
		}
		if err := tx.PutFedRoomPeer(ev.Room, string(newPeer), store.FedRoomPeer{Since: se.Seq, Snapshot: fed.AppendBatchFrame(nil, &fed.Batch{Snapshot: snap})}); err != nil {
			return err
		}
	}
	peers, err := s.peersIn(tx, ev.Room)
	if err != nil {
		return err
	}
	if ev.Type == proto.EvMember && s.remoteUser(ev.User) {
		// One who loses access still sees the event that removes them.
		a, _ := fd.dir.AdminOf(ev.User)
		peers[a] = true
	}
	one := fed.AppendBatchFrame(nil, &fed.Batch{Records: []fed.Record{rec}})
	var first []byte
	if snap != nil {
		first = fed.AppendBatchFrame(nil, &fed.Batch{Snapshot: snap, Records: []fed.Record{rec}})
	}
	tx.OnCommit(func() {
		for p := range peers {
			body := one
			if p == newPeer {
				body = first
			}
			if err := fd.Transport.Push(p, fed.OpRoomEvent, body); err != nil {
				// Best effort: the peer pulls on its timer and on link-up.
				s.log.Debug("push to peer failed", "peer", p, "room", ev.Room, "err", err)
			}
		}
	})
	return nil
}

// peersIn returns the administrations other than this one with members
// (joined or invited) in a room.
func (s *Service) peersIn(tx *store.Tx, roomID string) (map[fed.AdminID]bool, error) {
	members, err := tx.Members(roomID)
	if err != nil {
		return nil, err
	}
	out := map[fed.AdminID]bool{}
	for _, m := range members {
		if (m.State == store.Joined || m.State == store.Invited) && s.remoteUser(m.UserID) {
			a, _ := s.fed.dir.AdminOf(m.UserID)
			out[a] = true
		}
	}
	return out, nil
}

// othersOf reports whether administration a has members (joined or
// invited) in a room other than user.
func (s *Service) othersOf(tx *store.Tx, roomID string, a fed.AdminID, user string) (bool, error) {
	members, err := tx.Members(roomID)
	if err != nil {
		return false, err
	}
	for _, m := range members {
		if m.UserID != user && (m.State == store.Joined || m.State == store.Invited) {
			if ma, _ := s.fed.dir.AdminOf(m.UserID); ma == a {
				return true, nil
			}
		}
	}
	return false, nil
}

// roomState is the JSON of a snapshot's state.
type roomState struct {
	Room    store.Room          `json:"room"`
	Members []store.MemberEntry `json:"members"`
}

func (s *Service) snapshot(tx *store.Tx, roomID string, seq uint64) (*fed.Snapshot, error) {
	r, err := tx.Room(roomID)
	if err != nil {
		return nil, err
	}
	members, err := tx.Members(roomID)
	if err != nil {
		return nil, err
	}
	state, err := json.Marshal(roomState{Room: r, Members: members})
	if err != nil {
		return nil, err
	}
	snap := &fed.Snapshot{Room: roomID, Seq: seq, State: state}
	fed.SignSnapshot(s.fed.Self.Key, snap)
	return snap, nil
}

// handleRoomSync answers, at the home, a peer's pull: only for rooms that
// peer has a right to, and only from the event its first user came in at.
func (s *Service) handleRoomSync(_ context.Context, from fed.AdminID, body []byte) ([]byte, error) {
	q, err := fed.ParseSyncRequest(body)
	if err != nil {
		return nil, s.refuse(from, "room_sync", proto.CodeBadRequest, err)
	}
	var b fed.Batch
	err = s.db.View(func(tx *store.Tx) error {
		p, ok, err := tx.FedRoomPeer(q.Room, string(from))
		if err != nil {
			return err
		}
		if !ok || id.Home(q.Room) != s.node {
			return &fed.RemoteError{Code: proto.CodeNotFound, Reason: "no such room for you"}
		}
		after := q.After
		if p.Until != 0 && after >= p.Until {
			return nil // none of its users is in the room any more
		}
		if after+1 < p.Since {
			first, err := fed.ParseBatchFrame(p.Snapshot)
			if err != nil {
				return fmt.Errorf("chat: stored snapshot of %s: %w", q.Room, err)
			}
			b.Snapshot, after = first.Snapshot, p.Since-1
		}
		size := 0
		if b.Snapshot != nil {
			size = len(b.Snapshot.State)
		}
		return tx.FedRecords(q.Room, after, func(_ uint64, raw []byte) bool {
			if size += len(raw) + 8; len(b.Records) > 0 && size > fed.MaxBatchBytes {
				return false // the rest in the next pull
			}
			rec, perr := fed.ParseRecord(raw)
			if perr != nil {
				err = perr
				return false
			}
			b.Records = append(b.Records, rec)
			return len(b.Records) < q.Max && (p.Until == 0 || rec.Order.Seq < p.Until)
		})
	})
	if err != nil {
		var re *fed.RemoteError
		if errors.As(err, &re) {
			return nil, re
		}
		return nil, err
	}
	return fed.AppendBatchFrame(nil, &b), nil
}
