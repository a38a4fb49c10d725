package ws_test

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"relais/cluster/nodetest"
	"relais/server/client"
	"relais/server/proto"
)

func TestGroupOfTwentyWithRoles(t *testing.T) {
	n := nodetest.Start(t)
	peers := make([]*peer, 20)
	var wg sync.WaitGroup
	for i := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			peers[i] = newPeer(t, n, fmt.Sprintf("Agent Numero%02d", i))
		}()
	}
	wg.Wait()
	owner, mod, m1, m2 := peers[0], peers[1], peers[2], peers[3]
	var invite []string
	for _, p := range peers[1:] {
		invite = append(invite, p.id())
	}
	var res map[string]string
	owner.call("create_room", map[string]any{"kind": "group", "name": "Cellule de crise", "encrypted": false, "users": invite}, &res)
	room := roomOf(t, res)
	for _, p := range peers[1:] {
		p.waitFrame("the invitation", func(f client.Frame) bool {
			var r proto.Room
			decodeRaw(t, f, &r)
			return f.T == proto.TRoom && r.ID == room && r.State == "invited" && r.InvitedBy == owner.id()
		})
		// Invited people see no events before they join.
		if p.has(isEv(room, "create")) {
			t.Fatalf("%s saw the room's events before joining", p.c.Me.Name)
		}
		p.call("join", map[string]any{"room": room}, nil)
	}
	var members struct {
		Members []proto.Member `json:"members"`
	}
	owner.call("members", map[string]any{"room": room}, &members)
	if len(members.Members) != 20 {
		t.Fatalf("%d members, want 20", len(members.Members))
	}
	ack := m1.send(room, "Point de situation à 17 h")
	for _, p := range peers {
		p.waitFrame("m1's message", func(f client.Frame) bool { return isEv(room, "text")(f) && f.Seq == ack.Seq })
	}

	outsider := newPeer(t, n, "Hors Groupe")
	steps := []struct {
		name string
		who  *peer
		t    string
		args map[string]any
		want string
	}{
		{"member cannot invite", m1, "invite", map[string]any{"user": outsider.id()}, proto.CodeForbidden},
		{"member cannot rename", m1, "update_room", map[string]any{"name": "Piraté"}, proto.CodeForbidden},
		{"member cannot kick", m1, "kick", map[string]any{"user": m2.id()}, proto.CodeForbidden},
		{"outsider cannot read", outsider, "history", map[string]any{}, proto.CodeNotFound},
		{"outsider cannot join a private group", outsider, "join", map[string]any{}, proto.CodeNotFound},
		{"owner promotes a moderator", owner, "set_role", map[string]any{"user": mod.id(), "role": "moderator"}, ""},
		{"moderator cannot change roles", mod, "set_role", map[string]any{"user": m1.id(), "role": "moderator"}, proto.CodeForbidden},
		{"moderator renames", mod, "update_room", map[string]any{"name": "Cellule de crise — inondations"}, ""},
		{"moderator cannot allow externals", mod, "update_room", map[string]any{"externals": true}, proto.CodeForbidden},
		{"moderator invites", mod, "invite", map[string]any{"user": outsider.id()}, ""},
		{"inviting twice conflicts", mod, "invite", map[string]any{"user": outsider.id()}, proto.CodeConflict},
		{"moderator kicks a member", mod, "kick", map[string]any{"user": m2.id()}, ""},
		{"moderator cannot kick the owner", mod, "kick", map[string]any{"user": owner.id()}, proto.CodeForbidden},
		{"kicked member cannot send", m2, "history", map[string]any{}, proto.CodeNotFound},
		{"moderator bans", mod, "ban", map[string]any{"user": peers[4].id()}, ""},
		{"banned cannot be invited", owner, "invite", map[string]any{"user": peers[4].id()}, proto.CodeConflict},
		{"banned cannot join", peers[4], "join", map[string]any{}, proto.CodeForbidden},
		{"unban", owner, "unban", map[string]any{"user": peers[4].id()}, ""},
		{"last owner cannot leave", owner, "leave", map[string]any{}, proto.CodeLastOwner},
		{"last owner cannot step down", owner, "set_role", map[string]any{"user": owner.id(), "role": "member"}, proto.CodeLastOwner},
		{"owner hands over", owner, "set_role", map[string]any{"user": mod.id(), "role": "owner"}, ""},
		{"former owner leaves", owner, "leave", map[string]any{}, ""},
		{"new owner deletes a member's message", mod, "send", map[string]any{"type": "delete", "target": ack.Seq}, ""},
	}
	for _, s := range steps {
		args := map[string]any{"room": room}
		for k, v := range s.args {
			args[k] = v
		}
		var got string
		if s.t == "send" {
			got = s.who.sendCode(args)
		} else {
			got = s.who.code(s.t, args)
		}
		if got != s.want {
			t.Fatalf("%s: got %q, want %q", s.name, got, s.want)
		}
	}
	// Everyone still in the room saw every change since the last member
	// joined, in the same order.
	since := peers[19].events(room)[0].Seq
	after := func(p *peer) []client.Frame {
		var out []client.Frame
		for _, f := range p.events(room) {
			if f.Seq >= since {
				out = append(out, f)
			}
		}
		return out
	}
	for _, p := range append([]*peer{m1}, peers[5:]...) {
		p.waitFrame("the deletion, last event", isEv(room, "delete"))
	}
	want := after(m1)
	for _, p := range peers[5:] {
		got := after(p)
		if len(got) != len(want) {
			seqs := func(fs []client.Frame) (out []string) {
				for _, f := range fs {
					out = append(out, fmt.Sprintf("%d:%s/%s", f.Seq, f.Type, f.Body))
				}
				return out
			}
			t.Fatalf("%s has %v, m1 %v", p.c.Me.Name, seqs(got), seqs(want))
		}
		for i := range got {
			if got[i].Seq != want[i].Seq || got[i].Type != want[i].Type {
				t.Fatalf("%s event %d = %d/%s, m1 has %d/%s", p.c.Me.Name, i, got[i].Seq, got[i].Type, want[i].Seq, want[i].Type)
			}
		}
	}
}

