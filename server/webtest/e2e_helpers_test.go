package webtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"relais/cluster/nodetest"
	webembed "relais/embed"
	"relais/server/proto"
	"relais/server/store"
)

// Helpers of the end-to-end encryption tests.

// e2eLogin signs in and waits until the device has published its
// KeyPackages and knows where its recovery key stands. The first device of
// a user gets a new recovery key to write down: e2eLogin returns it (after
// saying it is written down).
func (b *browser) e2eLogin(n *nodetest.Node, email string) string {
	b.t.Helper()
	return b.e2eLoginAt(n.URL(), email)
}

// e2eLoginAt is e2eLogin through another address of the node (a proxy).
func (b *browser) e2eLoginAt(base, email string) string {
	b.t.Helper()
	b.login(base, email, nodetest.Password)
	b.waitLong("encryption ready", `['show', 'needed', 'ok'].includes(document.querySelector('.app').dataset.e2e)`, 40*time.Second)
	if js[string](b, `document.querySelector('.app').dataset.e2e`) != "show" {
		return ""
	}
	b.click(".recovery-new")
	b.visible(".recovery-key[data-key]")
	key := js[string](b, `document.querySelector('.recovery-key[data-key]').dataset.key`)
	b.shot("recovery-key")
	b.click(".panel button.primary")
	b.until("key written down", `document.querySelector('.app').dataset.e2e === 'ok'`)
	return key
}

// openDMWith opens (or creates) the direct conversation with a user from
// the directory.
func (b *browser) openDMWith(query, userID string) {
	b.t.Helper()
	b.click(`button[aria-label="Nouveau message"]`)
	b.typ("#dm-q", query)
	b.click(`button[data-user="` + userID + `"]`)
	b.visible(".composer textarea")
}

// say types a message and sends it.
func (b *browser) say(text string) {
	b.t.Helper()
	b.typ(".composer textarea", text+kb.Enter)
	shown := strings.ReplaceAll(text, "**", "")
	b.until("sent: "+shown, fmt.Sprintf(`[...document.querySelectorAll('.msg.mine .md')].some(e => e.textContent.includes(%q)) && !document.querySelector('.pending-msg')`, shown))
}

// reads waits until a message from someone else with text shows.
func (b *browser) reads(text string) {
	b.t.Helper()
	b.hasText(".msg:not(.mine) .md", text)
}

// registered waits until the node holds KeyPackages of every device of a
// user that signed in from a browser.
func registered(t *testing.T, n *nodetest.Node, user string, devices int) {
	t.Helper()
	nodetest.CheckFor(t, 20*time.Second, func() error {
		count := 0
		n.DB.View(func(tx *store.Tx) error {
			keys, _ := tx.DeviceKeys(user)
			for _, k := range keys {
				if tx.KeyPackageCount(user, k.DeviceID) > 0 {
					count++
				}
			}
			return nil
		})
		if count < devices {
			return fmt.Errorf("%s has %d devices with KeyPackages, want %d", user, count, devices)
		}
		return nil
	})
}

