package client

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	"relais/server/proto"
)

// Session keeps a device connected: it reconnects after a failure, resumes
// from its cursors, fills gaps from history, and delivers every event of
// every room exactly once and in room order. Sends are retried across
// reconnects with the same id, so each creates exactly one event.
type Session struct {
	c *Client
	// OnFrame receives every room event (deduplicated, in order) and every
	// other frame but the protocol's own answers. It runs on the
	// session's goroutine: it must not block for long.
	OnFrame func(Frame)
	// Backoff is the pause between reconnection attempts.
	Backoff time.Duration

	mu      sync.Mutex
	cursors map[string]uint64
	conn    *Conn
	ready   chan struct{} // closed when a connection is synced; replaced on disconnect
	ids     int
	prefix  string
}

// NewSession returns a session of the signed-in client.
func (c *Client) NewSession(onFrame func(Frame)) *Session {
	return &Session{c: c, OnFrame: onFrame, Backoff: 100 * time.Millisecond, cursors: map[string]uint64{},
		ready: make(chan struct{}), prefix: strconv.FormatInt(time.Now().UnixNano(), 36) + "-"}
}

// Cursor returns the last event seq delivered for a room.
func (s *Session) Cursor(room string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cursors[room]
}

// Run connects and stays connected until ctx ends.
func (s *Session) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		err := s.once(ctx)
		s.mu.Lock()
		s.conn = nil
		select {
		case <-s.ready:
			s.ready = make(chan struct{})
		default:
		}
		s.mu.Unlock()
		if ctx.Err() != nil {
			break
		}
		var ce *Error
		if errors.As(err, &ce) && (ce.Status == 401 || ce.Code == proto.CodeUnauthorized) {
			return err
		}
		select {
		case <-ctx.Done():
		case <-time.After(s.Backoff):
		}
	}
	return ctx.Err()
}

func (s *Session) once(ctx context.Context) error {
	conn, err := s.c.Dial(ctx, 4096)
	if err != nil {
		return err
	}
	defer conn.CloseNow()
	go func() {
		select {
		case <-ctx.Done():
			conn.Close()
		case <-conn.Done():
		}
	}()
	s.mu.Lock()
	cursors := make(map[string]uint64, len(s.cursors))
	for k, v := range s.cursors {
		cursors[k] = v
	}
	s.mu.Unlock()
	frames, err := conn.Sync(ctx, cursors)
	if err != nil {
		return err
	}
	for _, f := range frames {
		if err := s.deliver(ctx, conn, f); err != nil {
			return err
		}
	}
	s.mu.Lock()
	s.conn = conn
	close(s.ready)
	s.mu.Unlock()
	for f := range conn.Frames() {
		if err := s.deliver(ctx, conn, f); err != nil {
			return err
		}
	}
	return conn.Err()
}

// deliver passes a frame on, dropping events already delivered and paging
// in the events a gap (or a jump in sequence) skipped.
func (s *Session) deliver(ctx context.Context, conn *Conn, f Frame) error {
	switch f.T {
	case proto.TGap:
		return s.fill(ctx, conn, f.Room, f.Last)
	case proto.TEvent:
		s.mu.Lock()
		cur := s.cursors[f.Room]
		s.mu.Unlock()
		if f.Seq <= cur {
			return nil
		}
		if cur > 0 && f.Seq > cur+1 {
			if err := s.fill(ctx, conn, f.Room, f.Seq-1); err != nil {
				return err
			}
		}
		s.mu.Lock()
		s.cursors[f.Room] = f.Seq
		s.mu.Unlock()
	}
	if s.OnFrame != nil {
		s.OnFrame(f)
	}
	return nil
}

// fill fetches and delivers a room's events after the cursor up to seq to.
func (s *Session) fill(ctx context.Context, conn *Conn, room string, to uint64) error {
	for {
		cur := s.Cursor(room)
		if cur >= to {
			return nil
		}
		var page struct {
			Events []json.RawMessage `json:"events"`
		}
		if err := conn.Call(ctx, proto.THistory, map[string]any{"room": room, "after": cur, "limit": proto.MaxPage}, &page); err != nil {
			return err
		}
		if len(page.Events) == 0 {
			return nil
		}
		for _, raw := range page.Events {
			var f Frame
			if err := f.unmarshal(raw); err != nil {
				return err
			}
			if f.Seq > to {
				return nil
			}
			if err := s.deliver(ctx, conn, f); err != nil {
				return err
			}
		}
	}
}

// Wait blocks until the session is connected and synced.
func (s *Session) Wait(ctx context.Context) (*Conn, error) {
	s.mu.Lock()
	ready, conn := s.ready, s.conn
	s.mu.Unlock()
	if conn != nil {
		return conn, nil
	}
	select {
	case <-ready:
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.conn == nil {
			return nil, ErrClosed
		}
		return s.conn, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// NewID returns a fresh idempotency key.
func (s *Session) NewID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids++
	return s.prefix + strconv.Itoa(s.ids)
}

// Send sends a text message, retrying with the same id across
// disconnections until the node acknowledges it or ctx ends.
func (s *Session) Send(ctx context.Context, room, body string) (proto.Ack, error) {
	return s.SendEvent(ctx, map[string]any{"t": proto.TSend, "id": s.NewID(), "room": room, "type": proto.EvText, "body": body})
}

// SendEvent sends a "send" frame (with its "id"), retrying as Send does.
func (s *Session) SendEvent(ctx context.Context, frame map[string]any) (proto.Ack, error) {
	for {
		conn, err := s.Wait(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return proto.Ack{}, err
			}
			continue
		}
		ack, err := conn.SendEvent(ctx, frame)
		if err == nil {
			return ack, nil
		}
		var pe *Error
		if errors.As(err, &pe) {
			if pe.Code == proto.CodeRateLimited || pe.Code == proto.CodeUnavailable {
				time.Sleep(time.Duration(max(pe.RetryAfter, 1)) * time.Second)
				continue
			}
			return ack, err // refused: retrying would not help
		}
		if ctx.Err() != nil {
			return ack, ctx.Err()
		}
		// The connection broke before the ack: wait for the next one and
		// send again with the same id.
		select {
		case <-conn.Done():
		case <-ctx.Done():
			return ack, ctx.Err()
		}
	}
}
