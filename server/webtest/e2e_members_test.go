package webtest

import (
	"context"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"relais/cluster/nodetest"
	"relais/server/chat"
	"relais/server/proto"
	"relais/server/store"
)

// verify has b open the safety number of a person from the open
// conversation's details, and returns it; mark also marks them verified.
func (b *browser) verify(name string, mark bool) string {
	b.t.Helper()
	b.click(`button[aria-label="Informations sur la discussion"]`)
	b.click(`button[aria-label="Vérifier ` + name + `"]`)
	b.visible(".safety-number[data-number]")
	number := js[string](b, `document.querySelector('.safety-number').dataset.number`)
	if mark {
		b.click(".verify .actions .primary")
		b.hasText(".verify .notice", name+" est vérifié")
	}
	b.click(`button[aria-label="Retour"]`)
	return number
}

// TestHiddenDeviceFlagged: the test acts as a malicious node against a
// conversation in which Alice verified Bob. It invents a device of Bob's:
// it stores a key for it (no session, no announcement), pushes that
// device's external commit — made with the client's own MLS code — through
// the node's normal commit path, then deletes the key record, so that the
// node lists nothing new for Bob. Alice's client must see the device in the
// group itself: a loud warning in the room, Bob no longer shown as
// verified, a safety number that changed, and a confirmation asked before
// she sends anything the invented device could read.
func TestHiddenDeviceFlagged(t *testing.T) {
	n := startNode(t)
	alice, bob, bobID, room := encryptedDM(t, n, "Premier message")
	bob.say("Bien reçu")
	alice.reads("Bien reçu")
	before := alice.verify("Bob Durand", true)
	if other := bob.verify("Alice Martin", false); other != before {
		t.Fatalf("safety numbers differ before the attack: %q and %q", before, other)
	}

	// The invented device joins with a real external commit. Its id is
	// not of the node's format, so the node refuses the clients' commits
	// removing it: a malicious node would not relay them either.
	ghost := "d-hiddenhiddenhid"
	nodeDeviceJoin(t, n, room, bobID, ghost)
	// Let both clients process it while the node still lists the key.
	for _, b := range []*browser{alice, bob} {
		b.waitLong("the commit processed", `[...document.querySelectorAll('.sys')].some(e => e.textContent.includes('Chrome · Linux') || e.dataset.commit === 'refused')`, 30*time.Second)
	}
	// Time for the clients' warnings and removal attempts to run while the
	// record exists.
	time.Sleep(3 * time.Second)

	// The key record goes: the node lists nothing new for Bob.
	path := n.DB.Path()
	alice.allowNet.Store(true)
	bob.allowNet.Store(true)
	n.Stop()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("devicekeys")).Delete([]byte(bobID + "\x00" + ghost))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	n.Restart()
	n.DB.View(func(tx *store.Tx) error {
		if _, err := tx.DeviceKey(bobID, ghost); err == nil {
			t.Fatal("the invented device's key is still on the node")
		}
		return nil
	})
	alice.until("online", `!document.querySelector('.conn')`)
	bob.until("online", `!document.querySelector('.conn')`)
	alice.allowNet.Store(false)
	bob.allowNet.Store(false)

	// Alice's client refuses the device, or flags it loudly.
	refused := js[bool](alice, `[...document.querySelectorAll('.sys.warn[data-commit="refused"]')].some(e => e.textContent.includes('`+ghost+`'))`)
	t.Logf("Alice's client refused the device's commit: %v (else it flags the device)", refused)
	if !refused {
		alice.hasText(`.banner.warn[data-warning]`, "Bob Durand")
		// The device by its tag (proto.UserTag of the id), never its raw id.
		alice.hasText(`.banner.warn[data-warning]`, "(AXWK)")
		if js[bool](alice, `document.querySelector('.banner.warn[data-warning]').textContent.includes('`+ghost+`')`) {
			t.Error("the room warning shows the device's raw id")
		}
		alice.until("Bob not shown as verified", `!document.querySelector('.verify-btn[data-verified="yes"]')`)
		if after := alice.verify("Bob Durand", false); after == before {
			t.Errorf("Alice's safety number for Bob did not change with a device of Bob's in the group: %s", after)
		}
		// Sending asks first: the device would read the message.
		alice.typ(".composer textarea", "Message confidentiel\n")
		alice.visible(`[data-confirm="unverified"]`)
		alice.shot("hidden-device-confirm")
		if js[bool](alice, `[...document.querySelectorAll('.msg.mine .md')].some(e => e.textContent.includes('Message confidentiel'))`) {
			t.Error("the message went out without confirmation")
		}
	}
	alice.shot("hidden-device-flagged")
}

