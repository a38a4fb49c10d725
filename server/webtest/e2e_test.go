package webtest

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"relais/cluster/nodetest"
	"relais/server/mls/mlsframe"
	"relais/server/proto"
)

// TestEncryptedDM: Alice and Bob, in two browsers, write to each other in
// a direct conversation that is encrypted by default: each reads the
// other's messages, edits and reactions travel encrypted, the timeline
// says who joined the encryption, and the node holds only MLS ciphertext.
func TestEncryptedDM(t *testing.T) {
	n := startNode(t)
	n.NewUserEmail("alice.martin@agents.gouv.fr", "Alice Martin")
	bobc := n.NewUserEmail("bob.durand@agents.gouv.fr", "Bob Durand")

	alice := newBrowser(t, "alice", "fr-FR", 1280, 800)
	bob := newBrowser(t, "bob", "fr-FR", 1280, 800)
	if key := alice.e2eLogin(n, "alice.martin@agents.gouv.fr"); len(strings.ReplaceAll(key, "-", "")) != 32 {
		t.Fatalf("Alice's recovery key %q is not 32 characters", key)
	}
	bob.e2eLogin(n, "bob.durand@agents.gouv.fr")
	registered(t, n, bobc.Me.ID, 1)

	alice.openDMWith("bob", bobc.Me.ID)
	room := alice.currentRoom()
	alice.hasText(".room-sub .chip", "Chiffrée de bout en bout")
	// This node does not scan encrypted files: once it has said so, no
	// notice.
	alice.until("node's answer on scanning", `!!document.querySelector('.room[data-scanning="false"]') && !document.querySelector('[data-notice="scanned"]')`)
	alice.say("Bonjour Bob, le dossier **Préfecture** est prêt")
	alice.hasText(".sys", "a ajouté Bob Durand au chiffrement")
	alice.shot("dm-sent")

	bob.visible(".room-item.unread")
	bob.click(`.room-item[data-room="` + room + `"]`)
	bob.reads("le dossier Préfecture est prêt")
	bob.hasText(".msg:not(.mine) .md strong", "Préfecture")
	bob.shot("dm-received")
	bob.say("Merci Alice, je le relis ce soir")
	alice.reads("je le relis ce soir")

	// A reaction and an edit travel inside the encrypted payload.
	alice.click(`.msg:not(.mine) .bubble`)
	alice.click(`.msg.selected button[aria-label="Réagir"]`)
	alice.click(`button[aria-label="Réagir avec 👍"]`)
	bob.hasText(".msg.mine .reaction", "👍")
	bob.click(`.msg.mine .bubble`)
	bob.click(`.msg.selected button[aria-label="Modifier"]`)
	bob.hasText(".composer-context", "Modification du message")
	bob.until("draft is the message", `document.querySelector('.composer textarea').value.includes('ce soir')`)
	bob.run("select all", clearField(".composer textarea"))
	bob.typ(".composer textarea", "Merci Alice, je le relis demain matin\n")
	alice.reads("je le relis demain matin")
	alice.until("edited in place", `![...document.querySelectorAll('.msg .md')].some(e => e.textContent.includes('ce soir'))`)
	alice.hasText(".msg:not(.mine) .edited", "(modifié)")
	alice.shot("dm-edited")

	// The node stored ciphertext only: MLS commits and messages.
	types := map[string]int{}
	for _, ev := range roomEvents(t, n, room) {
		types[ev["type"].(string)]++
		if ev["type"] == "text" || ev["type"] == "react" || ev["type"] == "edit" {
			t.Errorf("event in clear in an encrypted room: %v", ev)
		}
	}
	if types["encrypted"] < 4 || types["mls_commit"] < 1 {
		t.Errorf("stored event types %v: want encrypted messages and a commit", types)
	}
	if e := roomEpoch(t, n, room); e < 1 {
		t.Errorf("the room's group is at epoch %d", e)
	}
	_ = nodetest.Password
}

