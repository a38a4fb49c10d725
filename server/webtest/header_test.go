package webtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/client"
)

// TestPhoneHeaderShowsConfidentialityChips: on a 360 px phone, the header
// of a room with a long name that is end-to-end encrypted and open to
// externals shows both chips whole: what protects a conversation, and who
// may read it, must always be visible.
func TestPhoneHeaderShowsConfidentialityChips(t *testing.T) {
	n := startNode(t)
	ctx, conn := aliceConnected(t, n)
	room := nodetest.CreateRoom(t, ctx, conn, map[string]any{
		"kind": "group", "name": "Commission intercommunale d’aménagement du territoire et des mobilités",
		"encrypted": true, "externals": true,
	})

	for _, w := range []int{360, 1280} {
		b := newBrowser(t, fmt.Sprintf("alice-%dpx", w), "fr-FR", w, 740)
		b.login(n.URL(), "alice.martin@agents.gouv.fr", nodetest.Password)
		b.nav(n.URL() + "/room/" + room)
		b.hasText(".room-header .chip", "Chiffrée")
		b.hasText(".room-header .chip", "externes")
		// Each chip lies whole inside the header and the window, and no
		// ancestor clips it.
		visible := js[bool](b, `(() => {
			const header = document.querySelector('.room-header').getBoundingClientRect();
			return [...document.querySelectorAll('.room-header .chip')].every(c => {
				const r = c.getBoundingClientRect();
				if (r.width === 0 || r.left < header.left || r.right > Math.min(header.right, innerWidth) + 0.5) return false;
				for (let e = c.parentElement; e && e !== document.body; e = e.parentElement) {
					const p = e.getBoundingClientRect();
					if (getComputedStyle(e).overflow !== 'visible' && (r.right > p.right + 0.5 || r.left < p.left - 0.5 || r.bottom > p.bottom + 0.5)) return false;
				}
				return true;
			});
		})()`)
		b.shot("room-header")
		if !visible {
			t.Fatalf("at %d px a confidentiality chip of the room header is cut off", w)
		}
	}
}

// aliceConnected makes Alice Martin and opens a synced websocket of hers,
// for a test that prepares rooms as she would; the context ends with the
// test.
func aliceConnected(t *testing.T, n *nodetest.Node) (context.Context, *client.Conn) {
	t.Helper()
	alicec := n.NewUserEmail("alice.martin@agents.gouv.fr", "Alice Martin")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx, nodetest.Synced(t, ctx, alicec)
}
