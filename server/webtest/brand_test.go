package webtest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"relais/cluster/nodetest"
	"relais/server/config"
)

// TestNodeNameBrandsTheClient: the name the operator gives the node
// (--name) is the page's title and the brand on the sign-in screens, in
// both languages and once signed in; it is shown as text, never parsed as
// markup. The manifest Chromium loads for the page parses without errors
// and carries the name, with a description in the browser's language.
func TestNodeNameBrandsTheClient(t *testing.T) {
	const name = "Mairie de Trifouilly <b>ok</b>"
	n := startNode(t, nodetest.WithConfig(func(c *config.Config) { c.Name = name }))
	n.NewUserEmail("alice.martin@agents.gouv.fr", "Alice Martin")
	b := newBrowser(t, "fr", "fr-FR", 1280, 800)
	b.nav(n.URL() + "/login")
	b.visible("#login-email")
	titled := fmt.Sprintf("document.title === %q", name)
	b.until("title is the node's name", titled)
	b.hasText(".auth-card .brand", name)
	if js[bool](b, `!!document.querySelector(".auth-card .brand b")`) {
		t.Error("the node's name was parsed as markup")
	}
	if js[bool](b, `document.querySelector(".auth-card").textContent.includes("Relais")`) {
		t.Error(`the sign-in screen still says "Relais"`)
	}
	b.appManifest(name, "fr", "Messagerie sécurisée des administrations")
	b.shot("login-branded-fr")

	b.click(".lang-switch")
	b.hasText(".auth-card h1", "Sign in")
	b.until("title is the node's name in English", titled)
	b.hasText(".auth-card .brand", name)

	b.login(n.URL(), "alice.martin@agents.gouv.fr", nodetest.Password)
	b.until("title is the node's name once signed in", titled)
	b.shot("signed-in-branded")

	e := newBrowser(t, "en", "en-GB", 1280, 800)
	e.nav(n.URL() + "/login")
	e.hasText(".auth-card h1", "Sign in")
	e.until("title is the node's name for an English browser", titled)
	e.hasText(".auth-card .brand", name)
	e.appManifest(name, "en", "Secure messaging for public administrations")
}

// appManifest checks the web app manifest Chromium loaded for the page.
func (b *browser) appManifest(name, lang, description string) {
	b.t.Helper()
	var res page.GetAppManifestResult
	b.run("get the app manifest", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		var err error
		res, err = chromedp.Call(ctx, page.GetAppManifest, page.GetAppManifestParams{})
		return err
	}))
	for _, e := range res.Errors {
		b.t.Errorf("[%s] manifest error: %s", b.name, e.Message)
	}
	if res.Manifest == nil {
		b.t.Fatalf("[%s] no manifest parsed from %s", b.name, res.URL)
	}
	// Chromium's parsed form reports name and description; the raw data
	// the rest.
	var raw struct {
		ShortName string `json:"short_name"`
		Lang      string `json:"lang"`
	}
	if err := json.Unmarshal([]byte(res.Data), &raw); err != nil {
		b.t.Fatalf("[%s] manifest data: %v", b.name, err)
	}
	m := res.Manifest
	if m.Name != name || raw.ShortName != name || raw.Lang != lang || m.Description != description {
		b.t.Errorf("[%s] manifest name %q short %q lang %q description %q, want %q %q %q", b.name, m.Name, raw.ShortName, raw.Lang, m.Description, name, lang, description)
	}
}
