package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/coder/websocket"

	"relais/server/proto"
)

// Frame is one frame from the node, with the fields clients commonly need
// decoded and the raw JSON kept.
type Frame struct {
	T    string `json:"t"`
	ID   string `json:"id"`
	Room string `json:"room"`
	Seq  uint64 `json:"seq"`
	TS   int64  `json:"ts"`
	From string `json:"from"`
	CID  string `json:"cid"`
	Type string `json:"type"`
	Body string `json:"body"`
	User string `json:"user"`
	On   bool   `json:"on"`

	// error frames
	Code    string `json:"code"`
	Detail  string `json:"detail"`
	Message string `json:"message"`
	// gap frames
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`

	Raw []byte `json:"-"`
}

// Err returns the frame as an error if it is an error frame.
func (f *Frame) Err() error {
	if f.T != proto.TError {
		return nil
	}
	return &Error{Code: f.Code, Detail: f.Detail, Message: f.Message}
}

// Decode decodes the raw frame into v.
func (f *Frame) Decode(v any) error { return json.Unmarshal(f.Raw, v) }

// Conn is one websocket connection to the node. Answers to requests are
// matched by id; every other frame goes, in order, to Frames.
//
// The reader never blocks on a slow consumer of Frames (frames wait in an
// unbounded queue), so a consumer may make requests from its loop: their
// answers are always read.
type Conn struct {
	ws     *websocket.Conn
	frames chan Frame
	done   chan struct{}
	err    atomic.Pointer[error]
	seq    atomic.Uint64

	mu      sync.Mutex
	waiting map[string]chan Frame

	qmu    sync.Mutex
	qcond  sync.Cond
	queue  []Frame
	qended bool

	// Hello is the node's first frame.
	Hello proto.Hello
}

// ErrClosed is returned by calls on a closed connection.
var ErrClosed = errors.New("relais: connection closed")

// Dial opens a websocket connection with the client's session. Frames not
// answering a request are delivered on Frames (a channel of the given
// buffer, fed from an unbounded queue).
func (c *Client) Dial(ctx context.Context, buffer int) (*Conn, error) {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+c.token)
	opts := &websocket.DialOptions{HTTPHeader: h, HTTPClient: c.http}
	ws, _, err := websocket.Dial(ctx, c.wsURL(), opts)
	if err != nil {
		return nil, fmt.Errorf("relais: dial: %w", err)
	}
	ws.SetReadLimit(64 << 20)
	conn := &Conn{ws: ws, frames: make(chan Frame, buffer), done: make(chan struct{}), waiting: map[string]chan Frame{}}
	conn.qcond.L = &conn.qmu
	_, b, err := ws.Read(ctx)
	if err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("relais: read hello: %w", err)
	}
	if err := json.Unmarshal(b, &conn.Hello); err != nil || conn.Hello.T != proto.THello {
		ws.CloseNow()
		return nil, fmt.Errorf("relais: expected hello, got %.100s", b)
	}
	go conn.read()
	go conn.pump()
	return conn, nil
}

// pump moves queued frames to the Frames channel.
func (c *Conn) pump() {
	defer close(c.frames)
	for {
		c.qmu.Lock()
		for len(c.queue) == 0 && !c.qended {
			c.qcond.Wait()
		}
		if len(c.queue) == 0 {
			c.qmu.Unlock()
			return
		}
		batch := c.queue
		c.queue = nil
		c.qmu.Unlock()
		for _, f := range batch {
			c.frames <- f
		}
	}
}

func (c *Conn) push(f Frame) {
	c.qmu.Lock()
	c.queue = append(c.queue, f)
	c.qmu.Unlock()
	c.qcond.Signal()
}

// Frames delivers the frames that are not answers to requests.
func (c *Conn) Frames() <-chan Frame { return c.frames }

// Done is closed when the connection ends.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err is why the connection ended.
func (c *Conn) Err() error {
	if p := c.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (c *Conn) read() {
	defer func() {
		c.qmu.Lock()
		c.qended = true
		c.qmu.Unlock()
		c.qcond.Signal()
	}()
	defer close(c.done)
	ctx := context.Background()
	for {
		_, b, err := c.ws.Read(ctx)
		if err != nil {
			c.err.Store(&err)
			c.mu.Lock()
			for id, ch := range c.waiting {
				close(ch)
				delete(c.waiting, id)
			}
			c.mu.Unlock()
			return
		}
		// A message holds one or more frames, one per line.
		for len(b) > 0 {
			line := b
			if i := bytes.IndexByte(b, '\n'); i >= 0 {
				line, b = b[:i], b[i+1:]
			} else {
				b = nil
			}
			var f Frame
			if err := f.unmarshal(line); err != nil {
				continue
			}
			if f.ID != "" && (f.T == proto.TAck || f.T == proto.TResult || f.T == proto.TError || f.T == proto.TPong || f.T == proto.TSynced) {
				c.mu.Lock()
				ch := c.waiting[f.ID]
				delete(c.waiting, f.ID)
				c.mu.Unlock()
				if ch != nil {
					ch <- f
					continue
				}
			}
			c.push(f)
		}
	}
}

// NextID returns a fresh request id for this connection.
func (c *Conn) NextID() string { return "q" + strconv.FormatUint(c.seq.Add(1), 36) }

// Request sends a frame (given as a map or struct with "t" and "id") and
// waits for its answer. An error frame is returned as an *Error.
func (c *Conn) Request(ctx context.Context, id string, frame any) (Frame, error) {
	ch := make(chan Frame, 1)
	c.mu.Lock()
	c.waiting[id] = ch
	c.mu.Unlock()
	if err := c.Write(ctx, frame); err != nil {
		c.mu.Lock()
		delete(c.waiting, id)
		c.mu.Unlock()
		return Frame{}, err
	}
	select {
	case f, ok := <-ch:
		if !ok {
			return Frame{}, ErrClosed
		}
		if err := f.Err(); err != nil {
			return f, err
		}
		return f, nil
	case <-c.done:
		// The reader may have ended before the request was registered.
		select {
		case f, ok := <-ch:
			if ok {
				return f, f.Err()
			}
		default:
		}
		return Frame{}, ErrClosed
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.waiting, id)
		c.mu.Unlock()
		return Frame{}, ctx.Err()
	}
}

// Write sends one frame without waiting for an answer.
func (c *Conn) Write(ctx context.Context, frame any) error {
	b, err := json.Marshal(frame)
	if err != nil {
		return err
	}
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// WriteRaw sends bytes as one websocket message, as they are (tests of
// bad input).
func (c *Conn) WriteRaw(ctx context.Context, b []byte) error {
	return c.ws.Write(ctx, websocket.MessageText, b)
}

// Close closes the connection normally.
func (c *Conn) Close() error { return c.ws.Close(websocket.StatusNormalClosure, "") }

// CloseNow drops the connection without a closing handshake.
func (c *Conn) CloseNow() error { return c.ws.CloseNow() }

// Sync sends the device's cursors and collects what the node sends until
// "synced": the rooms, gaps and events, in order.
func (c *Conn) Sync(ctx context.Context, cursors map[string]uint64) ([]Frame, error) {
	// The answer is not awaited by id: "synced" (or the error) then
	// comes through Frames after everything the resync sent before it.
	id := c.NextID()
	if err := c.Write(ctx, map[string]any{"t": proto.TSync, "id": id, "rooms": cursors}); err != nil {
		return nil, err
	}
	var out []Frame
	for {
		select {
		case f, ok := <-c.frames:
			if !ok {
				return out, ErrClosed
			}
			if f.ID == id && (f.T == proto.TSynced || f.T == proto.TError) {
				return out, f.Err()
			}
			out = append(out, f)
		case <-ctx.Done():
			return out, ctx.Err()
		}
	}
}

// Send sends a text message and waits for its ack. id is the idempotency
// key: resending the same id returns the same ack.
func (c *Conn) Send(ctx context.Context, id, room, body string) (proto.Ack, error) {
	return c.SendEvent(ctx, map[string]any{"t": proto.TSend, "id": id, "room": room, "type": proto.EvText, "body": body})
}

// SendEvent sends a "send" frame (its "id" set) and waits for the ack.
func (c *Conn) SendEvent(ctx context.Context, frame map[string]any) (proto.Ack, error) {
	id, _ := frame["id"].(string)
	f, err := c.Request(ctx, id, frame)
	if err != nil {
		return proto.Ack{}, err
	}
	var ack proto.Ack
	err = f.Decode(&ack)
	return ack, err
}

// Call sends a request frame of type t with the given fields and returns
// the "data" of its result, decoded into out (may be nil).
func (c *Conn) Call(ctx context.Context, t string, fields map[string]any, out any) error {
	id := c.NextID()
	frame := map[string]any{"t": t, "id": id}
	for k, v := range fields {
		frame[k] = v
	}
	f, err := c.Request(ctx, id, frame)
	if err != nil || out == nil {
		return err
	}
	var res struct {
		Data json.RawMessage `json:"data"`
	}
	if err := f.Decode(&res); err != nil {
		return err
	}
	return json.Unmarshal(res.Data, out)
}