// roomEpoch returns the epoch of an encrypted room's group on the node.
func roomEpoch(t *testing.T, n *nodetest.Node, room string) uint64 {
	t.Helper()
	var epoch uint64
	if err := n.DB.View(func(tx *store.Tx) error {
		g, err := tx.MLSGroup(room)
		epoch = g.Epoch
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return epoch
}

// currentRoom is the id of the room open in the browser.
func (b *browser) currentRoom() string {
	b.t.Helper()
	b.visible("section.room[data-room]")
	return js[string](b, `document.querySelector('section.room[data-room]').dataset.room`)
}

// roomEvents returns the stored events of a room, in order.
func roomEvents(t *testing.T, n *nodetest.Node, room string) []map[string]any {
	t.Helper()
	var out []map[string]any
	err := n.DB.View(func(tx *store.Tx) error {
		return tx.Events(room, 1, false, func(e store.Event) bool {
			var m map[string]any
			if err := json.Unmarshal(e.Frame, &m); err == nil {
				out = append(out, m)
			}
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// e2eChunkURL finds the MLS chunk among the built assets: the one that
// names itself "relais:e2e-chunk".
func e2eChunkURL(t *testing.T) string {
	t.Helper()
	web := webembed.Web()
	var found string
	fs.WalkDir(web, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".js") {
			return err
		}
		b, err := fs.ReadFile(web, p)
		if err == nil && strings.Contains(string(b), "relais:e2e-chunk") {
			found = "/" + p
		}
		return nil
	})
	if found == "" {
		t.Fatal("the MLS chunk is not in the build: run npm run build in web/")
	}
	return found
}

// waitLong is like until with a longer deadline, for MLS work under the
// race detector.
func (b *browser) waitLong(what, cond string, d time.Duration) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](cond, chromedp.WithPollingInterval(25*time.Millisecond))); err != nil {
		b.shot("FAILED-" + sanitize(what))
		b.t.Fatalf("[%s] waiting for %s (%s): %v", b.name, what, cond, err)
	}
}

// encryptedDM signs Alice and Bob in, in two browsers, opens their direct
// conversation (encrypted by default) from Alice's side, and has her write
// first so that both are in the MLS group once Bob has read it.
func encryptedDM(t *testing.T, n *nodetest.Node, first string) (alice, bob *browser, bobID, room string) {
	t.Helper()
	n.NewUserEmail("alice.martin@agents.gouv.fr", "Alice Martin")
	bobID = n.NewUserEmail("bob.durand@agents.gouv.fr", "Bob Durand").Me.ID
	alice = newBrowser(t, "alice", "fr-FR", 1280, 800)
	bob = newBrowser(t, "bob", "fr-FR", 1280, 800)
	alice.e2eLogin(n, "alice.martin@agents.gouv.fr")
	bob.e2eLogin(n, "bob.durand@agents.gouv.fr")
	registered(t, n, bobID, 1)
	alice.openDMWith("bob", bobID)
	room = alice.currentRoom()
	alice.say(first)
	bob.click(`.room-item[data-room="` + room + `"]`)
	bob.reads(first)
	return alice, bob, bobID, room
}

// encryptedGroup signs people in, one browser each, has the first create an
// encrypted group with the others, write in it, and the others accept the
// invitation and read it. It returns the people's ids and browsers, in
// the order of names, and the room.
func encryptedGroup(t *testing.T, n *nodetest.Node, title string, names []string) (ids []string, bs []*browser, room string) {
	t.Helper()
	for _, name := range names {
		local := strings.ToLower(strings.ReplaceAll(name, " ", "."))
		c := n.NewUserEmail(local+"@agents.gouv.fr", name)
		ids = append(ids, c.Me.ID)
		b := newBrowser(t, strings.Fields(strings.ToLower(name))[0], "fr-FR", 1000, 700)
		b.e2eLogin(n, local+"@agents.gouv.fr")
		bs = append(bs, b)
	}
	for _, id := range ids {
		registered(t, n, id, 1)
	}
	first := bs[0]
	first.click(`button[aria-label="Nouveau groupe"]`)
	first.typ("#g-name", title)
	for i, name := range names[1:] {
		first.typ("#g-q", strings.Fields(name)[0])
		first.click(`button[data-user="` + ids[i+1] + `"]`)
		first.until("picked", fmt.Sprintf(`document.querySelectorAll('.picked .chip').length === %d`, i+1))
	}
	first.click(".panel button.primary[type=submit]")
	first.hasText(".room-title h2", title)
	room = first.currentRoom()
	first.say("Point de situation à 17 h")
	first.hasText(".sys", "a ajouté "+names[len(names)-1]+" au chiffrement")
	for _, b := range bs[1:] {
		b.click(`.room-item[data-room="` + room + `"]`)
		b.click(".invitation .primary")
		b.reads("Point de situation à 17 h")
	}
	return ids, bs, room
}

// outsider opens a page of the node's origin that no one is signed in
// to, where the test, acting as a malicious node, runs the client's own
// MLS code; it returns it with the room's GroupInfo, which the node holds.
func outsider(t *testing.T, n *nodetest.Node, room string) (*browser, []byte) {
	t.Helper()
	var gi []byte
	n.DB.View(func(tx *store.Tx) error { gi = tx.GroupInfo(room); return nil })
	b := newBrowser(t, "mallory", "fr-FR", 800, 600)
	b.nav(n.URL() + "/login")
	b.visible("#login-email")
	return b, gi
}

// nodeAppend does what a malicious node can: it appends an event of its
// making to a room's log, through the store, and publishes it through the
// node's own path to its members' sessions (what the log holds and the
// bus has not carried).
func nodeAppend(t *testing.T, n *nodetest.Node, ev proto.Event) {
	t.Helper()
	ctx := context.Background()
	err := n.DB.Update(ctx, func(tx *store.Tx) error {
		last, err := tx.LastEvent(ev.Room)
		if err != nil {
			return err
		}
		ev.T, ev.Seq, ev.TS = proto.TEvent, last.Seq+1, time.Now().UnixMilli()
		_, err = tx.AppendEvent(ev.Room, store.Event{Seq: ev.Seq, Ord: last.Ord, TS: ev.TS, Frame: proto.Encode(&ev)})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Chat.Recover(ctx); err != nil {
		t.Fatal(err)
	}
}