// TestMLSSuiteFigures measures, in headless Chromium, the costs that
// decide the default cipher suite (web/ENCRYPTION.md): a 200-member group
// made in one commit, adding one member to it, joining it, encrypting
// and decrypting, and the sizes of KeyPackages, Welcomes and GroupInfos,
// for the hybrid post-quantum suite 83 and the classical suite 1. The
// same measurement runs in Node with web/scripts/mls-bench.mjs.
func TestMLSSuiteFigures(t *testing.T) {
	n := startNode(t)
	b := newBrowser(t, "bench", "fr-FR", 1024, 700)
	b.nav(n.URL() + "/login")
	b.visible("#login-email")
	chunk := e2eChunkURL(t)
	var lines []string
	for _, suite := range []int{83, 1} {
		ctx, cancel := context.WithTimeout(b.ctx, 3*time.Minute)
		out, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]any](fmt.Sprintf(`import(%q).then(m => m.bench(%d, 200))`, chunk, suite), chromedp.EvalAwaitPromise))
		cancel()
		if err != nil {
			t.Fatalf("suite %d: %v", suite, err)
		}
		keys := []string{"suite", "members", "create_group_ms", "add_one_ms", "join_ms", "process_add_ms", "encrypt_ms", "decrypt_ms", "key_package_gen_ms", "key_package_bytes", "welcome_bytes", "add_one_welcome_bytes", "group_info_bytes", "add_one_commit_bytes", "message_bytes"}
		parts := []string{"MLS where=chromium"}
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%v", k, out[k]))
		}
		line := strings.Join(parts, " ")
		t.Log(line)
		lines = append(lines, line)
	}
	writeArtifact(t, "mls-figures.txt", strings.Join(lines, "\n")+"\n")
}

// TestEncryptedGroupRemoval: five people in an encrypted group read each
// other; Alice removes Eve, whose devices leave the group in the same
// breath (the timeline says so), and what is sent afterwards is proven
// unreadable with Eve's own MLS state, kept in her browser.
func TestEncryptedGroupRemoval(t *testing.T) {
	n := startNode(t)
	names := []string{"Alice Martin", "Bob Durand", "Claire Petit", "David Roux", "Eve Moreau"}
	ids, bs, room := encryptedGroup(t, n, "Cellule de crise", names)
	alice, eve := bs[0], bs[4]
	bs[1].say("Bien reçu, j’apporte les cartes")
	for _, b := range []*browser{alice, bs[2], bs[3], eve} {
		b.reads("j’apporte les cartes")
	}
	eve.shot("group-before-removal")
	before := roomEpoch(t, n, room)

	// Alice removes Eve: her client commits the removal of Eve's device.
	alice.click(`button[aria-label="Informations sur la discussion"]`)
	alice.click(`.members li[data-user="` + ids[4] + `"] .link-btn:not(.verify-btn)`)
	alice.click(`button[aria-label="Retour"]`)
	alice.hasText(".sys", "a retiré Eve Moreau du chiffrement")
	nodetest.CheckFor(t, 20*time.Second, func() error {
		if epoch := roomEpoch(t, n, room); epoch <= before {
			return fmt.Errorf("the removal is not committed: epoch %d, %d before", epoch, before)
		}
		return nil
	})
	alice.say("Message après le départ d’Eve")
	for _, b := range bs[1:4] {
		b.reads("après le départ d’Eve")
		b.hasText(".sys", "a retiré Eve Moreau du chiffrement")
	}
	alice.shot("group-after-removal")

	// Eve's browser shows nothing of it…
	eve.until("room gone", fmt.Sprintf(`!document.querySelector('.room-item[data-room=%q]')`, room))
	if js[bool](eve, `document.body.textContent.includes('départ d’Eve')`) {
		t.Error("Eve's browser shows a message sent after her removal")
	}
	eve.shot("removed")
	// …and her MLS state cannot open it: the test fetches the ciphertext
	// from the node and hands it to Eve's stored group state.
	var data string
	for _, ev := range roomEvents(t, n, room) {
		if ev["type"] == "encrypted" && ev["from"] == ids[0] {
			data, _ = ev["data"].(string)
		}
	}
	if data == "" {
		t.Fatal("no encrypted message of Alice in the room's log")
	}
	probe := js[map[string]any](eve, fmt.Sprintf(`import(%q).then(m => m.manager.probe(%q, %q))`, e2eChunkURL(t), room, data))
	t.Logf("Eve's state on the message sent after her removal: %v", probe)
	if probe["ok"] != false || probe["epoch"] == "" {
		t.Errorf("Eve's MLS state opened a message sent after her removal, or has no state: %v", probe)
	}
	if fmt.Sprint(probe["epoch"]) != fmt.Sprint(before) {
		t.Errorf("Eve's state is at epoch %v, want the epoch before her removal (%d)", probe["epoch"], before)
	}
}

