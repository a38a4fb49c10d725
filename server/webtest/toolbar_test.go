package webtest

import (
	"fmt"
	"testing"

	"relais/cluster/nodetest"
)

// TestMessageToolbarLeavesTextVisible: the actions of a selected message
// (react, reply, edit…) sit above its bubble, on a desktop and on a
// phone, and hide none of its words.
func TestMessageToolbarLeavesTextVisible(t *testing.T) {
	n := startNode(t)
	alice, forums := aliceInForums(t, n, "Urbanisme")
	alice.click(`.room-item[data-room="` + forums[0] + `"]`)
	alice.say("Réunion de chantier jeudi à 9 h devant la mairie")
	for _, w := range []int{1280, 360} {
		b := newBrowser(t, fmt.Sprintf("alice-%dpx", w), "fr-FR", w, 740)
		b.login(n.URL(), "alice.martin@agents.gouv.fr", nodetest.Password)
		b.nav(n.URL() + "/room/" + forums[0])
		b.hasText(".msg .md", "Réunion de chantier")
		b.click(".msg .bubble")
		b.visible(".msg.selected .msg-actions")
		b.shot("selected")
		clear := js[bool](b, `(() => {
			const bar = document.querySelector('.msg.selected .msg-actions').getBoundingClientRect();
			const text = document.querySelector('.msg.selected .bubble').getBoundingClientRect();
			return bar.bottom <= text.top + 0.5;
		})()`)
		if !clear {
			t.Fatalf("at %d px the message's toolbar covers its bubble", w)
		}
	}
}
