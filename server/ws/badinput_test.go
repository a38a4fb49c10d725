package ws_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"relais/cluster/nodetest"
	"relais/server/client"
	"relais/server/config"
	"relais/server/node"
	"relais/server/proto"
	"relais/server/ws"
)

// TestBadFrames: each bad frame gets an error frame with a stable code and
// its id, changes nothing, and the connection goes on.
func TestBadFrames(t *testing.T) {
	n := nodetest.Start(t)
	alice := newPeer(t, n, "Alice Bad")
	bob := newPeer(t, n, "Bob Bad")
	var res map[string]string
	alice.call("create_room", map[string]any{"kind": "group", "name": "Privé", "encrypted": false}, &res)
	room := roomOf(t, res)
	m := alice.send(room, "original")
	bob.call("open_dm", map[string]any{"user": alice.id(), "encrypted": false}, &res)
	dm := roomOf(t, res)
	bm := bob.send(dm, "de bob")
	bob.call("create_room", map[string]any{"kind": "group", "name": "À Bob", "encrypted": false}, &res)
	bobs := roomOf(t, res)

	raw := alice.conn()
	cases := []struct {
		name  string
		frame string
		code  string
	}{
		{"not JSON", `{"t":"send",`, proto.CodeBadFrame},
		{"not an object", `[1,2]`, proto.CodeBadFrame},
		{"no type", `{"id":"a1"}`, proto.CodeBadFrame},
		{"unknown type", `{"t":"teleport","id":"a2"}`, proto.CodeUnknownType},
		{"unknown field", `{"t":"ping","id":"a3","evil":1}`, proto.CodeBadFrame},
		{"send without id", `{"t":"send","room":"` + room + `","type":"text","body":"x"}`, proto.CodeBadRequest},
		{"send without room", `{"t":"send","id":"a4","type":"text","body":"x"}`, proto.CodeBadRequest},
		{"empty body", `{"t":"send","id":"a5","room":"` + room + `","type":"text","body":"  "}`, proto.CodeBadRequest},
		{"body too large", `{"t":"send","id":"a6","room":"` + room + `","type":"text","body":"` + strings.Repeat("x", proto.MaxBody+1) + `"}`, proto.CodeTooLarge},
		{"unknown event type", `{"t":"send","id":"a7","room":"` + room + `","type":"poll","body":"x"}`, proto.CodeUnknownType},
		{"room not joined", `{"t":"send","id":"a8","room":"` + bobs + `","type":"text","body":"x"}`, proto.CodeNotFound},
		{"edit someone else's", `{"t":"send","id":"a9","room":"` + dm + `","type":"edit","target":` + fmt.Sprint(bm.Seq) + `,"body":"x"}`, proto.CodeForbidden},
		{"edit missing target", `{"t":"send","id":"a10","room":"` + room + `","type":"edit","target":999,"body":"x"}`, proto.CodeNotFound},
		{"react without key", `{"t":"send","id":"a11","room":"` + room + `","type":"react","target":` + fmt.Sprint(m.Seq) + `}`, proto.CodeBadRequest},
		{"encrypted in a plain room", `{"t":"send","id":"a12","room":"` + room + `","type":"encrypted","data":"AAAA"}`, proto.CodeBadRequest},
		{"invalid room id", `{"t":"history","id":"a13","room":"../../etc"}`, proto.CodeBadRequest},
		{"history both ways", `{"t":"history","id":"a14","room":"` + room + `","before":3,"after":1}`, proto.CodeBadRequest},
		{"id too long", `{"t":"ping","id":"` + strings.Repeat("i", 65) + `"}`, proto.CodeBadFrame},
		{"control characters in a name", `{"t":"create_room","id":"a15","kind":"group","name":"a\u0000b"}`, proto.CodeNameInvalid},
		{"wrong field type", `{"t":"read","room":"` + room + `","seq":"many"}`, proto.CodeBadFrame},
		{"frame over 1 MiB", `{"t":"ping","id":"big","pad":"` + strings.Repeat("x", proto.MaxFrame) + `"}`, proto.CodeTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var want map[string]any
			json.Unmarshal([]byte(c.frame), &want)
			id, _ := want["id"].(string)
			if len(id) > proto.MaxClientID || len(c.frame) > proto.MaxFrame {
				id = "" // not read: the frame is refused before decoding
			}
			before := alice.count()
			if err := raw.WriteRaw(context.Background(), []byte(c.frame)); err != nil {
				t.Fatal(err)
			}
			f := alice.waitFrameAfter(before, "the error", func(f client.Frame) bool { return f.T == proto.TError })
			if f.Code != c.code || f.ID != id || f.Message == "" {
				t.Fatalf("got %s", f.Raw)
			}
		})
	}
	// Nothing changed: the room holds what it held, the connection works.
	var page struct {
		Events []proto.Event `json:"events"`
	}
	alice.call("history", map[string]any{"room": room}, &page)
	last := page.Events[len(page.Events)-1]
	if last.Seq != m.Seq || last.Body != "original" {
		t.Fatalf("bad frames changed the room: last event %+v", last)
	}
}

