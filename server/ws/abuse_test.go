package ws_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"

	"relais/cluster/nodetest"
	"relais/server/client"
	"relais/server/node"
	"relais/server/proto"
	"relais/server/store"
	"relais/server/ws"
)

// wsLimits turns on the websocket's rate limits only: the tests sign
// many people in from one address.
var wsLimits = nodetest.WithOptions(func(o *node.Options) { o.WS.RateLimits = true })

// floodUntilLimited sends frames of one kind until one is refused with
// rate_limited (at most 2·burst+20): it returns how many were carried out
// (answered without error) and how many were answered before the refusal.
func floodUntilLimited(t *testing.T, d *dev, kind string, fields func(i int) map[string]any) (ok, before int) {
	t.Helper()
	burst := ws.BurstOf(kind)
	if burst == 0 {
		t.Fatalf("%s is not limited", kind)
	}
	for i := range 2*burst + 20 {
		f, e := d.req(kind, fields(i))
		if e == nil {
			ok++
			continue
		}
		if e.Code != proto.CodeRateLimited {
			continue // refused for another reason, still counted below
		}
		var ef struct {
			RetryAfter int `json:"retry_after"`
		}
		json.Unmarshal(f.Raw, &ef)
		if ef.RetryAfter <= 0 {
			t.Fatalf("%s: rate_limited without retry_after: %s", kind, f.Raw)
		}
		if i < burst {
			t.Fatalf("%s: refused after %d frames, before the burst of %d", kind, i, burst)
		}
		return ok, i
	}
	t.Fatalf("%s: %d frames in a row and none refused", kind, 2*burst+20)
	return 0, 0
}

// TestFrameFloodsAreRefusedAfterTheBurst floods each limited kind of
// state-changing frame from one session: past its burst the node answers
// rate_limited with retry_after, and what it refused changed nothing (the
// room log, the rooms, the key stock hold exactly what was accepted).
func TestFrameFloodsAreRefusedAfterTheBurst(t *testing.T) {
	n := nodetest.Start(t, wsLimits)
	type flood struct {
		who    *dev // floods from a session of its own, fresh buckets
		fields func(i int) map[string]any
		effect func() int // the changes made; nil: every frame is refused anyway
	}
	// Each case has its own people: setup frames come from another
	// device than the flood's, and no case drains another's buckets.
	people := func(name string) (owner, flooder, member *dev, room func(kind string) string) {
		owner = newDev(t, n, "Proprio "+name)
		member = newDev(t, n, "Membre "+name)
		flooder = owner.another(t, n)
		room = func(kind string) string {
			var res map[string]string
			owner.call("create_room", map[string]any{"kind": kind, "name": "Salle " + name, "encrypted": false, "users": []string{member.id()}}, &res)
			r := roomOf(t, res)
			member.call("join", map[string]any{"room": r}, nil)
			return r
		}
		return
	}
	countEvents := func(d *dev, room string, pred func(proto.Event) bool) func() int {
		return func() int {
			k := 0
			for _, ev := range d.allEvents(room) {
				if pred(ev) {
					k++
				}
			}
			return k
		}
	}

	for _, c := range []struct {
		kind  string
		setup func() flood
	}{
		{"update_room", func() flood {
			owner, flooder, _, newRoom := people("Sujet")
			room := newRoom("group")
			return flood{flooder, func(i int) map[string]any { return map[string]any{"room": room, "topic": fmt.Sprint("sujet ", i)} },
				countEvents(owner, room, func(ev proto.Event) bool { return ev.Type == proto.EvSettings })}
		}},
		{"set_role", func() flood {
			owner, flooder, member, newRoom := people("Role")
			room := newRoom("group")
			roles := []string{"moderator", "member"}
			return flood{flooder, func(i int) map[string]any {
				return map[string]any{"room": room, "user": member.id(), "role": roles[i%2]}
			},
				countEvents(owner, room, func(ev proto.Event) bool { return ev.Type == proto.EvMember && ev.Action == proto.ActRole })}
		}},
		{"invite", func() flood {
			owner, flooder, _, newRoom := people("Invitation")
			room := newRoom("group")
			var ids []string
			for i := range ws.BurstOf("invite") + 10 {
				ids = append(ids, n.NewUser(fmt.Sprint("Invite ", i)).Me.ID)
			}
			return flood{flooder, func(i int) map[string]any { return map[string]any{"room": room, "user": ids[i%len(ids)]} },
				countEvents(owner, room, func(ev proto.Event) bool { return ev.Type == proto.EvMember && ev.Action == proto.ActInvite })}
		}},
		{"kick", func() flood {
			_, _, member, newRoom := people("Expulsion")
			room := newRoom("forum")
			attacker := newDev(t, n, "Assaillant Expulsion")
			return flood{attacker, func(int) map[string]any { return map[string]any{"room": room, "user": member.id()} }, nil}
		}},
		{"join", func() flood {
			_, _, _, newRoom := people("Adhesion")
			room := newRoom("forum")
			attacker := newDev(t, n, "Assaillant Adhesion")
			return flood{attacker, func(int) map[string]any { return map[string]any{"room": room} }, nil}
		}},
		{"leave", func() flood {
			_, _, _, newRoom := people("Depart")
			room := newRoom("forum")
			attacker := newDev(t, n, "Assaillant Depart")
			return flood{attacker, func(int) map[string]any { return map[string]any{"room": room} }, nil}
		}},
		{"send", func() flood {
			owner, flooder, _, newRoom := people("Envoi")
			room := newRoom("group")
			return flood{flooder, func(i int) map[string]any {
				return map[string]any{"room": room, "type": "text", "body": fmt.Sprint("spam ", i)}
			},
				countEvents(owner, room, func(ev proto.Event) bool { return ev.Type == proto.EvText })}
		}},
		{"typing", func() flood {
			_, flooder, _, newRoom := people("Frappe")
			room := newRoom("group")
			return flood{flooder, func(i int) map[string]any { return map[string]any{"room": room, "on": i%2 == 0} }, nil}
		}},
		{"open_dm", func() flood {
			_, flooder, member, _ := people("Direct")
			return flood{flooder, func(int) map[string]any { return map[string]any{"user": member.id(), "encrypted": false} }, nil}
		}},
		{"unban", func() flood {
			_, flooder, member, newRoom := people("Grace")
			room := newRoom("group")
			return flood{flooder, func(int) map[string]any { return map[string]any{"room": room, "user": member.id()} }, nil}
		}},
		{"create_room", func() flood {
			attacker := newDev(t, n, "Assaillant Salles")
			return flood{attacker, func(i int) map[string]any {
				return map[string]any{"kind": "group", "name": fmt.Sprint("Spam ", i), "encrypted": false}
			}, func() int { rooms, _ := n.Chat.JoinedRooms(attacker.id()); return len(rooms) }}
		}},
		{"key_packages", func() flood {
			attacker := newDev(t, n, "Assaillant Clefs")
			return flood{attacker, func(int) map[string]any { return map[string]any{"key_packages": attacker.keyPackages(1)} }, func() int {
				k := 0
				n.DB.View(func(tx *store.Tx) error { k = tx.KeyPackageCount(attacker.id(), attacker.device()); return nil })
				return k
			}}
		}},
		{"welcome_ack", func() flood {
			_, flooder, _, newRoom := people("Accuse")
			room := newRoom("group")
			return flood{flooder, func(int) map[string]any { return map[string]any{"room": room} }, nil}
		}},
	} {
		t.Run(c.kind, func(t *testing.T) {
			f := c.setup()
			base := 0
			if f.effect != nil {
				base = f.effect()
			}
			ok, _ := floodUntilLimited(t, f.who, c.kind, f.fields)
			if f.effect != nil {
				if got := f.effect() - base; got != ok {
					t.Fatalf("%s: %d frames carried out, %d changes made", c.kind, ok, got)
				}
			}
		})
	}
}

