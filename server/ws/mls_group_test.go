package ws_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/client"
	"relais/server/mls"
	"relais/server/mls/mlsframe"
	"relais/server/proto"
)

// TestCommitOrdering has members commit concurrently: for each epoch
// exactly one commit wins, the others get epoch_mismatch with the room's
// epoch and retry, and the log holds the commits in strictly increasing
// epochs.
func TestCommitOrdering(t *testing.T) {
	n := nodetest.Start(t)
	const committers, wins = 6, 4
	devs := make([]*dev, committers)
	for i := range devs {
		devs[i] = newDev(t, n, fmt.Sprintf("Membre %c", 'A'+i))
	}
	room := newGroup(t, "Concurrence", devs[0], devs[1:]...)

	var mu sync.Mutex
	refused := 0
	var wg sync.WaitGroup
	for _, d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			epoch := uint64(1)
			for won := 0; won < wins; {
				_, e := d.commit(room, epoch, nil)
				switch {
				case e == nil:
					won++
					epoch++
				case e.Code == proto.CodeEpochMismatch && e.Epoch != nil && *e.Epoch > epoch:
					// A real client fetches the commits it missed from
					// history and processes them; here, it just moves on.
					mu.Lock()
					refused++
					mu.Unlock()
					epoch = *e.Epoch
				default:
					t.Errorf("commit at epoch %d: %s", epoch, e)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	var epochs []uint64
	for _, ev := range devs[0].allEvents(room) {
		if ev.Type == proto.EvMLSCommit {
			if ev.Epoch == nil {
				t.Fatalf("commit event %d without epoch", ev.Seq)
			}
			epochs = append(epochs, *ev.Epoch)
		}
	}
	want := 1 + committers*wins // the group's first commit, then everyone's
	if len(epochs) != want {
		t.Fatalf("%d commits in the log, want %d", len(epochs), want)
	}
	for i, e := range epochs {
		if e != uint64(i) {
			t.Fatalf("commit %d of the log is for epoch %d: epochs %v", i, e, epochs)
		}
	}
	t.Logf("%d commits accepted, %d refused with epoch_mismatch", want-1, refused)
	var gi proto.GroupInfoAnswer
	devs[3].must("group_info", map[string]any{"room": room}, &gi)
	if gi.Epoch != uint64(want) {
		t.Fatalf("group_info epoch %d, want %d", gi.Epoch, want)
	}
	// A member who connects now sees the epoch in the room frame.
	again := connect(t, devs[2].c)
	f := again.waitFrame("room", func(f client.Frame) bool { return f.T == proto.TRoom && f.ID == room })
	var r proto.Room
	decodeRaw(t, f, &r)
	if r.Epoch == nil || *r.Epoch != uint64(want) {
		t.Fatalf("room frame epoch %v, want %d", r.Epoch, want)
	}
}

// TestCommitIdempotent: a commit resent with the same id after a lost ack
// gets the same ack, not epoch_mismatch, and is stored once.
func TestCommitIdempotent(t *testing.T) {
	n := nodetest.Start(t)
	alice := newDev(t, n, "Alice Renvoi")
	room := newGroup(t, "Renvoi", alice)
	frame := map[string]any{"room": room, "data": b64(mlsframe.PrivateCommit(room, 1)), "group_info": b64(mlsframe.GroupInfo(suite, room, 2))}
	ctx := context.Background()
	send := func() proto.Ack {
		f, err := alice.conn().Request(ctx, "commit-1", map[string]any{"t": "mls", "id": "commit-1", "room": frame["room"], "data": frame["data"], "group_info": frame["group_info"]})
		if err != nil {
			t.Fatal(err)
		}
		var ack proto.Ack
		if err := f.Decode(&ack); err != nil {
			t.Fatal(err)
		}
		return ack
	}
	a1, a2 := send(), send()
	if a1 != a2 {
		t.Fatalf("acks differ: %+v %+v", a1, a2)
	}
	commits := 0
	for _, ev := range alice.allEvents(room) {
		if ev.Type == proto.EvMLSCommit {
			commits++
		}
	}
	if commits != 2 {
		t.Fatalf("%d commits in the log, want 2", commits)
	}
}

// TestMLSRefusals: what the node refuses, with which code and detail.
func TestMLSRefusals(t *testing.T) {
	n := nodetest.Start(t)
	alice := newDev(t, n, "Alice Refus")
	bob := newDev(t, n, "Bob Refus")
	eve := newDev(t, n, "Eve Dehors")
	dave := newDev(t, n, "Dave Invité")
	dave.upload(2)

	// At epoch 0 the group is the founder's draft: nothing is relayed.
	var res map[string]string
	alice.call("create_room", map[string]any{"kind": "group", "name": "Fondation"}, &res)
	draft := roomOf(t, res)
	_, e := alice.sendApp(draft, 0, []byte("x"))
	errIs(t, "a message before the first commit", e, proto.CodeNotInGroup, "")

	room := newGroup(t, "Refus", alice)
	alice.call("invite", map[string]any{"room": room, "user": bob.id()}, nil)
	bob.call("join", map[string]any{"room": room}, nil)
	alice.call("create_room", map[string]any{"kind": "group", "name": "En clair", "encrypted": false}, &res)
	plain := roomOf(t, res)
	other := newGroup(t, "Autre", eve)

	gi := func(epoch uint64) string { return b64(mlsframe.GroupInfo(suite, room, epoch)) }
	commit := b64(mlsframe.PrivateCommit(room, 1))
	unknownRef := mlsframe.KeyPackageRef(mlsframe.ValidKeyPackage(suite, dave.ident(), dave.sig)) // never uploaded
	for _, c := range []struct {
		name         string
		who          *dev
		t            string
		fields       map[string]any
		code, detail string
	}{
		{"data not base64", alice, "mls", map[string]any{"room": room, "data": "!!", "group_info": gi(2)}, proto.CodeBadRequest, ""},
		{"malformed framing", alice, "mls", map[string]any{"room": room, "data": b64([]byte{0, 1, 0, 2, 5, 'r'}), "group_info": gi(2)}, proto.CodeBadRequest, "mls_malformed"},
		{"trailing bytes", alice, "mls", map[string]any{"room": room, "data": b64(append(mlsframe.PrivateCommit(room, 1), 0)), "group_info": gi(2)}, proto.CodeBadRequest, "mls_malformed"},
		{"application message as commit", alice, "mls", map[string]any{"room": room, "data": b64(mlsframe.Application(room, 1, []byte("x"))), "group_info": gi(2)}, proto.CodeBadRequest, "mls_wrong_content_type"},
		{"private proposal", alice, "mls", map[string]any{"room": room, "data": b64(mlsframe.PrivateProposal(room, 1)), "group_info": gi(2)}, proto.CodeBadRequest, "mls_wrong_content_type"},
		{"public proposal", alice, "mls", map[string]any{"room": room, "data": b64(mlsframe.PublicProposal(room, 1, 0)), "group_info": gi(2)}, proto.CodeBadRequest, "mls_wrong_content_type"},
		{"a welcome as data", alice, "mls", map[string]any{"room": room, "data": b64(mlsframe.Welcome(suite, unknownRef)), "group_info": gi(2)}, proto.CodeBadRequest, "mls_unsupported_wire_format"},
		{"another group's commit", alice, "mls", map[string]any{"room": room, "data": b64(mlsframe.PrivateCommit(other, 1)), "group_info": gi(2)}, proto.CodeBadRequest, "mls_wrong_group"},
		{"no group_info", alice, "mls", map[string]any{"room": room, "data": commit}, proto.CodeBadRequest, ""},
		{"group_info of the same epoch", alice, "mls", map[string]any{"room": room, "data": commit, "group_info": gi(1)}, proto.CodeBadRequest, "mls_wrong_epoch"},
		{"group_info of another group", alice, "mls", map[string]any{"room": room, "data": commit, "group_info": b64(mlsframe.GroupInfo(suite, other, 2))}, proto.CodeBadRequest, "mls_wrong_group"},
		{"group_info not a group_info", alice, "mls", map[string]any{"room": room, "data": commit, "group_info": commit}, proto.CodeBadRequest, "mls_unsupported_wire_format"},
		{"suite not accepted", alice, "mls", map[string]any{"room": room, "data": commit, "group_info": b64(mlsframe.GroupInfo(3, room, 2))}, proto.CodeBadRequest, "mls_unsupported_cipher_suite"},
		{"another suite than the group's", alice, "mls", map[string]any{"room": room, "data": commit, "group_info": b64(mlsframe.GroupInfo(mls.CipherSuiteX25519AES128GCMSHA256Ed25519, room, 2))}, proto.CodeBadRequest, "mls_unsupported_cipher_suite"},
		{"welcome not a welcome", alice, "mls", map[string]any{"room": room, "data": commit, "group_info": gi(2), "welcome": commit}, proto.CodeBadRequest, "mls_unsupported_wire_format"},
		{"welcome in another suite", alice, "mls", map[string]any{"room": room, "data": commit, "group_info": gi(2), "welcome": b64(mlsframe.Welcome(mls.CipherSuiteX25519AES128GCMSHA256Ed25519, unknownRef))}, proto.CodeBadRequest, "mls_unsupported_cipher_suite"},
		{"welcome for an unknown KeyPackage", alice, "mls", map[string]any{"room": room, "data": commit, "group_info": gi(2), "welcome": b64(mlsframe.Welcome(suite, unknownRef))}, proto.CodeBadRequest, "mls_unknown_key_package"},
		{"removes not a device", alice, "mls", map[string]any{"room": room, "data": commit, "group_info": gi(2), "removes": []string{"bob"}}, proto.CodeBadRequest, ""},
		{"removing a device not in the group", alice, "mls", map[string]any{"room": room, "data": commit, "group_info": gi(2), "removes": []string{bob.ident()}}, proto.CodeConflict, ""},
		{"removing oneself", alice, "mls", map[string]any{"room": room, "data": commit, "group_info": gi(2), "removes": []string{alice.ident()}}, proto.CodeBadRequest, ""},
		{"a commit for a future epoch", alice, "mls", map[string]any{"room": room, "data": b64(mlsframe.PrivateCommit(room, 5)), "group_info": gi(6)}, proto.CodeEpochMismatch, ""},
		{"a member's device not in the group", bob, "mls", map[string]any{"room": room, "data": commit, "group_info": gi(2)}, proto.CodeNotInGroup, ""},
		{"someone not in the room", eve, "mls", map[string]any{"room": room, "data": commit, "group_info": gi(2)}, proto.CodeNotFound, ""},
		{"a room that is not encrypted", alice, "mls", map[string]any{"room": plain, "data": b64(mlsframe.PrivateCommit(plain, 0)), "group_info": b64(mlsframe.GroupInfo(suite, plain, 1))}, proto.CodeBadRequest, ""},
		{"group_info for someone not in the room", eve, "group_info", map[string]any{"room": room}, proto.CodeNotFound, ""},
		{"group_info of a plain room", alice, "group_info", map[string]any{"room": plain}, proto.CodeBadRequest, ""},
		{"application not base64", alice, "send", map[string]any{"room": room, "type": "encrypted", "data": "!!"}, proto.CodeBadRequest, ""},
		{"application malformed", alice, "send", map[string]any{"room": room, "type": "encrypted", "data": b64([]byte("ciphertext"))}, proto.CodeBadRequest, ""},
		{"a commit sent as a message", alice, "send", map[string]any{"room": room, "type": "encrypted", "data": commit}, proto.CodeBadRequest, "mls_wrong_content_type"},
		{"a message of another group", alice, "send", map[string]any{"room": room, "type": "encrypted", "data": b64(mlsframe.Application(other, 1, []byte("x")))}, proto.CodeBadRequest, "mls_wrong_group"},
		{"a message of an old epoch", alice, "send", map[string]any{"room": room, "type": "encrypted", "data": b64(mlsframe.Application(room, 0, []byte("x")))}, proto.CodeEpochMismatch, ""},
		{"a message from a device not in the group", bob, "send", map[string]any{"room": room, "type": "encrypted", "data": b64(mlsframe.Application(room, 1, []byte("x")))}, proto.CodeNotInGroup, ""},
		// Real ts-mls messages, of the generator's group.
		{"a ts-mls private commit of another group", alice, "mls", map[string]any{"room": room, "data": b64(tsmlsMessage(t, "commit_add_private")), "group_info": gi(2)}, proto.CodeBadRequest, "mls_wrong_group"},
		{"a ts-mls public commit of another group", alice, "mls", map[string]any{"room": room, "data": b64(tsmlsMessage(t, "commit_add_public")), "group_info": gi(2)}, proto.CodeBadRequest, "mls_wrong_group"},
		{"a ts-mls external commit of another group", alice, "mls", map[string]any{"room": room, "data": b64(tsmlsMessage(t, "commit_external_join")), "group_info": gi(2)}, proto.CodeBadRequest, "mls_wrong_group"},
		{"a ts-mls application message as commit", alice, "mls", map[string]any{"room": room, "data": b64(tsmlsMessage(t, "application_alice")), "group_info": gi(2)}, proto.CodeBadRequest, "mls_wrong_content_type"},
		{"a ts-mls proposal as commit", alice, "mls", map[string]any{"room": room, "data": b64(tsmlsMessage(t, "proposal_add_public")), "group_info": gi(2)}, proto.CodeBadRequest, "mls_wrong_content_type"},
		{"a ts-mls welcome as commit", alice, "mls", map[string]any{"room": room, "data": b64(tsmlsMessage(t, "welcome_bob")), "group_info": gi(2)}, proto.CodeBadRequest, "mls_unsupported_wire_format"},
		{"a ts-mls GroupInfo of another group", alice, "mls", map[string]any{"room": room, "data": commit, "group_info": b64(tsmlsMessage(t, "group_info_epoch2"))}, proto.CodeBadRequest, "mls_wrong_group"},
		{"a ts-mls welcome naming KeyPackages not handed out here", alice, "mls", map[string]any{"room": room, "data": commit, "group_info": gi(2), "welcome": b64(tsmlsMessage(t, "welcome_bob"))}, proto.CodeBadRequest, "mls_unknown_key_package"},
		{"a ts-mls message of another group", alice, "send", map[string]any{"room": room, "type": "encrypted", "data": b64(tsmlsMessage(t, "application_1k"))}, proto.CodeBadRequest, "mls_wrong_group"},
		{"an external commit before registering a key", bob, "mls", map[string]any{"room": room, "data": b64(mlsframe.ExternalCommit(suite, room, 1, bob.ident(), bob.sig)), "group_info": gi(2)}, proto.CodeForbidden, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, e := c.who.req(c.t, c.fields)
			errIs(t, c.name, e, c.code, c.detail)
			if c.code == proto.CodeEpochMismatch && (e.Epoch == nil || *e.Epoch != 1) {
				t.Fatalf("epoch_mismatch carries %v, want 1", e.Epoch)
			}
		})
	}
	// A Welcome for someone who is not in the room (dave's KeyPackage,
	// claimed, which needs an encrypted room shared with him: a direct
	// conversation) is refused; once invited, accepted.
	alice.call("open_dm", map[string]any{"user": dave.id()}, nil)
	daveRefs := refs(t, alice.claim(dave.id()))
	_, e = alice.commit(room, 1, daveRefs)
	errIs(t, "a welcome for someone not in the room", e, proto.CodeForbidden, "")
	alice.call("invite", map[string]any{"room": room, "user": dave.id()}, nil)
	alice.mustCommit(room, 1, daveRefs)
	// The room moved on, and nothing refused left a trace in the log.
	var commits []uint64
	for _, ev := range alice.allEvents(room) {
		if ev.Type == proto.EvMLSCommit {
			commits = append(commits, *ev.Epoch)
		}
		if ev.Type == proto.EvEncrypted {
			t.Fatalf("a refused message was stored: %+v", ev)
		}
	}
	if !slices.Equal(commits, []uint64{0, 1}) {
		t.Fatalf("commits in the log: %v", commits)
	}
}

// TestWelcomeRouting: a Welcome goes to exactly the devices whose
// KeyPackages it names, is sent again at every resync until acknowledged,
// and the node keeps the group's GroupInfo.
func TestWelcomeRouting(t *testing.T) {
	n := nodetest.Start(t)
	alice := newDev(t, n, "Alice Accueil")
	bob := newDev(t, n, "Bob Accueil")
	bob2 := bob.another(t, n)
	carol := newDev(t, n, "Carol Accueil")
	var res map[string]string
	alice.call("create_room", map[string]any{"kind": "group", "name": "Accueil", "users": []string{bob.id(), carol.id()}}, &res)
	room := roomOf(t, res)
	carol.call("join", map[string]any{"room": room}, nil) // bob stays invited: welcomes go to invitees too
	for _, d := range []*dev{alice, bob, bob2, carol} {
		d.upload(3)
	}
	claim := alice.claim(bob.id(), carol.id())
	if len(claim.KeyPackages) != 3 {
		t.Fatalf("claimed %+v, want bob's two devices and carol's", claim)
	}
	// The Welcome names bob's first device and carol, not bob2.
	var named [][]byte
	for _, k := range claim.KeyPackages {
		if k.Device != bob2.device() {
			named = append(named, mlsframe.KeyPackageRef(unb64(t, k.KeyPackage)))
		}
	}
	welcome := mlsframe.Welcome(suite, named...)
	groupInfo := mlsframe.GroupInfo(suite, room, 1)
	ack, e := alice.ack("mls", map[string]any{"room": room, "data": b64(mlsframe.PrivateCommit(room, 0)), "group_info": b64(groupInfo), "welcome": b64(welcome)})
	if e != nil {
		t.Fatal(e)
	}
	isWelcome := func(d *dev) func(client.Frame) bool {
		return func(f client.Frame) bool {
			var w proto.WelcomeFrame
			decodeRaw(t, f, &w)
			return f.T == proto.TWelcome && w.Device == d.device() && w.Room == room && w.Epoch == 1 && w.Seq == ack.Seq &&
				bytes.Equal(unb64(t, w.Data), welcome)
		}
	}
	bob.waitFrame("bob's welcome", isWelcome(bob))
	carol.waitFrame("carol's welcome", isWelcome(carol))
	// A barrier rather than a pause: the commit published its welcomes
	// before Alice's ack, the hub handles the bus in publication order and
	// each session writes its queue in order, so once a frame published now
	// reached Alice's, Bob's and bob2's connections, any wrongly routed
	// welcome was read before it.
	barrier := []byte(`{"t":"test_barrier"}`)
	n.Chat.PublishUser(alice.id(), barrier)
	n.Chat.PublishUser(bob.id(), barrier)
	for _, d := range []*dev{alice, bob, bob2} {
		d.waitFrame("the barrier", func(f client.Frame) bool { return f.T == "test_barrier" })
	}
	if bob.has(isWelcome(bob2)) || bob2.has(isWelcome(bob2)) || alice.has(func(f client.Frame) bool { return f.T == proto.TWelcome }) {
		t.Fatal("a welcome went to a device the Welcome does not name")
	}
	// The KeyPackages it consumed are forgotten: naming them again fails.
	_, e = alice.commit(room, 1, named[:1])
	errIs(t, "a second welcome for a consumed KeyPackage", e, proto.CodeBadRequest, "mls_unknown_key_package")

	// Redelivered at each resync, after the room frames, until acknowledged.
	syncFrames := func(d *dev) []client.Frame {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := d.c.Dial(ctx, 64)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		frames, err := conn.Sync(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		return frames
	}
	for range 2 {
		frames := syncFrames(bob)
		i := slices.IndexFunc(frames, isWelcome(bob))
		r := slices.IndexFunc(frames, func(f client.Frame) bool { return f.T == proto.TRoom && f.ID == room })
		if i < 0 || r < 0 || i < r {
			t.Fatalf("resync frames %v: want the room, then the welcome", types(frames))
		}
	}
	bob.must("welcome_ack", map[string]any{"room": room}, nil)
	bob.must("welcome_ack", map[string]any{"room": room}, nil) // twice is harmless
	if frames := syncFrames(bob); slices.ContainsFunc(frames, func(f client.Frame) bool { return f.T == proto.TWelcome }) {
		t.Fatal("an acknowledged welcome came back")
	}
	if frames := syncFrames(carol); !slices.ContainsFunc(frames, isWelcome(carol)) {
		t.Fatal("carol's welcome went with bob's acknowledgement")
	}
	var gi proto.GroupInfoAnswer
	carol.must("group_info", map[string]any{"room": room}, &gi)
	if gi.Epoch != 1 || !bytes.Equal(unb64(t, gi.GroupInfo), groupInfo) {
		t.Fatalf("group_info = epoch %d, %d bytes", gi.Epoch, len(gi.GroupInfo))
	}
	carol.must("leave", map[string]any{"room": room}, nil)
	if frames := syncFrames(carol); slices.ContainsFunc(frames, func(f client.Frame) bool { return f.T == proto.TWelcome }) {
		t.Fatal("a welcome to a room carol left is still sent")
	}
}

func types(fs []client.Frame) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.T)
	}
	return out
}

