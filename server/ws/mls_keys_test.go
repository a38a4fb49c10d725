package ws_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/client"
	"relais/server/mls"
	"relais/server/mls/mlsframe"
	"relais/server/node"
	"relais/server/proto"
)

// tsmlsKeyPackage returns a KeyPackage made by the real ts-mls library
// (server/mls/testdata), whose identity is "alice@mairie-exemple.fr/laptop".
func tsmlsKeyPackage(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile("../mls/testdata/suite83.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		KeyPackages []struct {
			Hex string `json:"hex"`
		} `json:"key_packages"`
	}
	if err := json.Unmarshal(raw, &v); err != nil || len(v.KeyPackages) == 0 {
		t.Fatalf("vectors: %v", err)
	}
	b, err := hex.DecodeString(v.KeyPackages[0].Hex)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// tsmlsMessage returns a message of one group's life made by the real
// ts-mls library (server/mls/testdata/README.md), by name.
func tsmlsMessage(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile("../mls/testdata/suite83.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Messages []struct {
			Name string `json:"name"`
			Hex  string `json:"hex"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	for _, m := range v.Messages {
		if m.Name == name {
			b, err := hex.DecodeString(m.Hex)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
	t.Fatalf("no vector %q", name)
	return nil
}

func TestKeyPackageUploadAndPinning(t *testing.T) {
	n := nodetest.Start(t)
	alice := newDev(t, n, "Alice Clef")
	other := newDev(t, n, "Autre Personne")
	now := time.Now()
	kp := func(s mls.CipherSuite, identity string, sig []byte, from, to time.Time) string {
		return b64(mlsframe.KeyPackage(s, identity, sig, from, to))
	}
	valid := func(identity string, sig []byte) string {
		return kp(suite, identity, sig, now.Add(-time.Hour), now.Add(24*time.Hour))
	}
	day := 24 * time.Hour

	// The first upload binds the device's key; the stock counts regular
	// KeyPackages only.
	if n := alice.upload(3); n != 3 {
		t.Fatalf("stock after the first upload = %d, want 3", n)
	}
	kp0 := alice.keyPackages(1)[0]
	var res struct {
		Count int `json:"count"`
	}
	alice.must("key_packages", map[string]any{"key_packages": []string{kp0, kp0}}, &res)
	if res.Count != 4 {
		t.Fatalf("stock after uploading one package twice = %d, want 4", res.Count)
	}

	for _, c := range []struct {
		name         string
		packages     []string
		code, detail string
	}{
		{"another signature key", []string{valid(alice.ident(), mlsframe.SignatureKey())}, proto.CodeForbidden, "mls_key_changed"},
		{"two keys in one upload", []string{valid(alice.ident(), alice.sig), valid(alice.ident(), mlsframe.SignatureKey())}, proto.CodeBadRequest, "mls_key_changed"},
		{"another device's identity", []string{valid(proto.DeviceIdentity(alice.id(), "d-abcdefghijklmnop"), alice.sig)}, proto.CodeForbidden, "mls_bad_credential"},
		{"another user's identity", []string{valid(other.ident(), alice.sig)}, proto.CodeForbidden, "mls_bad_credential"},
		{"a real ts-mls KeyPackage of someone else", []string{b64(tsmlsKeyPackage(t))}, proto.CodeForbidden, "mls_bad_credential"},
		{"expired", []string{kp(suite, alice.ident(), alice.sig, now.Add(-10*day), now.Add(-day))}, proto.CodeBadRequest, "mls_bad_lifetime"},
		{"not valid yet", []string{kp(suite, alice.ident(), alice.sig, now.Add(2*day), now.Add(9*day))}, proto.CodeBadRequest, "mls_bad_lifetime"},
		{"lifetime without end (ts-mls default)", []string{kp(suite, alice.ident(), alice.sig, time.Unix(0, 0), time.Unix(1<<62, 0))}, proto.CodeBadRequest, "mls_bad_lifetime"},
		{"suite not accepted", []string{kp(3, alice.ident(), alice.sig, now.Add(-time.Hour), now.Add(day))}, proto.CodeBadRequest, "mls_unsupported_cipher_suite"},
		{"unknown suite", []string{kp(0x1234, alice.ident(), alice.sig, now.Add(-time.Hour), now.Add(day))}, proto.CodeBadRequest, "mls_unsupported_cipher_suite"},
		{"not wrapped in an MLSMessage", []string{b64(unb64(t, valid(alice.ident(), alice.sig))[4:])}, proto.CodeBadRequest, ""},
		{"truncated", []string{b64([]byte("\x00\x01\x00\x05\x00\x01\x00\x53"))}, proto.CodeBadRequest, "mls_malformed"},
		{"a commit", []string{b64(mlsframe.PrivateCommit("r-x", 1))}, proto.CodeBadRequest, "mls_unsupported_wire_format"},
		{"not base64", []string{"%%%"}, proto.CodeBadRequest, ""},
		{"too many at once", alice.keyPackages(proto.MaxKeyPackagesPerFrame + 1), proto.CodeTooLarge, ""},
		{"over the stock limit", alice.keyPackages(97), proto.CodeTooLarge, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, e := alice.req("key_packages", map[string]any{"key_packages": c.packages})
			errIs(t, c.name, e, c.code, c.detail)
		})
	}
	// Nothing refused was kept.
	if n := alice.upload(0); n != 4 {
		t.Fatalf("stock after refusals = %d, want 4", n)
	}
}

func TestDeviceKeysAndNotices(t *testing.T) {
	n := nodetest.Start(t)
	alice := newDev(t, n, "Alice Veille")
	bob := newDev(t, n, "Bob Veille")
	stranger := newDev(t, n, "Inconnu Total")
	var res map[string]string
	alice.call("create_room", map[string]any{"kind": "group", "name": "Veille", "encrypted": false, "users": []string{bob.id()}}, &res)
	room := roomOf(t, res)
	bob.call("join", map[string]any{"room": room}, nil)
	alice.waitFrame("bob's join", func(f client.Frame) bool { return isEv(room, "member")(f) && f.User == bob.id() })

	noticeOf := func(d *dev) func(client.Frame) bool {
		return func(f client.Frame) bool {
			var dn proto.DeviceNotice
			decodeRaw(t, f, &dn)
			return f.T == proto.TDevice && dn.User == d.id() && dn.Device == d.device() && dn.Key == b64(d.sig)
		}
	}
	// A new device is never silent: the people who share a room are told.
	bob.upload(2)
	alice.waitFrame("bob's device notice", noticeOf(bob))
	bob2 := bob.another(t, n)
	bob2.upload(2)
	alice.waitFrame("bob's second device notice", noticeOf(bob2))
	bob.waitFrame("bob's own new device notice", noticeOf(bob2))
	if stranger.has(noticeOf(bob2)) {
		t.Fatal("someone who shares no room with bob was told of his device")
	}
	alice.upload(1)

	keysOf := func(d *dev, users ...string) map[string]proto.DeviceKey {
		var out struct {
			Devices []proto.DeviceKey `json:"devices"`
		}
		d.must("device_keys", map[string]any{"users": users}, &out)
		m := map[string]proto.DeviceKey{}
		for _, k := range out.Devices {
			m[proto.DeviceIdentity(k.User, k.Device)] = k
		}
		return m
	}
	keys := keysOf(alice, bob.id(), "u-nabcdefgh-abcdefghijklmnop")
	if len(keys) != 2 || keys[bob.ident()].Key != b64(bob.sig) || keys[bob2.ident()].Key != b64(bob2.sig) ||
		!keys[bob.ident()].Active || keys[bob.ident()].Created == 0 {
		t.Fatalf("alice sees bob's devices as %+v", keys)
	}
	// Agents may look up any agent.
	if keys := keysOf(stranger, bob.id()); len(keys) != 2 {
		t.Fatalf("an agent sees %d devices of another agent, want 2", len(keys))
	}
	// A device signed out stays listed (history it signed can be checked),
	// marked inactive.
	if err := bob2.c.Do(context.Background(), "DELETE", "/api/v1/devices/"+bob2.device(), nil, nil); err != nil {
		t.Fatal(err)
	}
	if keys := keysOf(alice, bob.id()); len(keys) != 2 || keys[bob2.ident()].Active || !keys[bob.ident()].Active {
		t.Fatalf("after signing bob's second device out: %+v", keys)
	}

	// An external correspondent sees only the people of their rooms, and
	// may not claim KeyPackages.
	var gr map[string]string
	alice.call("create_room", map[string]any{"kind": "group", "name": "Avec externe", "encrypted": false, "externals": true}, &gr)
	ext := newExternal(t, n, alice.peer, roomOf(t, gr), "prestataire@entreprise.fr")
	if keys := keysOf(ext, alice.id(), bob.id()); len(keys) != 1 || keys[alice.ident()].Key != b64(alice.sig) {
		t.Fatalf("the external sees %+v, want alice's device only", keys)
	}
	if _, e := ext.req("claim_keys", map[string]any{"users": []string{alice.id()}}); e == nil || e.Code != proto.CodeExternalForbidden {
		t.Fatalf("external claim: %s", e)
	}
	// An agent sees an external only if they share a room.
	ext.upload(1)
	if keys := keysOf(stranger, ext.id()); len(keys) != 0 {
		t.Fatalf("a stranger sees the external's devices: %+v", keys)
	}
	if keys := keysOf(alice, ext.id()); len(keys) != 1 {
		t.Fatalf("alice sees %d devices of her external correspondent, want 1", len(keys))
	}
}

// newExternal invites an external correspondent by e-mail to a room,
// accepts the invitation and connects them.
func newExternal(t *testing.T, n *nodetest.Node, inviter *peer, room, email string) *dev {
	t.Helper()
	ctx := context.Background()
	inviter.call("invite_external", map[string]any{"room": room, "email": email}, nil)
	link, err := n.Accounts.ApproveInvitation(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(link)
	if err := n.Client().Do(ctx, "POST", "/api/v1/invitation/accept", map[string]string{"token": u.Query().Get("token"), "password": nodetest.Password}, nil); err != nil {
		t.Fatal(err)
	}
	c := n.Client()
	if err := c.Login(ctx, email, nodetest.Password); err != nil {
		t.Fatal(err)
	}
	return &dev{peer: connect(t, c), sig: mlsframe.SignatureKey()}
}

// TestClaimExactlyOnce has claimers race for the KeyPackages of one
// device: each is handed out once, then the last-resort one, and the
// device is asked for more as its stock runs low. Each claimer opens a
// direct conversation with the device's user first: one claims only from
// people one is adding to an encrypted room.
func TestClaimExactlyOnce(t *testing.T) {
	// low_keys are coalesced per interval: a short one, to see the stock
	// told down to zero.
	n := nodetest.Start(t, nodetest.WithOptions(func(o *node.Options) { o.LowKeysEvery = 100 * time.Millisecond }))
	bob := newDev(t, n, "Bob Stock")
	const stock, claimers, each = 30, 6, 10
	if got := bob.upload(stock); got != stock {
		t.Fatalf("stock = %d", got)
	}
	var mu sync.Mutex
	seen := map[string]int{}
	var lastRefs [][]byte
	var wg sync.WaitGroup
	for i := range claimers {
		c := newDev(t, n, "Claimer "+string(rune('A'+i)))
		c.call("open_dm", map[string]any{"user": bob.id()}, nil)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				f, e := c.req("claim_keys", map[string]any{"users": []string{bob.id()}})
				if e != nil {
					t.Errorf("claim: %s", e)
					return
				}
				var res struct {
					Data proto.Claim `json:"data"`
				}
				if err := f.Decode(&res); err != nil {
					t.Error(err)
					return
				}
				got := res.Data
				mu.Lock()
				for _, k := range got.KeyPackages {
					ref := mlsframe.KeyPackageRef(unb64(t, k.KeyPackage))
					if k.LastResort {
						lastRefs = append(lastRefs, ref)
					} else {
						seen[hex.EncodeToString(ref)]++
					}
					if k.User != bob.id() || k.Device != bob.device() {
						t.Errorf("claimed %s/%s", k.User, k.Device)
					}
				}
				if len(got.KeyPackages)+len(got.Missing) != 1 {
					t.Errorf("claim answered %+v for one device", got)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != stock {
		t.Fatalf("%d distinct KeyPackages handed out, want %d", len(seen), stock)
	}
	for ref, times := range seen {
		if times != 1 {
			t.Fatalf("KeyPackage %s handed out %d times", ref, times)
		}
	}
	if len(lastRefs) != claimers*each-stock {
		t.Fatalf("%d last-resort answers, want %d", len(lastRefs), claimers*each-stock)
	}
	for _, r := range lastRefs {
		if !bytes.Equal(r, lastRefs[0]) || seen[hex.EncodeToString(r)] != 0 {
			t.Fatal("the last-resort KeyPackage changed between claims, or was a regular one")
		}
	}
	// Bob's device was asked for more, by name, down to zero.
	bob.waitFrame("low_keys 0", func(f client.Frame) bool {
		var lk proto.LowKeys
		decodeRaw(t, f, &lk)
		return f.T == proto.TLowKeys && lk.Device == bob.device() && lk.Count == 0
	})
	bob.mu.Lock()
	var counts []int
	for _, f := range bob.fs {
		if f.T == proto.TLowKeys {
			var lk proto.LowKeys
			decodeRaw(t, f, &lk)
			counts = append(counts, lk.Count)
		}
	}
	bob.mu.Unlock()
	// Coalesced, each tells the stock when it is sent: concurrent claims
	// may have taken more since the one that went under 10.
	if slices.Max(counts) > 9 || counts[len(counts)-1] != 0 || len(counts) > 10 {
		t.Fatalf("low_keys counts %v, want under 10 down to 0, coalesced", counts)
	}
	// A reconnecting device is asked too.
	again := connect(t, bob.c)
	again.waitFrame("low_keys at sync", func(f client.Frame) bool { return f.T == proto.TLowKeys })

	// Refilled: the new packages are handed out before the last resort.
	bob.upload(1)
	c := newDev(t, n, "Claimer Z")
	c.call("open_dm", map[string]any{"user": bob.id()}, nil)
	if got := c.claim(bob.id()); len(got.KeyPackages) != 1 || got.KeyPackages[0].LastResort {
		t.Fatalf("after a refill: %+v", got)
	}
	// A device without KeyPackages is listed as missing; the claimer's own
	// device is left out.
	got := c.claim(c.id(), bob.id())
	if len(got.Missing) != 0 || len(got.KeyPackages) != 1 {
		t.Fatalf("claiming oneself and bob: %+v", got)
	}
	c2 := c.another(t, n)
	got = c.claim(c.id())
	if len(got.Missing) != 1 || got.Missing[0].Device != c2.device() {
		t.Fatalf("claiming one's own other device that has no KeyPackages: %+v", got)
	}
}