func (p *peer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.fs)
}

func (p *peer) waitFrameAfter(after int, what string, pred func(client.Frame) bool) client.Frame {
	p.t.Helper()
	var got client.Frame
	nodetest.CheckFor(p.t, 10*time.Second, func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, f := range p.fs[after:] {
			if pred(f) {
				got = f
				return nil
			}
		}
		return fmt.Errorf("%s never received %s: %d frames after the first %d, none matching", p.c.Me.Name, what, len(p.fs)-after, after)
	})
	return got
}

func TestFloodOfRefusedFramesCloses(t *testing.T) {
	n := nodetest.Start(t)
	c := n.NewUser("Flood Er")
	conn, err := c.Dial(context.Background(), 1024)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range conn.Frames() {
		}
	}()
	for i := 0; i < 200; i++ {
		if conn.Write(context.Background(), json.RawMessage(`{"t":"nope"}`)) != nil {
			break
		}
	}
	nodetest.ClosedWith(t, conn, 4029, 10*time.Second, "a connection flooding refused frames")
}

func TestSendRateLimit(t *testing.T) {
	n := nodetest.Start(t, nodetest.WithConfig(func(c *config.Config) { c.RateLimits = true }))
	a := newPeer(t, n, "Rapide Expéditeur")
	b := newPeer(t, n, "Destinataire")
	var res map[string]string
	a.call("open_dm", map[string]any{"user": b.id(), "encrypted": false}, &res)
	room := roomOf(t, res)
	limited := false
	for i := range 100 {
		if code := a.sendCode(map[string]any{"room": room, "type": "text", "body": fmt.Sprint(i)}); code == proto.CodeRateLimited {
			limited = true
			break
		}
	}
	if !limited {
		t.Fatal("100 sends in a burst were not rate limited")
	}
}

// TestSlowConsumer: a client that does not read is disconnected once its
// bounded queue is full; the node's memory for it never exceeds the bound,
// and everyone else keeps receiving.
func TestSlowConsumer(t *testing.T) {
	const queueBytes = 256 << 10
	n := nodetest.Start(t, nodetest.WithOptions(func(o *node.Options) {
		o.WS = ws.Options{QueueFrames: 64, QueueBytes: queueBytes}
	}))
	sender := newPeer(t, n, "Bavard")
	reader := newPeer(t, n, "Lecteur")
	slowC := n.NewUser("Lent")
	var res map[string]string
	sender.call("create_room", map[string]any{"kind": "forum", "name": "Annonces"}, &res)
	room := roomOf(t, res)
	reader.call("join", map[string]any{"room": room}, nil)
	// The slow client joins, syncs, then never reads again; a tiny socket
	// buffer makes the node's writes block quickly.
	ctx := context.Background()
	if err := newPeerFor(t, slowC).try(proto.TJoin, map[string]any{"room": room}, nil); err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+slowC.Token())
	dialer := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		c.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return nil
	}}
	slow, _, err := websocket.Dial(ctx, strings.Replace(n.URL(), "http", "ws", 1)+"/api/v1/ws", &websocket.DialOptions{
		HTTPHeader: h, HTTPClient: &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}})
	if err != nil {
		t.Fatal(err)
	}
	defer slow.CloseNow()
	if _, _, err := slow.Read(ctx); err != nil { // hello
		t.Fatal(err)
	}
	if err := slow.Write(ctx, websocket.MessageText, []byte(`{"t":"sync","id":"s"}`)); err != nil {
		t.Fatal(err)
	}
	sessions := n.WS.Sessions()
	// 10 MB go to the room, far more than socket buffers and the queue
	// bound hold. (That the queue never exceeds its bound is checked by
	// TestQueueBound inside the package.)
	body := strings.Repeat("x", 10000)
	var last uint64
	for i := 0; i < 1000; i++ {
		last = sender.send(room, fmt.Sprintf("%d %s", i, body)).Seq
	}
	nodetest.CheckFor(t, 20*time.Second, func() error {
		if got := n.WS.Sessions(); got != sessions-1 {
			return fmt.Errorf("slow consumer still connected: %d sessions, want %d", got, sessions-1)
		}
		return nil
	})
	if got := n.WS.Stats().SlowConsumers.Load(); got != 1 {
		t.Errorf("slow-consumer closes counted: %d, want 1", got)
	}
	reader.waitFrame("the last message", func(f client.Frame) bool { return f.Room == room && f.Seq == last })
	// Reading now, the slow client finds the close: 4008, resync.
	for {
		if _, _, err := slow.Read(ctx); err != nil {
			if s := websocket.CloseStatus(err); s != 4008 {
				t.Logf("slow consumer's connection ended with %v (close frame not reached before the socket closed)", err)
			}
			break
		}
	}
}
