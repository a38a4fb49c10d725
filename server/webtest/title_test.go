package webtest

import (
	"context"
	"testing"
	"time"

	"relais/cluster/nodetest"
)

// TestUnreadCountInTitle: messages waiting to be read are counted in the
// tab's title, and the count goes once they are read.
func TestUnreadCountInTitle(t *testing.T) {
	n := startNode(t)
	alicec := n.NewUserEmail("alice.martin@agents.gouv.fr", "Alice Martin")
	bobc := n.NewUserEmail("bob.durand@agents.gouv.fr", "Bob Durand")
	open := joinForum(t, "Urbanisme", alicec, bobc)
	busy := joinForum(t, "Voirie", alicec, bobc)

	bob := newBrowser(t, "bob", "fr-FR", 1280, 800)
	bob.login(n.URL(), "bob.durand@agents.gouv.fr", nodetest.Password)
	bob.click(`.room-item[data-room="` + open + `"]`)
	bob.until("title without a count", `document.title === 'Relais'`)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn := nodetest.Synced(t, ctx, alicec)
	for _, id := range []string{"t1", "t2"} {
		if _, err := conn.Send(ctx, id, busy, "Travaux rue Victor-Hugo"); err != nil {
			t.Fatal(err)
		}
	}
	bob.until("two unread in the title", `document.title === '(2) Relais'`)
	bob.click(`.room-item[data-room="` + busy + `"]`)
	bob.until("count gone once read", `document.title === 'Relais'`)
}
