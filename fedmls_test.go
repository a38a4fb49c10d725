package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/client"
	"relais/server/fed"
	"relais/server/mls/mlsframe"
	"relais/server/proto"
)

// End-to-end encryption across administrations, with three real relais
// processes (startMesh): the room's home is its Delivery Service, the
// KeyPackages, device lists and Welcomes of a user come from the user's
// own administration. The MLS is mlsframe's (valid framing, make-believe
// cryptography): what is checked is the nodes' part.

// mdev is an agent whose device registered KeyPackages.
type mdev struct {
	*user
	sig []byte
}

func mlsAgent(t *testing.T, p *proc, email, name string) *mdev {
	t.Helper()
	d := &mdev{user: newAgent(t, p, email, name), sig: mlsframe.SignatureKey()}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := mlsframe.Register(ctx, d.conn, d.sig, 3); err != nil {
		t.Fatalf("register %s: %v", email, err)
	}
	return d
}

func (d *mdev) device() string { return d.conn.Hello.Device }

// request sends a frame of type typ and returns its answer frame.
func (d *mdev) request(typ string, fields map[string]any) (client.Frame, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id := d.conn.NextID()
	frame := map[string]any{"t": typ, "id": id}
	for k, v := range fields {
		frame[k] = v
	}
	return d.conn.Request(ctx, id, frame)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// claim claims a KeyPackage of each device of users, waiting for the
// rooms that make them claimable to reach their administration.
func (d *mdev) claim(t *testing.T, users ...string) proto.Claim {
	t.Helper()
	var c proto.Claim
	nodetest.CheckFor(t, 20*time.Second, func() error {
		c = proto.Claim{}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := d.conn.Call(ctx, proto.TClaimKeys, map[string]any{"users": users}, &c); err != nil {
			return err
		}
		for _, u := range users {
			if !slices.ContainsFunc(c.KeyPackages, func(k proto.ClaimedKey) bool { return k.User == u }) {
				return fmt.Errorf("no KeyPackage of %s in %+v", u, c.Missing)
			}
		}
		return nil
	})
	return c
}

// refOf returns the KeyPackageRef of the claimed KeyPackage of user.
func refOf(t *testing.T, c proto.Claim, user string) []byte {
	t.Helper()
	for _, k := range c.KeyPackages {
		if k.User == user {
			raw, err := base64.StdEncoding.DecodeString(k.KeyPackage)
			if err != nil {
				t.Fatal(err)
			}
			return mlsframe.KeyPackageRef(raw)
		}
	}
	t.Fatalf("no KeyPackage of %s", user)
	return nil
}

// commit sends a commit of room at epoch, with a Welcome for refs (if
// any) and the devices it removes.
func (d *mdev) commit(room string, epoch uint64, refs [][]byte, removes ...string) error {
	f := map[string]any{"room": room, "data": b64(mlsframe.PrivateCommit(room, epoch)),
		"group_info": b64(mlsframe.GroupInfo(mlsframe.Suite, room, epoch+1))}
	if len(refs) > 0 {
		f["welcome"] = b64(mlsframe.Welcome(mlsframe.Suite, refs...))
	}
	if len(removes) > 0 {
		f["removes"] = removes
	}
	_, err := d.request(proto.TMLS, f)
	return err
}

// secret sends an application message of room at epoch.
func (d *mdev) secret(room string, epoch uint64, text string) error {
	_, err := d.request(proto.TSend, map[string]any{"room": room, "type": proto.EvEncrypted,
		"data": b64(mlsframe.Application(room, epoch, []byte(text)))})
	return err
}

// welcomed waits for the Welcome to room pushed to d's device.
func (d *mdev) welcomed(t *testing.T, room string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case f := <-d.conn.Frames():
			if f.T != proto.TWelcome || f.Room != room {
				continue
			}
			var w proto.WelcomeFrame
			if err := f.Decode(&w); err != nil || w.Device != d.device() || w.Data == "" {
				t.Fatalf("welcome frame %s: %v", f.Raw, err)
			}
			if _, err := d.request(proto.TWelcomeAck, map[string]any{"room": room}); err != nil {
				t.Fatalf("acknowledge the welcome: %v", err)
			}
			return
		case <-deadline:
			t.Fatalf("%s got no welcome to %s", d.email, room)
		}
	}
}