// TestRemovePending: once someone leaves, nothing is relayed in the room
// until their devices' removal is committed, so that they never get a
// message they could decrypt.
func TestRemovePending(t *testing.T) {
	n := nodetest.Start(t)
	alice := newDev(t, n, "Alice Retrait")
	bob := newDev(t, n, "Bob Retrait")
	bob2 := bob.another(t, n)
	carol := newDev(t, n, "Carol Retrait")
	dave := newDev(t, n, "Dave Retrait")
	room := newGroup(t, "Retrait", alice, bob, bob2, carol, dave)
	if _, e := alice.sendApp(room, 1, []byte("avant")); e != nil {
		t.Fatal(e)
	}
	// Removing the device of someone still in the room is refused: the
	// room's membership and the group's must agree.
	_, e := alice.commit(room, 1, nil, carol.ident())
	errIs(t, "removing a member's device", e, proto.CodeForbidden, "")

	alice.call("kick", map[string]any{"room": room, "user": bob.id()}, nil)
	_, e = alice.sendApp(room, 1, []byte("après"))
	errIs(t, "a message while bob's devices are in the group", e, proto.CodeRemovePending, "")
	slices.Sort(e.Devices)
	want := []string{bob.ident(), bob2.ident()}
	slices.Sort(want)
	if !slices.Equal(e.Devices, want) {
		t.Fatalf("remove_pending lists %v, want %v", e.Devices, want)
	}
	// A commit must include the pending removals.
	_, e = carol.commit(room, 1, nil)
	errIs(t, "a commit that does not remove bob", e, proto.CodeRemovePending, "")
	_, e = carol.commit(room, 1, nil, bob.ident())
	errIs(t, "a commit that removes one of bob's two devices", e, proto.CodeRemovePending, "")
	if len(e.Devices) != 1 || e.Devices[0] != bob2.ident() {
		t.Fatalf("remove_pending lists %v, want bob's second device", e.Devices)
	}
	// Bob, out of the room, can do nothing in it.
	_, e = bob.commit(room, 1, nil, bob.ident())
	errIs(t, "a commit by someone kicked", e, proto.CodeNotFound, "")
	_, e = bob.req("group_info", map[string]any{"room": room})
	errIs(t, "group_info for someone kicked", e, proto.CodeNotFound, "")

	carol.mustCommit(room, 1, nil, bob.ident(), bob2.ident())
	if _, e := alice.sendApp(room, 2, []byte("après")); e != nil {
		t.Fatalf("a message once bob is removed: %s", e)
	}
	// Someone who leaves and comes back before the removal is committed
	// is not pending any more.
	dave.call("leave", map[string]any{"room": room}, nil)
	_, e = alice.sendApp(room, 2, []byte("x"))
	errIs(t, "a message after dave left", e, proto.CodeRemovePending, "")
	alice.call("invite", map[string]any{"room": room, "user": dave.id()}, nil)
	if _, e := alice.sendApp(room, 2, []byte("x")); e != nil {
		t.Fatalf("a message after dave was invited back: %s", e)
	}
	dave.call("join", map[string]any{"room": room}, nil)
	// A signed-out device may be removed by anyone; a user may remove his
	// own other devices.
	if err := carol.c.Do(context.Background(), "POST", "/api/v1/logout", nil, nil); err != nil {
		t.Fatal(err)
	}
	alice.mustCommit(room, 2, nil, carol.ident())
	dave2 := dave.another(t, n)
	dave2.upload(1)
	var gi proto.GroupInfoAnswer
	dave2.must("group_info", map[string]any{"room": room}, &gi)
	if _, e := dave2.commitData(room, mlsframe.ExternalCommit(suite, room, gi.Epoch, dave2.ident(), dave2.sig), gi.Epoch, nil); e != nil {
		t.Fatal(e)
	}
	dave2.mustCommit(room, 4, nil, dave.ident())
	if _, e := dave.sendApp(room, 5, []byte("x")); e == nil || e.Code != proto.CodeNotInGroup {
		t.Fatalf("a removed device sends: %s", e)
	}
}

