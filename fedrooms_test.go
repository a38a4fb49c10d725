package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"relais/cluster/leaftest"
	"relais/cluster/nodetest"
	"relais/server/client"
	"relais/server/fed"
	"relais/server/proto"
	"relais/server/store"
)

// Rooms shared across administrations, with three real relais processes:
// a ministry A and a prefecture C that listen, a town hall B that only
// dials, peered pairwise with the three commands.

type mesh struct {
	a, b, c *proc
	ids     map[*proc]fed.AdminID
	names   map[*proc][2]string // name, domain: to restart a process as it was
}

func startMesh(t *testing.T) *mesh {
	t.Helper()
	m := &mesh{ids: map[*proc]fed.AdminID{}, names: map[*proc][2]string{}}
	m.a = startAdmin(t, "Ministère A", "ministere.gouv.fr", true)
	m.b = startAdmin(t, "Mairie B", "mairie-b.fr", false)
	m.c = startAdmin(t, "Préfecture C", "prefecture-c.gouv.fr", true)
	m.names[m.a] = [2]string{"Ministère A", "ministere.gouv.fr"}
	m.names[m.b] = [2]string{"Mairie B", "mairie-b.fr"}
	m.names[m.c] = [2]string{"Préfecture C", "prefecture-c.gouv.fr"}
	for _, p := range []*proc{m.a, m.b, m.c} {
		m.ids[p] = adminOf(t, p)
	}
	peer(t, m.a, m.b)
	peer(t, m.c, m.b)
	peer(t, m.a, m.c)
	m.waitLinks(t)
	return m
}

func (m *mesh) waitLinks(t *testing.T) {
	t.Helper()
	for _, p := range []*proc{m.a, m.b, m.c} {
		for _, q := range []*proc{m.a, m.b, m.c} {
			if p != q {
				waitLink(t, p, m.ids[q], fed.LinkUp, 30*time.Second)
			}
		}
	}
}

// restart starts p's administration again on its data directory, with its
// link listener (if any) on the address it had, which the peers pinned.
func (m *mesh) restart(t *testing.T, p *proc) *proc {
	t.Helper()
	nd := m.names[p]
	args := []string{"--name", nd[0], "--allowed-domains", nd[1], "--rate-limits", "off", "--federation", "on"}
	if p != m.b {
		args = append(args, "--federation-listen", leafEndpoint(t, p))
	}
	q := startProc(t, p.data, args...)
	m.ids[q], m.names[q] = m.ids[p], nd
	switch p {
	case m.a:
		m.a = q
	case m.b:
		m.b = q
	case m.c:
		m.c = q
	}
	return q
}

// user is an agent signed in on its node, with a synced connection.
type user struct {
	id    string
	email string
	conn  *client.Conn
}

func newAgent(t *testing.T, p *proc, email, name string) *user {
	t.Helper()
	c := agent(t, p, email, name)
	conn := nodetest.Synced(t, context.Background(), c)
	return &user{id: conn.Hello.User.ID, email: email, conn: conn}
}

// redial signs u in again on its restarted node (at a new address).
func (u *user) redial(t *testing.T, p *proc) {
	t.Helper()
	c := client.New(p.url)
	if err := c.Login(context.Background(), u.email, "Velours-Cuivre-42"); err != nil {
		t.Fatalf("login %s again: %v", u.email, err)
	}
	u.conn = nodetest.Synced(t, context.Background(), c)
}

// texts returns the text messages of a room as u's node serves them, in
// order, as "seq:body".
func (u *user) texts(t *testing.T, room string) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []string
	var after uint64
	for {
		var page struct {
			Events []proto.Event `json:"events"`
		}
		if err := u.conn.Call(ctx, proto.THistory, map[string]any{"room": room, "after": after, "limit": proto.MaxPage}, &page); err != nil {
			return nil, err
		}
		for _, e := range page.Events {
			if e.Type == proto.EvText {
				out = append(out, fmt.Sprintf("%d:%s", e.Seq, e.Body))
			}
			after = e.Seq
		}
		if len(page.Events) < proto.MaxPage {
			return out, nil
		}
	}
}

// sameAs waits until u's node serves the room's texts exactly as want.
func (u *user) sameAs(t *testing.T, room string, want []string, within time.Duration) {
	t.Helper()
	nodetest.CheckFor(t, within, func() error {
		got, err := u.texts(t, room)
		if err != nil {
			return err
		}
		if !slices.Equal(got, want) {
			return fmt.Errorf("%d messages %v…, want %d %v…", len(got), head(got), len(want), head(want))
		}
		return nil
	})
}