// secrets returns the ciphertexts of the encrypted events of a room as
// d's node serves them.
func (d *mdev) secrets(t *testing.T, room string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var page struct {
		Events []proto.Event `json:"events"`
	}
	if err := d.conn.Call(ctx, proto.THistory, map[string]any{"room": room, "after": 0, "limit": proto.MaxPage}, &page); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range page.Events {
		if e.Type == proto.EvEncrypted {
			raw, _ := base64.StdEncoding.DecodeString(e.Data)
			out = append(out, string(mlsframe.Ciphertext(raw)))
		}
	}
	return out
}

func (d *mdev) seesSecrets(t *testing.T, room string, want []string) {
	t.Helper()
	nodetest.CheckFor(t, 20*time.Second, func() error {
		if got := d.secrets(t, room); !slices.Equal(got, want) {
			return fmt.Errorf("%s sees %q, want %q", d.email, got, want)
		}
		return nil
	})
}

// epochIs waits until d's node says room's group is at epoch.
func (d *mdev) epochIs(t *testing.T, room string, epoch uint64) {
	t.Helper()
	nodetest.CheckFor(t, 20*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		got, err := mlsframe.Epoch(ctx, d.conn, room)
		if err != nil || got != epoch {
			return fmt.Errorf("epoch %d (%v), want %d", got, err, epoch)
		}
		return nil
	})
}

func code(err error) string {
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Code + "/" + ce.Detail + " (" + ce.Message + ")"
	}
	return fmt.Sprint(err)
}