// TestExternalJoin: a new device of a member joins through the GroupInfo
// with an external commit, which adds it; nobody else can.
func TestExternalJoin(t *testing.T) {
	n := nodetest.Start(t)
	alice := newDev(t, n, "Alice Externe")
	bob := newDev(t, n, "Bob Externe")
	eve := newDev(t, n, "Eve Externe")
	room := newGroup(t, "Rejoindre", alice, bob)
	alice.mustCommit(room, 1, nil)

	bob2 := bob.another(t, n)
	var gi proto.GroupInfoAnswer
	bob2.must("group_info", map[string]any{"room": room}, &gi)
	if gi.Epoch != 2 || gi.GroupInfo == "" {
		t.Fatalf("group_info %+v", gi)
	}
	external := func(d *dev, epoch uint64) (proto.Ack, *mlsErr) {
		return d.commitData(room, mlsframe.ExternalCommit(suite, room, epoch, d.ident(), d.sig), epoch, nil)
	}
	_, e := external(bob2, 2)
	errIs(t, "an external commit from a device without a key", e, proto.CodeForbidden, "")
	bob2.upload(2)
	_, e = external(bob2, 1)
	epochIs(t, "an external commit for an old epoch", e, 2)
	_, e = bob2.ack("mls", map[string]any{"room": room, "data": b64(mlsframe.ExternalCommit(suite, room, 2, bob2.ident(), bob2.sig)),
		"group_info": b64(mlsframe.GroupInfo(suite, room, 3)), "welcome": b64(mlsframe.Welcome(suite, mlsframe.Random(64)))})
	errIs(t, "an external commit with a welcome", e, proto.CodeBadRequest, "")
	_, e = bob2.sendApp(room, 2, []byte("x"))
	errIs(t, "a message before joining", e, proto.CodeNotInGroup, "")

	ack, e := external(bob2, 2)
	if e != nil {
		t.Fatal(e)
	}
	alice.waitFrame("the external commit", func(f client.Frame) bool { return isEv(room, proto.EvMLSCommit)(f) && f.Seq == ack.Seq })
	if _, e := bob2.sendApp(room, 3, []byte("me voici")); e != nil {
		t.Fatalf("a message after the external join: %s", e)
	}

	// Someone not in the room can neither fetch the GroupInfo nor join.
	eve.upload(1)
	_, e = eve.req("group_info", map[string]any{"room": room})
	errIs(t, "group_info for an outsider", e, proto.CodeNotFound, "")
	_, e = external(eve, 3)
	errIs(t, "an outsider's external commit", e, proto.CodeNotFound, "")
	// Nor can an invitee who has not joined.
	alice.call("invite", map[string]any{"room": room, "user": eve.id()}, nil)
	_, e = eve.req("group_info", map[string]any{"room": room})
	errIs(t, "group_info for an invitee", e, proto.CodeNotFound, "")
	_, e = external(eve, 3)
	errIs(t, "an invitee's external commit", e, proto.CodeNotFound, "")
	// Once joined, a member may join by external commit too; clients
	// decide whether they accept it (SECURITY.md).
	eve.call("join", map[string]any{"room": room}, nil)
	if _, e := external(eve, 3); e != nil {
		t.Fatal(e)
	}
}

// TestDSHelpers checks mlsframe's connection helpers, which benchmarks and
// other tests use to put devices in groups before sending.
func TestDSHelpers(t *testing.T) {
	n := nodetest.Start(t)
	alice := newPeer(t, n, "Alice Aide")
	bob := newPeer(t, n, "Bob Aide")
	var res map[string]string
	alice.call("create_room", map[string]any{"kind": "group", "name": "Aide", "users": []string{bob.id()}}, &res)
	room := roomOf(t, res)
	bob.call("join", map[string]any{"room": room}, nil)
	ctx := context.Background()
	if err := mlsframe.Publish(ctx, alice.conn(), room); err != nil {
		t.Fatal(err)
	}
	sig := mlsframe.SignatureKey()
	if err := mlsframe.Register(ctx, bob.conn(), sig, 2); err != nil {
		t.Fatal(err)
	}
	epoch, err := mlsframe.Join(ctx, bob.conn(), room, sig)
	if err != nil || epoch != 2 {
		t.Fatalf("join: epoch %d, %v", epoch, err)
	}
	if _, err := bob.sendEv(map[string]any{"room": room, "type": "encrypted", "data": b64(mlsframe.Application(room, epoch, []byte("x")))}); err != nil {
		t.Fatal(err)
	}
}
