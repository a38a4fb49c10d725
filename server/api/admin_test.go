package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"relais/cluster/nodetest"
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
