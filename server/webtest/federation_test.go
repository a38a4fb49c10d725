package webtest

import (
	"testing"

	"relais/cluster/nodetest"
)

// TestFederationDirectoryShowsTheAdministration: a town hall agent
// searching the directory finds an agent of a peered ministry, shown with
// the ministry's name, in French and in English, at phone width; and is
// told when the ministry did not answer.
func TestFederationDirectoryShowsTheAdministration(t *testing.T) {
	a := startNode(t, nodetest.WithFederation("Ministère de l’Intérieur", "interieur.gouv.fr", true))
	b := startNode(t, nodetest.WithFederation("Mairie de Lyon", "mairie-lyon.fr", false))
	nodetest.Peer(t, a, b)
	helene := a.NewUserEmail("helene.dupont@interieur.gouv.fr", "Hélène Dupont")
	b.NewUserEmail("bruno.martin@mairie-lyon.fr", "Bruno Martin")

	br := newBrowser(t, "bruno", "fr-FR", 360, 740)
	br.login(b.URL(), "bruno.martin@mairie-lyon.fr", nodetest.Password)
	br.click(`button[aria-label="Nouveau message"]`)
	br.typ("#dm-q", "dup")
	pick := `button[data-user="` + helene.Me.ID + `"]`
	br.visible(pick)
	br.hasText(pick+" .person-org", "Administration : Ministère de l’Intérieur")
	br.shot("directory-federated-fr")
	br.until("no overflow at 360 px", `document.documentElement.scrollWidth <= 360`)

	// The ministry stops: the search says its answer is missing.
	a.Stop()
	br.run("clear search", clearField("#dm-q"))
	br.typ("#dm-q", "dupo")
	br.hasText(".panel .hint", "Certaines administrations n’ont pas répondu à temps")
	br.shot("directory-partial-fr")
}
