package webtest

import (
	"context"
	"encoding/csv"
	"fmt"
	"strings"
	"testing"

	"relais/cluster/nodetest"
	"relais/server/admin"
	"relais/server/adminops"
	"relais/server/config"
)

// TestAdminPage: on a phone-sized screen in French, an administrator opens
// the admin page, watches the chart of messages move while another agent
// sends through the real websocket, approves a pending registration whose
// address is shown UNPROVEN, and finds that approval and an action of the
// command line in the audit log, filters it, and exports it as CSV; the
// log reads in English too.
func TestAdminPage(t *testing.T) {
	data := t.TempDir()
	n := startNode(t, nodetest.WithConfig(func(c *config.Config) { c.Data = data }))
	ctx := context.Background()
	const chef, pending = "chef.service@agents.gouv.fr", "claire.attente@agents.gouv.fr"
	chefID := n.NewUserEmail(chef, "Chef Service").Me.ID
	if err := n.Accounts.PromoteAdmin(ctx, chef); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Client().Register(ctx, pending, nodetest.Password, "Claire Attente"); err != nil {
		t.Fatal(err)
	}
	sender := n.NewUser("Paul Envoi")
	conn := nodetest.Synced(t, ctx, sender)
	forum := nodetest.Forum(t, ctx, conn, "Accueil")

	b := newBrowser(t, "admin", "fr-FR", 360, 740)
	b.login(n.URL(), chef, nodetest.Password)
	b.click("#admin-open")
	b.visible("#chart-msgs svg path.line")
	b.hasText("#admin-cert", "Pas de TLS")
	b.hasText("#admin-av", "Politique intégrée")
	if js[bool](b, `!!document.querySelector('#admin-federation')`) {
		t.Error("a federation section on a node that reports no federation")
	}
	b.shot("overview")
	before := js[int](b, `+document.querySelector('#chart-msgs').dataset.total`)
	path := js[string](b, `document.querySelector('#chart-msgs path.line').getAttribute('d')`)
	for i := range 7 {
		if _, err := conn.Send(ctx, fmt.Sprintf("m%d", i), forum, fmt.Sprintf("message %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	b.until("the chart counts the 7 messages", fmt.Sprintf(`+document.querySelector('#chart-msgs').dataset.total >= %d && document.querySelector('#chart-msgs path.line').getAttribute('d') !== %s`, before+7, jsString(path)))
	b.hasText("#admin-now", "7 messages cette minute")
	b.shot("chart-moved")

	fits(t, b, "overview")
	b.click("#admin-tab-users")
	row := `#admin-users li[data-email="` + pending + `"]`
	b.hasText(row+" .admin-badge.unproven", "NON PROUVÉE")
	b.shot("pending")
	fits(t, b, "accounts")
	b.click(row + " .admin-approve")
	b.visible(row + `[data-state="active"]`)
	b.hasText(row+" .admin-badge.state-active", "Actif")
	b.shot("approved")

	// An action of the command line, through the admin socket.
	if err := admin.Dial(data).Do(ctx, "POST", "/domains/add", map[string][]string{"domains": {"*.interieur.gouv.fr"}}, nil); err != nil {
		t.Fatal(err)
	}

	b.click("#admin-tab-audit")
	b.hasText(`#audit-list li[data-action="user.approve"]`, pending)
	b.hasText(`#audit-list li[data-action="user.approve"]`, chef)
	b.hasText(`#audit-list li[data-action="domains.add"]`, "ligne de commande")
	b.hasText(`#audit-list li[data-action="domains.add"]`, "*.interieur.gouv.fr")
	fits(t, b, "audit log")
	b.shot("audit")
	js[bool](b, `(() => { const s = document.querySelector('#audit-action'); s.value = 'user.approve'; s.dispatchEvent(new Event('change', { bubbles: true })); return true })()`)
	b.until("only approvals listed", `(() => { const rows = [...document.querySelectorAll('#audit-list li')]; return rows.length === 1 && rows[0].dataset.action === 'user.approve' })()`)
	b.shot("audit-filtered")

	// The export is the filtered log, as a download.
	got := js[string](b, `fetch(document.querySelector('#audit-export').href).then(async (r) => r.headers.get('Content-Disposition') + '\n' + await r.text())`)
	disposition, body, _ := strings.Cut(got, "\n")
	if !strings.HasPrefix(disposition, `attachment; filename="relais-audit-`) {
		t.Errorf("Content-Disposition %q", disposition)
	}
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil {
		t.Fatalf("CSV: %v\n%s", err, body)
	}
	if len(rows) != 2 || strings.Join(rows[0], ",") != strings.Join(adminops.CSVHeader, ",") {
		t.Fatalf("CSV of the approvals:\n%s", body)
	}
	r := rows[1]
	if r[1] != chefID || r[2] != chef || r[4] != "127.0.0.1" || r[5] != adminops.ActApprove || r[7] != pending || r[8] != "ok" {
		t.Fatalf("CSV row: %q", r)
	}

	// The same log in English, on a wide screen.
	e := newBrowser(t, "admin-en", "en-US", 1280, 800)
	e.login(n.URL(), chef, nodetest.Password)
	e.nav(n.URL() + "/admin/audit")
	e.hasText(`#audit-list li[data-action="user.approve"]`, "Account approved")
	e.hasText(`#audit-list li[data-action="domains.add"]`, "command line")
	e.hasText("#audit-export", "Export as CSV")
	e.shot("audit-en")
}

// fits fails the test when the admin page scrolls sideways on the screen.
func fits(t *testing.T, b *browser, what string) {
	t.Helper()
	if over := js[string](b, `(() => {
		const body = document.querySelector('.admin-body');
		if (document.documentElement.scrollWidth <= document.documentElement.clientWidth && body.scrollWidth <= body.clientWidth) return '';
		const right = body.getBoundingClientRect().right;
		return [...body.querySelectorAll('*')].filter((e) => e.getBoundingClientRect().right > right + 0.5).slice(0, 5).map((e) => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right) + '>' + Math.round(right)).join(', ') || 'the page';
	})()`); over != "" {
		b.shot("overflow-" + sanitize(what))
		t.Errorf("%s: scrolls sideways on a 360 px screen (%s)", what, over)
	}
}
