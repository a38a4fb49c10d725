package webtest

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"relais/cluster/nodetest"
)

// TestDraftGoneAfterQuickSend: a message typed and sent within the
// draft's save delay, followed at once by a switch to another room, does
// not come back as a draft, neither on return nor after a reload.
func TestDraftGoneAfterQuickSend(t *testing.T) {
	n := startNode(t)
	alice, forums := aliceInForums(t, n, "Urbanisme", "Voirie")
	first, second := forums[0], forums[1]
	alice.click(`.room-item[data-room="` + first + `"]`)
	alice.visible(".composer textarea")

	// Typed and sent in one go: the Enter comes well inside the 300 ms
	// the composer waits before it saves a draft.
	alice.typ(".composer textarea", "Réunion de chantier jeudi")
	alice.run("press Enter", keyboardEnter())
	alice.click(`.room-item[data-room="` + second + `"]`)
	alice.hasText(".room-header", "Voirie")
	alice.click(`.room-item[data-room="` + first + `"]`)
	alice.hasText(".msg.mine .md", "Réunion de chantier jeudi")
	// Nothing to poll for: the test waits out the save delay, after which
	// a save left pending would have landed.
	time.Sleep(600 * time.Millisecond)
	if got := js[string](alice, `document.querySelector('.composer textarea').value`); got != "" {
		t.Fatalf("the composer holds %q after the message was sent", got)
	}
	if got := js[string](alice, `localStorage.getItem('draft:`+first+`') ?? ''`); got != "" {
		t.Fatalf("a draft %q is stored for a message that was sent", got)
	}
	alice.run("reload", reload())
	alice.click(`.room-item[data-room="` + first + `"]`)
	alice.hasText(".msg.mine .md", "Réunion de chantier jeudi")
	if got := js[string](alice, `document.querySelector('.composer textarea').value`); got != "" {
		t.Fatalf("after a reload the composer holds %q", got)
	}
}

// aliceInForums makes Alice Martin, a member of forums of the given names,
// and signs her in in a desktop browser.
func aliceInForums(t *testing.T, n *nodetest.Node, names ...string) (*browser, []string) {
	t.Helper()
	alicec := n.NewUserEmail("alice.martin@agents.gouv.fr", "Alice Martin")
	var rooms []string
	for _, name := range names {
		rooms = append(rooms, joinForum(t, name, alicec))
	}
	alice := newBrowser(t, "alice", "fr-FR", 1280, 800)
	alice.login(n.URL(), "alice.martin@agents.gouv.fr", nodetest.Password)
	return alice, rooms
}

// keyboardEnter presses Enter as a real keyboard does: a key-down that
// carries the text, then a key-up, with no separate character event (the
// one kb.Enter adds is an input of its own, which a keyboard whose
// key-down was handled never sends).
func keyboardEnter() chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		for _, k := range kb.Encode('\r') {
			if k.Type == kb.KeyChar {
				continue
			}
			if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, *k); err != nil {
				return err
			}
		}
		return nil
	})
}
