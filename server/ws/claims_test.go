package ws_test

import (
	"fmt"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/chat"
	"relais/server/client"
	"relais/server/node"
	"relais/server/proto"
	"relais/server/store"
)

// stock is a device's count of regular KeyPackages, read in the store.
func stock(t *testing.T, n *nodetest.Node, d *dev) int {
	t.Helper()
	k := 0
	if err := n.DB.View(func(tx *store.Tx) error { k = tx.KeyPackageCount(d.id(), d.device()); return nil }); err != nil {
		t.Fatal(err)
	}
	return k
}

// TestClaimsOnlyForPeopleBeingAdded: an agent who shares no encrypted room
// with someone cannot take their KeyPackages (forbidden, nothing taken),
// not even through a forum or an unencrypted room; the other person of a
// direct conversation just opened with a directory contact, and someone
// just invited to a group, can be claimed.
func TestClaimsOnlyForPeopleBeingAdded(t *testing.T) {
	n := nodetest.Start(t)
	bob := newDev(t, n, "Bob Convoite")
	stranger := newDev(t, n, "Inconnu Voleur")
	bob.upload(10)

	refused := func(what string) {
		t.Helper()
		_, e := stranger.req("claim_keys", map[string]any{"users": []string{bob.id()}})
		errIs(t, what, e, proto.CodeForbidden, "mls_no_shared_room")
		if got := stock(t, n, bob); got != 10 {
			t.Fatalf("%s: bob's stock went to %d", what, got)
		}
	}
	refused("a stranger")
	// Sharing a forum or an unencrypted group is not adding bob anywhere.
	var res map[string]string
	bob.call("create_room", map[string]any{"kind": "forum", "name": "Forum ouvert"}, &res)
	stranger.call("join", map[string]any{"room": roomOf(t, res)}, nil)
	refused("a stranger in the same forum")
	stranger.call("create_room", map[string]any{"kind": "group", "name": "En clair", "encrypted": false, "users": []string{bob.id()}}, &res)
	refused("a stranger inviting bob to an unencrypted group")
	// One's own other devices are always claimable.
	stranger2 := stranger.another(t, n)
	stranger2.upload(2)
	if got := stranger.claim(stranger.id()); len(got.KeyPackages) != 1 {
		t.Fatalf("claiming one's own other device: %+v", got)
	}

	// The web client's flows: open a direct conversation with someone
	// found in the directory, then claim; invite someone to a group,
	// then claim.
	alice := newDev(t, n, "Alice Annuaire")
	alice.call("open_dm", map[string]any{"user": bob.id()}, &res)
	if got := alice.claim(bob.id()); len(got.KeyPackages) != 1 || got.KeyPackages[0].LastResort {
		t.Fatalf("claim after opening a direct conversation: %+v", got)
	}
	carol := newDev(t, n, "Carol Invite")
	carol.call("create_room", map[string]any{"kind": "group", "name": "Chiffre", "users": []string{bob.id()}}, &res)
	if got := carol.claim(bob.id()); len(got.KeyPackages) != 1 {
		t.Fatalf("claim of someone just invited: %+v", got)
	}
	// Mixed: the stranger's claim of bob and of itself gets its own
	// devices only.
	if got := stranger.claim(stranger.id(), bob.id()); len(got.KeyPackages) != 1 || got.KeyPackages[0].User != stranger.id() {
		t.Fatalf("a stranger's claim naming bob too: %+v", got)
	}
	if got := stock(t, n, bob); got != 8 {
		t.Fatalf("bob's stock = %d, want 8 (two claims)", got)
	}
}

// TestClaimFloodByRoommatesIsLimited: a room-mate claiming someone's
// KeyPackages over and over is refused after a few (rate_limited,
// nothing taken), and many room-mates together are held by the target's
// own limit, so that the stock outlives the flood; what was refused took
// nothing.
func TestClaimFloodByRoommatesIsLimited(t *testing.T) {
	n := nodetest.Start(t, wsLimits)
	bob := newDev(t, n, "Bob Cible")
	owner := newDev(t, n, "Salle Proprio")
	const claimers = chat.ClaimTargetBurst/chat.ClaimPairBurst + 2
	var mates []*dev
	var ids []string
	for i := range claimers {
		m := newDev(t, n, fmt.Sprint("Colocataire ", i))
		mates = append(mates, m)
		ids = append(ids, m.id())
	}
	var res map[string]string
	owner.call("create_room", map[string]any{"kind": "group", "name": "Colocation", "users": append([]string{bob.id()}, ids...)}, &res)
	room := roomOf(t, res)
	for _, m := range mates {
		m.call("join", map[string]any{"room": room}, nil)
	}
	bob.upload(60)

	taken := 0
	flood := func(m *dev, times int) (ok int) {
		for range times {
			_, e := m.req("claim_keys", map[string]any{"users": []string{bob.id()}})
			if e == nil {
				ok++
				continue
			}
			errIs(t, "claim flood", e, proto.CodeRateLimited, "")
		}
		return ok
	}
	// One room-mate: the pair's burst, then refused.
	if ok := flood(mates[0], chat.ClaimPairBurst+10); ok != chat.ClaimPairBurst {
		t.Fatalf("one room-mate claimed %d times in a row, want %d", ok, chat.ClaimPairBurst)
	}
	taken += chat.ClaimPairBurst
	// All of them: the target's burst, then even a first claim is refused.
	for _, m := range mates[1:] {
		taken += flood(m, chat.ClaimPairBurst)
	}
	if taken > chat.ClaimTargetBurst+1 {
		t.Fatalf("%d KeyPackages of bob claimed by %d room-mates at once, want at most %d", taken, claimers, chat.ClaimTargetBurst)
	}
	if got := stock(t, n, bob); got != 60-taken {
		t.Fatalf("bob's stock = %d after %d claims carried out: refused claims took some", got, taken)
	}
}

// TestLowKeysAreCoalesced: a run of claims sends the device one low_keys
// at once, then at most one per interval, with the stock as it is then.
func TestLowKeysAreCoalesced(t *testing.T) {
	const every = 1500 * time.Millisecond
	n := nodetest.Start(t, nodetest.WithOptions(func(o *node.Options) { o.LowKeysEvery = every }))
	bob := newDev(t, n, "Bob Stock Bas")
	alice := newDev(t, n, "Alice Reclame")
	var res map[string]string
	alice.call("open_dm", map[string]any{"user": bob.id()}, &res)
	bob.upload(12)
	start := time.Now()
	for range 14 {
		alice.claim(bob.id())
	}
	lowKeys := func() (counts []int) {
		bob.mu.Lock()
		defer bob.mu.Unlock()
		for _, f := range bob.fs {
			if f.T == proto.TLowKeys {
				var lk proto.LowKeys
				decodeRaw(t, f, &lk)
				counts = append(counts, lk.Count)
			}
		}
		return counts
	}
	bob.waitFrame("the first low_keys", func(f client.Frame) bool { return f.T == proto.TLowKeys })
	if got := lowKeys(); time.Since(start) < every && len(got) != 1 {
		t.Fatalf("low_keys within one interval: %v, want one", got)
	}
	nodetest.CheckFor(t, 10*time.Second, func() error {
		if c := lowKeys(); len(c) == 0 || c[len(c)-1] != 0 {
			return fmt.Errorf("low_keys never told the empty stock: counts %v", c)
		}
		return nil
	})
	time.Sleep(every + 500*time.Millisecond)
	if got := lowKeys(); len(got) != 2 || got[0] != 9 || got[1] != 0 {
		t.Fatalf("low_keys for 14 claims: %v, want [9 0]", got)
	}
}
