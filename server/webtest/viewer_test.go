package webtest

import (
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestPictureViewerKeepsFocus: the full-screen picture is a modal dialog
// for the keyboard too — Tab and Shift+Tab stay inside it, and once it is
// closed the focus is back on the picture that opened it.
func TestPictureViewerKeepsFocus(t *testing.T) {
	n := startNode(t)
	alice, bob, _ := forumOfTwo(t, n, "fr-FR")
	alice.dropFiles(map[string][]byte{"Plan.png": testPNG(t, 640, 400, false)}, map[string]string{"Plan.png": "image/png"})
	open := `.msg:not(.mine) .file-picture[data-file-state="clean"] .picture-open`
	bob.visible(open)
	bob.click(open)
	bob.until("viewer open", `!!document.querySelector('.viewer[role="dialog"] img')`)
	inside := `!!document.activeElement?.closest('.viewer')`
	bob.until("focus in the viewer", inside)
	for i, key := range []chromedp.Action[chromedp.Void]{
		chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Tab), chromedp.KeyEvent(kb.Tab),
		chromedp.KeyEvent(kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift)),
		chromedp.KeyEvent(kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift)),
		chromedp.KeyEvent(kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift)),
	} {
		bob.run("Tab", key)
		if !js[bool](bob, inside) {
			bob.shot("FAILED-focus-left-the-viewer")
			t.Fatalf("after key %d the focus left the viewer for %s", i+1, js[string](bob, `document.activeElement?.outerHTML.slice(0, 120) ?? 'nothing'`))
		}
	}
	bob.run("Escape", chromedp.KeyEvent(kb.Escape))
	bob.until("viewer closed", `!document.querySelector('.viewer')`)
	bob.until("focus back on the picture", `document.activeElement === document.querySelector('`+open+`')`)
}
