package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"relais/server/client"
	"relais/server/proto"
)

// wire is a member's connection as the load scenarios use it: sends that
// wait for their ack, requests for the setup, and a stream of events.
type wire interface {
	// send sends a message and returns the seq of its ack.
	send(ctx context.Context, id, room string, msg message) (uint64, error)
	// device is the connection's device id.
	device() string
	// call makes a request and decodes the data of its result into out.
	call(ctx context.Context, t string, fields map[string]any, out any) error
	closeNow()
	done() <-chan struct{}
	err() error
}

// event is what a receiver needs of an "ev" frame.
type event struct {
	room string
	seq  uint64
	from string
	typ  string
	raw  []byte // the frame; valid during the callback only
}

// dialWire connects device dev of u, syncs from scratch (frames before
// "synced" are dropped) and calls onEvent for every event that follows,
// on the connection's reading goroutine. With full, the connection is the
// reference client's, which decodes every frame into a client.Frame;
// otherwise it is the bench's lean one, which reads only the fields it
// needs, so that the load generator leaves the shared cores to the node.
func (t *target) dialWire(ctx context.Context, u user, dev int, full bool, onEvent func(event)) (wire, error) {
	if full {
		conn, _, err := t.connect(ctx, u, dev, 1024)
		if err != nil {
			return nil, err
		}
		go func() {
			for f := range conn.Frames() {
				if f.T == proto.TEvent {
					onEvent(event{room: f.Room, seq: f.Seq, from: f.From, typ: f.Type, raw: f.Raw})
				}
			}
		}()
		return fullWire{conn}, nil
	}
	return t.dialLean(ctx, u, dev, onEvent)
}

// fullWire is a connection of the reference client.
type fullWire struct{ c *client.Conn }

func (w fullWire) send(ctx context.Context, id, room string, msg message) (uint64, error) {
	field := "body"
	if msg.typ == proto.EvEncrypted {
		field = "data"
	}
	ack, err := w.c.SendEvent(ctx, map[string]any{"t": proto.TSend, "id": id, "room": room, "type": msg.typ, field: msg.text})
	return ack.Seq, err
}

func (w fullWire) device() string { return w.c.Hello.Device }

func (w fullWire) call(ctx context.Context, t string, fields map[string]any, out any) error {
	return w.c.Call(ctx, t, fields, out)
}

func (w fullWire) closeNow()             { w.c.CloseNow() }
func (w fullWire) done() <-chan struct{} { return w.c.Done() }
func (w fullWire) err() error            { return w.c.Err() }

// leanWire is the bench's own connection: frames are written from bytes
// and read in place, looking up only the fields the bench needs.
type leanWire struct {
	ws      *websocket.Conn
	onEvent func(event)
	dev     string
	nonce   string // request ids are unique across the user's connections
	seq     int

	mu      sync.Mutex
	waiting map[string]chan []byte
	ended   chan struct{}
	endErr  error
}

func (t *target) dialLean(ctx context.Context, u user, dev int, onEvent func(event)) (*leanWire, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	wsURL, err := url.Parse(t.url)
	if err != nil {
		return nil, err
	}
	wsURL.Scheme = map[string]string{"https": "wss"}[wsURL.Scheme]
	if wsURL.Scheme == "" {
		wsURL.Scheme = "ws"
	}
	wsURL.Path = "/api/v1/ws"
	h := http.Header{}
	h.Set("Authorization", "Bearer "+u.Tokens[dev])
	hc := &http.Client{Transport: &http.Transport{DialContext: t.dial, TLSClientConfig: t.tls}}
	ws, _, err := websocket.Dial(ctx, wsURL.String(), &websocket.DialOptions{HTTPHeader: h, HTTPClient: hc})
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	ws.SetReadLimit(64 << 20)
	_, hello, err := ws.Read(ctx)
	if err != nil || !bytes.HasPrefix(hello, []byte(`{"t":"hello"`)) {
		ws.CloseNow()
		return nil, fmt.Errorf("expected hello, got %.80q (%v)", hello, err)
	}
	w := &leanWire{ws: ws, onEvent: onEvent, dev: string(stringAfter(hello, fieldDevice)),
		nonce: strconv.FormatUint(requestNonce.Add(1), 36), waiting: map[string]chan []byte{}, ended: make(chan struct{})}
	go w.read()
	if err := w.call(ctx, proto.TSync, map[string]any{"rooms": map[string]uint64{}}, nil); err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("sync: %w", err)
	}
	return w, nil
}

func (w *leanWire) read() {
	defer close(w.ended)
	var buf bytes.Buffer
	for {
		_, r, err := w.ws.Reader(context.Background())
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			w.mu.Lock()
			w.endErr = err
			for id, ch := range w.waiting {
				close(ch)
				delete(w.waiting, id)
			}
			w.mu.Unlock()
			return
		}
		for b := buf.Bytes(); len(b) > 0; {
			line := b
			if i := bytes.IndexByte(b, '\n'); i >= 0 {
				line, b = b[:i], b[i+1:]
			} else {
				b = nil
			}
			w.frame(line)
		}
	}
}

