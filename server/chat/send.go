package chat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"relais/server/mls"
	"relais/server/proto"
	"relais/server/store"
)

// maxReactionKeys bounds the distinct reactions one message can carry.
const maxReactionKeys = 20

// Send appends a message, edit, deletion, reaction or encrypted payload to
// a room once the frame has been validated by proto.DecodeClient. f.ID is
// the idempotency key: sending the same id again returns the first ack
// and creates nothing.
func (s *Service) Send(ctx context.Context, a Actor, f *proto.ClientFrame) (proto.Ack, error) {
	begun := time.Now()
	ack, err := s.send(ctx, a, f)
	s.stats.send(err, time.Since(begun))
	return ack, err
}

func (s *Service) send(ctx context.Context, a Actor, f *proto.ClientFrame) (proto.Ack, error) {
	if f.File != nil && s.files == nil {
		return proto.Ack{}, proto.Errorf(proto.CodeUnavailable, "attachments are not available on this node")
	}
	var app *mls.Message
	if f.Type == proto.EvEncrypted {
		// Parsed before the write; the writer's transaction only checks
		// it against the room's group (mls.go).
		var err error
		if app, err = parseApplication(f.Room, f.Data); err != nil {
			return proto.Ack{}, err
		}
	}
	var ack proto.Ack
	var counted bool
	err := s.update(ctx, func(tx *store.Tx) error {
		counted = false
		if prev, ok, err := replayed(tx, a, f); ok || err != nil {
			ack = prev
			return err
		}
		room, me, err := access(tx, a, f.Room, ActSend)
		if err != nil {
			return err
		}
		ev := &proto.Event{Room: f.Room, From: a.User, Dev: a.Device, CID: f.ID, Type: f.Type}
		var flags byte
		var mentions []string
		switch f.Type {
		case proto.EvText, proto.EvFile:
			if room.Encrypted {
				return proto.Errorf(proto.CodeForbidden, "this room is end-to-end encrypted: send encrypted payloads only")
			}
			if f.ReplyTo != 0 {
				if _, err := target(tx, f.Room, f.ReplyTo); err != nil {
					return err
				}
				ev.ReplyTo = f.ReplyTo
			}
			if f.Type == proto.EvFile {
				if ev.File, err = s.attach(tx, a, f); err != nil {
					return err
				}
			}
			ev.Body, flags = f.Body, store.Countable
			if mentions, err = joinedMembers(tx, f.Room, f.Mentions, a.User); err != nil {
				return err
			}
			ev.Mentions = mentions
		case proto.EvEncrypted:
			if !room.Encrypted {
				return proto.Errorf(proto.CodeBadRequest, "this room is not encrypted")
			}
			if err := checkApplication(tx, a, f.Room, app); err != nil {
				return err
			}
			ev.Data, flags = f.Data, store.Countable
			if f.File != nil {
				// The reference in clear lets the node keep the file
				// while the message exists and report its scan.
				if ev.File, err = s.attach(tx, a, f); err != nil {
					return err
				}
			}
		case proto.EvEdit:
			if room.Encrypted {
				return proto.Errorf(proto.CodeForbidden, "edits in encrypted rooms travel inside encrypted payloads")
			}
			t, err := target(tx, f.Room, f.Target)
			if err != nil {
				return err
			}
			if t.ev.From != a.User || t.ev.Type != proto.EvText {
				return proto.Errorf(proto.CodeForbidden, "you can only edit your own text messages")
			}
			ev.Target, ev.Body = f.Target, f.Body
			if err := reindex(tx, t, f.Body); err != nil {
				return err
			}
			t.ev.Body, t.ev.Edited = f.Body, max(s.nowMS(), t.ev.TS)
			if err := t.save(tx); err != nil {
				return err
			}
		case proto.EvDelete:
			t, err := target(tx, f.Room, f.Target)
			if err != nil {
				return err
			}
			if t.ev.From != a.User && !Allowed(room.Kind, me.Role, ActDeleteOthers) {
				return proto.Errorf(proto.CodeForbidden, "you can only delete your own messages")
			}
			ev.Target = f.Target
			if t.ev.File != nil && s.files != nil {
				if err := s.files.Released(tx, f.Room, f.Target, t.ev.File.ID); err != nil {
					return err
				}
			}
			if err := reindex(tx, t, ""); err != nil {
				return err
			}
			// The tombstone keeps the event's place and author, nothing
			// of its content.
			t.ev = proto.Event{T: t.ev.T, Room: t.ev.Room, Seq: t.ev.Seq, TS: t.ev.TS, From: t.ev.From, Dev: t.ev.Dev, Type: t.ev.Type, Deleted: true}
			t.rec.Flags |= store.Redacted
			if err := t.save(tx); err != nil {
				return err
			}
		case proto.EvReact, proto.EvUnreact:
			if room.Encrypted {
				// An emoji and who chose it would tell the node about the
				// conversation.
				return proto.Errorf(proto.CodeForbidden, "reactions in encrypted rooms travel inside encrypted payloads")
			}
			t, err := target(tx, f.Room, f.Target)
			if err != nil {
				return err
			}
			users := t.ev.Reactions[f.Key]
			has := slices.Contains(users, a.User)
			switch {
			case f.Type == proto.EvReact && has, f.Type == proto.EvUnreact && !has:
				return proto.Errorf(proto.CodeConflict, "reaction already in that state")
			case f.Type == proto.EvReact:
				if users == nil && len(t.ev.Reactions) >= maxReactionKeys {
					return proto.Errorf(proto.CodeTooLarge, "too many different reactions on this message")
				}
				if t.ev.Reactions == nil {
					t.ev.Reactions = map[string][]string{}
				}
				t.ev.Reactions[f.Key] = append(users, a.User)
			default:
				users = slices.DeleteFunc(slices.Clone(users), func(u string) bool { return u == a.User })
				if len(users) == 0 {
					delete(t.ev.Reactions, f.Key)
				} else {
					t.ev.Reactions[f.Key] = users
				}
			}
			ev.Target, ev.Key = f.Target, f.Key
			if err := t.save(tx); err != nil {
				return err
			}
		default:
			return proto.Errorf(proto.CodeUnknownType, "unknown event type %q", f.Type)
		}
		se, err := s.appendEvent(tx, ev, flags, proto.MemberNone, "")
		if err != nil {
			return err
		}
		if ev.File != nil {
			if err := s.files.Posted(tx, f.Room, se.Seq, ev.File.ID); err != nil {
				return err
			}
		}
		if f.Type == proto.EvText || f.Type == proto.EvFile {
			if err := tx.IndexText(f.Room, se.Seq, ev.Body); err != nil {
				return err
			}
		}
		for _, u := range mentions {
			if err := tx.AddMention(u, f.Room, se.Seq); err != nil {
				return err
			}
		}
		if flags&store.Countable != 0 {
			// Writing in a room implies having read it.
			if err := tx.PutRead(f.Room, a.User, se.Seq, se.Ord); err != nil {
				return err
			}
		}
		if err := tx.PutIdem(a.User, f.ID, f.Room, se.Seq, se.TS); err != nil {
			return err
		}
		ack = proto.Ack{T: proto.TAck, ID: f.ID, Room: f.Room, Seq: se.Seq, TS: se.TS}
		counted = flags&store.Countable != 0
		return nil
	})
	if err == nil && counted {
		s.messages.Add(1)
	}
	return ack, err
}