// TestFrameLimitsArePerUser: the per-user bucket holds across a user's
// sessions, so that opening more sockets does not multiply the budget.
func TestFrameLimitsArePerUser(t *testing.T) {
	n := nodetest.Start(t, wsLimits)
	a := newDev(t, n, "Multi Prise")
	devs := []*dev{a, a.another(t, n), a.another(t, n), a.another(t, n)}
	var res map[string]string
	a.call("create_room", map[string]any{"kind": "group", "name": "Multi", "encrypted": false}, &res)
	room := roomOf(t, res)
	accepted := 1 // the create_room
	for i := range 4 * ws.BurstOf("update_room") {
		_, e := devs[i%len(devs)].req("update_room", map[string]any{"room": room, "topic": fmt.Sprint(i)})
		if e == nil {
			accepted++
		} else if e.Code != proto.CodeRateLimited {
			t.Fatalf("update_room: %s", e)
		}
	}
	// The user's burst is twice a session's; four sessions would have
	// four times.
	if limit := 2*ws.BurstOf("update_room") + 5; accepted > limit {
		t.Fatalf("one user carried out %d room frames from 4 sessions, want at most %d", accepted, limit)
	}
}

// TestReadAndPresenceFloodsAreCoalesced: read markers and presence over
// their limit are not refused (a client syncing markers never sees an
// error) but kept, the latest one, and carried out later: the room sees
// far fewer receipts than frames, and the marker ends where the last
// frame put it.
func TestReadAndPresenceFloodsAreCoalesced(t *testing.T) {
	n := nodetest.Start(t, wsLimits)
	alice := newDev(t, n, "Alice Lecture")
	bob := newDev(t, n, "Bob Lecture")
	var res map[string]string
	alice.call("open_dm", map[string]any{"user": bob.id(), "encrypted": false}, &res)
	room := roomOf(t, res)
	frames := ws.BurstOf("read") + 30
	var last uint64
	for i := 0; i < frames; {
		ack, err := alice.sendEv(map[string]any{"room": room, "type": "text", "body": fmt.Sprint("message ", i)})
		var ce *client.Error
		if errors.As(err, &ce) && ce.Code == proto.CodeRateLimited {
			time.Sleep(100 * time.Millisecond)
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		last = ack.Seq
		i++
	}
	first := last - uint64(frames) + 1
	for i := range frames {
		if _, e := bob.req("read", map[string]any{"room": room, "seq": first + uint64(i)}); e != nil {
			t.Fatalf("read %d refused: %s", i, e)
		}
	}
	receipts := func() (k int, upTo uint64) {
		alice.mu.Lock()
		defer alice.mu.Unlock()
		for _, f := range alice.fs {
			if f.T == proto.TReceipt {
				var r proto.Receipt
				json.Unmarshal(f.Raw, &r)
				if r.User == bob.id() {
					k++
					upTo = max(upTo, r.Seq)
				}
			}
		}
		return
	}
	nodetest.CheckFor(t, 10*time.Second, func() error {
		if k, up := receipts(); up != last {
			return fmt.Errorf("the last read marker was never carried out: %d receipts, up to %d, want %d", k, up, last)
		}
		return nil
	})
	if k, _ := receipts(); k > ws.BurstOf("read")+10 {
		t.Fatalf("%d receipts for %d read frames: not coalesced", k, frames)
	}

	for i := range 3 * ws.BurstOf("presence") {
		status := []string{"online", "away"}[i%2]
		if _, e := bob.req("presence", map[string]any{"status": status}); e != nil {
			t.Fatalf("presence %d refused: %s", i, e)
		}
	}
	if _, e := bob.req("presence", map[string]any{"status": "away"}); e != nil {
		t.Fatal(e)
	}
	isPresence := func(f client.Frame) bool { return f.T == proto.TPresEv && f.User == bob.id() }
	nodetest.CheckFor(t, 10*time.Second, func() error {
		alice.mu.Lock()
		defer alice.mu.Unlock()
		var lastStatus string
		for _, f := range alice.fs {
			if isPresence(f) {
				var p proto.Presence
				json.Unmarshal(f.Raw, &p)
				lastStatus = p.Status
			}
		}
		if lastStatus != "away" {
			return fmt.Errorf("the last presence was never carried out: Alice last saw %q, want \"away\"", lastStatus)
		}
		return nil
	})
	alice.mu.Lock()
	k := 0
	for _, f := range alice.fs {
		if isPresence(f) {
			k++
		}
	}
	alice.mu.Unlock()
	if k > ws.BurstOf("presence")+3 {
		t.Fatalf("%d presence events for %d frames: not coalesced", k, 3*ws.BurstOf("presence")+1)
	}
}

// TestSocketsPerUserAreCapped: a user may hold 40 websockets on a node;
// the 41st upgrade is refused with 429 too_many_connections, before any
// upgrade, and a place freed is usable again.
func TestSocketsPerUserAreCapped(t *testing.T) {
	n := nodetest.Start(t)
	c := n.NewUser("Prise Multiple")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial := func() (*websocket.Conn, *http.Response, error) {
		h := http.Header{}
		h.Set("Authorization", "Bearer "+c.Token())
		u := "ws" + c.URL()[len("http"):] + "/api/v1/ws"
		return websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: h})
	}
	var conns []*websocket.Conn
	defer func() {
		for _, ws := range conns {
			ws.CloseNow()
		}
	}()
	for i := range 40 {
		ws, _, err := dial()
		if err != nil {
			t.Fatalf("socket %d: %v", i+1, err)
		}
		conns = append(conns, ws)
	}
	nodetest.CheckFor(t, 10*time.Second, func() error {
		if got := n.WS.Sessions(); got != 40 {
			return fmt.Errorf("%d sessions, want 40", got)
		}
		return nil
	})
	_, resp, err := dial()
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("41st socket: err %v, response %+v", err, resp)
	}
	var body struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error.Code != proto.CodeTooManySockets {
		t.Fatalf("41st socket refused with %+v (%v)", body, err)
	}
	// Another user is not affected.
	other := n.NewUser("Autre Prise")
	oc, err := other.Dial(ctx, 8)
	if err != nil {
		t.Fatalf("another user's socket: %v", err)
	}
	oc.CloseNow()
	// Closing one frees its place.
	conns[0].Close(websocket.StatusNormalClosure, "")
	conns = conns[1:]
	nodetest.CheckFor(t, 10*time.Second, func() error {
		if got := n.WS.Sessions(); got != 39 {
			return fmt.Errorf("%d sessions, want 39", got)
		}
		return nil
	})
	ws, _, err := dial()
	if err != nil {
		t.Fatalf("a socket after one closed: %v", err)
	}
	conns = append(conns, ws)
}