func TestForumFromDirectory(t *testing.T) {
	n := nodetest.Start(t)
	helene := newPeer(t, n, "Hélène Lefèvre")
	paul := newPeer(t, n, "Paul Bernard")

	var dir struct {
		Users []proto.Profile `json:"users"`
	}
	paul.call("directory", map[string]any{"q": "helene"}, &dir)
	if len(dir.Users) != 1 || dir.Users[0].ID != helene.id() || dir.Users[0].Name != "Hélène Lefèvre" {
		t.Fatalf("directory 'helene' = %+v", dir.Users)
	}
	paul.call("directory", map[string]any{"q": "LEFEV"}, &dir)
	if len(dir.Users) != 1 {
		t.Fatalf("directory 'LEFEV' = %+v", dir.Users)
	}

	var res map[string]string
	helene.call("create_room", map[string]any{"kind": "forum", "name": "Marchés publics", "topic": "Questions et réponses"}, &res)
	forum := roomOf(t, res)
	var forums struct {
		Forums []struct {
			ID     string `json:"id"`
			Count  int    `json:"count"`
			Joined bool   `json:"joined"`
		} `json:"forums"`
	}
	paul.call("forums", map[string]any{"q": "marches"}, &forums)
	if len(forums.Forums) != 1 || forums.Forums[0].ID != forum || forums.Forums[0].Joined || forums.Forums[0].Count != 1 {
		t.Fatalf("forums 'marches' = %+v", forums.Forums)
	}
	if code := paul.code("history", map[string]any{"room": forum}); code != proto.CodeNotMember {
		t.Fatalf("reading a forum before joining: %q", code)
	}
	paul.call("join", map[string]any{"room": forum}, nil)
	paul.waitFrame("the forum", func(f client.Frame) bool { return f.T == proto.TRoom && f.ID == forum })
	ack := paul.send(forum, "Bonjour, une question sur le seuil des 40 000 €")
	helene.waitFrame("paul's question", func(f client.Frame) bool { return f.Seq == ack.Seq && f.Room == forum })
	// Forums are never encrypted and never open to externals.
	if code := helene.code("update_room", map[string]any{"room": forum, "externals": true}); code != proto.CodeExternalForbidden {
		t.Fatalf("externals in a forum: %q", code)
	}
}

