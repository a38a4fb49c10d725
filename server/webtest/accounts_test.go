package webtest

import (
	"context"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp/kb"

	"relais/cluster/nodetest"
)

// TestVerifyByCodeAndNamesakes: a person registers in the browser and
// types the 10-digit code of the mail on the same page (the page sends the
// password typed in the form with it); then, looking for a colleague who
// has a namesake, each result carries its tag.
func TestVerifyByCodeAndNamesakes(t *testing.T) {
	n, relay := startNodeWithRelay(t)
	ctx := context.Background()
	n.NewUserEmail("marie.dupont@agents.gouv.fr", "Marie Dupont")
	n.NewUserEmail("m.dupont@agents.gouv.fr", "Marie Dupont")

	b := newBrowser(t, "code", "en-US", 1280, 800)
	b.nav(n.URL() + "/register")
	b.typ("#reg-email", "paul.saisie@agents.gouv.fr")
	b.typ("#reg-password", nodetest.Password+kb.Enter)
	b.hasText(".auth-card", "10-digit code")
	mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	msg, err := relay.WaitMessage(mctx, "paul.saisie@agents.gouv.fr")
	if err != nil {
		t.Fatalf("no verification mail: %v", err)
	}
	m := regexp.MustCompile(`\b(\d{10})\b`).FindStringSubmatch(msg.Text)
	if m == nil {
		t.Fatalf("no code in:\n%s", msg.Text)
	}
	b.typ("#verify-code", m[1][:5]+" "+m[1][5:]+kb.Enter)
	b.visible("#login-email")
	b.typ("#login-email", "paul.saisie@agents.gouv.fr")
	b.typ("#login-password", nodetest.Password+kb.Enter)
	b.visible(".sidebar")

	b.nav(n.URL() + "/new")
	b.typ("#dm-q", "marie dupont")
	b.until("two results, each with its own tag", `(() => {
		const tags = [...document.querySelectorAll('.person-btn .person-tag')].map((e) => e.textContent);
		return tags.length === 2 && tags[0] !== tags[1] && tags.every((s) => /^#[0-9A-Z]{4}$/.test(s));
	})()`)
	b.shot("namesakes")
}

// TestForgotPasswordWithoutMailSaysAskAnAdministrator: on a node with no
// mail relay, "forgot password" tells the person to ask an administrator,
// instead of offering a form whose answer could only be an error.
func TestForgotPasswordWithoutMailSaysAskAnAdministrator(t *testing.T) {
	n := startNode(t)
	b := newBrowser(t, "agent", "fr-FR", 1280, 800)
	b.nav(n.URL() + "/forgot")
	b.hasText(".auth-card", "adressez-vous à un administrateur")
	if js[bool](b, `!!document.querySelector('#forgot-email')`) {
		t.Fatal("a node without mail offers a reset form")
	}
	b.shot("forgot-no-mail")
}
