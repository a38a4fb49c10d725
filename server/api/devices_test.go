package api_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/client"
	"relais/server/config"
	"relais/server/proto"
)

// signInAlert waits on conn for the "signin" frame of device, failing on
// a sign-in alert for any other device or after within.
func signInAlert(t *testing.T, conn *client.Conn, device string, within time.Duration) client.Frame {
	t.Helper()
	deadline := time.After(within)
	for {
		select {
		case f, ok := <-conn.Frames():
			if !ok {
				t.Fatalf("connection closed waiting for the sign-in alert: %v", conn.Err())
			}
			if f.T != "signin" {
				continue
			}
			var a struct{ Device string }
			if err := f.Decode(&a); err != nil {
				t.Fatal(err)
			}
			if a.Device != device {
				t.Fatalf("sign-in alert for device %q, want %q: %s", a.Device, device, f.Raw)
			}
			return f
		case <-deadline:
			t.Fatalf("no sign-in alert for %s within %v", device, within)
		}
	}
}

// TestDeviceSignInAlertReachesOnlyTheOwnersDevices: when someone signs in
// as Alice from 127.0.0.2, Alice's open device gets an alert naming the
// new device, with no address in it; Bob, connected on the same node,
// gets nothing about Alice (his own later sign-in is the barrier: frames
// to one connection arrive in publication order).
func TestDeviceSignInAlertReachesOnlyTheOwnersDevices(t *testing.T) {
	n := nodetest.Start(t)
	ctx := context.Background()
	alice := n.NewUserEmail("alice.alerte@agents.gouv.fr", "Alice")
	bob := n.NewUserEmail("bob.alerte@agents.gouv.fr", "Bob")
	aconn := nodetest.Synced(t, ctx, alice)
	bconn := nodetest.Synced(t, ctx, bob)

	intruder := fromAddr(n, "127.0.0.2")
	if err := intruder.Login(ctx, "alice.alerte@agents.gouv.fr", nodetest.Password); err != nil {
		t.Fatal(err)
	}
	f := signInAlert(t, aconn, intruder.Me.Device, 20*time.Second)
	var a struct {
		Name string
		At   time.Time
	}
	if err := f.Decode(&a); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(a.Name, "relais Go client · ") || a.At.IsZero() {
		t.Fatalf("alert without the device's name or time: %s", f.Raw)
	}
	if strings.Contains(string(f.Raw), "127.0.0") {
		t.Fatalf("the alert names the new session's address: %s", f.Raw)
	}

	bob2 := n.Client()
	if err := bob2.Login(ctx, "bob.alerte@agents.gouv.fr", nodetest.Password); err != nil {
		t.Fatal(err)
	}
	// signInAlert fails on an alert for Alice's device before Bob's own.
	signInAlert(t, bconn, bob2.Me.Device, 20*time.Second)
}

// TestDeviceRevokeAndRenameOnlyOwnSessions: Bob, knowing the id of
// Alice's device, can neither sign it out nor rename it (the answer is
// the one for an unknown device); Alice revoking it closes its websocket
// at once.
func TestDeviceRevokeAndRenameOnlyOwnSessions(t *testing.T) {
	n := nodetest.Start(t)
	ctx := context.Background()
	alice := n.NewUserEmail("alice.revoque@agents.gouv.fr", "Alice")
	bob := n.NewUserEmail("bob.revoque@agents.gouv.fr", "Bob")
	second := n.Client()
	if err := second.Login(ctx, "alice.revoque@agents.gouv.fr", nodetest.Password); err != nil {
		t.Fatal(err)
	}
	conn := nodetest.Synced(t, ctx, second)
	dev := "/api/v1/devices/" + second.Me.Device
	if err := bob.Do(ctx, "DELETE", dev, nil, nil); code(err) != proto.CodeNotFound {
		t.Fatalf("Bob revoking Alice's device: %v", err)
	}
	if err := bob.Do(ctx, "PATCH", dev, map[string]string{"name": "Pris par Bob"}, nil); code(err) != proto.CodeNotFound {
		t.Fatalf("Bob renaming Alice's device: %v", err)
	}
	var devs struct {
		Devices []struct{ ID, Name string }
	}
	if err := alice.Do(ctx, "GET", "/api/v1/devices", nil, &devs); err != nil {
		t.Fatal(err)
	}
	for _, d := range devs.Devices {
		if d.Name == "Pris par Bob" {
			t.Fatal("Bob renamed Alice's device")
		}
	}
	if err := second.Do(ctx, "GET", "/api/v1/me", nil, nil); err != nil {
		t.Fatalf("Bob signed Alice's device out: %v", err)
	}
	if err := alice.Do(ctx, "DELETE", dev, nil, nil); err != nil {
		t.Fatal(err)
	}
	nodetest.ClosedWith(t, conn, 4001, 10*time.Second, "the revoked device's connection")
}

