package admin_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"os/user"
	"strings"
	"testing"

	"relais/cluster/nodetest"
	"relais/server/admin"
	"relais/server/adminops"
	"relais/server/config"
	"relais/server/proto"
)

// TestCLIActionsAudited: the actions of the admin socket are in the audit
// log as "cli" with the system account the kernel reports for the
// connection, from admin.sock, naming the target by its user id (its
// address resolved only when read), with their outcome; the filters
// select, and the CSV export carries the same.
func TestCLIActionsAudited(t *testing.T) {
	data := t.TempDir()
	n := nodetest.Start(t, nodetest.WithConfig(func(c *config.Config) { c.Data = data }))
	ctx := context.Background()
	const email = "nouvelle.recrue@agents.gouv.fr"
	if _, err := n.Client().Register(ctx, email, nodetest.Password, "Nouvelle Recrue"); err != nil {
		t.Fatal(err)
	}
	c := admin.Dial(data)
	for _, step := range []struct {
		path string
		body any
		fail bool
	}{
		{"/users/approve", map[string]string{"email": email}, false},
		{"/users/approve", map[string]string{"email": email}, true}, // already active: conflict
		{"/domains/add", map[string][]string{"domains": {"*.interieur.gouv.fr"}}, false},
		{"/users/reset-password", map[string]string{"email": email}, false},
		{"/users/promote", map[string]string{"email": "personne@agents.gouv.fr"}, true}, // no such account
	} {
		if err := c.Do(ctx, "POST", step.path, step.body, nil); (err != nil) != step.fail {
			t.Fatalf("%s: %v", step.path, err)
		}
	}
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	var users []admin.UserInfo
	if err := c.Do(ctx, "GET", "/users?q=recrue", nil, &users); err != nil || len(users) != 1 {
		t.Fatalf("users matching recrue: %+v %v", users, err)
	}
	id := users[0].ID

	var entries []adminops.Entry
	if err := c.Do(ctx, "GET", "/audit", nil, &entries); err != nil {
		t.Fatal(err)
	}
	type line struct{ action, target, email, outcome string }
	want := []line{ // newest first
		{adminops.ActPromote, "", "", proto.CodeNotFound},
		{adminops.ActResetPassword, id, email, "ok"},
		{adminops.ActDomainsAdd, "*.interieur.gouv.fr", "", "ok"},
		{adminops.ActApprove, id, email, proto.CodeConflict},
		{adminops.ActApprove, id, email, "ok"},
	}
	if len(entries) != len(want) {
		t.Fatalf("%d entries, want %d: %+v", len(entries), len(want), entries)
	}
	for i, e := range entries {
		got := line{e.Action, e.Target, e.TargetEmail, e.Outcome}
		if got != want[i] {
			t.Errorf("entry %d: %+v, want %+v", i, got, want[i])
		}
		if e.Actor != adminops.CLIActor || e.Addr != adminops.SocketAddr || !strings.HasPrefix(e.Unix, me.Username+" (uid "+me.Uid+")") {
			t.Errorf("entry %d: actor %q unix %q from %q, want cli, %s (uid %s), admin.sock", i, e.Actor, e.Unix, e.Addr, me.Username, me.Uid)
		}
	}
	var approvals []adminops.Entry
	if err := c.Do(ctx, "GET", "/audit?action="+adminops.ActApprove+"&actor=cli", nil, &approvals); err != nil || len(approvals) != 2 {
		t.Fatalf("approvals by cli: %d %v", len(approvals), err)
	}
	if err := c.Do(ctx, "GET", "/audit?action=user.delete", nil, nil); err == nil || !strings.Contains(err.Error(), proto.CodeBadRequest) {
		t.Fatalf("unknown action filter: %v", err)
	}
	var b bytes.Buffer
	if err := adminops.WriteCSV(&b, entries); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(entries)+1 || strings.Join(rows[0], ",") != strings.Join(adminops.CSVHeader, ",") {
		t.Fatalf("CSV: %q", rows)
	}
	if r := rows[len(rows)-1]; r[1] != "cli" || r[4] != "admin.sock" || r[5] != adminops.ActApprove || r[6] != id || r[7] != email || r[8] != "ok" {
		t.Fatalf("CSV row of the first approval: %q", r)
	}
}

