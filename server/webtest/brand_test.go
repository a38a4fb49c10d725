package webtest

import (
	"fmt"
	"testing"

	"relais/cluster/nodetest"
	"relais/server/config"
)

// TestNodeNameBrandsTheClient: the name the operator gives the node
// (--name) is the page's title and the brand on the sign-in screens, in
// both languages and once signed in; it is shown as text, never parsed as
// markup.
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
	b.shot("login-branded-fr")

	b.click(".lang-switch")
	b.hasText(".auth-card h1", "Sign in")
	b.until("title is the node's name in English", titled)
	b.hasText(".auth-card .brand", name)

	b.login(n.URL(), "alice.martin@agents.gouv.fr", nodetest.Password)
	b.until("title is the node's name once signed in", titled)
	b.shot("signed-in-branded")
}
