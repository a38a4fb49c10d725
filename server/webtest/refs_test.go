package webtest

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/proto"
	"relais/server/store"
)

// Tests of how encrypted messages refer to each other (edits, replies,
// reactions, deletions) when the node lies: references travel inside the
// encrypted payload as the referenced message's own id, never as the
// node's sequence numbers, and only its author's signed deletion wipes a
// decrypted message.

// seqOf returns the seq of the message of this browser's timeline whose
// text includes text (0 if none).
func (b *browser) seqOf(text string) int {
	b.t.Helper()
	return js[int](b, fmt.Sprintf(`(() => { const m = [...document.querySelectorAll('.msg')].find(e => e.querySelector('.md')?.textContent.includes(%q)); return m ? Number(m.dataset.seq) : 0 })()`, text))
}

// act selects the message whose text includes text and presses one of its
// actions (by its French label).
func (b *browser) act(text, label string) {
	b.t.Helper()
	b.until("message "+text, fmt.Sprintf(`[...document.querySelectorAll('.msg')].some(e => e.querySelector('.md')?.textContent.includes(%q) && e.dataset.seq)`, text))
	seq := b.seqOf(text)
	sel := fmt.Sprintf(`.msg[data-seq="%d"]`, seq)
	if !js[bool](b, `!!document.querySelector('`+sel+`.selected')`) {
		b.click(sel + " .bubble")
	}
	b.click(sel + `.selected button[aria-label="` + label + `"]`)
}

// msgState describes, in this browser, the message whose text includes
// text: how many there are, and for the first one whether it is marked
// edited, its reactions and the text of its reply quote.
func (b *browser) msgState(text string) (count int, edited bool, reactions, quote string) {
	b.t.Helper()
	var st struct {
		Count     int
		Edited    bool
		Reactions string
		Quote     string
	}
	raw := js[string](b, fmt.Sprintf(`(() => {
		const ms = [...document.querySelectorAll('.msg')].filter(e => e.querySelector('.md')?.textContent.includes(%q));
		const m = ms[0];
		return JSON.stringify({count: ms.length, edited: !!m?.querySelector('.edited'),
			reactions: [...(m?.querySelectorAll('.reaction') ?? [])].map(r => r.textContent).join(' '),
			quote: m?.querySelector('.reply-quote')?.textContent ?? ''});
	})()`, text))
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		b.t.Fatal(err)
	}
	return st.Count, st.Edited, st.Reactions, st.Quote
}

// storedEvent reads one stored event of a room.
func storedEvent(t *testing.T, n *nodetest.Node, room string, seq uint64) (store.Event, proto.Event) {
	t.Helper()
	var rec store.Event
	var ev proto.Event
	if err := n.DB.View(func(tx *store.Tx) error {
		var err error
		if rec, err = tx.Event(room, seq); err != nil {
			return err
		}
		return json.Unmarshal(rec.Frame, &ev)
	}); err != nil {
		t.Fatal(err)
	}
	return rec, ev
}