var (
	prefixEvent = []byte(`{"t":"ev",`)
	fieldRoom   = []byte(`"room":"`)
	fieldSeq    = []byte(`"seq":`)
	fieldFrom   = []byte(`"from":"`)
	fieldType   = []byte(`"type":"`)
	fieldID     = []byte(`"id":"`)
	fieldDevice = []byte(`"device":"`)
)

// requestNonce tells the bench's connections apart in their request ids:
// some requests (mls) are idempotent by id per user.
var requestNonce atomic.Uint64

// frame handles one frame: events go to onEvent, answers to the request
// waiting for them (a copy: the read buffer is reused).
func (w *leanWire) frame(line []byte) {
	if bytes.HasPrefix(line, prefixEvent) {
		seq, _ := strconv.ParseUint(string(numberAfter(line, fieldSeq)), 10, 64)
		w.onEvent(event{room: string(stringAfter(line, fieldRoom)), seq: seq,
			from: string(stringAfter(line, fieldFrom)), typ: string(stringAfter(line, fieldType)), raw: line})
		return
	}
	for _, t := range [...]string{proto.TAck, proto.TResult, proto.TError, proto.TSynced, proto.TPong} {
		if bytes.HasPrefix(line, []byte(`{"t":"`+t+`","id":"`)) {
			id := stringAfter(line, fieldID)
			w.mu.Lock()
			ch := w.waiting[string(id)]
			delete(w.waiting, string(id))
			w.mu.Unlock()
			if ch != nil {
				ch <- bytes.Clone(line)
			}
			return
		}
	}
}

// stringAfter returns the JSON string (without escapes: identifiers and
// type names) that follows key, or nil.
func stringAfter(line, key []byte) []byte {
	i := bytes.Index(line, key)
	if i < 0 {
		return nil
	}
	v := line[i+len(key):]
	if j := bytes.IndexByte(v, '"'); j >= 0 {
		return v[:j]
	}
	return nil
}

func numberAfter(line, key []byte) []byte {
	i := bytes.Index(line, key)
	if i < 0 {
		return nil
	}
	v := line[i+len(key):]
	j := 0
	for j < len(v) && v[j] >= '0' && v[j] <= '9' {
		j++
	}
	return v[:j]
}

// request writes frame and waits for the answer to id.
func (w *leanWire) request(ctx context.Context, id string, frame []byte) ([]byte, error) {
	ch := make(chan []byte, 1)
	w.mu.Lock()
	if w.endErr != nil {
		w.mu.Unlock()
		return nil, w.endErr
	}
	w.waiting[id] = ch
	w.mu.Unlock()
	// No cancellable context for the write: coder/websocket would
	// register a callback for each; a dead connection fails it anyway.
	if err := w.ws.Write(context.Background(), websocket.MessageText, frame); err != nil {
		w.mu.Lock()
		delete(w.waiting, id)
		w.mu.Unlock()
		return nil, err
	}
	select {
	case ans, ok := <-ch:
		if !ok {
			return nil, fmt.Errorf("connection ended: %w", w.err())
		}
		if bytes.HasPrefix(ans, []byte(`{"t":"error"`)) {
			var e client.Error
			json.Unmarshal(ans, &e)
			return nil, &e
		}
		return ans, nil
	case <-ctx.Done():
		w.mu.Lock()
		delete(w.waiting, id)
		w.mu.Unlock()
		return nil, ctx.Err()
	}
}

// send writes the frame from bytes: id, room, a body (see body) and
// base64 need no escaping.
func (w *leanWire) send(ctx context.Context, id, room string, msg message) (uint64, error) {
	b := make([]byte, 0, 64+len(id)+len(room)+len(msg.text))
	b = append(b, `{"t":"send","id":`...)
	b = strconv.AppendQuote(b, id)
	b = append(b, `,"room":`...)
	b = strconv.AppendQuote(b, room)
	if msg.typ == proto.EvEncrypted {
		b = append(b, `,"type":"encrypted","data":"`...)
	} else {
		b = append(b, `,"type":"text","body":"`...)
	}
	b = append(b, msg.text...)
	b = append(b, `"}`...)
	ans, err := w.request(ctx, id, b)
	if err != nil {
		return 0, err
	}
	return strconv.ParseUint(string(numberAfter(ans, fieldSeq)), 10, 64)
}

func (w *leanWire) call(ctx context.Context, t string, fields map[string]any, out any) error {
	w.mu.Lock()
	w.seq++
	id := "q" + w.nonce + "-" + strconv.Itoa(w.seq)
	w.mu.Unlock()
	frame := map[string]any{"t": t, "id": id}
	for k, v := range fields {
		frame[k] = v
	}
	b, err := json.Marshal(frame)
	if err != nil {
		return err
	}
	ans, err := w.request(ctx, id, b)
	if err != nil || out == nil {
		return err
	}
	var res struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(ans, &res); err != nil {
		return err
	}
	return json.Unmarshal(res.Data, out)
}

func (w *leanWire) device() string        { return w.dev }
func (w *leanWire) closeNow()             { w.ws.CloseNow() }
func (w *leanWire) done() <-chan struct{} { return w.ended }

func (w *leanWire) err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.endErr
}