// replayed returns the ack of an earlier send with the same idempotency
// key, so that a resend creates nothing.
func replayed(tx *store.Tx, a Actor, f *proto.ClientFrame) (proto.Ack, bool, error) {
	room, seq, ts, ok := tx.Idem(a.User, f.ID)
	if !ok {
		return proto.Ack{}, false, nil
	}
	if room != f.Room {
		return proto.Ack{}, true, proto.Errorf(proto.CodeConflict, "this id was already used for another room")
	}
	return proto.Ack{T: proto.TAck, ID: f.ID, Room: room, Seq: seq, TS: ts}, true, nil
}

// reindex replaces, in the search index, the words of a message's text
// by those of its new text ("" when it is deleted).
func reindex(tx *store.Tx, t *targetEvent, body string) error {
	if err := tx.UnindexText(t.ev.Room, t.ev.Seq, t.ev.Body); err != nil {
		return err
	}
	return tx.IndexText(t.ev.Room, t.ev.Seq, body)
}

// targetEvent is a stored message being edited, deleted or reacted to.
type targetEvent struct {
	rec store.Event
	ev  proto.Event
}

func (t *targetEvent) save(tx *store.Tx) error {
	t.rec.Frame = proto.Encode(&t.ev)
	return tx.ReplaceEvent(t.ev.Room, t.rec)
}

// target loads the message an event refers to: it must exist, be a
// message and not be deleted.
func target(tx *store.Tx, roomID string, seq uint64) (*targetEvent, error) {
	rec, err := tx.Event(roomID, seq)
	if errors.Is(err, store.ErrNotFound) {
		return nil, proto.Errorf(proto.CodeNotFound, "no message %d in this room", seq)
	}
	if err != nil {
		return nil, err
	}
	t := &targetEvent{rec: rec}
	if err := json.Unmarshal(rec.Frame, &t.ev); err != nil {
		return nil, fmt.Errorf("decode stored event %s/%d: %w", roomID, seq, err)
	}
	switch {
	case t.ev.Deleted:
		return nil, proto.Errorf(proto.CodeGone, "message %d was deleted", seq)
	case t.ev.Type != proto.EvText && t.ev.Type != proto.EvFile && t.ev.Type != proto.EvEncrypted:
		return nil, proto.Errorf(proto.CodeBadRequest, "event %d is not a message", seq)
	}
	return t, nil
}

// joinedMembers keeps the users of ids who are joined to the room, other
// than skip, without duplicates.
func joinedMembers(tx *store.Tx, roomID string, ids []string, skip string) ([]string, error) {
	var out []string
	for _, u := range dedupe(ids, skip) {
		m, err := tx.Member(roomID, u)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m.State == store.Joined {
			out = append(out, u)
		}
	}
	return out, nil
}
