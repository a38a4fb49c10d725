package ws_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/client"
	"relais/server/proto"
)

// peer is a signed-in user with a resilient session that records every
// frame it receives.
type peer struct {
	t  testing.TB
	c  *client.Client
	s  *client.Session
	mu sync.Mutex
	fs []client.Frame
}

func newPeer(t testing.TB, n *nodetest.Node, name string) *peer {
	t.Helper()
	return connect(t, n.NewUser(name))
}

// newPeerFor wraps a signed-in client without connecting it.
func newPeerFor(t testing.TB, c *client.Client) *peer {
	p := &peer{t: t, c: c}
	p.s = c.NewSession(nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return p
}

func connect(t testing.TB, c *client.Client) *peer {
	t.Helper()
	p := &peer{t: t, c: c}
	p.s = c.NewSession(func(f client.Frame) {
		p.mu.Lock()
		p.fs = append(p.fs, f)
		p.mu.Unlock()
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if _, err := p.s.Wait(wctx); err != nil {
		t.Fatalf("%s: connect: %v", c.Me.Name, err)
	}
	return p
}

func (p *peer) id() string { return p.c.Me.ID }

// conn returns the peer's current connection.
func (p *peer) conn() *client.Conn {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := p.s.Wait(ctx)
	if err != nil {
		p.t.Fatalf("%s: not connected: %v", p.c.Me.Name, err)
	}
	return c
}

// call makes a request and fails the test on error.
func (p *peer) call(t string, fields map[string]any, out any) {
	p.t.Helper()
	if err := p.try(t, fields, out); err != nil {
		p.t.Fatalf("%s: %s %v: %v", p.c.Me.Name, t, fields, err)
	}
}

// try makes a request and returns its error.
func (p *peer) try(t string, fields map[string]any, out any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return p.conn().Call(ctx, t, fields, out)
}

// code returns the protocol error code of a request ("" on success).
func (p *peer) code(t string, fields map[string]any) string {
	p.t.Helper()
	err := p.try(t, fields, nil)
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Code
	}
	if err != nil {
		p.t.Fatalf("%s: %s: %v", p.c.Me.Name, t, err)
	}
	return ""
}

func (p *peer) send(room, body string) proto.Ack {
	p.t.Helper()
	ack, err := p.sendEv(map[string]any{"room": room, "type": "text", "body": body})
	if err != nil {
		p.t.Fatalf("%s: send: %v", p.c.Me.Name, err)
	}
	return ack
}

func (p *peer) sendEv(fields map[string]any) (proto.Ack, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	frame := map[string]any{"t": "send", "id": p.s.NewID()}
	for k, v := range fields {
		frame[k] = v
	}
	return p.conn().SendEvent(ctx, frame)
}

func (p *peer) sendCode(fields map[string]any) string {
	p.t.Helper()
	_, err := p.sendEv(fields)
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Code
	}
	if err != nil {
		p.t.Fatalf("send: %v", err)
	}
	return ""
}

// waitFrame waits until the peer has received a frame matching pred and
// returns it.
func (p *peer) waitFrame(what string, pred func(client.Frame) bool) client.Frame {
	p.t.Helper()
	var got client.Frame
	nodetest.CheckFor(p.t, 10*time.Second, func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, f := range p.fs {
			if pred(f) {
				got = f
				return nil
			}
		}
		return fmt.Errorf("%s never received %s: %d frames, none matching", p.c.Me.Name, what, len(p.fs))
	})
	return got
}

// events returns the room events the peer received for a room.
func (p *peer) events(room string) []client.Frame {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []client.Frame
	for _, f := range p.fs {
		if f.T == proto.TEvent && f.Room == room {
			out = append(out, f)
		}
	}
	return out
}

func (p *peer) has(pred func(client.Frame) bool) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.fs {
		if pred(f) {
			return true
		}
	}
	return false
}

func roomOf(t testing.TB, data map[string]string) string {
	t.Helper()
	r := data["room"]
	if r == "" {
		t.Fatalf("no room in %v", data)
	}
	return r
}

func decodeRaw(t testing.TB, f client.Frame, v any) {
	t.Helper()
	if err := json.Unmarshal(f.Raw, v); err != nil {
		t.Fatal(err)
	}
}
