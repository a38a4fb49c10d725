package webtest

import (
	"testing"

	"github.com/chromedp/chromedp/kb"

	"relais/cluster/nodetest"
)

// TestInvitingAnExternalSaysWhatHappened: on a node that sends no mail,
// inviting an external correspondent does not say "sent": the inviter
// learns that an administrator must pass the link on; a second
// invitation of the same address, while the first waits, says that no
// new mail goes out.
func TestInvitingAnExternalSaysWhatHappened(t *testing.T) {
	n := startNode(t)
	ctx, conn := aliceConnected(t, n)
	var rooms []string
	for _, name := range []string{"Marché de voirie", "Chantier de l’école"} {
		rooms = append(rooms, nodetest.CreateRoom(t, ctx, conn, map[string]any{"kind": "group", "name": name, "encrypted": false, "externals": true}))
	}

	alice := newBrowser(t, "alice", "fr-FR", 1280, 800)
	alice.login(n.URL(), "alice.martin@agents.gouv.fr", nodetest.Password)
	for i, want := range []string{"aucun e-mail n’est parti", "déjà une invitation en attente"} {
		alice.nav(n.URL() + "/room/" + rooms[i] + "/info")
		alice.typ("#ri-ext", "paul.conseil@cabinet-exemple.fr"+kb.Enter)
		alice.hasText(".panel", want)
		if js[bool](alice, `document.querySelector('.panel').textContent.includes('Invitation envoyée')`) {
			t.Fatalf("invitation %d: the inviter is told a mail was sent", i+1)
		}
		alice.shot("invited")
	}
}
