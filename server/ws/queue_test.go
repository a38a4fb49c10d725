package ws

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestQueueBound: frames queued for a session that is not being written
// never exceed the bound; the session is closed and its queue released
// when the bound is reached.
func TestQueueBound(t *testing.T) {
	accepted := make(chan *websocket.Conn, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Error(err)
			return
		}
		accepted <- c
	}))
	defer hs.Close()
	cc, _, err := websocket.Dial(context.Background(), strings.Replace(hs.URL, "http", "ws", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.CloseNow()
	srv := &Server{opts: Options{QueueFrames: 100, QueueBytes: 64 << 10}, ctx: context.Background(), stats: newStats()}
	srv.opts.defaults()
	srv.log = srv.opts.Logger
	s := &session{srv: srv, conn: <-accepted, sent: map[string]uint64{}, paused: true}
	s.cond.L = &s.mu
	frame := &outFrame{data: make([]byte, 1000)}
	for i := 0; i < 1000; i++ {
		s.enqueue(frame)
		s.mu.Lock()
		if s.qbytes > srv.opts.QueueBytes || len(s.queue) > srv.opts.QueueFrames {
			t.Fatalf("queue at %d frames, %d bytes: over its bound", len(s.queue), s.qbytes)
		}
		closed := s.closed
		s.mu.Unlock()
		if closed {
			if i < 60 || i > 70 {
				t.Fatalf("closed after %d frames of 1000 bytes with a 64 KiB bound", i)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.queue != nil {
				t.Fatal("queue kept after closing")
			}
			if got := srv.Stats().SlowConsumers.Load(); got != 1 {
				t.Fatalf("slow-consumer closes counted: %d, want 1", got)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, _, err := cc.Read(ctx); websocket.CloseStatus(err) != closeSlowConsumer {
				t.Fatalf("client read %v, want close 4008", err)
			}
			return
		}
	}
	t.Fatal("never closed")
}