// TestNodeCannotRepointEncryptedReferences: the test acts as a malicious
// node. While Bob is away, Alice writes "alpha" and "beta", answers
// alpha, reacts to it and edits it. The node then swaps, in its log, the
// ciphertexts at the two sequence numbers, so that every reference by
// sequence number now designates the other message. When Bob comes back,
// the edit, the reply and the reaction still apply to alpha, wherever the
// node put it, and beta is untouched.
func TestNodeCannotRepointEncryptedReferences(t *testing.T) {
	n := startNode(t)
	alice, bob, _, room := encryptedDM(t, n, "Premier message")

	// Bob leaves: what follows reaches him only from the node's log.
	bob.nav("about:blank")
	alice.say("Message alpha")
	alice.say("Message beta")
	alice.act("Message alpha", "Répondre")
	alice.typ(".composer textarea", "Réponse à alpha\n")
	alice.until("reply sent", `[...document.querySelectorAll('.msg.mine .md')].some(e => e.textContent.includes('Réponse à alpha')) && !document.querySelector('.pending-msg')`)
	alice.act("Message alpha", "Réagir")
	alice.click(`button[aria-label="Réagir avec 👍"]`)
	alice.act("Message alpha", "Modifier")
	alice.until("draft is the message", `document.querySelector('.composer textarea').value.includes('Message alpha')`)
	alice.run("select all", clearField(".composer textarea"))
	alice.typ(".composer textarea", "Message alpha corrigé\n")
	alice.until("edit shown", `[...document.querySelectorAll('.msg.mine .md')].some(e => e.textContent.includes('Message alpha corrigé'))`)
	nodetest.CheckFor(t, 20*time.Second, func() error {
		// The first message, alpha, beta, the reply, the reaction and
		// the edit.
		if got := countType(t, n, room, proto.EvEncrypted); got < 6 {
			return fmt.Errorf("%d of Alice's 6 messages stored", got)
		}
		return nil
	})
	alpha, beta := uint64(alice.seqOf("Message alpha corrigé")), uint64(alice.seqOf("Message beta"))
	if alpha == 0 || beta == 0 {
		t.Fatalf("alpha at %d, beta at %d", alpha, beta)
	}

	// The malicious node swaps the two ciphertexts in its log.
	ra, ea := storedEvent(t, n, room, alpha)
	rb, eb := storedEvent(t, n, room, beta)
	if ea.Type != proto.EvEncrypted || eb.Type != proto.EvEncrypted || ea.Data == "" || eb.Data == "" {
		t.Fatalf("alpha %+v, beta %+v: want two encrypted messages", ea, eb)
	}
	ea.Data, eb.Data = eb.Data, ea.Data
	ea.CID, eb.CID = eb.CID, ea.CID
	ra.Frame, rb.Frame = proto.Encode(&ea), proto.Encode(&eb)
	if err := n.DB.Update(context.Background(), func(tx *store.Tx) error {
		if err := tx.ReplaceEvent(room, ra); err != nil {
			return err
		}
		return tx.ReplaceEvent(room, rb)
	}); err != nil {
		t.Fatal(err)
	}

	bob.nav(n.URL() + "/room/" + room)
	bob.waitLong("Bob decrypted what he missed", `[...document.querySelectorAll('.msg:not(.mine) .md')].some(e => e.textContent.includes('Réponse à alpha')) && !document.querySelector('.decrypting')`, 60*time.Second)
	time.Sleep(time.Second)
	bob.shot("after-swap")

	if c, edited, reactions, _ := bob.msgState("Message beta"); c != 1 || edited || reactions != "" {
		t.Errorf("Bob's beta: %d messages, edited %v, reactions %q: want one, unedited, no reaction", c, edited, reactions)
	}
	if c, edited, reactions, _ := bob.msgState("Message alpha corrigé"); c != 1 || !edited || reactions == "" {
		t.Errorf("Bob's alpha: %d edited messages, edited %v, reactions %q: want alpha edited, with Alice's reaction", c, edited, reactions)
	}
	if c, _, _, _ := bob.msgState("Message alpha"); c != 1 {
		t.Errorf("Bob shows %d messages with alpha's text: want one, edited", c)
	}
	if _, _, _, quote := bob.msgState("Réponse à alpha"); quote == "" || !strings.Contains(quote, "alpha") {
		t.Errorf("Bob's reply quotes %q: want alpha", quote)
	}
}

// countType counts the stored events of a type in a room.
func countType(t *testing.T, n *nodetest.Node, room, typ string) int {
	t.Helper()
	c := 0
	for _, e := range roomEvents(t, n, room) {
		if e["type"] == typ {
			c++
		}
	}
	return c
}

