package ws

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestGatheredMessagesKeepTheStream sends messages of every size a
// session writes (within the connection's buffer, gathered, and past
// maxGather) while both sides ping each other, so that the library's
// control frames are written during gathered messages: the client must
// read every message whole and in order, and every ping must be answered.
func TestGatheredMessagesKeepTheStream(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ts, accepted := acceptServer(t)
	client, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.CloseNow()
	client.SetReadLimit(1 << 20)
	a := <-accepted
	defer a.conn.CloseNow()
	s := &session{conn: a.conn, out: a.out}
	serverCtx := a.conn.CloseRead(ctx) // answers the client's pings

	sizes := []int{10, writeBuffer - frameHeader, writeBuffer, 3 * writeBuffer, 20 << 10, maxGather, maxGather + 1, 200 << 10}
	const rounds = 40
	var msgs [][]byte
	for r := range rounds {
		for i, n := range sizes {
			prefix := fmt.Sprintf("%d/%d:", r, i)
			msgs = append(msgs, append([]byte(prefix), bytes.Repeat([]byte{byte('a' + (r+i)%26)}, max(n-len(prefix), 0))...))
		}
	}

	var wg sync.WaitGroup
	done := make(chan struct{})
	pinger := func(c *websocket.Conn) {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			if err := c.Ping(ctx); err != nil {
				t.Errorf("ping: %v", err)
				return
			}
		}
	}
	wg.Add(3)
	go pinger(a.conn)
	go pinger(client)
	go func() {
		defer wg.Done()
		for _, m := range msgs {
			if err := s.writeMessage(ctx, m); err != nil {
				t.Errorf("write: %v", err)
				return
			}
		}
	}()
	for i, want := range msgs {
		_, got, err := client.Read(ctx)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("message %d: got %d bytes starting %.20q, want %d bytes starting %.20q", i, len(got), got, len(want), want)
		}
	}
	close(done)
	// The pingers' last pings need both readers running.
	go client.Read(ctx)
	wg.Wait()
	if serverCtx.Err() != nil {
		t.Fatalf("server side ended: %v", context.Cause(serverCtx))
	}
}

// accepted is a server side of a websocket, as ServeHTTP sets it up.
type accepted struct {
	conn *websocket.Conn
	out  *socket
}

// acceptServer is an HTTP server that accepts websockets as ServeHTTP
// does and hands them over.
func acceptServer(t testing.TB) (*httptest.Server, <-chan accepted) {
	ch := make(chan accepted)
	ts := httptest.NewServer(acceptHandler(t, ch))
	t.Cleanup(ts.Close)
	return ts, ch
}

// acceptHandler accepts websockets as the endpoint does and hands them
// to ch.
func acceptHandler(t testing.TB, ch chan<- accepted) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sb := &smallBuffers{ResponseWriter: w}
		c, err := websocket.Accept(sb, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		ch <- accepted{c, sb.out}
	})
}

// TestAwaitInput: the reader's shallow wait returns for a frame that came
// in the same packet as the upgrade request (net/http read it already),
// for a frame sent later, and for a closed connection; and the library
// then reads the frame.
func TestAwaitInput(t *testing.T) {
	ts, accepted := acceptServer(t)
	addr := ts.Listener.Addr().String()
	// A masked text frame "hi" from a client.
	frame := []byte{0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2}
	upgrade := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	for _, tc := range []struct {
		name  string
		early bool // the frame goes with the request
		later bool // the frame goes once the connection is accepted
		close bool // the client closes instead
	}{
		{name: "frame with the upgrade request", early: true},
		{name: "frame sent later", later: true},
		{name: "connection closed", close: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			req := []byte(upgrade)
			if tc.early {
				req = append(req, frame...)
			}
			if _, err := c.Write(req); err != nil {
				t.Fatal(err)
			}
			a := <-accepted
			defer a.conn.CloseNow()
			if a.out.raw == nil && !tc.early {
				t.Fatal("a plain TCP connection has no raw socket: the wait is never shallow")
			}
			waited := make(chan struct{})
			go func() { a.out.awaitInput(); close(waited) }()
			if !tc.early {
				select {
				case <-waited:
					t.Fatal("awaitInput returned with nothing sent")
				case <-time.After(100 * time.Millisecond):
				}
				if tc.close {
					c.Close()
				} else if _, err := c.Write(frame); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case <-waited:
			case <-time.After(5 * time.Second):
				t.Fatal("awaitInput is still waiting")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, b, err := a.conn.Read(ctx)
			switch {
			case tc.close && err == nil:
				t.Fatalf("read %q from a closed connection", b)
			case !tc.close && (err != nil || string(b) != "hi"):
				t.Fatalf("read %q, %v; want hi", b, err)
			}
		})
	}
}
