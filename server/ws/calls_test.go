package ws_test

import (
	"encoding/json"
	"strings"
	"testing"

	"relais/cluster/nodetest"
	"relais/server/client"
	"relais/server/mls/mlsframe"
	"relais/server/proto"
	"relais/server/ws"
)

// TestCallSignalIsRelayedNotStored: a call frame reaches every connected
// member of the room — the callee's devices and the caller's own other
// devices — as the same ciphertext with the sending device, and leaves
// nothing in the room's log (ring, offer, candidates are ephemeral).
func TestCallSignalIsRelayedNotStored(t *testing.T) {
	n := nodetest.Start(t)
	alice, bob := newDev(t, n, "Alice Appel"), newDev(t, n, "Bruno Appel")
	bob2 := bob.another(t, n)
	alice2 := alice.another(t, n)
	room := newGroup(t, "Appel", alice, bob, bob2)
	before := len(alice.allEvents(room))
	ct := []byte("offre chiffrée " + strings.Repeat("x", 40))
	data := b64(mlsframe.Application(room, 1, ct))
	if _, e := alice.req("call", map[string]any{"room": room, "data": data}); e != nil {
		t.Fatalf("call refused: %s", e)
	}
	for _, p := range []*dev{bob, bob2, alice2} {
		f := p.waitFrame("the call frame", func(f client.Frame) bool { return f.T == proto.TCall && f.Room == room })
		var got proto.CallSignal
		if err := json.Unmarshal(f.Raw, &got); err != nil {
			t.Fatal(err)
		}
		if got.Data != data || got.From != alice.id() || got.Dev != alice.device() {
			t.Fatalf("%s got %s", p.c.Me.Name, f.Raw)
		}
	}
	if after := len(alice.allEvents(room)); after != before {
		t.Fatalf("the room's log went from %d to %d events: a call frame was stored", before, after)
	}
}

// TestCallSignalRefused: what the node cannot relay as a call — anything
// but an application message of the room's group in its current epoch,
// from a device in it, of a member of an encrypted room — is refused
// with a stable code and reaches nobody. Someone who shares no room with
// the callee has no room to signal in: not_found.
func TestCallSignalRefused(t *testing.T) {
	n := nodetest.Start(t)
	alice, bob, carol := newDev(t, n, "Alice Refus"), newDev(t, n, "Bruno Refus"), newDev(t, n, "Carole Refus")
	room := newGroup(t, "Refus", alice, bob)
	other := newGroup(t, "Autre", carol)
	alice2 := alice.another(t, n) // signed in after the group was made: not in it
	var res map[string]string
	alice.call("create_room", map[string]any{"kind": "group", "name": "En clair", "encrypted": false, "users": []string{bob.id()}}, &res)
	plain := roomOf(t, res)
	bob.call("join", map[string]any{"room": plain}, nil)
	app := func(group string, epoch uint64) string {
		return b64(mlsframe.Application(group, epoch, []byte("signal")))
	}
	for _, c := range []struct {
		name         string
		who          *dev
		fields       map[string]any
		code, detail string
	}{
		{"no data", alice, map[string]any{"room": room}, proto.CodeBadRequest, ""},
		{"not base64", alice, map[string]any{"room": room, "data": "!!"}, proto.CodeBadRequest, ""},
		{"too large", alice, map[string]any{"room": room, "data": strings.Repeat("A", proto.MaxSignal+4)}, proto.CodeTooLarge, ""},
		{"bad room id", alice, map[string]any{"room": "salle", "data": app(room, 1)}, proto.CodeBadRequest, ""},
		{"a commit", alice, map[string]any{"room": room, "data": b64(mlsframe.PrivateCommit(room, 1))}, proto.CodeBadRequest, "mls_wrong_content_type"},
		{"another group's message", alice, map[string]any{"room": room, "data": app(other, 1)}, proto.CodeBadRequest, "mls_wrong_group"},
		{"an old epoch", alice, map[string]any{"room": room, "data": app(room, 0)}, proto.CodeEpochMismatch, ""},
		{"a device not in the group", alice2, map[string]any{"room": room, "data": app(room, 1)}, proto.CodeNotInGroup, ""},
		{"no shared room", carol, map[string]any{"room": room, "data": app(room, 1)}, proto.CodeNotFound, ""},
		{"an unencrypted room", alice, map[string]any{"room": plain, "data": app(plain, 1)}, proto.CodeForbidden, ""},
		{"turn in an unencrypted room", alice, map[string]any{"room": plain}, proto.CodeForbidden, ""},
	} {
		kind := "call"
		if strings.HasPrefix(c.name, "turn") {
			kind = "turn"
		}
		_, e := c.who.req(kind, c.fields)
		errIs(t, c.name, e, c.code, c.detail)
	}
	if bob.has(func(f client.Frame) bool { return f.T == proto.TCall }) {
		t.Fatal("a refused call frame reached the callee")
	}
}

// TestCallSignalRateLimited: call frames have their own class; past its
// burst they are refused with rate_limited, and turn requests too.
func TestCallSignalRateLimited(t *testing.T) {
	n := nodetest.Start(t, wsLimits)
	alice, bob := newDev(t, n, "Alice Débit"), newDev(t, n, "Bruno Débit")
	room := newGroup(t, "Débit", alice, bob)
	flooder := alice.another(t, n)
	flooder.upload(1)
	// The flooder's device joins the group by the node's book-keeping: a
	// commit of the owner's adding it.
	alice.mustCommit(room, 1, refs(t, alice.claim(alice.id())))
	ok, before := floodUntilLimited(t, flooder, "call", func(int) map[string]any {
		return map[string]any{"room": room, "data": b64(mlsframe.Application(room, 2, []byte("candidat")))}
	})
	if ok != before || ok < ws.BurstOf("call") {
		t.Fatalf("%d call frames relayed, %d answered before the refusal (burst %d)", ok, before, ws.BurstOf("call"))
	}
	floodUntilLimited(t, alice.another(t, n), "turn", func(int) map[string]any { return map[string]any{"room": room} })
}

// TestCallTurnUnavailableWithoutRelay: a node with --turn off answers turn
// requests unavailable (clients then call without a relay).
func TestCallTurnUnavailableWithoutRelay(t *testing.T) {
	n := nodetest.Start(t)
	alice, bob := newDev(t, n, "Alice Relais"), newDev(t, n, "Bruno Relais")
	room := newGroup(t, "Relais", alice, bob)
	_, e := alice.req("turn", map[string]any{"room": room})
	errIs(t, "turn without a relay", e, proto.CodeUnavailable, "")
}

// TestCallTurnCredentialsFromTheNode: with the relay on, a member of an
// encrypted room gets credentials of the node's relay, in the REST scheme
// with their own user id, valid for the configured lifetime.
func TestCallTurnCredentialsFromTheNode(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithTURN)
	alice, bob := newDev(t, n, "Alice Turn"), newDev(t, n, "Bruno Turn")
	room := newGroup(t, "Turn", alice, bob)
	var cr proto.TURNCredentials
	alice.must("turn", map[string]any{"room": room}, &cr)
	if !strings.HasSuffix(cr.Username, ":"+alice.id()) || cr.Credential == "" || cr.TTL != 3600 || len(cr.URLs) != 2 ||
		cr.URLs[0] != "turn:"+n.TURN.Addr().String()+"?transport=udp" {
		t.Fatalf("credentials %+v (relay on %s)", cr, n.TURN.Addr())
	}
}
