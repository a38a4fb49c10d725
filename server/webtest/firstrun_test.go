package webtest

import (
	"context"
	"net/url"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp/kb"

	"relais/cluster/nodetest"
	"relais/server/client"
	"relais/server/mail/smtptest"
)

// startNodeWithRelay starts a node that sends its mail through a real SMTP
// client to a relay in process.
func startNodeWithRelay(t *testing.T) (*nodetest.Node, *smtptest.Server) {
	t.Helper()
	relay, withRelay := nodetest.WithMailRelay(t)
	return startNode(t, withRelay), relay
}

// TestFirstRunOnAPhone: on a 360 px phone, in English, an operator opens
// the one-time setup link and creates the first administrator; an agent
// registers, opens the verification link of the mail that arrived at a
// real SMTP relay, signs in, joins a forum from the directory and writes.
// No screen may scroll sideways.
func TestFirstRunOnAPhone(t *testing.T) {
	n, relay := startNodeWithRelay(t)
	ctx := context.Background()
	link, err := n.Accounts.SetupLink(ctx)
	if err != nil || link == "" {
		t.Fatalf("setup link: %q, %v", link, err)
	}
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}

	phone := newBrowser(t, "phone", "en-US", 360, 740)
	fits := func(screen string) {
		t.Helper()
		phone.until(screen+" fits 360 px", `document.documentElement.scrollWidth <= window.innerWidth`)
		phone.shot(screen)
	}

	// First run: the link creates the administrator.
	phone.nav(n.URL() + "/setup?" + u.RawQuery)
	phone.hasText(".auth-card h1", "First-run setup")
	phone.until("domains prefilled", `document.querySelector('#setup-domains').value.includes('agents.gouv.fr')`)
	fits("setup")
	phone.typ("#setup-email", "admin.relais@agents.gouv.fr")
	phone.typ("#setup-name", "Admin Relais")
	phone.typ("#setup-password", nodetest.Password)
	phone.click(".auth-card button[type=submit]")
	phone.hasText(".auth-card", "The administrator account is created")
	fits("setup-done")
	if l, _ := n.Accounts.SetupLink(ctx); l != "" {
		t.Fatal("the setup link still works after setup")
	}

	// An agent registers and verifies the address from the mail.
	phone.nav(n.URL() + "/register")
	phone.typ("#reg-email", "claire.dubois@agents.gouv.fr")
	phone.typ("#reg-password", nodetest.Password+kb.Enter)
	phone.hasText(".auth-card", "We sent a link and a 10-digit code")
	fits("check-mail")
	mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	msg, err := relay.WaitMessage(mctx, "claire.dubois@agents.gouv.fr")
	if err != nil {
		t.Fatalf("no verification mail: %v", err)
	}
	m := regexp.MustCompile(`/verify\?token=([A-Za-z0-9_%-]+)`).FindStringSubmatch(msg.Text)
	if m == nil {
		t.Fatalf("no verification link in:\n%s", msg.Text)
	}
	// The link asks for the registration's password: the mail alone
	// completes nothing.
	phone.nav(n.URL() + "/verify?token=" + m[1])
	phone.typ("#verify-password", nodetest.Password+kb.Enter)
	phone.hasText(".auth-card", "Address verified")
	fits("verified")

	// The administrator made a forum; Claire signs in, finds and joins it.
	admin := client.New(n.URL())
	if err := admin.Login(ctx, "admin.relais@agents.gouv.fr", nodetest.Password); err != nil {
		t.Fatal(err)
	}
	joinForum(t, "Entraide informatique", admin)

	phone.click(`.auth-card a[href="/login"]`)
	phone.typ("#login-email", "claire.dubois@agents.gouv.fr")
	phone.typ("#login-password", nodetest.Password+kb.Enter)
	phone.visible(".sidebar")
	fits("room-list")
	phone.click(`button[aria-label="Forums"]`)
	phone.hasText(".person-name", "Entraide informatique")
	fits("forum-directory")
	phone.click(".person-row button.primary")
	phone.visible(".composer textarea")
	phone.typ(".composer textarea", "Hello, my printer no longer scans to e-mail."+kb.Enter)
	phone.until("sent", `!!document.querySelector('.msg.mine [data-status="sent"], .msg.mine [data-status="read"]')`)
	fits("forum-room")
	phone.click(`button[aria-label="Back to conversations"]`)
	phone.hasText(".room-item", "Entraide informatique")
	fits("room-list-after")
}