// injectDelete makes the node delete a message on its own: the stored
// message becomes a tombstone and a delete event, said to be from, is
// appended and published as any other.
func injectDelete(t *testing.T, n *nodetest.Node, room string, target uint64, from string) {
	t.Helper()
	ctx := context.Background()
	err := n.DB.Update(ctx, func(tx *store.Tx) error {
		rec, err := tx.Event(room, target)
		if err != nil {
			return err
		}
		var old proto.Event
		if err := json.Unmarshal(rec.Frame, &old); err != nil {
			return err
		}
		tomb := proto.Event{T: old.T, Room: old.Room, Seq: old.Seq, TS: old.TS, From: old.From, Dev: old.Dev, Type: old.Type, Deleted: true}
		rec.Frame = proto.Encode(&tomb)
		rec.Flags |= store.Redacted
		if err := tx.ReplaceEvent(room, rec); err != nil {
			return err
		}
		last, err := tx.LastEvent(room)
		if err != nil {
			return err
		}
		ev := proto.Event{T: proto.TEvent, Room: room, Seq: last.Seq + 1, TS: time.Now().UnixMilli(), From: from, Type: proto.EvDelete, Target: target}
		_, err = tx.AppendEvent(room, store.Event{Seq: ev.Seq, Ord: last.Ord, TS: ev.TS, Frame: proto.Encode(&ev)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Chat.Recover(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestNodeDeleteKeepsDecryptedText: the test acts as a malicious node and
// deletes, on its own, an encrypted message Bob has read, in Alice's
// name. Bob still reads it, marked as removed from the server, and still
// does after a reload; the deletion is only the node's. Alice, its
// author, can then delete it for real.
func TestNodeDeleteKeepsDecryptedText(t *testing.T) {
	n := startNode(t)
	alice, bob, _, room := encryptedDM(t, n, "Premier message")
	alice.say("Le texte que le serveur voudrait effacer")
	bob.reads("Le texte que le serveur voudrait effacer")
	seq := uint64(bob.seqOf("Le texte que le serveur voudrait effacer"))
	_, ev := storedEvent(t, n, room, seq)

	injectDelete(t, n, room, seq, ev.From)
	for _, b := range []*browser{bob, alice} {
		// The deletion has arrived: the message is marked, or wiped.
		b.until("the node's deletion arrived", fmt.Sprintf(`!!document.querySelector('.msg[data-seq="%d"] .removed-mark') || !document.querySelector('.msg[data-seq="%d"] .md')`, seq, seq))
		if !js[bool](b, fmt.Sprintf(`!!document.querySelector('.msg[data-seq="%d"] .md')?.textContent.includes('Le texte que le serveur voudrait effacer')`, seq)) {
			b.shot("FAILED-wiped")
			t.Fatalf("[%s] the node's own deletion wiped the decrypted text", b.name)
		}
		b.visible(fmt.Sprintf(`.msg[data-seq="%d"] .removed-mark`, seq))
	}
	bob.shot("node-delete")
	bob.run("reload", reload())
	bob.until("marked after reload", fmt.Sprintf(`!!document.querySelector('.msg[data-seq="%d"] .removed-mark')`, seq))
	bob.hasText(fmt.Sprintf(`.msg[data-seq="%d"] .md`, seq), "Le texte que le serveur voudrait effacer")

	// Its author can still delete it, inside the encryption: then it goes.
	alice.act("Le texte que le serveur voudrait effacer", "Supprimer")
	alice.click(fmt.Sprintf(`.msg[data-seq="%d"] button.danger`, seq))
	for _, b := range []*browser{bob, alice} {
		b.until("deleted by its author", fmt.Sprintf(`!!document.querySelector('.msg[data-seq="%d"].deleted') && !document.body.textContent.includes('Le texte que le serveur voudrait effacer')`, seq))
	}
}

// TestEncryptedAuthorEditAndDelete: Bob's client sends an encrypted edit
// and deletion of Alice's message: they apply nowhere (the MLS sender is
// not the author). Alice edits one of her encrypted messages and deletes
// another: Bob sees the edit and the deletion, the
// deletion travels signed inside the encryption (an encrypted event) and
// the node drops the ciphertext (a tombstone). Bob keeps both after a
// reload.
func TestEncryptedAuthorEditAndDelete(t *testing.T) {
	n := startNode(t)
	alice, bob, _, room := encryptedDM(t, n, "Premier message")
	alice.say("Texte à modifier")
	alice.say("Texte à supprimer")
	bob.reads("Texte à supprimer")
	gone := uint64(bob.seqOf("Texte à supprimer"))

	// Bob's client, turned malicious, sends a well-formed encrypted edit
	// and deletion of Alice's message, naming its true id: the MLS sender
	// is Bob, not the author, so neither applies anywhere.
	mod := uint64(bob.seqOf("Texte à modifier"))
	js[string](bob, fmt.Sprintf(`import(%q).then(async (m) => {
		const p = m.plainOf(%q, %d);
		await m.manager.send('c-forged-edit', %q, { type: 'edit', ref: p.id, body: 'Texte forgé par Bob' });
		await m.manager.send('c-forged-delete', %q, { type: 'delete', ref: p.id });
		return p.id;
	})`, e2eChunkURL(t), room, mod, room, room))
	bob.say("Après la tentative")
	alice.reads("Après la tentative")
	for _, b := range []*browser{alice, bob} {
		if c, edited, _, _ := b.msgState("Texte à modifier"); c != 1 || edited {
			t.Errorf("[%s] Alice's message after Bob's forged edit and deletion: %d messages, edited %v", b.name, c, edited)
		}
		if js[bool](b, `document.body.textContent.includes('Texte forgé par Bob')`) {
			t.Errorf("[%s] shows Bob's forged edit", b.name)
		}
	}

	alice.act("Texte à modifier", "Modifier")
	alice.until("draft is the message", `document.querySelector('.composer textarea').value.includes('Texte à modifier')`)
	alice.run("select all", clearField(".composer textarea"))
	alice.typ(".composer textarea", "Texte modifié par Alice\n")
	bob.reads("Texte modifié par Alice")
	bob.until("edited mark", `[...document.querySelectorAll('.msg:not(.mine)')].some(e => e.textContent.includes('Texte modifié par Alice') && e.querySelector('.edited'))`)

	before := countType(t, n, room, proto.EvEncrypted)
	alice.act("Texte à supprimer", "Supprimer")
	alice.click(fmt.Sprintf(`.msg[data-seq="%d"] button.danger`, gone))
	for _, b := range []*browser{bob, alice} {
		b.until("deleted", fmt.Sprintf(`!!document.querySelector('.msg[data-seq="%d"].deleted') && !document.body.textContent.includes('Texte à supprimer')`, gone))
		b.hasText(fmt.Sprintf(`.msg[data-seq="%d"]`, gone), "Message supprimé")
	}
	nodetest.CheckFor(t, 20*time.Second, func() error {
		if _, ev := storedEvent(t, n, room, gone); !ev.Deleted || ev.Data != "" {
			return fmt.Errorf("the node kept the ciphertext of %d: deleted %v, %d bytes of data", gone, ev.Deleted, len(ev.Data))
		}
		return nil
	})
	if after := countType(t, n, room, proto.EvEncrypted); after != before+1 {
		t.Errorf("encrypted events went from %d to %d on deletion: want the deletion signed inside the encryption", before, after)
	}
	bob.run("reload", reload())
	bob.reads("Texte modifié par Alice")
	bob.hasText(fmt.Sprintf(`.msg[data-seq="%d"]`, gone), "Message supprimé")
	if js[bool](bob, `document.body.textContent.includes('Texte à supprimer')`) {
		t.Error("Bob still shows the deleted text after a reload")
	}
}

// TestLegacyPayloadsShowWithoutReferences: payloads of version 1 (before
// message ids, references by seq), as clients before this change sent
// them, still show as messages, but their references by seq are not
// followed (the node decides what a seq designates) and they offer no
// reply, edit or reaction (they have no id to be referred to).
func TestLegacyPayloadsShowWithoutReferences(t *testing.T) {
	n := startNode(t)
	alice, bob, _, room := encryptedDM(t, n, "Premier message")
	first := bob.seqOf("Premier message")
	js[bool](bob, fmt.Sprintf(`import(%q).then(async (m) => {
		await m.manager.send('c-legacy-text', %q, { v: 1, type: 'text', body: 'Ancien format', reply_to: %d });
		await m.manager.send('c-legacy-react', %q, { v: 1, type: 'react', target: %d, key: '🎉' });
		await m.manager.send('c-legacy-edit', %q, { v: 1, type: 'edit', target: %d, body: 'Réécrit par seq' });
		return true;
	})`, e2eChunkURL(t), room, first, room, first, room, first))
	bob.say("Format actuel")
	alice.reads("Format actuel")
	alice.reads("Ancien format")
	for _, b := range []*browser{alice, bob} {
		if js[bool](b, `document.body.textContent.includes('Réécrit par seq') || !!document.querySelector('.reaction')`) {
			t.Errorf("[%s] followed a reference by seq", b.name)
		}
		if _, _, _, quote := b.msgState("Ancien format"); quote != "" {
			t.Errorf("[%s] the legacy reply quotes %q", b.name, quote)
		}
	}
	seq := alice.seqOf("Ancien format")
	alice.click(fmt.Sprintf(`.msg[data-seq="%d"] .bubble`, seq))
	if js[bool](alice, fmt.Sprintf(`!!document.querySelector('.msg[data-seq="%d"] button[aria-label="Répondre"]')`, seq)) {
		t.Error("a legacy message offers a reply")
	}
}