// TestAdminSocketStatusFollowsTheCode: the admin socket answers a refusal
// with the status the HTTP API gives its code, not 400 for everything.
func TestAdminSocketStatusFollowsTheCode(t *testing.T) {
	data := t.TempDir()
	n := nodetest.Start(t, nodetest.WithConfig(func(c *config.Config) { c.Data = data }))
	ctx := context.Background()
	const email = "agent.statut@agents.gouv.fr"
	if _, err := n.Client().Register(ctx, email, nodetest.Password, "Agent Statut"); err != nil {
		t.Fatal(err)
	}
	c := admin.Dial(data)
	for _, tc := range []struct {
		name   string
		path   string
		body   any
		status int
		code   string
	}{
		{"approve", "/users/approve", map[string]string{"email": email}, 200, ""},
		{"approve again", "/users/approve", map[string]string{"email": email}, 409, proto.CodeConflict},
		{"no such account", "/users/promote", map[string]string{"email": "personne@agents.gouv.fr"}, 404, proto.CodeNotFound},
		{"no address", "/users/approve", map[string]string{}, 400, proto.CodeBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Do(ctx, "POST", tc.path, tc.body, nil)
			if tc.status == 200 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ae *admin.Error
			if !errors.As(err, &ae) || ae.Status != tc.status || ae.Code != tc.code {
				t.Fatalf("got %v (%+v), want status %d code %s", err, ae, tc.status, tc.code)
			}
		})
	}
}

// TestDomainsOfAPeerAreRefused: an administrator cannot allow
// registrations on a domain a peered administration serves (its users are
// that administration's): conflict, detail domain_in_use, nothing added,
// and the refusal is audited.
func TestDomainsOfAPeerAreRefused(t *testing.T) {
	data := t.TempDir()
	a := nodetest.Start(t, nodetest.WithFederation("Ministère A", "a.gouv.fr", true), nodetest.WithConfig(func(c *config.Config) { c.Data = data }))
	b := nodetest.Start(t, nodetest.WithFederation("Mairie B", "mairie-b.fr", false))
	nodetest.Peer(t, a, b)
	c := admin.Dial(data)
	ctx := context.Background()
	for _, d := range []string{"mairie-b.fr", "MAIRIE-B.FR"} {
		err := c.Do(ctx, "POST", "/domains/add", map[string][]string{"domains": {d}}, nil)
		var ae *admin.Error
		if !errors.As(err, &ae) || ae.Code != proto.CodeConflict || ae.Status != 409 {
			t.Fatalf("adding %s, served by B: %v, want conflict", d, err)
		}
	}
	if err := c.Do(ctx, "POST", "/domains/add", map[string][]string{"domains": {"prefecture.gouv.fr"}}, nil); err != nil {
		t.Fatalf("a domain no peer serves: %v", err)
	}
	var domains []string
	if err := c.Do(ctx, "GET", "/domains", nil, &domains); err != nil {
		t.Fatal(err)
	}
	for _, d := range domains {
		if strings.Contains(strings.ToLower(d), "mairie-b") {
			t.Fatalf("B's domain was added: %v", domains)
		}
	}
	var entries []adminops.Entry
	if err := c.Do(ctx, "GET", "/audit?action="+adminops.ActDomainsAdd, nil, &entries); err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, e := range entries {
		if e.Outcome == proto.CodeConflict {
			refused++
		}
	}
	if refused != 2 {
		t.Fatalf("%d refused additions audited, want 2: %+v", refused, entries)
	}
}