// TestSecondDeviceHistory: Alice verifies Bob by comparing safety numbers;
// Bob signs in on a second browser, which joins the conversation by
// external commit (Alice sees the new device, with a warning since she had
// verified Bob); the new device cannot read the past until Bob enters his
// recovery key, then restores it from the encrypted backup and receives
// new messages.
func TestSecondDeviceHistory(t *testing.T) {
	n := startNode(t)
	n.NewUserEmail("alice.martin@agents.gouv.fr", "Alice Martin")
	bobc := n.NewUserEmail("bob.durand@agents.gouv.fr", "Bob Durand")
	alice := newBrowser(t, "alice", "fr-FR", 1280, 800)
	bob := newBrowser(t, "bob", "fr-FR", 1280, 800)
	alice.e2eLogin(n, "alice.martin@agents.gouv.fr")
	key := bob.e2eLogin(n, "bob.durand@agents.gouv.fr")
	if key == "" {
		t.Fatal("Bob's first device showed no recovery key")
	}
	registered(t, n, bobc.Me.ID, 1)

	alice.openDMWith("bob", bobc.Me.ID)
	room := alice.currentRoom()
	alice.say("Le compte rendu du comité est confidentiel")
	bob.click(`.room-item[data-room="` + room + `"]`)
	bob.reads("compte rendu du comité")
	start := time.Now().UnixMilli()
	bob.say("Compris, je le garde pour moi")
	alice.reads("je le garde pour moi")

	// Alice and Bob compare safety numbers: the same on both sides.
	alice.click(`button[aria-label="Informations sur la discussion"]`)
	alice.click(`button[aria-label="Vérifier Bob Durand"]`)
	alice.visible(".safety-number[data-number]")
	alice.visible("svg.qr")
	number := js[string](alice, `document.querySelector('.safety-number').dataset.number`)
	bob.click(`button[aria-label="Informations sur la discussion"]`)
	bob.click(`button[aria-label="Vérifier Alice Martin"]`)
	bob.visible(".safety-number[data-number]")
	if other := js[string](bob, `document.querySelector('.safety-number').dataset.number`); other != number || len(number) != 60 {
		t.Fatalf("safety numbers differ: Alice sees %q, Bob %q", number, other)
	}
	alice.shot("safety-number")
	alice.click(".verify .actions .primary")
	alice.hasText(".verify .notice", "Bob Durand est vérifié")
	alice.click(`button[aria-label="Retour"]`)
	bob.click(`button[aria-label="Retour"]`)

	// Bob's first device backs up what it decrypted.
	nodetest.CheckFor(t, 20*time.Second, func() error {
		bs, err := n.Chat.Backups(bobc.Me.ID)
		if err != nil {
			return fmt.Errorf("Bob's backups: %w", err)
		}
		for _, b := range bs {
			if strings.HasPrefix(b.Name, "h."+room) && b.Updated >= start {
				return nil
			}
		}
		return fmt.Errorf("no history backup of %s updated since %v among Bob's backups %+v", room, start, bs)
	})

	// Bob's second device: it joins the conversation by itself.
	bob2 := newBrowser(t, "bob2", "fr-FR", 1280, 800)
	if k := bob2.e2eLogin(n, "bob.durand@agents.gouv.fr"); k != "" {
		t.Fatal("a second device made a new recovery key")
	}
	registered(t, n, bobc.Me.ID, 2)
	bob2.visible(".recovery-banner")
	alice.hasText(".sys", "Bob Durand a ajouté l’appareil « Chrome · Linux »")
	alice.hasText(".sys .warn", "appareil non vérifié")
	alice.hasText(`.banner.warn[data-warning="device"]`, "Bob Durand a un nouvel appareil depuis votre vérification")
	alice.shot("new-device-warning")
	bob.hasText(".sys", "Bob Durand a ajouté l’appareil « Chrome · Linux »")

	bob2.click(`.room-item[data-room="` + room + `"]`)
	bob2.hasText(".unreadable", "envoyé avant que cet appareil rejoigne la conversation")
	bob2.shot("history-unreadable")

	// The recovery key restores the history.
	bob2.click(".recovery-banner")
	bob2.typ("#recovery-key", strings.ToLower(key))
	bob2.click(".panel button.primary[type=submit]")
	bob2.hasText(`.notice[data-restored]`, "messages restaurés")
	bob2.shot("restored")
	bob2.click(`.room-item[data-room="` + room + `"]`)
	bob2.reads("compte rendu du comité")
	bob2.hasText(".msg.mine .md", "je le garde pour moi")
	bob2.shot("history-restored")

	// New messages reach both of Bob's devices, and Bob's new device writes.
	// Bob's new device is not verified: Alice's client asks before sending.
	alice.typ(".composer textarea", "Réunion avancée à 9 h"+kb.Enter)
	alice.visible(`[data-confirm="unverified"]`)
	alice.shot("confirm-unverified")
	alice.click(`[data-confirm="unverified"] .link-btn`)
	alice.until("sent after confirmation", `[...document.querySelectorAll('.msg.mine .md')].some(e => e.textContent.includes('Réunion avancée')) && !document.querySelector('.pending-msg')`)
	bob2.reads("Réunion avancée à 9 h")
	bob.reads("Réunion avancée à 9 h")
	bob2.say("Noté, depuis mon second poste")
	alice.reads("depuis mon second poste")
	bob.hasText(".msg .md", "depuis mon second poste")
	bob2.shot("new-messages")
}