// TestCryptoKickRefused: Carol, a plain member of an encrypted group,
// makes with her own client's MLS state a commit that removes Bob, who is
// still in the room, and sends it without declaring the removal, so that
// the node cannot see it. Nobody allowed to remove Bob did (no leave, no
// revoked device; in the second case the node forges a kick of Bob by
// Carol, whose role does not allow it): Alice's client refuses the commit
// and says so in the timeline. Without the forged kick, Bob's refuses it
// too, and Alice and Bob keep talking.
func TestCryptoKickRefused(t *testing.T) {
	for _, tc := range []struct {
		name       string
		forgedKick bool
		refusal    string
	}{
		{"no departure", false, "who is still in the room"},
		{"kick forged by the node from a plain member", true, "whose removal was not made by someone allowed to"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := startNode(t)
			ids, bs, room := encryptedGroup(t, n, "Comité restreint", []string{"Alice Martin", "Bob Durand", "Carol Petit"})
			alice, bob, carol := bs[0], bs[1], bs[2]
			bob.say("Présent")
			alice.reads("Présent")
			carol.reads("Présent")
			if tc.forgedKick {
				nodeAppend(t, n, proto.Event{Room: room, From: ids[2], Type: proto.EvMember, User: ids[1], Action: proto.ActKick})
				alice.hasText(".sys", "Bob Durand")
			}
			epoch := roomEpoch(t, n, room)

			// Carol's commit removes Bob's device; the frame declares nothing.
			seq := js[string](carol, fmt.Sprintf(`import(%q).then(async (m) => {
				const mgr = m.manager, e = m.engine, r = mgr.room(%q);
				return r.run(async () => {
					await r.drain();
					const bob = e.members(r.group).find((x) => x.identity.startsWith(%q));
					const c = await e.commit(r.group, [], [bob.leaf]);
					const b64 = (b) => { let s = ''; for (const x of b) s += String.fromCharCode(x); return btoa(s); };
					const ack = await mgr.host.frame({ t: 'mls', room: %q, data: b64(c.commit), group_info: b64(c.groupInfo) }, 'c-cryptokick');
					r.group = c.group;
					r.seq = Number(ack.seq);
					await r.save();
					return String(ack.seq);
				});
			})`, e2eChunkURL(t), room, ids[1]+"/", room))
			t.Logf("Carol's commit is at seq %s", seq)
			if e := roomEpoch(t, n, room); e != epoch+1 {
				t.Fatalf("the node did not take Carol's commit: epoch %d, was %d", e, epoch)
			}
			judges := []*browser{alice, bob}
			if tc.forgedKick {
				judges = judges[:1] // Bob's client believes the node: it was kicked
			}
			for _, b := range judges {
				b.waitLong("the removal refused", fmt.Sprintf(`[...document.querySelectorAll('.sys.warn[data-commit="refused"]')].some(e => e.textContent.includes(%q))`, tc.refusal), 30*time.Second)
			}
			alice.shot("crypto-kick-refused")
			if js[bool](alice, `document.body.textContent.includes('a retiré Bob Durand du chiffrement')`) {
				t.Error("Alice's timeline shows Bob removed from the encryption")
			}
			if tc.forgedKick {
				return
			}

			// Alice and Bob still talk: each client, finding the group moved
			// on without it, joins it again by external commit — a denial of
			// service by Carol, visible, never a removal.
			alice.say("Bob, tu es toujours là ?")
			bob.say("Oui, toujours là")
			alice.waitLong("Alice reads Bob", `[...document.querySelectorAll('.msg:not(.mine) .md')].some(e => e.textContent.includes('Oui, toujours là'))`, 60*time.Second)
			alice.say("Parfait, on continue")
			bob.waitLong("Bob reads Alice", `[...document.querySelectorAll('.msg:not(.mine) .md')].some(e => e.textContent.includes('on continue'))`, 60*time.Second)
			bob.shot("still-talking")
		})
	}
}

