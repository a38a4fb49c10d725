package chat_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"relais/server/bus"
	"relais/server/chat"
	"relais/server/id"
	"relais/server/proto"
	"relais/server/store"
	"relais/server/store/storetest"
)

// world is a chat service on a real bbolt store, with no bus to speak
// of: the rules of chat.Service checked where they live, not through
// websocket frames.
type world struct {
	t   *testing.T
	db  *store.DB
	c   *chat.Service
	ctx context.Context
	n   int
}

func newWorld(t *testing.T) *world {
	t.Helper()
	db := storetest.Open(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return &world{t: t, db: db, c: chat.New(db, bus.Discard{}, chat.Options{}), ctx: ctx}
}

// user creates an active account (an external one if external) and
// returns it as an actor with a device.
func (w *world) user(external bool) chat.Actor {
	w.t.Helper()
	w.n++
	u := store.User{ID: id.NewUser(w.db.Node()), Email: fmt.Sprintf("u%d@agents.gouv.fr", w.n), Name: fmt.Sprintf("Agent %d", w.n),
		State: store.UserActive, External: external, Created: time.Now()}
	if err := w.db.Update(w.ctx, func(tx *store.Tx) error { return tx.CreateUser(u) }); err != nil {
		w.t.Fatal(err)
	}
	return chat.Actor{User: u.ID, Device: id.NewDevice(), External: external}
}

// room returns the stored room.
func (w *world) room(roomID string) store.Room {
	w.t.Helper()
	var r store.Room
	if err := w.db.View(func(tx *store.Tx) error {
		var err error
		r, err = tx.Room(roomID)
		return err
	}); err != nil {
		w.t.Fatal(err)
	}
	return r
}

// must fails the test on err.
func (w *world) must(err error) {
	w.t.Helper()
	if err != nil {
		w.t.Fatal(err)
	}
}

// group creates a room of kind owned by owner, with members joined.
func (w *world) group(kind store.RoomKind, owner chat.Actor, members ...chat.Actor) string {
	w.t.Helper()
	room, err := w.c.CreateRoom(w.ctx, owner, chat.CreateRoomRequest{Kind: kind, Name: "Salle " + string(kind), Externals: kind == store.Group})
	w.must(err)
	for _, m := range members {
		if kind != store.Forum {
			w.must(w.c.Invite(w.ctx, owner, room, m.User))
		}
		w.must(w.c.Join(w.ctx, m, room))
	}
	return room
}

func ptr(b bool) *bool { return &b }

// TestRoomsEncryptedByDefault: a room created through chat directly,
// without saying, is end-to-end encrypted when it is a direct room or a
// group, and a forum never is, whatever is asked.
func TestRoomsEncryptedByDefault(t *testing.T) {
	for _, c := range []struct {
		name      string
		kind      store.RoomKind
		encrypted *bool
		want      bool
	}{
		{"group, unsaid", store.Group, nil, true},
		{"group, plain asked", store.Group, ptr(false), false},
		{"group, encrypted asked", store.Group, ptr(true), true},
		{"forum, unsaid", store.Forum, nil, false},
		{"forum, encrypted asked", store.Forum, ptr(true), false},
		{"direct, unsaid", store.Direct, nil, true},
		{"direct, plain asked", store.Direct, ptr(false), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			alice, bob := w.user(false), w.user(false)
			var room string
			var err error
			if c.kind == store.Direct {
				room, err = w.c.OpenDM(w.ctx, alice, bob.User, c.encrypted)
			} else {
				room, err = w.c.CreateRoom(w.ctx, alice, chat.CreateRoomRequest{Kind: c.kind, Name: "Salle", Encrypted: c.encrypted})
			}
			w.must(err)
			if got := w.room(room).Encrypted; got != c.want {
				t.Fatalf("encrypted = %v, want %v", got, c.want)
			}
			if chat.DefaultEncrypted(c.kind) != (c.kind != store.Forum) {
				t.Fatalf("DefaultEncrypted(%s) = %v", c.kind, chat.DefaultEncrypted(c.kind))
			}
		})
	}
}

