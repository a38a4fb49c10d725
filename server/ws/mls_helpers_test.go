package ws_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/client"
	"relais/server/mls"
	"relais/server/mls/mlsframe"
	"relais/server/proto"
)

// suite is the cipher suite of the tests' groups: the web client's
// default, hybrid post-quantum X-Wing (its KeyPackages are ~2.7 KB).
const suite = mls.CipherSuiteXWingAES256GCMSHA512Ed25519

// dev is a peer seen as an MLS device: its credential identity is
// "<user>/<device>" and sig is its signature key. The MLS messages it
// sends are built by mlsframe: valid framing, random cryptography.
type dev struct {
	*peer
	sig []byte
}

func newDev(t testing.TB, n *nodetest.Node, name string) *dev {
	t.Helper()
	return &dev{peer: newPeer(t, n, name), sig: mlsframe.SignatureKey()}
}

// another signs the same user in again: a new device.
func (d *dev) another(t testing.TB, n *nodetest.Node) *dev {
	t.Helper()
	c := n.Client()
	if err := c.Login(context.Background(), d.c.Me.Email, nodetest.Password); err != nil {
		t.Fatal(err)
	}
	return &dev{peer: connect(t, c), sig: mlsframe.SignatureKey()}
}

func (d *dev) device() string { return d.c.Me.Device }
func (d *dev) ident() string  { return proto.DeviceIdentity(d.id(), d.device()) }

// mlsErr is an error frame with the fields end-to-end encryption adds.
type mlsErr struct {
	Code    string   `json:"code"`
	Detail  string   `json:"detail"`
	Message string   `json:"message"`
	Epoch   *uint64  `json:"epoch"`
	Devices []string `json:"devices"`
}

func (e *mlsErr) String() string {
	if e == nil {
		return "ok"
	}
	return e.Code + "/" + e.Detail + ": " + e.Message
}

// req sends a request with a fresh id (also an idempotency key, unique
// across the user's devices) and returns the answer, or the error frame.
func (d *dev) req(t string, fields map[string]any) (client.Frame, *mlsErr) {
	d.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	id := d.s.NewID()
	frame := map[string]any{"t": t, "id": id}
	maps.Copy(frame, fields)
	f, err := d.conn().Request(ctx, id, frame)
	if err == nil {
		return f, nil
	}
	var ce *client.Error
	if !errors.As(err, &ce) {
		d.t.Fatalf("%s: %s: %v", d.c.Me.Name, t, err)
	}
	var e mlsErr
	if err := json.Unmarshal(f.Raw, &e); err != nil {
		d.t.Fatal(err)
	}
	return f, &e
}

// must makes a request that must succeed and decodes its data into out.
func (d *dev) must(t string, fields map[string]any, out any) {
	d.t.Helper()
	f, e := d.req(t, fields)
	if e != nil {
		d.t.Fatalf("%s: %s: %s", d.c.Me.Name, t, e)
	}
	if out != nil {
		var res struct {
			Data json.RawMessage `json:"data"`
		}
		if err := f.Decode(&res); err != nil {
			d.t.Fatal(err)
		}
		if err := json.Unmarshal(res.Data, out); err != nil {
			d.t.Fatal(err)
		}
	}
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func unb64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// keyPackages returns n fresh KeyPackages of the device, base64.
func (d *dev) keyPackages(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = b64(mlsframe.ValidKeyPackage(suite, d.ident(), d.sig))
	}
	return out
}

// upload uploads n KeyPackages and a last-resort one; it returns the stock.
func (d *dev) upload(n int) int {
	d.t.Helper()
	var res struct {
		Count int `json:"count"`
	}
	d.must("key_packages", map[string]any{"key_packages": d.keyPackages(n), "last_resort": d.keyPackages(1)[0]}, &res)
	return res.Count
}

func (d *dev) claim(users ...string) proto.Claim {
	d.t.Helper()
	var c proto.Claim
	d.must("claim_keys", map[string]any{"users": users}, &c)
	return c
}

// refs returns the KeyPackageRefs of claimed KeyPackages.
func refs(t testing.TB, c proto.Claim) [][]byte {
	var out [][]byte
	for _, k := range c.KeyPackages {
		out = append(out, mlsframe.KeyPackageRef(unb64(t, k.KeyPackage)))
	}
	return out
}