func TestExternalLimitedToTheirRoom(t *testing.T) {
	n := nodetest.Start(t)
	agent := newPeer(t, n, "Claire Agent")
	other := newPeer(t, n, "Autre Agent")
	var res map[string]string
	agent.call("create_room", map[string]any{"kind": "group", "name": "Projet école", "encrypted": false, "externals": true}, &res)
	room := roomOf(t, res)
	other.call("create_room", map[string]any{"kind": "group", "name": "Interne", "encrypted": false}, &res)
	internal := roomOf(t, res)
	other.call("create_room", map[string]any{"kind": "forum", "name": "Forum agents"}, &res)
	forum := roomOf(t, res)

	// An address of the administration cannot be invited as external.
	if code := agent.code("invite_external", map[string]any{"room": room, "email": "someone@" + nodetest.Domain}); code != proto.CodeConflict {
		t.Fatalf("inviting an agent's address as external: %q", code)
	}
	if code := agent.code("invite_external", map[string]any{"room": internal, "email": "x@entreprise.fr"}); code != proto.CodeNotFound {
		t.Fatalf("inviting into a room one is not in: %q", code)
	}
	agent.call("invite_external", map[string]any{"room": room, "email": "Marc.Artisan@Entreprise-BTP.fr"}, &res)
	extID := res["user"]

	// No relay: the operator approves the invitation and hands the link over.
	link, err := n.Accounts.ApproveInvitation(context.Background(), "marc.artisan@entreprise-btp.fr")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(link)
	anon := n.Client()
	var info map[string]string
	if err := anon.Do(context.Background(), "GET", "/api/v1/invitation?token="+url.QueryEscape(u.Query().Get("token")), nil, &info); err != nil {
		t.Fatal(err)
	}
	if info["room_name"] != "Projet école" || info["by"] != "Claire Agent" {
		t.Fatalf("invitation info = %v", info)
	}
	if err := anon.Do(context.Background(), "POST", "/api/v1/invitation/accept", map[string]string{"token": u.Query().Get("token"), "password": nodetest.Password}, nil); err != nil {
		t.Fatal(err)
	}
	ext := n.Client()
	if err := ext.Login(context.Background(), "marc.artisan@entreprise-btp.fr", nodetest.Password); err != nil {
		t.Fatal(err)
	}
	if !ext.Me.External || ext.Me.ID != extID {
		t.Fatalf("external me = %+v", ext.Me)
	}
	e := connect(t, ext)
	e.waitFrame("the room", func(f client.Frame) bool {
		var r proto.Room
		decodeRaw(t, f, &r)
		return f.T == proto.TRoom && r.ID == room && r.State == "joined"
	})
	ack := e.send(room, "Bonjour, voici le devis")
	agent.waitFrame("the external's message", func(f client.Frame) bool { return f.Seq == ack.Seq && f.From == extID })

	for _, c := range []struct {
		name string
		t    string
		args map[string]any
		want string
	}{
		{"directory", "directory", map[string]any{"q": "a"}, proto.CodeExternalForbidden},
		{"forums", "forums", map[string]any{"q": ""}, proto.CodeExternalForbidden},
		{"join a forum", "join", map[string]any{"room": forum}, proto.CodeExternalForbidden},
		{"read another room", "history", map[string]any{"room": internal}, proto.CodeNotFound},
		{"open a DM", "open_dm", map[string]any{"user": agent.id()}, proto.CodeExternalForbidden},
		{"create a room", "create_room", map[string]any{"kind": "group", "name": "x"}, proto.CodeExternalForbidden},
		{"invite", "invite", map[string]any{"room": room, "user": other.id()}, proto.CodeForbidden},
		{"invite an external", "invite_external", map[string]any{"room": room, "email": "y@z.fr"}, proto.CodeExternalForbidden},
	} {
		if got := e.code(c.t, c.args); got != c.want {
			t.Errorf("external %s: got %q, want %q", c.name, got, c.want)
		}
	}
	// Profiles: only the people of their room.
	var users struct {
		Users []proto.Profile `json:"users"`
	}
	e.call("users", map[string]any{"ids": []string{agent.id(), other.id()}}, &users)
	if len(users.Users) != 1 || users.Users[0].ID != agent.id() {
		t.Fatalf("external sees profiles %+v", users.Users)
	}
	// Agents see the external marked as such, never their address.
	agent.call("users", map[string]any{"ids": []string{extID}}, &users)
	if len(users.Users) != 1 || !users.Users[0].External || users.Users[0].Org != "entreprise-btp.fr" {
		t.Fatalf("agent sees external as %+v", users.Users)
	}
	agent.call("directory", map[string]any{"q": "marc"}, &dir0)
	if len(dir0.Users) != 0 {
		t.Fatalf("external listed in the directory: %+v", dir0.Users)
	}
	for _, f := range append(agent.events(room), e.events(room)...) {
		if strings.Contains(string(f.Raw), "entreprise-btp.fr") {
			t.Fatalf("an event carries the external's address: %s", f.Raw)
		}
	}
	// A room with externals cannot stop accepting them while they are in.
	if code := agent.code("update_room", map[string]any{"room": room, "externals": false}); code != proto.CodeConflict {
		t.Fatalf("closing a room to externals with an external inside: %q", code)
	}
}

var dir0 struct {
	Users []proto.Profile `json:"users"`
}
