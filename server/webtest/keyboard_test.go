package webtest

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"relais/cluster/nodetest"
)

// TestRoomOpenedWithEnterFocusesComposer: a room opened from the keyboard
// (Enter in the search box, or Enter on a room of the list) puts the
// focus in its composer, so that one can type at once; on a phone the
// search box does not advertise a keyboard shortcut.
func TestRoomOpenedWithEnterFocusesComposer(t *testing.T) {
	n := startNode(t)
	alice, forums := aliceInForums(t, n, "Urbanisme", "Voirie")
	urbanisme := forums[0]
	composerFocused := `document.activeElement === document.querySelector('.composer textarea')`
	alice.typ(".room-list .search input", "voir")
	alice.run("press Enter", keyboardEnter())
	alice.hasText(".room-header", "Voirie")
	alice.until("focus in the composer after Enter in the search", composerFocused)

	alice.run("clear the search", clearField(".room-list .search input"))
	focusOn(alice, `.room-item[data-room="`+urbanisme+`"]`)
	alice.run("press Enter", keyboardEnter())
	alice.hasText(".room-header", "Urbanisme")
	alice.until("focus in the composer after Enter on a room", composerFocused)

	// Enter on the room already open.
	focusOn(alice, `.room-item[data-room="`+urbanisme+`"]`)
	alice.run("press Enter", keyboardEnter())
	alice.until("focus in the open room's composer", composerFocused)

	// A phone: its main pointer is a finger.
	phone := newBrowser(t, "phone", "fr-FR", 360, 740)
	phone.run("touch screen", chromedp.EmulateViewport(360, 740, chromedp.EmulateMobile, chromedp.EmulateTouch))
	phone.login(n.URL(), "alice.martin@agents.gouv.fr", nodetest.Password)
	if !js[bool](phone, `matchMedia('(pointer: coarse)').matches`) {
		t.Fatal("the emulated phone does not report a coarse pointer")
	}
	placeholder := js[string](phone, `document.querySelector('.room-list .search input').placeholder`)
	if strings.Contains(placeholder, "Ctrl") {
		t.Fatalf("a phone is offered a keyboard shortcut: %q", placeholder)
	}
}

// focusOn gives an element the keyboard focus, as Tab would.
func focusOn(b *browser, sel string) {
	b.t.Helper()
	if !js[bool](b, `(() => { const e = document.querySelector(`+jsString(sel)+`); e?.focus(); return !!e && document.activeElement === e })()`) {
		b.t.Fatalf("[%s] cannot focus %s", b.name, sel)
	}
}
