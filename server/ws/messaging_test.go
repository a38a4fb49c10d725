package ws_test

import (
	"fmt"
	"testing"

	"relais/cluster/nodetest"
	"relais/server/client"
	"relais/server/proto"
)

func isEv(room, typ string) func(client.Frame) bool {
	return func(f client.Frame) bool { return f.T == proto.TEvent && f.Room == room && f.Type == typ }
}

func TestDirectMessages(t *testing.T) {
	n := nodetest.Start(t)
	alice := newPeer(t, n, "Alice Martin")
	bob := newPeer(t, n, "Bob Durand")

	var res map[string]string
	alice.call("open_dm", map[string]any{"user": bob.id(), "encrypted": false}, &res)
	room := roomOf(t, res)
	// Opening again returns the same room.
	alice.call("open_dm", map[string]any{"user": bob.id()}, &res)
	if res["room"] != room {
		t.Fatalf("second open_dm gave %s, want %s", res["room"], room)
	}
	bob.waitFrame("the DM room", func(f client.Frame) bool { return f.T == proto.TRoom && f.ID == room })

	ack := alice.send(room, "Bonjour Bob, la réunion est à 15 h.")
	got := bob.waitFrame("Alice's message", func(f client.Frame) bool { return isEv(room, "text")(f) && f.Seq == ack.Seq })
	if got.Body != "Bonjour Bob, la réunion est à 15 h." || got.From != alice.id() {
		t.Fatalf("bob got %+v", got)
	}

	// A resend with the same id creates nothing and gets the same ack.
	ctx := t.Context()
	frame := map[string]any{"t": "send", "id": "fixed-id-1", "room": room, "type": "text", "body": "une fois"}
	a1, err := bob.conn().SendEvent(ctx, frame)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := bob.conn().SendEvent(ctx, frame)
	if err != nil || a1.Seq != a2.Seq || a1.TS != a2.TS {
		t.Fatalf("resend: %+v %+v %v", a1, a2, err)
	}

	// Edit, react, unreact, read receipt, typing, delete.
	if _, err := alice.sendEv(map[string]any{"room": room, "type": "edit", "target": ack.Seq, "body": "La réunion est à 16 h."}); err != nil {
		t.Fatal(err)
	}
	bob.waitFrame("the edit", func(f client.Frame) bool { return isEv(room, "edit")(f) && f.Body == "La réunion est à 16 h." })
	if code := bob.sendCode(map[string]any{"room": room, "type": "edit", "target": ack.Seq, "body": "pirate"}); code != proto.CodeForbidden {
		t.Fatalf("editing someone else's message: %q", code)
	}
	if _, err := bob.sendEv(map[string]any{"room": room, "type": "react", "target": ack.Seq, "key": "👍"}); err != nil {
		t.Fatal(err)
	}
	alice.waitFrame("the reaction", isEv(room, "react"))
	if code := bob.sendCode(map[string]any{"room": room, "type": "react", "target": ack.Seq, "key": "👍"}); code != proto.CodeConflict {
		t.Fatalf("double reaction: %q", code)
	}
	later := alice.send(room, "Tu as vu ?")
	bob.call("read", map[string]any{"room": room, "seq": later.Seq}, nil)
	alice.waitFrame("bob's receipt", func(f client.Frame) bool {
		return f.T == proto.TReceipt && f.Room == room && f.User == bob.id() && f.Seq == later.Seq
	})
	bob.conn().Write(ctx, map[string]any{"t": "typing", "room": room, "on": true})
	alice.waitFrame("bob typing", func(f client.Frame) bool { return f.T == proto.TTypingEv && f.User == bob.id() && f.On })

	if _, err := alice.sendEv(map[string]any{"room": room, "type": "delete", "target": ack.Seq}); err != nil {
		t.Fatal(err)
	}
	bob.waitFrame("the deletion", isEv(room, "delete"))
	if code := bob.sendCode(map[string]any{"room": room, "type": "react", "target": ack.Seq, "key": "❤️"}); code != proto.CodeGone {
		t.Fatalf("reacting to a deleted message: %q", code)
	}

	// History shows the tombstone: the content is gone, the place stays.
	var page struct {
		Events []proto.Event `json:"events"`
	}
	bob.call("history", map[string]any{"room": room, "limit": 50}, &page)
	var tomb *proto.Event
	for i := range page.Events {
		if page.Events[i].Seq == ack.Seq {
			tomb = &page.Events[i]
		}
	}
	if tomb == nil || !tomb.Deleted || tomb.Body != "" || tomb.Reactions != nil || tomb.From != alice.id() {
		t.Fatalf("tombstone = %+v", tomb)
	}

	// Unread counters follow the read marker.
	bob.send(room, "un")
	bob.send(room, "deux")
	m3 := bob.send(room, "trois @alice")
	var room2 struct {
		Unread   int `json:"unread"`
		Mentions int `json:"mentions"`
	}
	fresh := connect(t, alice.c)
	f := fresh.waitFrame("room summary", func(f client.Frame) bool { return f.T == proto.TRoom && f.ID == room })
	decodeRaw(t, f, &room2)
	if room2.Unread != 3 {
		t.Fatalf("unread = %d, want 3 (bob's three messages after alice's last)", room2.Unread)
	}
	alice.call("read", map[string]any{"room": room, "seq": m3.Seq}, nil)
	u := fresh.waitFrame("unread update", func(f client.Frame) bool { return f.T == proto.TUnread && f.Room == room })
	decodeRaw(t, u, &room2)
	if room2.Unread != 0 {
		t.Fatalf("unread after reading = %d", room2.Unread)
	}
}

func TestMentionsCountInForum(t *testing.T) {
	n := nodetest.Start(t)
	alice := newPeer(t, n, "Alice Forum")
	bob := newPeer(t, n, "Bob Forum")
	var res map[string]string
	alice.call("create_room", map[string]any{"kind": "forum", "name": "Urbanisme", "topic": "PLU 2027"}, &res)
	room := roomOf(t, res)
	bob.call("join", map[string]any{"room": room}, nil)
	alice.waitFrame("bob's join", func(f client.Frame) bool { return isEv(room, "member")(f) && f.User == bob.id() })
	for i := range 3 {
		m := map[string]any{"room": room, "type": "text", "body": fmt.Sprintf("message %d", i)}
		if i > 0 {
			m["mentions"] = []string{bob.id(), "u-nabcdefgh-abcdefghijklmnop"}
		}
		if _, err := alice.sendEv(m); err != nil {
			t.Fatal(err)
		}
	}
	again := connect(t, bob.c)
	f := again.waitFrame("room", func(f client.Frame) bool { return f.T == proto.TRoom && f.ID == room })
	var r proto.Room
	decodeRaw(t, f, &r)
	if r.Unread != 3 || r.Mentions != 2 {
		t.Fatalf("unread %d mentions %d, want 3 and 2", r.Unread, r.Mentions)
	}
}
