package chat_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/bus"
	"relais/server/chat"
	"relais/server/fed"
	"relais/server/fed/fedtest"
	"relais/server/id"
	"relais/server/proto"
	"relais/server/store"
)

// admin is one administration of a federation test: a store, its chat
// service and its end of an in-process hub.
type admin struct {
	name  string
	ident fed.Identity
	db    *store.DB
	chat  *chat.Service
	tr    *fedtest.Transport
	logs  *nodetest.Logs
	bus   *recBus
}

// recBus keeps what is published on rooms' ephemeral subjects.
type recBus struct {
	bus.Discard
	mu  sync.Mutex
	eph []string
}

func (b *recBus) Publish(subject string, data []byte) error {
	if strings.HasPrefix(subject, proto.SubjectEphemeral("")) {
		if e, err := proto.ParseEnvelope(data); err == nil {
			b.mu.Lock()
			b.eph = append(b.eph, string(e.Frame))
			b.mu.Unlock()
		}
	}
	return nil
}

func (b *recBus) saw(s string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range b.eph {
		if strings.Contains(f, s) {
			return nil
		}
	}
	return fmt.Errorf("no ephemeral frame with %s among %d", s, len(b.eph))
}

func newFederation(t *testing.T, names ...string) (*fedtest.Hub, []*admin) {
	hub := fedtest.NewHub()
	var out []*admin
	var trs []*fedtest.Transport
	for _, n := range names {
		db, err := store.Open(filepath.Join(t.TempDir(), "relais.db"), store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		logs := &nodetest.Logs{}
		a := &admin{name: n, ident: fedtest.NewIdentity(n, db.Node(), strings.ToLower(n)+".gouv.fr"), db: db, logs: logs, bus: &recBus{}}
		a.chat = chat.New(db, a.bus, chat.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
		a.tr = hub.Join(a.ident)
		a.chat.SetFederation(chat.Federation{Transport: a.tr, Self: a.ident, SendTimeout: 2 * time.Second, SyncEvery: time.Hour})
		t.Cleanup(func() { a.chat.StopFederation(); db.Close() })
		out = append(out, a)
		trs = append(trs, a.tr)
	}
	fedtest.Mesh(trs...)
	return hub, out
}

func (a *admin) user() chat.Actor {
	return chat.Actor{User: id.NewUser(a.db.Node()), Device: id.NewDevice()}
}

// send sends a text, through the home when the room is homed elsewhere
// (what the websocket layer does).
func (a *admin) send(ctx context.Context, u chat.Actor, room, cid, body string) (proto.Ack, error) {
	f := &proto.ClientFrame{T: proto.TSend, ID: cid, Room: room, Type: proto.EvText, Body: body}
	return a.do(ctx, u, f)
}

func (a *admin) do(ctx context.Context, u chat.Actor, f *proto.ClientFrame) (proto.Ack, error) {
	if a.chat.Remote(f.Room) {
		return a.chat.Forward(ctx, u, f)
	}
	switch f.T {
	case proto.TSend:
		return a.chat.Send(ctx, u, f)
	case proto.TJoin:
		return proto.Ack{}, a.chat.Join(ctx, u, f.Room)
	case proto.TInvite:
		return proto.Ack{}, a.chat.Invite(ctx, u, f.Room, f.User)
	case proto.TKick:
		return proto.Ack{}, a.chat.Kick(ctx, u, f.Room, f.User)
	case proto.TSetRole:
		return proto.Ack{}, a.chat.SetRole(ctx, u, f.Room, f.User, store.Role(f.Role))
	}
	return proto.Ack{}, fmt.Errorf("test: %s", f.T)
}

// events returns the room's log as this administration stores it.
func (a *admin) events(t *testing.T, room string) []proto.Event {
	t.Helper()
	var out []proto.Event
	err := a.db.View(func(tx *store.Tx) error {
		if _, err := tx.Room(room); errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return tx.Events(room, 0, false, func(e store.Event) bool {
			var ev proto.Event
			if err := json.Unmarshal(e.Frame, &ev); err != nil {
				t.Errorf("stored frame: %v", err)
			}
			out = append(out, ev)
			return true
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func texts(evs []proto.Event) []string {
	var out []string
	for _, e := range evs {
		if e.Type == proto.EvText {
			out = append(out, fmt.Sprintf("%d:%s", e.Seq, e.Body))
		}
	}
	return out
}

// sameTail checks that b holds exactly a's events from b's first on, and
// that b's first event is at or after from.
func sameTail(t *testing.T, home, replica []proto.Event) error {
	t.Helper()
	if len(replica) == 0 {
		return errors.New("replica holds nothing")
	}
	first := replica[0].Seq
	var want []string
	for _, e := range home {
		if e.Seq >= first {
			want = append(want, fmt.Sprintf("%d:%s:%s:%s", e.Seq, e.Type, e.From, e.Body))
		}
	}
	var got []string
	for _, e := range replica {
		got = append(got, fmt.Sprintf("%d:%s:%s:%s", e.Seq, e.Type, e.From, e.Body))
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("replica %v\nhome    %v", got, want)
	}
	return nil
}

// converge waits until every replica holds the home's log from its
// first event on.
func converge(t *testing.T, home *admin, room string, replicas ...*admin) {
	t.Helper()
	evs := home.events(t, room)
	for _, r := range replicas {
		nodetest.CheckFor(t, 20*time.Second, func() error { return sameTail(t, evs, r.events(t, room)) })
	}
}

// group makes a group homed at home, owned by owner, with each member
// invited and joined through their own administration.
func group(t *testing.T, ctx context.Context, home *admin, owner chat.Actor, members map[*admin]chat.Actor) string {
	t.Helper()
	var invite []string
	for _, u := range members {
		invite = append(invite, u.User)
	}
	room, err := home.chat.CreateRoom(ctx, owner, chat.CreateRoomRequest{Kind: store.Group, Name: "Inter-administrations", Invite: invite, Encrypted: ptr(false)})
	if err != nil {
		t.Fatal(err)
	}
	for a, u := range members {
		nodetest.CheckFor(t, 10*time.Second, func() error {
			if _, err := a.do(ctx, u, &proto.ClientFrame{T: proto.TJoin, ID: "j-" + u.User[2:12], Room: room}); err != nil {
				return fmt.Errorf("%s joins: %w", a.name, err)
			}
			return nil
		})
	}
	return room
}

func TestFederationGroupKeepsTheHomesOrderEverywhere(t *testing.T) {
	ctx := context.Background()
	_, adm := newFederation(t, "A", "B", "C")
	a, b, c := adm[0], adm[1], adm[2]
	ua, ub, uc := a.user(), b.user(), c.user()
	room := group(t, ctx, a, ua, map[*admin]chat.Actor{b: ub, c: uc})
	var wg sync.WaitGroup
	for _, s := range []struct {
		a *admin
		u chat.Actor
	}{{a, ua}, {b, ub}, {c, uc}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if _, err := s.a.send(ctx, s.u, room, fmt.Sprintf("%s-%d", s.a.name, i), fmt.Sprintf("%s %d", s.a.name, i)); err != nil {
					t.Errorf("%s send %d: %v", s.a.name, i, err)
				}
			}
		}()
	}
	wg.Wait()
	if n := len(texts(a.events(t, room))); n != 60 {
		t.Fatalf("home holds %d messages, want 60", n)
	}
	converge(t, a, room, b, c)
	// A replica of the room where it was invited: its first event is
	// the invitation of its user, nothing before.
	if first := b.events(t, room)[0]; first.Type != proto.EvMember || first.Action != proto.ActInvite || first.User != ub.User {
		t.Fatalf("B's first event of the room is %+v, want the invitation of its user", first)
	}
}

func TestFederationRetryWithTheSameIDIsIdempotent(t *testing.T) {
	ctx := context.Background()
	_, adm := newFederation(t, "A", "B")
	a, b := adm[0], adm[1]
	ua, ub := a.user(), b.user()
	room := group(t, ctx, a, ua, map[*admin]chat.Actor{b: ub})
	first, err := b.send(ctx, ub, room, "c-1", "une fois")
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.send(ctx, ub, room, "c-1", "une fois")
	if err != nil {
		t.Fatal(err)
	}
	if again.Seq != first.Seq || first.Seq == 0 {
		t.Fatalf("retry acked seq %d, first %d", again.Seq, first.Seq)
	}
	if got := texts(a.events(t, room)); len(got) != 1 {
		t.Fatalf("home holds %v after a retry, want one message", got)
	}
}

func TestFederationHomeUnreachableIsNeverAFalseAck(t *testing.T) {
	ctx := context.Background()
	hub, adm := newFederation(t, "A", "B", "C")
	a, b, c := adm[0], adm[1], adm[2]
	ua, ub, uc := a.user(), b.user(), c.user()
	room := group(t, ctx, a, ua, map[*admin]chat.Actor{b: ub, c: uc})
	hub.SetDown(a.ident.ID, true)
	_, err := b.send(ctx, ub, room, "c-while-down", "pendant la coupure")
	if pe := proto.AsError(err); pe == nil || pe.Code != proto.CodeHomeUnreachable {
		t.Fatalf("send while the home is down: %v, want %s", err, proto.CodeHomeUnreachable)
	}
	if got := texts(a.events(t, room)); len(got) != 0 {
		t.Fatalf("home holds %v after a refused send", got)
	}
	hub.SetDown(a.ident.ID, false)
	ack, err := b.send(ctx, ub, room, "c-while-down", "pendant la coupure")
	if err != nil {
		t.Fatalf("retry after the home is back: %v", err)
	}
	if got := texts(a.events(t, room)); len(got) != 1 || got[0] != fmt.Sprintf("%d:pendant la coupure", ack.Seq) {
		t.Fatalf("home holds %v, want the one message at %d", got, ack.Seq)
	}
	converge(t, a, room, b, c)
}

func TestFederationPeerCatchesUpAfterAnOutage(t *testing.T) {
	ctx := context.Background()
	hub, adm := newFederation(t, "A", "B", "C")
	a, b, c := adm[0], adm[1], adm[2]
	ua, ub, uc := a.user(), b.user(), c.user()
	room := group(t, ctx, a, ua, map[*admin]chat.Actor{b: ub, c: uc})
	hub.SetDown(b.ident.ID, true)
	for i := range 700 { // more than one pull batch
		s, u := a, ua
		if i%2 == 1 {
			s, u = c, uc
		}
		if _, err := s.send(ctx, u, room, fmt.Sprintf("m%d", i), fmt.Sprintf("m%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(texts(b.events(t, room))); n != 0 {
		t.Fatalf("B got %d messages while cut off", n)
	}
	hub.SetDown(b.ident.ID, false)
	converge(t, a, room, b)
	if lag, ok := b.chat.Lag(a.ident.ID); !ok || lag != 0 {
		t.Fatalf("B reports a lag of %d behind A after catching up", lag)
	}
}

func TestFederationSovereigntyNoEventsWithoutAMember(t *testing.T) {
	ctx := context.Background()
	_, adm := newFederation(t, "A", "B", "C")
	a, b, c := adm[0], adm[1], adm[2]
	ua, ub, uc := a.user(), b.user(), c.user()
	room := group(t, ctx, a, ua, map[*admin]chat.Actor{b: ub})
	for i := range 5 {
		if _, err := b.send(ctx, ub, room, fmt.Sprintf("s%d", i), "entre A et B"); err != nil {
			t.Fatal(err)
		}
	}
	if evs := c.events(t, room); len(evs) != 0 {
		t.Fatalf("C, with no member in the room, holds %d of its events", len(evs))
	}
	if _, err := c.tr.Call(c.ident.ID, fed.OpRoomSync, nil); err == nil {
		t.Fatal("a malformed sync was answered")
	}
	// C asks A for the room anyway: refused.
	if _, err := a.tr.Call(c.ident.ID, fed.OpRoomSync, fed.AppendSyncRequest(nil, fed.SyncRequest{Room: room})); err == nil {
		t.Fatal("the home answered a sync of a room C has no member in")
	}
	if _, err := a.send(ctx, ua, room, "inv", "avant l'invitation de C"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.do(ctx, ua, &proto.ClientFrame{T: proto.TInvite, Room: room, User: uc.User}); err != nil {
		t.Fatal(err)
	}
	nodetest.CheckFor(t, 10*time.Second, func() error {
		evs := c.events(t, room)
		if len(evs) == 0 {
			return errors.New("C holds nothing of the room its user was invited to")
		}
		if evs[0].Type != proto.EvMember || evs[0].User != uc.User {
			return fmt.Errorf("C's first event is %+v, want its user's invitation", evs[0])
		}
		return nil
	})
}

// forged builds a record of room at seq as the home would, with the given
// origin signer and order signer.
func forged(originKey, orderKey fed.Identity, o fed.Origin, seq uint64, prev fed.Hash, ev proto.Event) fed.Record {
	ev.T, ev.Room, ev.Seq, ev.From, ev.CID, ev.Type = proto.TEvent, o.Room, seq, o.Sender, o.CID, o.Type
	frame := proto.Encode(&ev)
	rec := fed.Record{Origin: o, Frame: frame, Order: fed.Order{Room: o.Room, Seq: seq, EventHash: fed.HashOf(frame), Prev: prev}}
	rec.OriginSig = fed.SignOrigin(originKey.Key, o)
	rec.OrderSig = fed.SignOrder(orderKey.Key, rec.Order)
	return rec
}

// textContent is the content hash of a text, as an origin computes it
// (chat's content: type, then body).
func textContent(body string) fed.Hash {
	b, _ := json.Marshal(body)
	return fed.HashOf([]byte(`{"type":"text","body":` + string(b) + `}`))
}

// memberContent is the content hash of a member event.
func memberContent(user, action string) fed.Hash {
	return fed.HashOf([]byte(`{"type":"member","user":"` + user + `","action":"` + action + `"}`))
}

// TestFederationHostilePeersAreRefused: each forgery is refused, logged,
// and nothing of it is stored.
func TestFederationHostilePeersAreRefused(t *testing.T) {
	ctx := context.Background()
	_, adm := newFederation(t, "A", "B", "C")
	a, b, c := adm[0], adm[1], adm[2]
	ua, ub, uc := a.user(), b.user(), c.user()
	room := group(t, ctx, a, ua, map[*admin]chat.Actor{b: ub, c: uc})
	if _, err := a.send(ctx, ua, room, "base", "base"); err != nil {
		t.Fatal(err)
	}
	converge(t, a, room, b, c)
	head := func(x *admin) (h store.FedHead) {
		x.db.View(func(tx *store.Tx) error { h, _ = tx.FedHead(room); return nil })
		return h
	}
	now := time.Now().UnixMilli()
	sendReq := func(signer fed.Identity, sender, admin string, body string) []byte {
		o := fed.Origin{Room: room, Sender: sender, Admin: fed.AdminID(admin), CID: "evil", TS: now, Type: proto.EvText, Content: textContent(body)}
		f, _ := json.Marshal(proto.ClientFrame{T: proto.TSend, ID: "evil", Room: room, Type: proto.EvText, Body: body})
		return fed.AppendSendRequest(nil, &fed.SendRequest{Origin: o, OriginSig: fed.SignOrigin(signer.Key, o), Frame: f})
	}
	h := head(c)
	for _, tc := range []struct {
		name   string
		to     *admin
		from   *admin
		op     string
		body   func() []byte
		stores *admin // whose room log must not change
		want   string // the reason of the refusal
	}{
		{"B signs a send for a user of C", a, b, fed.OpRoomSend,
			func() []byte { return sendReq(b.ident, uc.User, string(b.ident.ID), "je suis C") }, a, "a user of"},
		{"B signs a send in C's name", a, b, fed.OpRoomSend,
			func() []byte { return sendReq(b.ident, uc.User, string(c.ident.ID), "je suis C") }, a, "came over the link of"},
		{"B sends a frame other than the one signed", a, b, fed.OpRoomSend, func() []byte {
			q, _ := fed.ParseSendRequest(sendReq(b.ident, ub.User, string(b.ident.ID), "signé"))
			q.Frame, _ = json.Marshal(proto.ClientFrame{T: proto.TSend, ID: "evil", Room: room, Type: proto.EvText, Body: "autre chose"})
			return fed.AppendSendRequest(nil, &q)
		}, a, "not what the origin signed"},
		{"a replayed request from long ago", a, b, fed.OpRoomSend, func() []byte {
			o := fed.Origin{Room: room, Sender: ub.User, Admin: b.ident.ID, CID: "old", TS: now - int64(time.Hour/time.Millisecond), Type: proto.EvText, Content: textContent("vieux")}
			f, _ := json.Marshal(proto.ClientFrame{T: proto.TSend, ID: "old", Room: room, Type: proto.EvText, Body: "vieux"})
			return fed.AppendSendRequest(nil, &fed.SendRequest{Origin: o, OriginSig: fed.SignOrigin(b.ident.Key, o), Frame: f})
		}, a, "away from now"},
		{"B pushes events of A's room", c, b, fed.OpRoomEvent, func() []byte {
			o := fed.Origin{Room: room, Sender: ub.User, Admin: b.ident.ID, TS: now, Type: proto.EvText, Content: textContent("x")}
			rec := forged(b.ident, b.ident, o, h.Seq+1, h.Hash, proto.Event{Body: "x"})
			return fed.AppendBatchFrame(nil, &fed.Batch{Records: []fed.Record{rec}})
		}, c, "which it is not the home of"},
		{"the home relays an event signed by B for a user of C", c, a, fed.OpRoomEvent, func() []byte {
			o := fed.Origin{Room: room, Sender: uc.User, Admin: b.ident.ID, TS: now, Type: proto.EvText, Content: textContent("x")}
			rec := forged(b.ident, a.ident, o, h.Seq+1, h.Hash, proto.Event{Body: "x"})
			return fed.AppendBatchFrame(nil, &fed.Batch{Records: []fed.Record{rec}})
		}, c, "a user of"},
		{"the home rewrites a past sequence", c, a, fed.OpRoomEvent, func() []byte {
			o := fed.Origin{Room: room, Sender: ua.User, Admin: a.ident.ID, TS: now, Type: proto.EvText, Content: textContent("réécrit")}
			evs := c.events(t, room)
			prev := evs[len(evs)-2]
			var prevHash fed.Hash
			c.db.View(func(tx *store.Tx) error {
				raw, _ := tx.FedRecord(room, prev.Seq)
				r, _ := fed.ParseRecord(raw)
				prevHash = r.Order.EventHash
				return nil
			})
			rec := forged(a.ident, a.ident, o, h.Seq, prevHash, proto.Event{Body: "réécrit"})
			return fed.AppendBatchFrame(nil, &fed.Batch{Records: []fed.Record{rec}})
		}, c, "rewrote event"},
		{"the home breaks the chain", c, a, fed.OpRoomEvent, func() []byte {
			o := fed.Origin{Room: room, Sender: ua.User, Admin: a.ident.ID, TS: now, Type: proto.EvText, Content: textContent("x")}
			rec := forged(a.ident, a.ident, o, h.Seq+1, fed.HashOf([]byte("another history")), proto.Event{Body: "x"})
			return fed.AppendBatchFrame(nil, &fed.Batch{Records: []fed.Record{rec}})
		}, c, "does not follow"},
		{"an event from a user who is not a member", c, a, fed.OpRoomEvent, func() []byte {
			stranger := a.user()
			o := fed.Origin{Room: room, Sender: stranger.User, Admin: a.ident.ID, TS: now, Type: proto.EvText, Content: textContent("x")}
			rec := forged(a.ident, a.ident, o, h.Seq+1, h.Hash, proto.Event{Body: "x"})
			return fed.AppendBatchFrame(nil, &fed.Batch{Records: []fed.Record{rec}})
		}, c, "is not a member"},
		{"a plain member kicks", c, a, fed.OpRoomEvent, func() []byte {
			o := fed.Origin{Room: room, Sender: ub.User, Admin: b.ident.ID, TS: now, Type: proto.EvMember, Content: memberContent(uc.User, proto.ActKick)}
			rec := forged(b.ident, a.ident, o, h.Seq+1, h.Hash, proto.Event{User: uc.User, Action: proto.ActKick})
			return fed.AppendBatchFrame(nil, &fed.Batch{Records: []fed.Record{rec}})
		}, c, "may not remove"},
		{"B speaks for C's agent", a, b, fed.OpRoomEphemeral, func() []byte {
			return fed.AppendEphemeral(nil, fed.Ephemeral{Room: room, User: uc.User, Kind: fed.EphReceipt, Seq: h.Seq})
		}, a, "spoke for"},
		{"an event that says other than its origin signed", c, a, fed.OpRoomEvent, func() []byte {
			o := fed.Origin{Room: room, Sender: ub.User, Admin: b.ident.ID, TS: now, Type: proto.EvText, Content: textContent("signé")}
			rec := forged(b.ident, a.ident, o, h.Seq+1, h.Hash, proto.Event{Body: "pas signé"})
			return fed.AppendBatchFrame(nil, &fed.Batch{Records: []fed.Record{rec}})
		}, c, "not what its origin signed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := tc.stores.events(t, room)
			logged := strings.Count(tc.to.logs.String(), "federation message refused")
			_, err := tc.to.tr.Call(tc.from.ident.ID, tc.op, tc.body())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("answer %v, want a refusal saying %q", err, tc.want)
			}
			if after := tc.stores.events(t, room); len(after) != len(before) {
				t.Fatalf("%s stored %d events of a refused message", tc.stores.name, len(after)-len(before))
			}
			if strings.Count(tc.to.logs.String(), "federation message refused") == logged {
				t.Fatalf("refused without a log line: %v", err)
			}
		})
	}
	// The honest traffic still flows after all that.
	if _, err := b.send(ctx, ub, room, "after", "toujours là"); err != nil {
		t.Fatal(err)
	}
	converge(t, a, room, b, c)
}

// frameOf returns the stored event seq of a room, as this administration
// serves it.
func (a *admin) frameOf(t *testing.T, room string, seq uint64) proto.Event {
	t.Helper()
	for _, e := range a.events(t, room) {
		if e.Seq == seq {
			return e
		}
	}
	return proto.Event{}
}

// TestFederationEditsDeletesReactionsRepliesReceiptsAndRoles: what members
// homed elsewhere do to messages, read markers and memberships shows the
// same on every node.
func TestFederationEditsDeletesReactionsRepliesReceiptsAndRoles(t *testing.T) {
	ctx := context.Background()
	_, adm := newFederation(t, "A", "B", "C")
	a, b, c := adm[0], adm[1], adm[2]
	ua, ub, uc := a.user(), b.user(), c.user()
	room := group(t, ctx, a, ua, map[*admin]chat.Actor{b: ub, c: uc})
	first, err := b.send(ctx, ub, room, "t1", "première version")
	if err != nil {
		t.Fatal(err)
	}
	other, err := c.send(ctx, uc, room, "t2", "à supprimer")
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		who *admin
		u   chat.Actor
		f   proto.ClientFrame
	}{
		{a, ua, proto.ClientFrame{T: proto.TSend, ID: "r1", Room: room, Type: proto.EvText, Body: "une réponse", ReplyTo: first.Seq}},
		{b, ub, proto.ClientFrame{T: proto.TSend, ID: "e1", Room: room, Type: proto.EvEdit, Target: first.Seq, Body: "seconde version"}},
		{c, uc, proto.ClientFrame{T: proto.TSend, ID: "k1", Room: room, Type: proto.EvReact, Target: first.Seq, Key: "👍"}},
		{a, ua, proto.ClientFrame{T: proto.TSend, ID: "k2", Room: room, Type: proto.EvReact, Target: first.Seq, Key: "👍"}},
		{c, uc, proto.ClientFrame{T: proto.TSend, ID: "k3", Room: room, Type: proto.EvUnreact, Target: first.Seq, Key: "👍"}},
		{a, ua, proto.ClientFrame{T: proto.TSend, ID: "d1", Room: room, Type: proto.EvDelete, Target: other.Seq}},
		{a, ua, proto.ClientFrame{T: proto.TSetRole, Room: room, User: ub.User, Role: string(store.Moderator)}},
	}
	for _, st := range steps {
		if _, err := st.who.do(ctx, st.u, &st.f); err != nil {
			t.Fatalf("%s %s %s: %v", st.who.name, st.f.T, st.f.Type, err)
		}
	}
	converge(t, a, room, b, c)
	for _, seq := range []uint64{first.Seq, other.Seq, other.Seq + 1} {
		want := a.frameOf(t, room, seq)
		for _, r := range []*admin{b, c} {
			got := r.frameOf(t, room, seq)
			if got.Body != want.Body || got.Deleted != want.Deleted || got.ReplyTo != want.ReplyTo ||
				fmt.Sprint(got.Reactions) != fmt.Sprint(want.Reactions) || (got.Edited == 0) != (want.Edited == 0) {
				t.Errorf("%s serves event %d as %+v, the home as %+v", r.name, seq, got, want)
			}
		}
	}
	if got := a.frameOf(t, room, first.Seq); got.Body != "seconde version" || fmt.Sprint(got.Reactions) != fmt.Sprintf("map[👍:[%s]]", ua.User) {
		t.Fatalf("the home serves the edited message as %+v", got)
	}
	for _, r := range []*admin{b, c} {
		nodetest.CheckFor(t, 10*time.Second, func() error {
			var m store.Membership
			r.db.View(func(tx *store.Tx) (err error) { m, err = tx.Member(room, ub.User); return err })
			if m.Role != store.Moderator {
				return fmt.Errorf("%s has B's agent as %q", r.name, m.Role)
			}
			return nil
		})
	}

	// A receipt of B's agent reaches the home and, through it, C; typing
	// likewise.
	last := a.events(t, room)
	seq := last[len(last)-1].Seq
	if err := b.chat.MarkRead(ctx, ub, room, seq); err != nil {
		t.Fatal(err)
	}
	if err := b.chat.Typing(ub, room, true); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*admin{a, c} {
		nodetest.CheckFor(t, 10*time.Second, func() error {
			reads, err := r.chat.Receipts(chat.Actor{User: map[*admin]string{a: ua.User, c: uc.User}[r]}, room)
			if err != nil {
				return err
			}
			if reads[ub.User] != seq {
				return fmt.Errorf("%s has B's agent read up to %d, want %d", r.name, reads[ub.User], seq)
			}
			return r.bus.saw(`"t":"typing","room":"` + room + `","user":"` + ub.User + `","on":true`)
		})
	}

	// Kicked, C's agent sees its removal and nothing after it.
	if _, err := a.do(ctx, ua, &proto.ClientFrame{T: proto.TKick, Room: room, User: uc.User}); err != nil {
		t.Fatal(err)
	}
	converge(t, a, room, c)
	if _, err := a.send(ctx, ua, room, "after-kick", "sans C"); err != nil {
		t.Fatal(err)
	}
	converge(t, a, room, b)
	evs := c.events(t, room)
	kick := evs[len(evs)-1]
	if kick.Type != proto.EvMember || kick.Action != proto.ActKick || kick.User != uc.User {
		t.Fatalf("C's last event is %+v, want its agent's removal", kick)
	}
	// Nor does the home give C anything after it when asked.
	ans, err := a.tr.Call(c.ident.ID, fed.OpRoomSync, fed.AppendSyncRequest(nil, fed.SyncRequest{Room: room}))
	if err != nil {
		t.Fatal(err)
	}
	got, err := fed.ParseBatchFrame(ans)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.Records); n == 0 || got.Records[n-1].Order.Seq != kick.Seq {
		t.Fatalf("the home answers C's pull with %d records, the last not the removal at %d", n, kick.Seq)
	}
}

// TestFederationInviteByAddressRoutesToThePeer: inviting an address of a
// domain a peer serves asks that peer for its agent and invites them as
// an agent (no mail, no external account); an unknown address there is
// not found; a domain no peer serves stays an external invitation.
func TestFederationInviteByAddressRoutesToThePeer(t *testing.T) {
	ctx := context.Background()
	_, adm := newFederation(t, "A", "B")
	a, b := adm[0], adm[1]
	ua := a.user()
	bruno := store.User{ID: id.NewUser(b.db.Node()), Email: "bruno.martin@b.gouv.fr", Name: "Bruno Martin", State: store.UserActive, Created: time.Now()}
	if err := b.db.Update(ctx, func(tx *store.Tx) error { return tx.CreateUser(bruno) }); err != nil {
		t.Fatal(err)
	}
	room, err := a.chat.CreateRoom(ctx, ua, chat.CreateRoomRequest{Kind: store.Group, Name: "Adresse", Encrypted: ptr(false)})
	if err != nil {
		t.Fatal(err)
	}
	uid, outcome, err := a.chat.InviteExternal(ctx, ua, room, "Bruno.Martin@B.gouv.fr")
	if err != nil || uid != bruno.ID || outcome != proto.InvitationPeer {
		t.Fatalf("invite by address: %q %q %v, want %s invited as an agent of B", uid, outcome, err, bruno.ID)
	}
	nodetest.CheckFor(t, 10*time.Second, func() error {
		var m store.Membership
		err := b.db.View(func(tx *store.Tx) (err error) { m, err = tx.Member(room, bruno.ID); return err })
		if err != nil || m.State != store.Invited {
			return fmt.Errorf("B has its agent's membership as %+v (%v)", m, err)
		}
		return nil
	})
	if strings.Contains(a.logs.String(), "bruno.martin") {
		t.Fatal("A logged the address")
	}
	if _, _, err := a.chat.InviteExternal(ctx, ua, room, "personne@b.gouv.fr"); proto.AsError(err) == nil || proto.AsError(err).Code != proto.CodeNotFound {
		t.Fatalf("unknown address at B: %v, want not_found", err)
	}
	// No peer serves this domain: the external path (no inviter here).
	if _, _, err := a.chat.InviteExternal(ctx, ua, room, "x@ailleurs.fr"); proto.AsError(err) == nil || proto.AsError(err).Code != proto.CodeUnavailable {
		t.Fatalf("address of no peer: %v, want the external invitation's answer", err)
	}
}

// TestFederationForumsAcrossTheMesh: an agent of B finds a forum homed on
// A in the room directory, shown with A's name, joins it through the
// home and writes there; C, with no member, holds nothing of it; a peer
// listing a forum of another administration is left out.
func TestFederationForumsAcrossTheMesh(t *testing.T) {
	ctx := context.Background()
	_, adm := newFederation(t, "A", "B", "C")
	a, b, c := adm[0], adm[1], adm[2]
	ua, ub := a.user(), b.user()
	forum, err := a.chat.CreateRoom(ctx, ua, chat.CreateRoomRequest{Kind: store.Forum, Name: "Voirie partagée"})
	if err != nil {
		t.Fatal(err)
	}
	// C lists A's forum as its own: refused, not shown.
	c.tr.Handle(chat.OpForumSearch, func(context.Context, fed.AdminID, []byte) ([]byte, error) {
		return json.Marshal(map[string]any{"forums": []chat.ForumInfo{{ID: forum, Name: "Voirie partagée", Count: 1}}})
	})
	list := func() ([]chat.ForumInfo, error) { return b.chat.Forums(ub, "voirie", 20) }
	got, err := list()
	if err != nil || len(got) != 1 || got[0].ID != forum || got[0].Admin != "A" || got[0].Joined {
		t.Fatalf("B's directory of forums: %+v (%v), want A's forum once, not joined", got, err)
	}
	if !strings.Contains(b.logs.String(), "a forum not of that administration") {
		t.Fatal("B did not log C's bad listing")
	}
	if _, err := b.do(ctx, ub, &proto.ClientFrame{T: proto.TJoin, Room: forum}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.send(ctx, ub, forum, "f1", "bonjour la voirie"); err != nil {
		t.Fatal(err)
	}
	converge(t, a, forum, b)
	if got, err = list(); err != nil || len(got) != 1 || !got[0].Joined {
		t.Fatalf("after joining, B lists %+v (%v), want the forum once, joined", got, err)
	}
	if evs := c.events(t, forum); len(evs) != 0 {
		t.Fatalf("C holds %d events of a forum it has no member in", len(evs))
	}
}

// TestFederationDirectRoomIsOneOnBothSides: a DM opened by an agent of A
// with an agent of B is, on B, the DM of the two: B's agent opening a
// conversation with A's finds it, no second room.
func TestFederationDirectRoomIsOneOnBothSides(t *testing.T) {
	ctx := context.Background()
	_, adm := newFederation(t, "A", "B")
	a, b := adm[0], adm[1]
	ua, ub := a.user(), b.user()
	dm, err := a.chat.OpenDM(ctx, ua, ub.User, ptr(false))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.send(ctx, ub, dm, "d1", "bonjour"); err != nil {
		t.Fatal(err)
	}
	converge(t, a, dm, b)
	again, err := b.chat.OpenDM(ctx, ub, ua.User, ptr(false))
	if err != nil || again != dm {
		t.Fatalf("B's agent opening a DM with A's: %q (%v), want the existing %q", again, err, dm)
	}
}

// TestFederationReplicaNeverOrdersEvents: what B's node cannot carry to
// the home is refused, never appended to B's copy (which would fork it);
// a rename is carried.
func TestFederationReplicaNeverOrdersEvents(t *testing.T) {
	ctx := context.Background()
	_, adm := newFederation(t, "A", "B")
	a, b := adm[0], adm[1]
	ua, ub := a.user(), b.user()
	room := group(t, ctx, a, ua, map[*admin]chat.Actor{b: ub})
	if _, err := a.do(ctx, ua, &proto.ClientFrame{T: proto.TSetRole, Room: room, User: ub.User, Role: string(store.Owner)}); err != nil {
		t.Fatal(err)
	}
	converge(t, a, room, b)
	before := len(b.events(t, room))
	name := "  Nouveau nom "
	if err := b.chat.UpdateRoom(ctx, ub, room, chat.RoomUpdate{Name: &name}); proto.AsError(err) == nil || proto.AsError(err).Code != proto.CodeForbidden {
		t.Fatalf("a rename applied on the replica itself: %v, want forbidden", err)
	}
	if n := len(b.events(t, room)); n != before {
		t.Fatalf("B's copy grew by %d events of its own", n-before)
	}
	if _, err := b.chat.Forward(ctx, ub, &proto.ClientFrame{T: proto.TUpdateRoom, ID: "u1", Room: room, Name: &name}); err != nil {
		t.Fatal(err)
	}
	converge(t, a, room, b)
	var r store.Room
	b.db.View(func(tx *store.Tx) (err error) { r, err = tx.Room(room); return err })
	if r.Name != "Nouveau nom" {
		t.Fatalf("B has the room named %q after the home renamed it", r.Name)
	}
}

// TestFederationEncryptedRoomsFollowTheLocalDefault: people of another
// administration change nothing to a room's encryption: direct rooms and
// groups with them are end-to-end encrypted by default, as on one node,
// one may be invited into an encrypted room, and forums stay plain.
func TestFederationEncryptedRoomsFollowTheLocalDefault(t *testing.T) {
	ctx := context.Background()
	_, adm := newFederation(t, "A", "B")
	a, b := adm[0], adm[1]
	ua, ub := a.user(), b.user()
	encrypted := func(t *testing.T, room string, want bool) {
		t.Helper()
		var r store.Room
		err := a.db.View(func(tx *store.Tx) (err error) { r, err = tx.Room(room); return err })
		if err != nil || r.Encrypted != want {
			t.Fatalf("room %s: %+v %v, want encrypted=%v", room, r, err, want)
		}
	}
	dm, err := a.chat.OpenDM(ctx, ua, ub.User, nil)
	if err != nil {
		t.Fatal(err)
	}
	encrypted(t, dm, true)
	g, err := a.chat.CreateRoom(ctx, ua, chat.CreateRoomRequest{Kind: store.Group, Name: "Chiffré", Invite: []string{ub.User}})
	if err != nil {
		t.Fatal(err)
	}
	encrypted(t, g, true)
	forum, err := a.chat.CreateRoom(ctx, ua, chat.CreateRoomRequest{Kind: store.Forum, Name: "Ouvert", Encrypted: ptr(true)})
	if err != nil {
		t.Fatal(err)
	}
	encrypted(t, forum, false)
	local, err := a.chat.CreateRoom(ctx, ua, chat.CreateRoomRequest{Kind: store.Group, Name: "Interne"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.chat.Invite(ctx, ua, local, ub.User); err != nil {
		t.Fatalf("invite an agent of B into an encrypted group: %v", err)
	}
}

// TestFederationAddressLookupsAreLimitedPerPeer: a peer cannot walk this
// administration's address book through invitations by address: past
// ResolveBurst lookups it gets rate_limited, and the refusal reaches the
// inviter as such.
func TestFederationAddressLookupsAreLimitedPerPeer(t *testing.T) {
	ctx := context.Background()
	_, adm := newFederation(t, "A", "B")
	a := adm[0]
	ua := a.user()
	room, err := a.chat.CreateRoom(ctx, ua, chat.CreateRoomRequest{Kind: store.Group, Name: "Annuaire", Encrypted: ptr(false)})
	if err != nil {
		t.Fatal(err)
	}
	for i := range chat.ResolveBurst + 1 {
		_, _, err := a.chat.InviteExternal(ctx, ua, room, fmt.Sprintf("personne.%d@b.gouv.fr", i))
		code := ""
		if pe := proto.AsError(err); pe != nil {
			code = pe.Code
		}
		want := proto.CodeNotFound
		if i == chat.ResolveBurst {
			want = proto.CodeRateLimited
		}
		if code != want {
			t.Fatalf("lookup %d: %v, want %s", i, err, want)
		}
	}
}
