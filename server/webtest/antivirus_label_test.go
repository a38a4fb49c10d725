package webtest

import (
	"testing"

	"relais/server/media/mediatest"
)

// TestFileLabelWithoutAntivirus: on a node with no clamd, a forum file
// passed by the built-in policy says that the server checked it, and
// does not credit an antivirus that never saw it.
func TestFileLabelWithoutAntivirus(t *testing.T) {
	n := startNode(t)
	alice, bob, _ := forumOfTwo(t, n, "en-GB")

	pdf := mediatest.PDF("Compte rendu", 64<<10)
	alice.dropFiles(map[string][]byte{"Compte rendu.pdf": pdf}, map[string]string{"Compte rendu.pdf": "application/pdf"})
	card := `.msg:not(.mine) .file-card[data-file-state="clean"] .file-state[data-checked="policy"]`
	bob.hasText(card, "Checked by the server (no antivirus)")
	alice.hasText(`.msg.mine .file-card[data-file-state="clean"]`, "Vérifié par le serveur (sans antivirus)")
	for _, b := range []*browser{alice, bob} {
		if js[bool](b, `[...document.querySelectorAll('.file-state')].some(e => /antivirus\b(?! \))|par l’antivirus/.test(e.textContent) && !/sans antivirus|no antivirus/.test(e.textContent))`) {
			b.shot("FAILED-antivirus-claim")
			t.Fatalf("[%s] a file is credited to an antivirus the node does not have", b.name)
		}
	}
	bob.shot("file-policy-only")
}