// TestForgedCommitRejected: the test acts as a malicious node. Into an
// encrypted conversation's log it appends, through the store, and
// delivers, through the node's own publication path, two commits no
// member made: a well-formed external commit that adds a device of Bob's
// that the node never registered (a "ghost device", the Matrix 2022
// attack), and a commit framed as coming from a member leaf that does not
// exist. Both clients refuse both, say so in the timeline, and go on
// talking.
func TestForgedCommitRejected(t *testing.T) {
	n := startNode(t)
	alice, bob, bobID, room := encryptedDM(t, n, "Premier message")
	epoch := roomEpoch(t, n, room)

	// The malicious node has the room's GroupInfo: anyone holding it can
	// make a valid external commit, here for a device of Bob's the node
	// made up. The MLS is done by the client's own engine, in a page of
	// the node's origin that no one is signed in to.
	ghost := "d-ghostghostghost"
	mallory, gi := outsider(t, n, room)
	external := js[string](mallory, fmt.Sprintf(`import(%q).then(async (m) => {
		const e = m.engine;
		const signer = await e.newSigner();
		const kp = await e.newKeyPackage(83, %q, signer);
		const gi = Uint8Array.from(atob(%q), (c) => c.charCodeAt(0));
		const c = await e.externalJoin(gi, kp, async () => true, new TextEncoder().encode(JSON.stringify({ name: 'Appareil fantôme' })));
		let s = '';
		for (const b of c.commit) s += String.fromCharCode(b);
		return btoa(s);
	})`, e2eChunkURL(t), bobID+"/"+ghost, base64.StdEncoding.EncodeToString(gi)))

	inject := func(from, dev string, data []byte) {
		t.Helper()
		e := epoch
		nodeAppend(t, n, proto.Event{Room: room, From: from, Dev: dev, Type: proto.EvMLSCommit, Data: base64.StdEncoding.EncodeToString(data), Epoch: &e})
	}
	extBytes, err := base64.StdEncoding.DecodeString(external)
	if err != nil {
		t.Fatal(err)
	}
	inject(bobID, ghost, extBytes)
	for _, b := range []*browser{alice, bob} {
		b.hasText(`.sys.warn[data-commit="refused"]`, "Changement du chiffrement refusé")
		b.hasText(`.sys.warn[data-commit="refused"]`, "unknown device "+bobID+"/"+ghost)
	}
	alice.shot("ghost-device-refused")
	if js[bool](alice, `document.body.textContent.includes('Appareil fantôme')`) {
		t.Error("Alice's timeline shows the ghost device as added")
	}

	// A commit framed as a member's, from a leaf that is no member.
	inject("u-"+n.DB.Node()+"-mallorymallorymal", "d-mallorymallorym", mlsframe.PublicCommit(room, epoch, 7))
	for _, b := range []*browser{alice, bob} {
		b.until("two refusals", `document.querySelectorAll('.sys.warn[data-commit="refused"]').length === 2`)
	}
	bob.shot("forged-commits-refused")

	// Neither client moved: they still talk in the same epoch.
	alice.say("Toujours là ?")
	bob.reads("Toujours là ?")
	bob.say("Oui, rien n’a changé")
	alice.reads("rien n’a changé")
	if e := roomEpoch(t, n, room); e != epoch {
		t.Errorf("the room moved from epoch %d to %d", epoch, e)
	}
	alice.shot("still-talking")
}

