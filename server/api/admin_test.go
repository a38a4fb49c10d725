package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/adminops"
	"relais/server/api"
	"relais/server/client"
	"relais/server/proto"
	"relais/server/store"
)

// adminBodies are request bodies that would change something if the
// endpoint obeyed: approving a pending registration, adding a domain.
var adminBodies = map[string]any{
	"POST /api/v1/admin/users/approve":        map[string]string{"email": "en.attente@agents.gouv.fr"},
	"POST /api/v1/admin/users/deactivate":     map[string]string{"email": "en.attente@agents.gouv.fr"},
	"POST /api/v1/admin/users/reactivate":     map[string]string{"email": "en.attente@agents.gouv.fr"},
	"POST /api/v1/admin/users/promote":        map[string]string{"email": "en.attente@agents.gouv.fr"},
	"POST /api/v1/admin/users/reset-password": map[string]string{"email": "en.attente@agents.gouv.fr"},
	"POST /api/v1/admin/domains/add":          map[string][]string{"domains": {"pirate.fr"}},
	"POST /api/v1/admin/domains/remove":       map[string][]string{"domains": {"pirate.fr"}},
	"POST /api/v1/admin/invitations/approve":  map[string]string{"email": "partenaire@exemple-externe.fr"},
}

// newExternal invites an external correspondent into a room of agent's,
// has the invitation approved (no relay) and accepted, and signs them in.
func newExternal(t *testing.T, n *nodetest.Node, agent *client.Client, email string) *client.Client {
	t.Helper()
	ctx := context.Background()
	conn := nodetest.Synced(t, ctx, agent)
	room := nodetest.CreateRoom(t, ctx, conn, map[string]any{"kind": "group", "name": "Partenaires", "externals": true})
	if err := conn.Call(ctx, "invite_external", map[string]any{"room": room, "email": email}, nil); err != nil {
		t.Fatalf("invite %s: %v", email, err)
	}
	link, err := n.Accounts.ApproveInvitation(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	ext := n.Client()
	if err := ext.Do(ctx, "POST", "/api/v1/invitation/accept", map[string]string{"token": tokenOf(t, link), "password": nodetest.Password}, nil); err != nil {
		t.Fatalf("accept: %v", err)
	}
	if err := ext.Login(ctx, email, nodetest.Password); err != nil {
		t.Fatal(err)
	}
	return ext
}

// TestAdminEndpointsRefuseNonAdministrators: on every endpoint of the
// admin page, an agent who is not an administrator and an external get
// 403 forbidden (detail admin_only), an outsider without a session 401
// unauthorized; an administrator's session used from another site is
// refused too; nothing they asked for happened and nothing is in the
// audit log. An administrator, through the same table, is served.
func TestAdminEndpointsRefuseNonAdministrators(t *testing.T) {
	n := nodetest.Start(t)
	ctx := context.Background()
	admin := n.NewUserEmail("chef.service@agents.gouv.fr", "Chef Service")
	if err := n.Accounts.PromoteAdmin(ctx, "chef.service@agents.gouv.fr"); err != nil {
		t.Fatal(err)
	}
	agent := n.NewUser("Agent Ordinaire")
	ext := newExternal(t, n, agent, "partenaire@exemple-externe.fr")
	if _, err := n.Client().Register(ctx, "en.attente@agents.gouv.fr", nodetest.Password, "En Attente"); err != nil {
		t.Fatal(err)
	}
	routes := api.AdminRoutes()
	if len(routes) < 15 {
		t.Fatalf("only %d admin routes: %v", len(routes), routes)
	}
	for _, who := range []struct {
		name   string
		c      *client.Client
		status int
		code   string
	}{
		{"outsider", n.Client(), http.StatusUnauthorized, proto.CodeUnauthorized},
		{"agent", agent, http.StatusForbidden, proto.CodeForbidden},
		{"external", ext, http.StatusForbidden, proto.CodeForbidden},
	} {
		for _, rt := range routes {
			method, path, _ := strings.Cut(rt, " ")
			err := who.c.Do(ctx, method, path, adminBodies[rt], nil)
			var e *client.Error
			if !errors.As(err, &e) || e.Status != who.status || e.Code != who.code {
				t.Errorf("%s: %s answered %v, want %d %s", who.name, rt, err, who.status, who.code)
				continue
			}
			if who.status == http.StatusForbidden && e.Detail != "admin_only" {
				t.Errorf("%s: %s detail %q, want admin_only", who.name, rt, e.Detail)
			}
		}
	}
	// The administrator's own session, from another site's page: refused
	// like every cross-site state change.
	req, _ := http.NewRequest("POST", n.URL()+"/api/v1/admin/domains/add", strings.NewReader(`{"domains":["pirate.fr"]}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+admin.Token())
	req.Header.Set("Origin", "https://pirate.example")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-site POST with the administrator's session: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	err := n.DB.View(func(tx *store.Tx) error {
		u, err := tx.UserByEmail("en.attente@agents.gouv.fr")
		if err == nil && u.State != store.UserPending {
			t.Errorf("the pending registration is now %s", u.State)
		}
		return tx.Audit(time.Time{}, time.Time{}, func(e store.AuditEntry) bool {
			t.Errorf("audit entry after refused requests: %+v", e)
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range n.Accounts.Domains() {
		if d == "pirate.fr" {
			t.Error("a refused request added a domain")
		}
	}
	// The administrator reads every GET endpoint of the same table.
	for _, rt := range routes {
		method, path, _ := strings.Cut(rt, " ")
		if method != "GET" {
			continue
		}
		if path == "/api/v1/admin/audit.csv" {
			continue // not JSON; TestAdminAuditCSV reads it
		}
		if err := admin.Do(ctx, method, path, nil, nil); err != nil {
			t.Errorf("administrator: %s: %v", rt, err)
		}
	}
}

// TestAdminSeriesSurvivesRestart: the messages counted before a restart
// are still in the admin page's series after it.
func TestAdminSeriesSurvivesRestart(t *testing.T) {
	n := nodetest.Start(t)
	ctx := context.Background()
	admin := n.NewUserEmail("chef.service@agents.gouv.fr", "Chef Service")
	if err := n.Accounts.PromoteAdmin(ctx, "chef.service@agents.gouv.fr"); err != nil {
		t.Fatal(err)
	}
	sender := n.NewUser("Paul Envoi")
	conn := nodetest.Synced(t, ctx, sender)
	forum := nodetest.Forum(t, ctx, conn, "Accueil")
	for i := range 3 {
		if _, err := conn.Send(ctx, fmt.Sprintf("m%d", i), forum, "bonjour"); err != nil {
			t.Fatal(err)
		}
	}
	sent := func() uint64 {
		var s struct{ Msgs []uint64 }
		if err := admin.Do(ctx, "GET", "/api/v1/admin/series?minutes=10", nil, &s); err != nil {
			t.Fatal(err)
		}
		var sum uint64
		for _, m := range s.Msgs {
			sum += m
		}
		return sum
	}
	if got := sent(); got != 3 {
		t.Fatalf("before the restart: %d messages, want 3", got)
	}
	n.Restart()
	if got := sent(); got != 3 {
		t.Fatalf("after the restart: %d messages, want 3", got)
	}
}

// newAdmin starts an agent and makes them an administrator.
func newAdmin(t *testing.T, n *nodetest.Node) *client.Client {
	t.Helper()
	c := n.NewUserEmail("chef.service@agents.gouv.fr", "Chef Service")
	if err := n.Accounts.PromoteAdmin(context.Background(), "chef.service@agents.gouv.fr"); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAdminPageActions: through the admin page's endpoints an
// administrator approves, deactivates, reactivates, promotes and resets
// (the link shown only without a mail relay), changes domains; the rooms
// list names public forums only; every action is in the audit log under
// the administrator's id with the client's address.
func TestAdminPageActions(t *testing.T) {
	n := nodetest.Start(t)
	ctx := context.Background()
	admin := newAdmin(t, n)
	const who = "claire.attente@agents.gouv.fr"
	if _, err := n.Client().Register(ctx, who, nodetest.Password, "Claire Attente"); err != nil {
		t.Fatal(err)
	}
	post := func(path string, body, out any) {
		t.Helper()
		if err := admin.Do(ctx, "POST", "/api/v1/admin/"+path, body, out); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	var users struct {
		Users []struct {
			ID, Email, State string
			Unproven         bool
		}
	}
	if err := admin.Do(ctx, "GET", "/api/v1/admin/users?q=attente", nil, &users); err != nil || len(users.Users) != 1 || !users.Users[0].Unproven || users.Users[0].State != "pending" {
		t.Fatalf("search: %+v %v", users, err)
	}
	id := users.Users[0].ID
	for _, a := range []string{"approve", "deactivate", "reactivate", "promote"} {
		post("users/"+a, map[string]string{"email": who}, nil)
	}
	var reset struct {
		Link   string
		Mailed bool
	}
	post("users/reset-password", map[string]string{"email": who}, &reset)
	if !strings.Contains(reset.Link, "/reset?token=") || reset.Mailed {
		t.Fatalf("reset without a relay: %+v", reset)
	}
	var domains struct{ Domains []string }
	post("domains/add", map[string][]string{"domains": {"*.interieur.gouv.fr"}}, &domains)
	if !slices.Contains(domains.Domains, "*.interieur.gouv.fr") {
		t.Fatalf("domains after add: %v", domains.Domains)
	}
	post("domains/remove", map[string][]string{"domains": {"*.interieur.gouv.fr"}}, &domains)

	// Rooms: a public forum is named, a group is not, and no content shows.
	conn := nodetest.Synced(t, ctx, admin)
	nodetest.Forum(t, ctx, conn, "Entraide informatique")
	group := nodetest.CreateRoom(t, ctx, conn, map[string]any{"kind": "group", "name": "Dossier sensible", "encrypted": false})
	if _, err := conn.Send(ctx, "g1", group, "contenu confidentiel"); err != nil {
		t.Fatal(err)
	}
	var rooms json.RawMessage
	if err := admin.Do(ctx, "GET", "/api/v1/admin/rooms", nil, &rooms); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rooms), "Entraide informatique") || strings.Contains(string(rooms), "Dossier sensible") || strings.Contains(string(rooms), "confidentiel") {
		t.Fatalf("rooms: %s", rooms)
	}

	var audit struct{ Entries []adminops.Entry }
	if err := admin.Do(ctx, "GET", "/api/v1/admin/audit", nil, &audit); err != nil {
		t.Fatal(err)
	}
	want := []string{"domains.remove", "domains.add", "user.reset_password", "user.promote", "user.reactivate", "user.deactivate", "user.approve"}
	var got []string
	for _, e := range audit.Entries {
		got = append(got, e.Action)
		if e.Actor != admin.Me.ID || e.ActorEmail != "chef.service@agents.gouv.fr" || e.Addr != "127.0.0.1" || e.Outcome != "ok" || e.Unix != "" {
			t.Errorf("entry %+v", e)
		}
		if strings.HasPrefix(e.Action, "user.") && (e.Target != id || e.TargetEmail != who) {
			t.Errorf("entry %s targets %q %q, want %s %s", e.Action, e.Target, e.TargetEmail, id, who)
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("audit actions %v, want %v", got, want)
	}
	// The stored entries hold the target's id, never its address.
	n.DB.View(func(tx *store.Tx) error {
		return tx.Audit(time.Time{}, time.Time{}, func(e store.AuditEntry) bool {
			if strings.Contains(fmt.Sprint(e), "@") {
				t.Errorf("an address in the stored audit log: %+v", e)
			}
			return true
		})
	})
}

// TestAdminResetMailedWithRelay: with a mail relay the reset link goes by
// mail and the page never sees it.
func TestAdminResetMailedWithRelay(t *testing.T) {
	relay, opt := nodetest.WithMailRelay(t)
	n := nodetest.Start(t, opt)
	ctx := context.Background()
	admin := newAdmin(t, n)
	n.NewUserEmail("jean.dupont@agents.gouv.fr", "Jean Dupont")
	var out map[string]any
	if err := admin.Do(ctx, "POST", "/api/v1/admin/users/reset-password", map[string]string{"email": "jean.dupont@agents.gouv.fr"}, &out); err != nil {
		t.Fatal(err)
	}
	if out["mailed"] != true || out["link"] != nil {
		t.Fatalf("reset with a relay answered %v", out)
	}
	waitMail(t, relay, "jean.dupont@agents.gouv.fr", "/reset?token=")
}
