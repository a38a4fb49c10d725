package ws_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/client"
	"relais/server/config"
	"relais/server/mail/smtptest"
	"relais/server/mls/mlsframe"
	"relais/server/node"
	"relais/server/proto"
)

// relayNode starts a node that mails through a real SMTP relay in process.
func relayNode(t *testing.T, opts ...nodetest.Option) (*nodetest.Node, *smtptest.Server) {
	t.Helper()
	srv, withRelay := nodetest.WithMailRelay(t)
	return nodetest.Start(t, append([]nodetest.Option{withRelay}, opts...)...), srv
}

func mailsTo(relay *smtptest.Server, to string) []smtptest.Received {
	var out []smtptest.Received
	for _, m := range relay.Messages() {
		for _, r := range m.To {
			if strings.EqualFold(r, to) {
				out = append(out, m)
			}
		}
	}
	return out
}

func externalRoom(t *testing.T, p *peer, name string) string {
	t.Helper()
	var res map[string]string
	p.call("create_room", map[string]any{"kind": "group", "name": name, "encrypted": false, "externals": true}, &res)
	return roomOf(t, res)
}

// An agent floods one outside address with invitations (into one room,
// then into others): the address gets one mail, the other invitations are
// added to the pending one without a mail, and the mail carries no text
// the inviter chose (no room name, no display name).
func TestInvitationFloodToOneAddressSendsOneMail(t *testing.T) {
	n, relay := relayNode(t)
	agent := newPeer(t, n, "Achetez Des Montres Ici")
	other := newPeer(t, n, "Second Agent")
	const target = "victime@exemple-externe.fr"
	rooms := []string{externalRoom(t, agent, "GAGNEZ 1000 EUR sur http://arnaque.example")}
	for i := 0; i < 3; i++ {
		rooms = append(rooms, externalRoom(t, agent, "Salle piège"))
	}
	for i := 0; i < 25; i++ {
		room := rooms[i%len(rooms)]
		code := agent.code("invite_external", map[string]any{"room": room, "email": target})
		if code != "" {
			t.Fatalf("invitation %d: %q (a pending invitation absorbs the next ones)", i, code)
		}
	}
	// Another agent inviting the same pending address sends no mail either.
	if code := other.code("invite_external", map[string]any{"room": externalRoom(t, other, "Autre"), "email": target}); code != "" {
		t.Fatalf("second inviter: %q", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msg, err := relay.WaitMessage(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // leave time for any further mail
	if got := len(mailsTo(relay, target)); got != 1 {
		t.Fatalf("%d mails to the invited address, want 1", got)
	}
	for _, chosen := range []string{"GAGNEZ", "arnaque", "piège", "Montres", "Achetez"} {
		if strings.Contains(msg.Text, chosen) || strings.Contains(msg.Subject, chosen) {
			t.Fatalf("the invitation mail carries %q, chosen by the inviter:\n%s\n%s", chosen, msg.Subject, msg.Text)
		}
	}
	if !strings.Contains(msg.Text, nodetest.Domain) {
		t.Fatalf("the invitation mail does not name the inviter's administration:\n%s", msg.Text)
	}
}

// An agent invites many different outside addresses: past the per-inviter
// limits (pending invitations, mails per day) the node refuses with a
// stable code and sends nothing more.
func TestInvitationLimitsPerInviter(t *testing.T) {
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	n, relay := relayNode(t, nodetest.WithOptions(func(o *node.Options) { o.Now = clock }))
	agent := newPeer(t, n, "Claire Agent")
	room := externalRoom(t, agent, "Projet")
	addr := func(i int) string {
		return "personne" + string(rune('a'+i/26)) + string(rune('a'+i%26)) + "@exemple-externe.fr"
	}
	sent := 0
	var code string
	for i := 0; i < 60 && code == ""; i++ {
		if code = agent.code("invite_external", map[string]any{"room": room, "email": addr(i)}); code == "" {
			sent++
		}
	}
	if code != proto.CodeRateLimited || sent != 20 {
		t.Fatalf("after %d invitations: %q, want %q after 20 (mails per inviter per day)", sent, code, proto.CodeRateLimited)
	}
	invitations := func() int {
		k := 0
		for _, m := range relay.Messages() {
			if len(m.To) == 1 && strings.HasSuffix(m.To[0], "@exemple-externe.fr") {
				k++
			}
		}
		return k
	}
	nodetest.CheckFor(t, 10*time.Second, func() error {
		if got := invitations(); got != 20 {
			return fmt.Errorf("%d invitation mails, want 20", got)
		}
		return nil
	})
	// A day later the daily count starts again, until 50 are pending.
	for day := 1; code != proto.CodeTooManyInvitations && day < 5; day++ {
		offset.Store(int64(time.Duration(day) * 25 * time.Hour))
		code = ""
		for i := 0; i < 20 && code == ""; i++ {
			if code = agent.code("invite_external", map[string]any{"room": room, "email": addr(sent)}); code == "" {
				sent++
			}
		}
	}
	if code != proto.CodeTooManyInvitations || sent != 50 {
		t.Fatalf("after %d invitations: %q, want %q after 50 pending", sent, code, proto.CodeTooManyInvitations)
	}
	time.Sleep(300 * time.Millisecond)
	if got := invitations(); got != 50 {
		t.Fatalf("%d mails sent, want 50", got)
	}
}

// A user's validity runs out while their websocket is open: the socket is
// closed, their devices are listed inactive and the directory no longer
// lists them.
func TestExpiredAccountIsSignedOutAtOnce(t *testing.T) {
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	n := nodetest.Start(t,
		nodetest.WithConfig(func(c *config.Config) { c.AccountValidity = config.Duration(24 * time.Hour) }),
		nodetest.WithOptions(func(o *node.Options) { o.Now = clock; o.ExpirySweep = 100 * time.Millisecond }))
	ctx := context.Background()
	// Every account expires after a day: the watcher looking after
	// expiry signs up then.
	watcher := newPeer(t, n, "Observe Avant")
	u := n.NewUser("Expire Bientot")
	conn, err := u.Dial(ctx, 16)
	if err != nil {
		t.Fatal(err)
	}
	devices := func() []proto.DeviceKey {
		var res struct {
			Devices []proto.DeviceKey `json:"devices"`
		}
		watcher.call("device_keys", map[string]any{"users": []string{u.Me.ID}}, &res)
		return res.Devices
	}
	listed := func() bool {
		var res struct {
			Users []proto.Profile `json:"users"`
		}
		watcher.call("directory", map[string]any{"q": "Expire"}, &res)
		return len(res.Users) == 1
	}
	// Upload a device key so that device_keys lists the device.
	kp := mlsframe.KeyPackage(suite, proto.DeviceIdentity(u.Me.ID, u.Me.Device), mlsframe.SignatureKey(),
		time.Now().Add(-time.Hour), time.Now().Add(60*24*time.Hour))
	connect(t, u).call("key_packages", map[string]any{"key_packages": []string{b64(kp)}}, nil)
	if d := devices(); len(d) != 1 || !d[0].Active {
		t.Fatalf("devices before expiry: %+v", d)
	}
	if !listed() {
		t.Fatal("the account is not in the directory before expiry")
	}
	// Someone writing to the account, whose client claims its keys.
	writer := newPeer(t, n, "Ecrit Souvent")
	writer.call("open_dm", map[string]any{"user": u.Me.ID}, nil)
	offset.Store(int64(25 * time.Hour))
	if code := writer.code("claim_keys", map[string]any{"users": []string{u.Me.ID}}); code != proto.CodeForbidden {
		t.Fatalf("claiming the keys of an expired account: %q, want %q", code, proto.CodeForbidden)
	}
	watcher = newPeer(t, n, "Observe Apres")
	select {
	case <-conn.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("expired account still connected")
	}
	for _, d := range devices() {
		if d.Active {
			t.Fatalf("device of the expired account listed active: %+v", d)
		}
	}
	if listed() {
		t.Fatal("the directory still lists the expired account")
	}
}

// An owner "bans" someone who was never in their private group: the
// person must not learn the group's name (or that it exists).
func TestBanningANonMemberLeaksNoRoomName(t *testing.T) {
	n := nodetest.Start(t)
	owner := newPeer(t, n, "Propriétaire")
	stranger := newPeer(t, n, "Inconnu")
	var res map[string]string
	owner.call("create_room", map[string]any{"kind": "group", "name": "Dossier confidentiel Z", "encrypted": false}, &res)
	room := roomOf(t, res)
	if code := owner.code("ban", map[string]any{"room": room, "user": stranger.id()}); code != proto.CodeNotMember {
		t.Fatalf("banning a non-member: %q, want %q", code, proto.CodeNotMember)
	}
	time.Sleep(300 * time.Millisecond)
	if stranger.has(func(f client.Frame) bool {
		return strings.Contains(string(f.Raw), "confidentiel") || f.Room == room
	}) {
		t.Fatal("the stranger received the private room")
	}
	// A member (and an invitee) can still be banned; a forum can still
	// keep an agent out before they join.
	invitee := newPeer(t, n, "Invité")
	owner.call("invite", map[string]any{"room": room, "user": invitee.id()}, nil)
	owner.call("ban", map[string]any{"room": room, "user": invitee.id()}, nil)
	owner.call("create_room", map[string]any{"kind": "forum", "name": "Forum public"}, &res)
	forum := roomOf(t, res)
	owner.call("ban", map[string]any{"room": forum, "user": stranger.id()}, nil)
	if code := stranger.code("join", map[string]any{"room": forum}); code != proto.CodeForbidden {
		t.Fatalf("pre-banned agent joins a forum: %q", code)
	}
}