// TestNoPlaintextOnNode: after an encrypted conversation (messages, a
// reply, an edit, a reaction, history backups), every file under the
// node's data directory — the bbolt database byte by byte included — is
// searched for the plaintexts, in clear and in base64: none is there. A
// forum message, which is not encrypted, is: the control that the search
// would see one.
func TestNoPlaintextOnNode(t *testing.T) {
	n := startNode(t)
	alicec := n.NewUserEmail("alice.martin@agents.gouv.fr", "Alice Martin")
	bobc := n.NewUserEmail("bob.durand@agents.gouv.fr", "Bob Durand")
	alice := newBrowser(t, "alice", "fr-FR", 1280, 800)
	bob := newBrowser(t, "bob", "fr-FR", 1280, 800)
	alice.e2eLogin(n, "alice.martin@agents.gouv.fr")
	bob.e2eLogin(n, "bob.durand@agents.gouv.fr")
	registered(t, n, bobc.Me.ID, 1)

	secrets := []string{
		"ZEBRE-CONFIDENTIEL-7731 rapport sur l’incident",
		"HERON-SECRET-5520 code d’accès du local",
		"LOUTRE-PRIVE-9042 version corrigée",
		"CASTOR-REPONSE-3318",
	}
	alice.openDMWith("bob", bobc.Me.ID)
	room := alice.currentRoom()
	alice.say(secrets[0])
	bob.click(`.room-item[data-room="` + room + `"]`)
	bob.reads(secrets[0])
	bob.say(secrets[1])
	alice.reads(secrets[1])
	// An edit and a reply.
	alice.typ(".composer textarea", kb.ArrowUp)
	alice.hasText(".composer-context", "Modification du message")
	alice.run("select all", clearField(".composer textarea"))
	alice.typ(".composer textarea", secrets[2]+kb.Enter)
	bob.reads(secrets[2])
	bob.click(`.msg:not(.mine) .bubble`)
	bob.click(`.msg.selected button[aria-label="Répondre"]`)
	bob.typ(".composer textarea", secrets[3]+kb.Enter)
	alice.reads(secrets[3])
	// The backups of both are written.
	for _, u := range []string{alicec.Me.ID, bobc.Me.ID} {
		nodetest.CheckFor(t, 20*time.Second, func() error {
			bs, err := n.Chat.Backups(u)
			if err != nil {
				return fmt.Errorf("backups of %s: %w", u, err)
			}
			if len(bs) < 2 {
				return fmt.Errorf("backups of %s: %+v, want at least 2", u, bs)
			}
			return nil
		})
	}
	// The last debounced backup: each browser uploads what is still
	// marked and the promise resolves once the node has it, so the search
	// below sees every backup of the conversation. Bob's reply is marked
	// once his browser shows it under the node's number.
	bob.until("Bob's reply stored", fmt.Sprintf(`[...document.querySelectorAll('.msg.mine')].some(e => Number(e.dataset.seq) > 0 && e.textContent.includes(%q))`, secrets[3]))
	chunk := e2eChunkURL(t)
	for _, b := range []*browser{alice, bob} {
		js[bool](b, fmt.Sprintf(`import(%q).then(async (m) => { await m.manager.flushBackups(); return true; })`, chunk))
	}

	// The control: a forum message, in clear by design.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn := nodetest.Synced(t, ctx, alicec)
	var forum struct{ Room string }
	if err := conn.Call(ctx, "create_room", map[string]any{"kind": "forum", "name": "Forum ouvert"}, &forum); err != nil {
		t.Fatal(err)
	}
	const control = "TAUPE-FORUM-CONTROLE-4417"
	if _, err := conn.Send(ctx, "forum-control", forum.Room, control); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Dir(n.DB.Path())
	alice.allowNet.Store(true)
	bob.allowNet.Store(true)
	n.Stop()
	var files []string
	found := map[string][]string{}
	needles := map[string][]byte{}
	for _, s := range append(secrets, control) {
		word := strings.Fields(s)[0] // the ASCII marker
		needles[s] = []byte(word)
		needles[s+" (phrase)"] = []byte(s)
		for pad := range 3 {
			b64 := base64.StdEncoding.EncodeToString(append(make([]byte, pad), word...))
			needles[s+fmt.Sprintf(" (base64/%d)", pad)] = []byte(b64[4 : len(b64)-4])
		}
	}
	eachDataFile(t, dir, func(rel string, data []byte) {
		files = append(files, fmt.Sprintf("%s (%d bytes)", rel, len(data)))
		for name, needle := range needles {
			if bytes.Contains(data, needle) {
				found[name] = append(found[name], rel)
			}
		}
	})
	t.Logf("searched %d files: %s", len(files), strings.Join(files, ", "))
	if len(found[control]) == 0 {
		t.Fatalf("the control (a forum message in clear) was not found: the search sees nothing")
	}
	for name, where := range found {
		if !strings.HasPrefix(name, control) {
			t.Errorf("plaintext %q found on the node in %v", name, where)
		}
	}
}