func head(s []string) []string { return s[:min(len(s), 5)] }

// join makes u join (accept the invitation to) a room homed elsewhere.
func (u *user) join(t *testing.T, room string) {
	t.Helper()
	nodetest.CheckFor(t, 20*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return u.conn.Call(ctx, proto.TJoin, map[string]any{"room": room}, nil)
	})
}

// sharedGroup makes a group homed at owner's node with the others invited
// and joined through their own nodes.
func sharedGroup(t *testing.T, owner *user, others ...*user) string {
	t.Helper()
	var ids []string
	for _, o := range others {
		ids = append(ids, o.id)
	}
	room := nodetest.CreateRoom(t, context.Background(), owner.conn, map[string]any{
		"kind": "group", "name": "Inter-administrations", "encrypted": false, "users": ids})
	for _, o := range others {
		o.join(t, room)
	}
	return room
}

// sendAll sends n texts from u, each acked, and returns the acked ones.
func (u *user) sendAll(t *testing.T, room, prefix string, n int) []proto.Ack {
	t.Helper()
	var acks []proto.Ack
	for i := range n {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		ack, err := u.conn.Send(ctx, fmt.Sprintf("%s-%d", prefix, i), room, fmt.Sprintf("%s %d", prefix, i))
		cancel()
		if err != nil {
			t.Fatalf("send %s %d: %v", prefix, i, err)
		}
		acks = append(acks, ack)
	}
	return acks
}

// group signs in an agent on each node and makes a group homed on A with
// the three of them.
func (m *mesh) group(t *testing.T) (helene, bruno, chloe *user, room string) {
	t.Helper()
	helene = newAgent(t, m.a, "helene.dupont@ministere.gouv.fr", "Hélène Dupont")
	bruno = newAgent(t, m.b, "bruno.martin@mairie-b.fr", "Bruno Martin")
	chloe = newAgent(t, m.c, "chloe.petit@prefecture-c.gouv.fr", "Chloé Petit")
	return helene, bruno, chloe, sharedGroup(t, helene, bruno, chloe)
}