// TestFederationEncryptedRoomsAcrossThreeRealAdministrations: a DM
// between A and B and a group homed on A with members on B and C are
// end-to-end encrypted by default; KeyPackages are claimed from each
// user's own administration, once; the home learns whose they are from
// that administration and hands each Welcome to the device's
// administration; commits and messages are ordered by the home and read
// on every member's node; a member removed from the group is out of its
// group (what they send is refused) and gets nothing more.
func TestFederationEncryptedRoomsAcrossThreeRealAdministrations(t *testing.T) {
	m := startMesh(t)
	helene := mlsAgent(t, m.a, "helene.dupont@ministere.gouv.fr", "Hélène Dupont")
	bruno := mlsAgent(t, m.b, "bruno.martin@mairie-b.fr", "Bruno Martin")
	chloe := mlsAgent(t, m.c, "chloe.petit@prefecture-c.gouv.fr", "Chloé Petit")
	ctx := context.Background()

	// The DM, homed on A, encrypted by default.
	var dm struct{ Room string }
	if err := helene.conn.Call(ctx, proto.TOpenDM, map[string]any{"user": bruno.id}, &dm); err != nil {
		t.Fatal(err)
	}
	if err := helene.commit(dm.Room, 0, nil); err != nil {
		t.Fatalf("found the DM's group: %v", err)
	}
	// Device lists come from the user's administration.
	var devs struct{ Devices []proto.DeviceKey }
	if err := helene.conn.Call(ctx, proto.TDeviceKeys, map[string]any{"users": []string{bruno.id, chloe.id}}, &devs); err != nil {
		t.Fatal(err)
	}
	if len(devs.Devices) != 2 || devs.Devices[0].Key == "" || !slices.ContainsFunc(devs.Devices, func(d proto.DeviceKey) bool {
		return d.User == bruno.id && d.Device == bruno.device() && d.Key == b64(bruno.sig) && d.Active
	}) {
		t.Fatalf("device keys of B's and C's agents from A: %+v", devs.Devices)
	}
	claim := helene.claim(t, bruno.id)
	ref := refOf(t, claim, bruno.id)
	if err := helene.commit(dm.Room, 1, [][]byte{ref}); err != nil {
		t.Fatalf("add B's device to the DM: %v", err)
	}
	bruno.welcomed(t, dm.Room)
	bruno.epochIs(t, dm.Room, 2)
	if err := bruno.secret(dm.Room, 2, "bonjour de B"); err != nil {
		t.Fatalf("B sends in the encrypted DM: %v", err)
	}
	if err := helene.secret(dm.Room, 2, "bonjour de A"); err != nil {
		t.Fatalf("A sends in the encrypted DM: %v", err)
	}
	want := []string{"bonjour de B", "bonjour de A"}
	helene.seesSecrets(t, dm.Room, want)
	bruno.seesSecrets(t, dm.Room, want)

	// A KeyPackage is used once: a second Welcome naming it is refused,
	// and a second claim gets another one.
	if err := helene.commit(dm.Room, 2, [][]byte{ref}); !strings.HasPrefix(code(err), "bad_request/mls_unknown_key_package") {
		t.Fatalf("a Welcome reusing a KeyPackage: %v, want bad_request/mls_unknown_key_package", code(err))
	}
	if again := refOf(t, helene.claim(t, bruno.id), bruno.id); string(again) == string(ref) {
		t.Fatal("the same KeyPackage was handed out twice")
	}

	// A group homed on A; B's agent adds C's through B.
	room := nodetest.CreateRoom(t, ctx, helene.conn, map[string]any{"kind": "group", "name": "Chiffré", "users": []string{bruno.id, chloe.id}})
	bruno.join(t, room)
	chloe.join(t, room)
	if err := helene.commit(room, 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := helene.commit(room, 1, [][]byte{refOf(t, helene.claim(t, bruno.id), bruno.id)}); err != nil {
		t.Fatalf("add B's device: %v", err)
	}
	bruno.welcomed(t, room)
	bruno.epochIs(t, room, 2)
	if err := bruno.commit(room, 2, [][]byte{refOf(t, bruno.claim(t, chloe.id), chloe.id)}); err != nil {
		t.Fatalf("B adds C's device through A: %v", err)
	}
	chloe.welcomed(t, room)
	chloe.epochIs(t, room, 3)
	for _, s := range []struct {
		d    *mdev
		text string
	}{{helene, "de A"}, {bruno, "de B"}, {chloe, "de C"}} {
		if err := s.d.secret(room, 3, s.text); err != nil {
			t.Fatalf("%s sends in the group: %v", s.d.email, err)
		}
	}
	want = []string{"de A", "de B", "de C"}
	for _, d := range []*mdev{helene, bruno, chloe} {
		d.seesSecrets(t, room, want)
	}

	// C's agent is removed: the group waits for the removal of their
	// device, which B's agent cannot skip, then goes on without them.
	if err := helene.conn.Call(ctx, proto.TKick, map[string]any{"room": room, "user": chloe.id}, nil); err != nil {
		t.Fatal(err)
	}
	if err := helene.secret(room, 3, "trop tôt"); !strings.HasPrefix(code(err), proto.CodeRemovePending+"/") {
		t.Fatalf("a send before the removal is committed: %v, want %s", code(err), proto.CodeRemovePending)
	}
	if err := helene.commit(room, 3, nil, proto.DeviceIdentity(chloe.id, chloe.device())); err != nil {
		t.Fatalf("commit the removal of C's device: %v", err)
	}
	if err := helene.secret(room, 4, "sans C"); err != nil {
		t.Fatal(err)
	}
	want = append(want, "sans C")
	bruno.seesSecrets(t, room, want)
	if err := chloe.secret(room, 4, "encore là ?"); err == nil {
		t.Fatal("a removed member sent in the group")
	}
	time.Sleep(time.Second)
	var page struct {
		Events []proto.Event `json:"events"`
	}
	chloe.conn.Call(ctx, proto.THistory, map[string]any{"room": room, "after": 0, "limit": proto.MaxPage}, &page)
	for _, e := range page.Events {
		if e.Type == proto.EvEncrypted && e.Seq > 0 {
			raw, _ := base64.StdEncoding.DecodeString(e.Data)
			if string(mlsframe.Ciphertext(raw)) == "sans C" {
				t.Fatal("C's node got a message sent after C's agent was removed")
			}
		}
	}
}

// TestFederationRefusesKeysAndWelcomesFromTheWrongAdministration: a peer
// answering a KeyPackage claim or a device list with devices of a user
// it does not serve is refused and nothing of its answer reaches the
// client; a Welcome sent by an administration that is not the room's
// home, or for a device of another administration, is refused and
// reaches no device.
func TestFederationRefusesKeysAndWelcomesFromTheWrongAdministration(t *testing.T) {
	m := startMesh(t)
	helene := mlsAgent(t, m.a, "helene.dupont@ministere.gouv.fr", "Hélène Dupont")
	bruno := mlsAgent(t, m.b, "bruno.martin@mairie-b.fr", "Bruno Martin")
	chloe := mlsAgent(t, m.c, "chloe.petit@prefecture-c.gouv.fr", "Chloé Petit")
	ctx := context.Background()
	roomA := nodetest.CreateRoom(t, ctx, helene.conn, map[string]any{"kind": "group", "name": "Chez A", "users": []string{bruno.id, chloe.id}})
	bruno.join(t, roomA)
	chloe.join(t, roomA)
	roomB := nodetest.CreateRoom(t, ctx, bruno.conn, map[string]any{"kind": "group", "name": "Chez B", "users": []string{chloe.id}})
	chloe.join(t, roomB)
	bid, cid := m.ids[m.b], m.ids[m.c]

	m.b.cmd.Process.Signal(syscall.SIGKILL)
	m.b.cmd.Wait()
	waitLink(t, m.a, bid, fed.LinkDown, 20*time.Second)
	waitLink(t, m.c, bid, fed.LinkDown, 20*time.Second)

	// B, asked by A for its agent's KeyPackages and devices, answers with
	// a device of C's agent.
	asB := rawPeer(t, m.a, m.b, bid)
	asB.Subscribe("fed." + string(bid) + ".req.>")
	waitLink(t, m.a, bid, fed.LinkUp, 20*time.Second)
	kp := b64(mlsframe.ValidKeyPackage(mlsframe.Suite, proto.DeviceIdentity(chloe.id, chloe.device()), chloe.sig))
	answers := map[string][]byte{
		fed.OpKeyClaim: proto.Encode(proto.Claim{KeyPackages: []proto.ClaimedKey{{User: chloe.id, Device: chloe.device(), KeyPackage: kp}}, Missing: []proto.DeviceName{}}),
		// A KeyPackage listed for B's agent whose credential names C's.
		fed.OpKeyClaim + "/credential": proto.Encode(proto.Claim{KeyPackages: []proto.ClaimedKey{{User: bruno.id, Device: bruno.device(), KeyPackage: kp}}, Missing: []proto.DeviceName{}}),
		fed.OpDeviceKeys:               proto.Encode(map[string]any{"devices": []proto.DeviceKey{{User: chloe.id, Device: chloe.device(), Key: b64(mlsframe.SignatureKey()), Active: true}}}),
	}
	answer := func(key string) {
		msg, err := asB.Next(20 * time.Second)
		if err != nil {
			t.Errorf("A did not ask B: %v", err)
			return
		}
		asB.Publish(msg.Reply, "", answers[key])
	}
	for _, c := range []struct {
		key, typ, reason string
	}{
		{fed.OpKeyClaim, proto.TClaimKeys, "who was not asked for"},
		{fed.OpKeyClaim + "/credential", proto.TClaimKeys, "is of another device or suite"},
		{fed.OpDeviceKeys, proto.TDeviceKeys, "who was not asked for or not its user"},
	} {
		go answer(c.key)
		f, err := helene.request(c.typ, map[string]any{"users": []string{bruno.id}})
		if err == nil {
			t.Fatalf("%s: A took B's answer with a device of C's agent: %s", c.key, f.Raw)
		}
		t.Logf("%s: %v", c.key, err)
		refused(t, m.a, c.reason)
	}

	// B sends C a Welcome to A's room, which B is not the home of, and
	// one to its own room for a device of A's agent.
	toC := rawPeer(t, m.c, m.b, bid)
	welcome := func(room, user, device string) []byte {
		b, _ := json.Marshal(map[string]any{"room": room, "seq": 99, "epoch": 5,
			"data":    mlsframe.Welcome(mlsframe.Suite, mlsframe.Random(32)),
			"devices": []proto.DeviceName{{User: user, Device: device}}})
		return b
	}
	toC.Publish("fed."+string(cid)+".req."+fed.OpWelcome, "_INBOX_"+string(bid)+".w1", welcome(roomA, chloe.id, chloe.device()))
	refused(t, m.c, "which it is not the home of")
	toC.Publish("fed."+string(cid)+".req."+fed.OpWelcome, "_INBOX_"+string(bid)+".w2", welcome(roomB, helene.id, helene.device()))
	refused(t, m.c, "a device of another administration")
	// Neither reached a device: C's agent has no Welcome waiting.
	var got []client.Frame
	nodetest.CheckFor(t, 5*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		var err error
		got, err = chloe.conn.Sync(ctx, nil)
		return err
	})
	for _, f := range got {
		if f.T == proto.TWelcome {
			t.Fatalf("C's agent got a forged Welcome: %s", f.Raw)
		}
	}
}