// TestServiceRules: each rule of rooms and membership refused with its
// stable code, and the state left as it was.
func TestServiceRules(t *testing.T) {
	type cast struct {
		owner, mod, member, outsider, ext chat.Actor
		group, forum, dm                  string
	}
	for _, c := range []struct {
		name string
		do   func(w *world, p cast) error
		code string
	}{
		{"an external creates a room", func(w *world, p cast) error {
			_, err := w.c.CreateRoom(w.ctx, p.ext, chat.CreateRoomRequest{Kind: store.Group, Name: "x"})
			return err
		}, proto.CodeExternalForbidden},
		{"a room of no known kind", func(w *world, p cast) error {
			_, err := w.c.CreateRoom(w.ctx, p.owner, chat.CreateRoomRequest{Kind: "direct", Name: "x"})
			return err
		}, proto.CodeBadRequest},
		{"a direct room with oneself", func(w *world, p cast) error {
			_, err := w.c.OpenDM(w.ctx, p.owner, p.owner.User, nil)
			return err
		}, proto.CodeBadRequest},
		{"a direct room with an external", func(w *world, p cast) error {
			_, err := w.c.OpenDM(w.ctx, p.owner, p.ext.User, nil)
			return err
		}, proto.CodeNotFound},
		{"a direct room opened by an external", func(w *world, p cast) error {
			_, err := w.c.OpenDM(w.ctx, p.ext, p.owner.User, nil)
			return err
		}, proto.CodeExternalForbidden},
		{"a direct room with nobody", func(w *world, p cast) error {
			_, err := w.c.OpenDM(w.ctx, p.owner, id.NewUser(w.db.Node()), nil)
			return err
		}, proto.CodeNotFound},
		{"a member invites", func(w *world, p cast) error { return w.c.Invite(w.ctx, p.member, p.group, p.outsider.User) }, proto.CodeForbidden},
		{"an outsider invites", func(w *world, p cast) error { return w.c.Invite(w.ctx, p.outsider, p.group, p.outsider.User) }, proto.CodeNotFound},
		{"an outsider reads a forum's members", func(w *world, p cast) error {
			_, err := w.c.Members(p.outsider, p.forum)
			return err
		}, proto.CodeNotMember},
		{"an external joins a forum", func(w *world, p cast) error { return w.c.Join(w.ctx, p.ext, p.forum) }, proto.CodeExternalForbidden},
		{"an outsider joins a group uninvited", func(w *world, p cast) error { return w.c.Join(w.ctx, p.outsider, p.group) }, proto.CodeNotFound},
		{"inviting someone already in", func(w *world, p cast) error { return w.c.Invite(w.ctx, p.owner, p.group, p.member.User) }, proto.CodeConflict},
		{"a moderator removes the owner", func(w *world, p cast) error { return w.c.Kick(w.ctx, p.mod, p.group, p.owner.User) }, proto.CodeForbidden},
		{"a moderator bans themselves", func(w *world, p cast) error { return w.c.Ban(w.ctx, p.mod, p.group, p.mod.User) }, proto.CodeBadRequest},
		{"banning from a group someone never in it", func(w *world, p cast) error { return w.c.Ban(w.ctx, p.owner, p.group, p.outsider.User) }, proto.CodeNotMember},
		{"the last owner leaves others behind", func(w *world, p cast) error { return w.c.Leave(w.ctx, p.owner, p.group) }, proto.CodeLastOwner},
		{"the last owner steps down", func(w *world, p cast) error {
			return w.c.SetRole(w.ctx, p.owner, p.group, p.owner.User, store.Member)
		}, proto.CodeLastOwner},
		{"a moderator promotes", func(w *world, p cast) error {
			return w.c.SetRole(w.ctx, p.mod, p.group, p.member.User, store.Moderator)
		}, proto.CodeForbidden},
		{"an unknown role", func(w *world, p cast) error { return w.c.SetRole(w.ctx, p.owner, p.group, p.member.User, "king") }, proto.CodeBadRequest},
		{"an external made moderator", func(w *world, p cast) error {
			return w.c.SetRole(w.ctx, p.owner, p.group, p.ext.User, store.Moderator)
		}, proto.CodeExternalForbidden},
		{"inviting a third person into a direct room", func(w *world, p cast) error {
			return w.c.Invite(w.ctx, p.owner, p.dm, p.outsider.User)
		}, proto.CodeForbidden},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			var p cast
			p.owner, p.mod, p.member, p.outsider, p.ext = w.user(false), w.user(false), w.user(false), w.user(false), w.user(true)
			p.group = w.group(store.Group, p.owner, p.mod, p.member, p.ext)
			w.must(w.c.SetRole(w.ctx, p.owner, p.group, p.mod.User, store.Moderator))
			p.forum = w.group(store.Forum, p.owner, p.member)
			var err error
			p.dm, err = w.c.OpenDM(w.ctx, p.owner, p.member.User, nil)
			w.must(err)
			before := members(t, w, p.owner, p.group)

			err = c.do(w, p)
			if pe := proto.AsError(err); pe == nil || pe.Code != c.code {
				t.Fatalf("got %v, want code %s", err, c.code)
			}
			if after := members(t, w, p.owner, p.group); after != before {
				t.Fatalf("a refusal changed the group's members:\n%s\nthen\n%s", before, after)
			}
		})
	}
}

// members describes a room's members and roles as one string.
func members(t *testing.T, w *world, a chat.Actor, room string) string {
	t.Helper()
	ms, err := w.c.Members(a, room)
	w.must(err)
	return fmt.Sprintf("%+v", ms)
}

// TestServiceAllowedMoves: what the rules let through does what it says —
// the moves the refusals above are the other side of.
func TestServiceAllowedMoves(t *testing.T) {
	w := newWorld(t)
	owner, member, stranger := w.user(false), w.user(false), w.user(false)
	group := w.group(store.Group, owner, member)
	forum := w.group(store.Forum, owner)

	// A forum may ban an agent who was never in it, who then cannot join.
	w.must(w.c.Ban(w.ctx, owner, forum, stranger.User))
	if err := w.c.Join(w.ctx, stranger, forum); proto.AsError(err) == nil || proto.AsError(err).Code != proto.CodeForbidden {
		t.Fatalf("a banned agent joined the forum: %v", err)
	}
	w.must(w.c.Unban(w.ctx, owner, forum, stranger.User))
	w.must(w.c.Join(w.ctx, stranger, forum))

	// An owner hands over, then may leave.
	w.must(w.c.SetRole(w.ctx, owner, group, member.User, store.Owner))
	w.must(w.c.Leave(w.ctx, owner, group))
	if _, err := w.c.Members(owner, group); proto.AsError(err) == nil || proto.AsError(err).Code != proto.CodeNotFound {
		t.Fatalf("who left a group still reads its members: %v", err)
	}
	// The same direct room comes back for the same two people.
	a, err := w.c.OpenDM(w.ctx, owner, member.User, nil)
	w.must(err)
	b, err := w.c.OpenDM(w.ctx, member, owner.User, ptr(false))
	w.must(err)
	if a != b || !w.room(b).Encrypted {
		t.Fatalf("direct rooms %s and %s (encrypted %v): want one, encrypted as first made", a, b, w.room(b).Encrypted)
	}
}
