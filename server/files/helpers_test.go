package files_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/client"
	"relais/server/config"
	"relais/server/files"
	"relais/server/media/clamd/clamdtest"
	"relais/server/media/mediatest"
	"relais/server/node"
	"relais/server/proto"
	"relais/server/store"
)

// startNode starts a test node whose attachment service retries quickly,
// scanning with av when it is not nil.
func startNode(t testing.TB, av *clamdtest.Server, opts ...nodetest.Option) *nodetest.Node {
	t.Helper()
	base := []nodetest.Option{
		nodetest.WithOptions(func(o *node.Options) {
			o.Files = files.Tuning{RetryEvery: 100 * time.Millisecond, ClamdTimeout: 5 * time.Second}
		}),
	}
	if av != nil {
		base = append(base, nodetest.WithConfig(func(c *config.Config) { c.Clamd = av.UnixURL() }))
	}
	return nodetest.Start(t, append(base, opts...)...)
}

// peer is a signed-in user with a resilient session recording every frame.
type peer struct {
	t  testing.TB
	c  *client.Client
	s  *client.Session
	mu sync.Mutex
	fs []client.Frame
}

func newPeer(t testing.TB, n *nodetest.Node, name string) *peer {
	t.Helper()
	p := &peer{t: t, c: n.NewUser(name)}
	p.s = p.c.NewSession(func(f client.Frame) {
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
		t.Fatalf("%s: connect: %v", name, err)
	}
	return p
}

func (p *peer) id() string { return p.c.Me.ID }

func (p *peer) call(t string, fields map[string]any, out any) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := p.s.Wait(ctx)
	if err == nil {
		err = conn.Call(ctx, t, fields, out)
	}
	if err != nil {
		p.t.Fatalf("%s: %s: %v", p.c.Me.Name, t, err)
	}
}

// send sends an event and returns its ack or the refusal's code.
func (p *peer) send(fields map[string]any) (proto.Ack, string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	frame := map[string]any{"t": "send", "id": p.s.NewID()}
	for k, v := range fields {
		frame[k] = v
	}
	conn, err := p.s.Wait(ctx)
	if err != nil {
		p.t.Fatal(err)
	}
	ack, err := conn.SendEvent(ctx, frame)
	var ce *client.Error
	if errors.As(err, &ce) {
		return ack, ce.Code
	}
	if err != nil {
		p.t.Fatalf("send: %v", err)
	}
	return ack, ""
}

// postFile posts a file event and fails the test if it is refused.
func (p *peer) postFile(room, fileID, caption string) proto.Ack {
	p.t.Helper()
	ack, code := p.send(map[string]any{"room": room, "type": "file", "file": map[string]any{"id": fileID}, "body": caption})
	if code != "" {
		p.t.Fatalf("posting file %s: %s", fileID, code)
	}
	return ack
}

// event waits for the room event matching pred and decodes it.
func (p *peer) event(what string, room string, pred func(proto.Event) bool) proto.Event {
	p.t.Helper()
	var got proto.Event
	nodetest.CheckFor(p.t, 15*time.Second, func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		inRoom := 0
		for _, f := range p.fs {
			if f.T != proto.TEvent || f.Room != room {
				continue
			}
			inRoom++
			var ev proto.Event
			if json.Unmarshal(f.Raw, &ev) == nil && pred(ev) {
				got = ev
				return nil
			}
		}
		return fmt.Errorf("%s never received %s: %d frames, %d events of room %s, none matching", p.c.Me.Name, what, len(p.fs), inRoom, room)
	})
	return got
}

// frame waits for a live frame of type t matching pred.
func (p *peer) frame(what, t string, pred func(json.RawMessage) bool) {
	p.t.Helper()
	nodetest.CheckFor(p.t, 15*time.Second, func() error {
		p.mu.Lock()
		defer p.mu.Unlock()
		var ofType []string
		for _, f := range p.fs {
			if f.T == t {
				if pred(f.Raw) {
					return nil
				}
				ofType = append(ofType, string(f.Raw))
			}
		}
		if len(ofType) > 5 {
			ofType = ofType[len(ofType)-5:]
		}
		return fmt.Errorf("%s never received %s: %d frames, the last of type %s: %v", p.c.Me.Name, what, len(p.fs), t, ofType)
	})
}

// history returns the stored copies of a room's events.
func (p *peer) history(room string) map[uint64]proto.Event {
	p.t.Helper()
	var page struct {
		Events []proto.Event `json:"events"`
	}
	p.call("history", map[string]any{"room": room, "limit": 100}, &page)
	out := map[uint64]proto.Event{}
	for _, ev := range page.Events {
		out[ev.Seq] = ev
	}
	return out
}