// TestMemberAddFlagsUnverifiedDevice: Alice verified Bob when he had one
// device; Bob then signs in on a second one. Carol, who shares a group
// with Alice, invites Bob there: her commit adds both of Bob's devices. In
// that group, Alice's client flags the device she never verified — a
// safety number for Bob that is not the one she compared, and a
// confirmation before she sends — whoever's commit brought it.
func TestMemberAddFlagsUnverifiedDevice(t *testing.T) {
	n := startNode(t)
	alice, bob, bobID, _ := encryptedDM(t, n, "Premier message")
	chunk := e2eChunkURL(t)
	aliceID := js[string](alice, fmt.Sprintf(`import(%q).then((m) => m.manager.host.me().user)`, chunk))
	verified := alice.verify("Bob Durand", true)
	if other := bob.verify("Alice Martin", false); other != verified {
		t.Fatalf("safety numbers differ: %q and %q", verified, other)
	}

	carolc := n.NewUserEmail("carol.petit@agents.gouv.fr", "Carol Petit")
	carol := newBrowser(t, "carol", "fr-FR", 1000, 700)
	carol.e2eLogin(n, "carol.petit@agents.gouv.fr")
	registered(t, n, carolc.Me.ID, 1)
	group := js[string](carol, fmt.Sprintf(`import(%q).then(async (m) => {
		const mgr = m.manager;
		const res = await mgr.host.request({ t: 'create_room', kind: 'group', name: 'Projet commun', encrypted: true, users: [%q] });
		for (let i = 0; i < 200 && !mgr.host.room(res.room); i++) await new Promise((r) => setTimeout(r, 25));
		await mgr.found(res.room, [%q]);
		return res.room;
	})`, chunk, aliceID, aliceID))
	alice.click(`.room-item[data-room="` + group + `"]`)
	alice.click(".invitation .primary")
	carol.click(`.room-item[data-room="` + group + `"]`)
	carol.say("Bienvenue dans le projet")
	alice.reads("Bienvenue dans le projet")

	// Bob's second device, which Alice never verified.
	bob2 := newBrowser(t, "bob2", "fr-FR", 1000, 700)
	bob2.e2eLogin(n, "bob.durand@agents.gouv.fr")
	registered(t, n, bobID, 2)

	// Carol adds Bob, both devices, by her own commit.
	js[bool](carol, fmt.Sprintf(`import(%q).then(async (m) => {
		await m.manager.host.request({ t: 'invite', room: %q, user: %q });
		await m.manager.addUsers(%q, [%q]);
		return true;
	})`, chunk, group, bobID, group, bobID))
	alice.hasText(".sys", "Carol Petit a ajouté Bob Durand au chiffrement")
	bob.click(`.room-item[data-room="` + group + `"]`)
	bob.click(".invitation .primary")

	alice.typ(".composer textarea", "Document de travail\n")
	alice.visible(`[data-confirm="unverified"]`)
	alice.shot("member-add-confirm")
	if after := alice.verify("Bob Durand", false); after == verified {
		t.Errorf("in the group, Alice's safety number for Bob is the one verified with one device: %s", after)
	}
	alice.until("Bob not shown as verified", `!document.querySelector('.verify-btn[data-verified="yes"]')`)
}

// TestPinnedKeyChangeRefused: the node rebinds Bob's existing device to a
// key of its own — its device_keys now lists that key — and pushes an
// external commit for that device name made with it. Alice's and Bob's
// clients accepted that device with its first key: they refuse the commit
// (the key is not the one they pinned, nor, for the old leaf, the one the
// node now lists). The group is then stuck — a denial of service by the
// node, visible — never joined by the node's key.
func TestPinnedKeyChangeRefused(t *testing.T) {
	n := startNode(t)
	alice, bob, bobID, room := encryptedDM(t, n, "Premier message")
	var device string
	n.DB.View(func(tx *store.Tx) error {
		keys, _ := tx.DeviceKeys(bobID)
		if len(keys) == 1 {
			device = keys[0].DeviceID
		}
		return nil
	})
	if device == "" {
		t.Fatal("Bob has not one device key")
	}
	nodeDeviceJoin(t, n, room, bobID, device)
	for _, b := range []*browser{alice, bob} {
		b.waitLong("the commit refused", `[...document.querySelectorAll('.sys.warn[data-commit="refused"]')].some(e => e.textContent.includes('the key of `+bobID+"/"+device+`'))`, 30*time.Second)
	}
	alice.shot("rebound-key-refused")
}

// nodeDeviceJoin does what a malicious node can: it makes, with the web
// client's own MLS code in an outsider page, an external commit into the
// room's group for user/device with a signature key of its own, binds that
// key to the device in its store (no session, no announcement), and pushes
// the commit through its normal commit path as that device.
func nodeDeviceJoin(t *testing.T, n *nodetest.Node, room, user, device string) {
	t.Helper()
	mallory, gi := outsider(t, n, room)
	out := js[map[string]string](mallory, fmt.Sprintf(`import(%q).then(async (m) => {
		const e = m.engine;
		const signer = await e.newSigner();
		const kp = await e.newKeyPackage(83, %q, signer);
		const gi = Uint8Array.from(atob(%q), (c) => c.charCodeAt(0));
		const c = await e.externalJoin(gi, kp, async () => true, new TextEncoder().encode(JSON.stringify({ name: 'Chrome · Linux' })));
		const b64 = (b) => { let s = ''; for (const x of b) s += String.fromCharCode(x); return btoa(s); };
		return { pub: b64(signer.pub), commit: b64(c.commit), group_info: b64(c.groupInfo) };
	})`, e2eChunkURL(t), user+"/"+device, base64.StdEncoding.EncodeToString(gi)))
	pub, err := base64.StdEncoding.DecodeString(out["pub"])
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := n.DB.Update(ctx, func(tx *store.Tx) error {
		return tx.PutDeviceKey(user, device, store.DeviceKey{Key: pub, Created: time.Now()})
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.Chat.Commit(ctx, chat.Actor{User: user, Device: device}, &proto.ClientFrame{
		T: proto.TMLS, ID: "c-" + device, Room: room, Data: out["commit"], GroupInfo: out["group_info"],
	}); err != nil {
		t.Fatalf("the node's commit path refused the commit of %s/%s: %v", user, device, err)
	}
}