// TestFederationRoomsAcrossThreeRealAdministrations: agents homed on A, B
// and C share a group homed on A and DMs; every node serves the group's
// messages in A's order; a DM between A and B leaves nothing on C's disk.
func TestFederationRoomsAcrossThreeRealAdministrations(t *testing.T) {
	m := startMesh(t)
	helene, bruno, chloe, room := m.group(t)

	var wg sync.WaitGroup
	for _, s := range []struct {
		u    *user
		name string
	}{{helene, "A"}, {bruno, "B"}, {chloe, "C"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 15 {
				ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				_, err := s.u.conn.Send(ctx, fmt.Sprintf("%s-%d", s.name, i), room, fmt.Sprintf("%s %d", s.name, i))
				cancel()
				if err != nil {
					t.Errorf("%s send %d: %v", s.name, i, err)
				}
			}
		}()
	}
	wg.Wait()
	home, err := helene.texts(t, room)
	if err != nil || len(home) != 45 {
		t.Fatalf("home serves %d messages (%v), want 45", len(home), err)
	}
	bruno.sameAs(t, room, home, 20*time.Second)
	chloe.sameAs(t, room, home, 20*time.Second)

	// A DM homed on B, with an agent of A.
	var dm struct{ Room string }
	if err := bruno.conn.Call(context.Background(), proto.TOpenDM, map[string]any{"user": helene.id, "encrypted": false}, &dm); err != nil {
		t.Fatal(err)
	}
	bruno.sendAll(t, dm.Room, "dm-b", 3)
	helene.sendAll(t, dm.Room, "dm-a", 3)
	want, err := bruno.texts(t, dm.Room)
	if err != nil || len(want) != 6 {
		t.Fatalf("the DM's home serves %v (%v), want 6 messages", want, err)
	}
	helene.sameAs(t, dm.Room, want, 20*time.Second)

	// Sovereignty: C has no member in the DM, and holds nothing of it.
	m.c.cmd.Process.Signal(syscall.SIGTERM)
	m.c.cmd.Wait()
	db, err := store.Open(filepath.Join(m.c.data, "relais.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.View(func(tx *store.Tx) error {
		if _, err := tx.Room(dm.Room); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("C's store has the DM of A and B: %v", err)
		}
		if _, ok := tx.FedHead(dm.Room); ok {
			return errors.New("C's store has a chain of the DM of A and B")
		}
		var n int
		tx.Events(room, 0, false, func(store.Event) bool { n++; return true })
		if n == 0 {
			return errors.New("C's store does not hold the group it has a member in")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestFederationSurvivesKillAndStopOfNodes: kill -9 of a member's node
// while the others send, SIGSTOP of the home (home_unreachable, never a
// false ack), kill -9 of the home right after an ack: in every case every
// node ends with every acknowledged message, once, in the home's order.
func TestFederationSurvivesKillAndStopOfNodes(t *testing.T) {
	m := startMesh(t)
	helene, bruno, chloe, room := m.group(t)

	// kill -9 of B while A and C keep sending.
	m.b.cmd.Process.Signal(syscall.SIGKILL)
	m.b.cmd.Wait()
	helene.sendAll(t, room, "pendant-a", 40)
	chloe.sendAll(t, room, "pendant-c", 40)
	bruno.redial(t, m.restart(t, m.b))
	home, _ := helene.texts(t, room)
	if len(home) != 80 {
		t.Fatalf("home serves %d messages, want 80", len(home))
	}
	bruno.sameAs(t, room, home, 40*time.Second)
	chloe.sameAs(t, room, home, 20*time.Second)

	// SIGSTOP of the home: B's agent is told home_unreachable, and
	// nothing is acked that A did not commit.
	m.waitLinks(t)
	m.a.cmd.Process.Signal(syscall.SIGSTOP)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	_, err := bruno.conn.Send(ctx, "pendant-arret", room, "pendant l'arrêt")
	cancel()
	var pe *client.Error
	if !errors.As(err, &pe) || pe.Code != proto.CodeHomeUnreachable {
		m.a.cmd.Process.Signal(syscall.SIGCONT)
		t.Fatalf("send while the home is stopped: %v, want %s", err, proto.CodeHomeUnreachable)
	}
	m.a.cmd.Process.Signal(syscall.SIGCONT)
	// The client retries with the same id once the home is back.
	var ack proto.Ack
	nodetest.CheckFor(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ack, err = bruno.conn.Send(ctx, "pendant-arret", room, "pendant l'arrêt")
		return err
	})
	home, _ = helene.texts(t, room)
	if len(home) != 81 || home[80] != fmt.Sprintf("%d:pendant l'arrêt", ack.Seq) {
		t.Fatalf("home serves %d messages ending %v, want 81 ending with seq %d", len(home), home[len(home)-1:], ack.Seq)
	}
	bruno.sameAs(t, room, home, 20*time.Second)
	chloe.sameAs(t, room, home, 20*time.Second)

	// kill -9 of the home right after it acked.
	last := bruno.sendAll(t, room, "juste-avant", 1)[0]
	m.a.cmd.Process.Signal(syscall.SIGKILL)
	m.a.cmd.Wait()
	helene.redial(t, m.restart(t, m.a))
	m.waitLinks(t)
	home, _ = helene.texts(t, room)
	if len(home) != 82 || home[81] != fmt.Sprintf("%d:juste-avant 0", last.Seq) {
		t.Fatalf("after kill -9 the home serves %d messages ending %v, want the acked seq %d", len(home), home[len(home)-1:], last.Seq)
	}
	bruno.sameAs(t, room, home, 20*time.Second)
	chloe.sameAs(t, room, home, 20*time.Second)
}

// TestFederationRefusesForgedEventsOverTheRealLink: B's node (which only
// dials, so a raw leaf client with its keys can stand in for it) is
// replaced by one that asks A to post in A's group as C's agent, then, as
// the home of a group of its own, pushes C a rewritten past event and an
// event off the chain. Each is refused, logged, and nothing is stored.
func TestFederationRefusesForgedEventsOverTheRealLink(t *testing.T) {
	m := startMesh(t)
	helene, bruno, chloe, room := m.group(t)
	helene.sendAll(t, room, "vrai", 2)
	want, _ := helene.texts(t, room)
	chloe.sameAs(t, room, want, 20*time.Second)
	roomB := sharedGroup(t, bruno, helene, chloe)
	bruno.sendAll(t, roomB, "chez-b", 2)
	wantB, _ := bruno.texts(t, roomB)
	chloe.sameAs(t, roomB, wantB, 20*time.Second)
	aid, bid, cid := m.ids[m.a], m.ids[m.b], m.ids[m.c]

	m.b.cmd.Process.Signal(syscall.SIGKILL)
	m.b.cmd.Wait()
	waitLink(t, m.a, bid, fed.LinkDown, 20*time.Second)
	waitLink(t, m.c, bid, fed.LinkDown, 20*time.Second)
	keyB, err := fed.LoadKey(m.b.data)
	if err != nil {
		t.Fatal(err)
	}

	// B signs a send for a user of C.
	o := fed.Origin{Room: room, Sender: chloe.id, Admin: bid, CID: "forge-1", TS: time.Now().UnixMilli(), Type: proto.EvText, Content: textHash("je suis Chloé")}
	frame, _ := json.Marshal(map[string]any{"t": "send", "id": "forge-1", "room": room, "type": "text", "body": "je suis Chloé"})
	forged := fed.AppendSendRequest(nil, &fed.SendRequest{Origin: o, OriginSig: fed.SignOrigin(keyB, o), Frame: frame})
	asB := rawPeer(t, m.a, m.b, bid)
	asB.Publish("fed."+string(aid)+".req."+fed.OpRoomSend, "_INBOX_"+string(bid)+".forge", forged)
	if _, err := asB.Next(10 * time.Second); err != nil {
		t.Fatalf("A did not answer the forged send: %v", err)
	}
	refused(t, m.a, "signed for "+chloe.id)
	helene.sameAs(t, room, want, time.Second)

	// B, as a hostile home, rewrites a past event and breaks the chain.
	db, err := store.Open(filepath.Join(m.b.data, "relais.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var head store.FedHead
	var prevOfHead fed.Hash
	db.View(func(tx *store.Tx) error {
		head, _ = tx.FedHead(roomB)
		raw, _ := tx.FedRecord(roomB, head.Seq-1)
		r, _ := fed.ParseRecord(raw)
		prevOfHead = r.Order.EventHash
		return nil
	})
	db.Close()
	record := func(seq uint64, prev fed.Hash, body string) []byte {
		o := fed.Origin{Room: roomB, Sender: bruno.id, Admin: bid, TS: time.Now().UnixMilli(), Type: proto.EvText, Content: textHash(body)}
		fr := proto.Encode(&proto.Event{T: proto.TEvent, Room: roomB, Seq: seq, TS: o.TS, From: bruno.id, Type: proto.EvText, Body: body})
		r := fed.Record{Origin: o, OriginSig: fed.SignOrigin(keyB, o), Frame: fr,
			Order: fed.Order{Room: roomB, Seq: seq, EventHash: fed.HashOf(fr), Prev: prev}}
		r.OrderSig = fed.SignOrder(keyB, r.Order)
		return fed.AppendBatchFrame(nil, &fed.Batch{Records: []fed.Record{r}})
	}
	toC := rawPeer(t, m.c, m.b, bid)
	toC.Publish("fed."+string(cid)+".push."+fed.OpRoomEvent, "", record(head.Seq, prevOfHead, "réécrit"))
	refused(t, m.c, "rewrote event")
	toC.Publish("fed."+string(cid)+".push."+fed.OpRoomEvent, "", record(head.Seq+1, fed.HashOf([]byte("une autre histoire")), "hors chaîne"))
	refused(t, m.c, "does not follow")
	chloe.sameAs(t, roomB, wantB, time.Second)
}

// rawPeer dials to's link listener as the (stopped) node of peer.
func rawPeer(t *testing.T, to, peer *proc, id fed.AdminID) *leaftest.RawLeaf {
	t.Helper()
	var raw *leaftest.RawLeaf
	nodetest.CheckFor(t, 20*time.Second, func() error {
		var err error
		raw, err = leaftest.DialRaw(leafEndpoint(t, to), peer.data)
		return err
	})
	t.Cleanup(func() { raw.Close() })
	raw.Subscribe("_INBOX_" + string(id) + ".>")
	return raw
}

// refused waits for p to log that it refused a federation message for
// the given reason.
func refused(t *testing.T, p *proc, reason string) {
	t.Helper()
	re := regexp.MustCompile(`msg="federation message refused"[^\n]*` + regexp.QuoteMeta(reason))
	nodetest.CheckFor(t, 10*time.Second, func() error {
		if !re.MatchString(p.logs.String()) {
			return fmt.Errorf("no log of a refusal saying %q", reason)
		}
		return nil
	})
}

// textHash is the content hash a node signs for a text (server/chat:
// type, then body).
func textHash(body string) fed.Hash {
	b, _ := json.Marshal(body)
	return fed.HashOf([]byte(`{"type":"text","body":` + string(b) + `}`))
}