// forum creates a forum of owner that the others join.
func forum(t testing.TB, owner *peer, others ...*peer) string {
	t.Helper()
	var res map[string]string
	owner.call("create_room", map[string]any{"kind": "forum", "name": fmt.Sprintf("Forum %d", time.Now().UnixNano())}, &res)
	room := res["room"]
	for _, p := range others {
		p.call("join", map[string]any{"room": room}, nil)
	}
	return room
}

// group creates a private group of owner that the others join.
func group(t testing.TB, owner *peer, encrypted bool, others ...*peer) string {
	t.Helper()
	var ids []string
	for _, p := range others {
		ids = append(ids, p.id())
	}
	var res map[string]string
	owner.call("create_room", map[string]any{"kind": "group", "name": "Cellule", "encrypted": encrypted, "users": ids}, &res)
	room := res["room"]
	for _, p := range others {
		nodetest.CheckFor(t, 10*time.Second, func() error {
			p.mu.Lock()
			defer p.mu.Unlock()
			for _, f := range p.fs {
				if f.T == proto.TRoom && f.ID == room {
					return nil
				}
			}
			return fmt.Errorf("%s never received the invitation to %s: %d frames", p.c.Me.Name, room, len(p.fs))
		})
		p.call("join", map[string]any{"room": room}, nil)
	}
	return room
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// upload uploads content in chunks and fails the test on error.
func upload(t testing.TB, c *client.Client, room, name string, content []byte, chunk int) proto.File {
	t.Helper()
	f, err := c.UploadFile(ctxT(t), proto.UploadRequest{Room: room, Name: name}, content, chunk)
	if err != nil {
		t.Fatalf("upload %s: %v", name, err)
	}
	return f
}

// codeOf returns the protocol code and status of an error from the client.
func codeOf(t testing.TB, err error) (string, int) {
	t.Helper()
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Code, ce.Status
	}
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
	return "", 0
}

// wantCode fails unless err is the refusal code with the HTTP status.
func wantCode(t testing.TB, what string, err error, code string, status int) *client.Error {
	t.Helper()
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != code || (status != 0 && ce.Status != status) {
		t.Fatalf("%s: got %v, want %s (%d)", what, err, code, status)
	}
	return ce
}

// fileState polls the file's state as c sees it until it is want.
func fileState(t testing.TB, c *client.Client, fileID, want string) proto.FileInfo {
	t.Helper()
	var info proto.FileInfo
	nodetest.CheckFor(t, 15*time.Second, func() error {
		var err error
		info, err = c.FileState(context.Background(), fileID)
		if err != nil {
			return fmt.Errorf("state of file %s: %w", fileID, err)
		}
		if info.File.State != want {
			return fmt.Errorf("file %s is %s, want %s (%+v)", fileID, info.File.State, want, info.File)
		}
		return nil
	})
	return info
}

// download fetches a file and returns its body.
func download(t testing.TB, c *client.Client, fileID string) []byte {
	t.Helper()
	resp, err := c.Download(ctxT(t), fileID, false, nil)
	if err != nil {
		t.Fatalf("download %s: %v", fileID, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// blobPath is where media keeps a blob.
func blobPath(n *nodetest.Node, hash string) string {
	p, _ := n.Files.Blobs().Path(hash)
	return p
}

// blobOf returns the hash of a file's blob, read from the store.
func blobOf(t testing.TB, n *nodetest.Node, fileID string) string {
	t.Helper()
	var hash string
	err := n.DB.View(func(tx *store.Tx) error {
		f, err := tx.File(fileID)
		hash = f.Hash
		return err
	})
	if err != nil {
		t.Fatalf("file %s: %v", fileID, err)
	}
	return hash
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// mediaFiles lists the regular files under the node's media directory
// (relative paths), except the scanner key.
func mediaFiles(t testing.TB, n *nodetest.Node, sub string) []string {
	t.Helper()
	root := filepath.Join(n.Files.Blobs().Dir(), sub)
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && d.Name() != "scanner.key" {
			rel, _ := filepath.Rel(root, path)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	return out
}

// tinyPDF returns a valid one-page PDF saying text.
func tinyPDF(text string, size int) []byte { return mediatest.PDF(text, size) }

// unique returns random printable bytes to find in files later.
func unique(label string) []byte {
	b := make([]byte, 12)
	rand.Read(b)
	return fmt.Appendf(nil, "%s-%x", label, b)
}

func itoa(n int) string { return fmt.Sprint(n) }

func uploadReq(room, name string) proto.UploadRequest {
	return proto.UploadRequest{Room: room, Name: name}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