// commit sends a commit of the room's group made in epoch, with the
// GroupInfo of epoch+1, a Welcome naming refs (if any) and the devices it
// says it removes.
func (d *dev) commit(room string, epoch uint64, welcome [][]byte, removes ...string) (proto.Ack, *mlsErr) {
	return d.commitData(room, mlsframe.PrivateCommit(room, epoch), epoch, welcome, removes...)
}

func (d *dev) commitData(room string, data []byte, epoch uint64, welcome [][]byte, removes ...string) (proto.Ack, *mlsErr) {
	d.t.Helper()
	fields := map[string]any{"room": room, "data": b64(data), "group_info": b64(mlsframe.GroupInfo(suite, room, epoch+1))}
	if len(welcome) > 0 {
		fields["welcome"] = b64(mlsframe.Welcome(suite, welcome...))
	}
	if len(removes) > 0 {
		fields["removes"] = removes
	}
	return d.ack("mls", fields)
}

func (d *dev) ack(t string, fields map[string]any) (proto.Ack, *mlsErr) {
	d.t.Helper()
	f, e := d.req(t, fields)
	if e != nil {
		return proto.Ack{}, e
	}
	var ack proto.Ack
	if err := f.Decode(&ack); err != nil || ack.T != proto.TAck {
		d.t.Fatalf("%s answered %s", t, f.Raw)
	}
	return ack, nil
}

// mustCommit commits and fails the test if the node refuses.
func (d *dev) mustCommit(room string, epoch uint64, welcome [][]byte, removes ...string) proto.Ack {
	d.t.Helper()
	ack, e := d.commit(room, epoch, welcome, removes...)
	if e != nil {
		d.t.Fatalf("%s: commit at epoch %d: %s", d.c.Me.Name, epoch, e)
	}
	return ack
}

// sendApp sends an application message of the room's group at epoch.
func (d *dev) sendApp(room string, epoch uint64, ciphertext []byte) (proto.Ack, *mlsErr) {
	d.t.Helper()
	return d.ack("send", map[string]any{"room": room, "type": "encrypted", "data": b64(mlsframe.Application(room, epoch, ciphertext))})
}

// newGroup creates an encrypted group room of owner with the users of
// members invited and joined, every device stocked with KeyPackages, and
// publishes its MLS group: owner's first commit adds every device of the
// members. The room is then at epoch 1.
func newGroup(t testing.TB, name string, owner *dev, members ...*dev) string {
	t.Helper()
	var users []string
	for _, m := range members {
		if !slices.Contains(users, m.id()) {
			users = append(users, m.id())
		}
	}
	var res map[string]string
	owner.call("create_room", map[string]any{"kind": "group", "name": name, "users": users}, &res)
	room := roomOf(t, res)
	joined := map[string]bool{}
	for _, m := range members {
		if !joined[m.id()] {
			m.call("join", map[string]any{"room": room}, nil)
			joined[m.id()] = true
		}
	}
	for _, d := range append([]*dev{owner}, members...) {
		d.upload(5)
	}
	var welcome [][]byte
	if len(users) > 0 {
		welcome = refs(t, owner.claim(users...))
	}
	owner.mustCommit(room, 0, welcome)
	return room
}

// errIs checks a refusal's code and detail.
func errIs(t testing.TB, what string, e *mlsErr, code, detail string) {
	t.Helper()
	if e == nil {
		t.Fatalf("%s: accepted, want %s/%s", what, code, detail)
	}
	if e.Code != code || (detail != "" && e.Detail != detail) {
		t.Fatalf("%s: got %s, want %s/%s", what, e, code, detail)
	}
}

// epochIs checks an epoch_mismatch refusal.
func epochIs(t testing.TB, what string, e *mlsErr, epoch uint64) {
	t.Helper()
	errIs(t, what, e, proto.CodeEpochMismatch, "")
	if e.Epoch == nil || *e.Epoch != epoch {
		t.Fatalf("%s: epoch_mismatch carries epoch %v, want %d", what, e.Epoch, epoch)
	}
}

// allEvents pages in a room's whole log.
func (d *dev) allEvents(room string) []proto.Event {
	d.t.Helper()
	var out []proto.Event
	var after uint64
	for {
		var page struct {
			More   bool          `json:"more"`
			Events []proto.Event `json:"events"`
		}
		d.must("history", map[string]any{"room": room, "after": after, "limit": proto.MaxPage}, &page)
		out = append(out, page.Events...)
		if !page.More || len(page.Events) == 0 {
			return out
		}
		after = page.Events[len(page.Events)-1].Seq
	}
}