// TestDeviceNamesDifferAndRenamesAreCheckedText: two sessions from the
// same kind of client get different default names; a rename is stored
// with spaces folded, and a name that hides or reorders characters, is
// too long or empty is refused with name_invalid and its detail, changing
// nothing.
func TestDeviceNamesDifferAndRenamesAreCheckedText(t *testing.T) {
	n := nodetest.Start(t)
	ctx := context.Background()
	a := n.NewUserEmail("camille.noms@agents.gouv.fr", "Camille")
	b := n.Client()
	if err := b.Login(ctx, "camille.noms@agents.gouv.fr", nodetest.Password); err != nil {
		t.Fatal(err)
	}
	names := func() map[string]string {
		var devs struct {
			Devices []struct{ ID, Name string }
		}
		if err := a.Do(ctx, "GET", "/api/v1/devices", nil, &devs); err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, d := range devs.Devices {
			out[d.ID] = d.Name
		}
		return out
	}
	got := names()
	if len(got) != 2 || got[a.Me.Device] == got[b.Me.Device] {
		t.Fatalf("two devices of the same kind are not told apart: %v", got)
	}
	dev := "/api/v1/devices/" + b.Me.Device
	var ans struct{ Name string }
	if err := a.Do(ctx, "PATCH", dev, map[string]string{"name": "  Poste   du bureau "}, &ans); err != nil || ans.Name != "Poste du bureau" {
		t.Fatalf("rename: %+v %v", ans, err)
	}
	for _, c := range []struct{ name, given, detail string }{
		{"bidi override", "Poste\u202edu bureau", "invisible"},
		{"zero width", "Poste\u200bdu bureau", "invisible"},
		{"control", "Poste\x07", "control"},
		{"too long", strings.Repeat("é", 61), "too_long"},
		{"empty", "   ", "empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := a.Do(ctx, "PATCH", dev, map[string]string{"name": c.given}, nil)
			if code(err) != proto.CodeNameInvalid || detailOf(err) != c.detail {
				t.Fatalf("%q: %v (detail %q), want name_invalid/%s", c.given, err, detailOf(err), c.detail)
			}
			if got := names()[b.Me.Device]; got != "Poste du bureau" {
				t.Fatalf("a refused name changed the device: %q", got)
			}
		})
	}
}

// TestPasswordChangeWrongCurrentIsRateLimited: a wrong current password
// is refused with wrong_password, and guessing it through a stolen
// session runs into the sign-in failure budget; even the right password
// is refused until the budget refills, and nothing changed.
func TestPasswordChangeWrongCurrentIsRateLimited(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithConfig(func(c *config.Config) { c.RateLimits = true }))
	ctx := context.Background()
	thief := n.NewUserEmail("dominique.vol@agents.gouv.fr", "Dominique")
	limited := false
	for i := range 40 {
		err := thief.Do(ctx, "POST", "/api/v1/password", map[string]string{"current": "Essai-Numero-" + string(rune('a'+i)), "new": "Nouveau-Secret-88"}, nil)
		if code(err) == proto.CodeRateLimited {
			limited = true
			break
		}
		if code(err) != proto.CodeWrongPassword {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	if !limited {
		t.Fatal("40 wrong current passwords were never limited")
	}
	if err := thief.Do(ctx, "POST", "/api/v1/password", map[string]string{"current": nodetest.Password, "new": "Nouveau-Secret-88"}, nil); code(err) != proto.CodeRateLimited {
		t.Fatalf("right password while limited: %v", err)
	}
	if err := fromAddr(n, "127.0.0.3").Login(ctx, "dominique.vol@agents.gouv.fr", nodetest.Password); err != nil {
		t.Fatalf("the password changed, or its owner is locked out elsewhere: %v", err)
	}
}

func detailOf(err error) string {
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Detail
	}
	return ""
}
