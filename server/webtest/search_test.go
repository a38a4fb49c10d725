package webtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/proto"
)

// TestSearchForumFindsHighlightsAndJumps: Alice searches all her rooms
// for "reunion budg" and finds, accents aside, the one old message that
// holds both words, the words marked; opening the result brings that
// message into view in its forum though it was far above the loaded
// page. Bob, on a 360 px phone in English, searches the same forum from
// its header, and the panel fits the screen.
func TestSearchForumFindsHighlightsAndJumps(t *testing.T) {
	n := startNode(t)
	alicec := n.NewUserEmail("alice.martin@agents.gouv.fr", "Alice Martin")
	bobc := n.NewUserEmail("bob.durand@agents.gouv.fr", "Bob Durand")
	room := joinForum(t, "Urbanisme", alicec, bobc)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn := nodetest.Synced(t, ctx, alicec)
	var target proto.Ack
	for i := range 180 {
		body := fmt.Sprintf("Point %d de l'ordre du jour", i)
		if i == 3 {
			body = "Compte rendu de la Réunion budgétaire de mars"
		}
		ack, err := conn.Send(ctx, fmt.Sprint("s", i), room, body)
		if err != nil {
			t.Fatalf("send: %v", err)
		}
		if i == 3 {
			target = ack
		}
	}
	alice := newBrowser(t, "alice", "fr-FR", 1280, 800)
	alice.login(n.URL(), "alice.martin@agents.gouv.fr", nodetest.Password)
	alice.click("#search-open")
	alice.typ("#s-q", "reunion budg")
	hit := fmt.Sprintf(`.search-hit[data-room=%q][data-seq="%d"]`, room, target.Seq)
	alice.visible(hit)
	if n := js[int](alice, `document.querySelectorAll('.search-hit').length`); n != 1 {
		t.Fatalf("%d results, want 1", n)
	}
	if got := js[string](alice, `[...document.querySelectorAll('.search-hit mark')].map(m => m.textContent).join('|')`); got != "Réunion|budgétaire" {
		t.Fatalf("marked %q", got)
	}
	alice.hasText(hit, "Urbanisme")
	alice.click(hit)
	msg := fmt.Sprintf(`.row.flash .msg[data-seq="%d"]`, target.Seq)
	alice.until("the message in view", fmt.Sprintf(`(() => {
		const m = document.querySelector(%q), tl = document.querySelector('.timeline');
		if (!m || !tl) return false;
		const a = m.getBoundingClientRect(), b = tl.getBoundingClientRect();
		return a.top >= b.top && a.bottom <= b.bottom;
	})()`, msg))
	alice.shot("search-jumped")

	bob := newBrowser(t, "bob", "en-US", 360, 740)
	bob.login(n.URL(), "bob.durand@agents.gouv.fr", nodetest.Password)
	bob.click(`.room-item[data-room="` + room + `"]`)
	bob.click("#room-search")
	bob.hasText(".search-panel h2", "Search in Urbanisme")
	bob.typ("#s-q", "ordre ")
	bob.until("a page and more", `document.querySelectorAll('.search-hit').length === 20 && !!document.querySelector('.search-panel .panel-body > button.secondary')`)
	bob.click(".search-panel .panel-body > button.secondary")
	bob.until("the second page", `document.querySelectorAll('.search-hit').length === 40`)
	if w := js[float64](bob, `document.documentElement.scrollWidth`); w > 360 {
		t.Fatalf("the search panel is %v px wide on a 360 px screen", w)
	}
	bob.shot("search-phone")
}

// TestSearchEncryptedRoomOnTheDevice: in an encrypted conversation the
// search runs in the browser over the messages it decrypted, with the same
// rules and marks, the panel says so, and a search of all rooms finds
// them too; the node was never asked (its search refuses encrypted rooms,
// TestSearchChecksEachRoomsAccess).
func TestSearchEncryptedRoomOnTheDevice(t *testing.T) {
	n := startNode(t)
	alice, bob, _, room := encryptedDM(t, n, "Bonjour Bob")
	alice.say("Le code du portail est tournesol")
	bob.reads("tournesol")
	bob.say("Noté, merci pour la Réunion")
	alice.reads("Réunion")

	alice.click("#room-search")
	alice.visible("#s-q")
	alice.hasText(".search-panel .field", "Conversation chiffrée")
	alice.typ("#s-q", "reunion mer")
	alice.until("one local hit", `document.querySelectorAll('.search-hit').length === 1`)
	if got := js[string](alice, `[...document.querySelectorAll('.search-hit mark')].map(m => m.textContent).join('|')`); got != "merci|Réunion" {
		t.Fatalf("marked %q", got)
	}
	alice.click("#search-open")
	alice.typ("#s-q", "tournesol")
	alice.hasText(`.search-hit[data-room="`+room+`"]`, "tournesol")
	alice.click(`.search-hit[data-room="` + room + `"]`)
	alice.visible(`.row.flash .msg`)
	alice.hasText(`.row.flash .msg`, "tournesol")
}
