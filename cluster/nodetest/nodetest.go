// Package nodetest starts whole nodes in process for tests: a real store
// in a temporary directory, the real embedded NATS bus, a real HTTP
// listener on a random loopback port.
package nodetest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"relais/cluster"
	"relais/server/bus"
	"relais/server/client"
	"relais/server/config"
	"relais/server/mail"
	"relais/server/mail/smtptest"
	"relais/server/node"
	"relais/server/password"
	"relais/server/store"
)

// Domain is the allowed registration domain of test nodes.
const Domain = "agents.gouv.fr"

// Password is a password every test account can use.
const Password = "Tr0mbone-Velours-9"

// Node is a running test node.
type Node struct {
	*node.Node
	t    testing.TB
	cfg  config.Config
	opts node.Options
	n    atomic.Int64
}

// Option changes a test node's configuration before it starts.
type Option func(*config.Config, *node.Options)

// WithConfig edits the configuration.
func WithConfig(f func(*config.Config)) Option {
	return func(c *config.Config, _ *node.Options) { f(c) }
}

// WithOptions edits the node options.
func WithOptions(f func(*node.Options)) Option {
	return func(_ *config.Config, o *node.Options) { f(o) }
}

// Start starts a node stopped by t.Cleanup.
func Start(t testing.TB, opts ...Option) *Node {
	t.Helper()
	cfg := config.Defaults()
	cfg.Data = t.TempDir()
	cfg.Listen = "127.0.0.1:0"
	cfg.TLS = "off"
	cfg.RateLimits = false
	cfg.AllowedDomains = config.List{Domain}
	o := node.Options{Logger: Logger(t), Password: password.TestParams}
	for _, opt := range opts {
		opt(&cfg, &o)
	}
	n := &Node{t: t, cfg: cfg, opts: o}
	n.start()
	t.Cleanup(func() { n.Stop() })
	return n
}

func startBus(id string, log *slog.Logger) (bus.Bus, error) {
	return cluster.Start(cluster.Options{Name: id, Logger: log})
}

func (n *Node) start() {
	n.t.Helper()
	newBus := startBus
	if n.cfg.Federation || n.cfg.FederationListen != "" {
		newBus = cluster.FederatedBus(n.cfg.Data, n.cfg.FederationListen, n.cfg.FederationEndpoint)
	}
	nd, err := node.Start(context.Background(), n.cfg, newBus, n.opts)
	if err != nil {
		n.t.Fatalf("start node: %v", err)
	}
	n.Node = nd
	// A restart listens where the node listened before, so that clients
	// keep their URL.
	n.cfg.Listen = nd.Addr()
}

// Stop shuts the node down (idempotent).
func (n *Node) Stop() {
	if n.Node == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Node.Shutdown(ctx); err != nil {
		n.t.Errorf("shutdown: %v", err)
	}
	n.Node = nil
}

// Restart stops the node and starts it again on the same data directory
// and address, with the given changes to its configuration.
func (n *Node) Restart(opts ...Option) {
	n.t.Helper()
	n.Stop()
	for _, opt := range opts {
		opt(&n.cfg, &n.opts)
	}
	n.start()
}

// Client returns an anonymous client of the node.
func (n *Node) Client() *client.Client { return client.New(n.URL()) }

// NewUser registers, approves and signs in an agent with the given display
// name; the address is derived from the name.
func (n *Node) NewUser(name string) *client.Client {
	n.t.Helper()
	local := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r == ' ' || r == '-':
			return '.'
		}
		return -1
	}, store.FoldName(name))
	email := fmt.Sprintf("%s.%d@%s", local, n.n.Add(1), Domain)
	return n.NewUserEmail(email, name)
}

// NewUserEmail registers, approves and signs in an agent.
func (n *Node) NewUserEmail(email, name string) *client.Client {
	n.t.Helper()
	ctx := context.Background()
	c := n.Client()
	if _, err := c.Register(ctx, email, Password, name); err != nil {
		n.t.Fatalf("register %s: %v", email, err)
	}
	if err := n.Accounts.Approve(ctx, email); err != nil {
		n.t.Fatalf("approve %s: %v", email, err)
	}
	if err := c.Login(ctx, email, Password); err != nil {
		n.t.Fatalf("login %s: %v", email, err)
	}
	return c
}

// Logger returns a logger writing to the test's log (debug level when
// RELAIS_TEST_DEBUG is set), silent once the test is over.
func Logger(t testing.TB) *slog.Logger {
	w := &tWriter{t: t}
	t.Cleanup(func() { w.done.Store(true) })
	level := slog.LevelInfo
	if os.Getenv("RELAIS_TEST_DEBUG") != "" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

type tWriter struct {
	t    testing.TB
	done atomic.Bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// CheckFor calls check until it returns nil or within has passed, then
// fails the test with the last error check returned: check describes the
// state it saw, so a timeout reports the last state, not the first one.
func CheckFor(t testing.TB, within time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: %v", within, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Logs is a sink for a node's logs (or a process's output) that a test
// reads while they are written.
type Logs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns what was written so far.
func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// WithLogs sends the node's logs to l as well as to the test's log.
func WithLogs(l *Logs) Option {
	return func(_ *config.Config, o *node.Options) {
		o.Logger = slog.New(slog.NewMultiHandler(o.Logger.Handler(), slog.NewTextHandler(l, nil)))
	}
}

// Synced opens a websocket for c and syncs it, ready for requests; it is
// closed when the test ends. Frames queue without bound in the client, so
// nobody needs to read them.
func Synced(t testing.TB, ctx context.Context, c *client.Client) *client.Conn {
	t.Helper()
	conn, err := c.Dial(ctx, 64)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := conn.Sync(ctx, nil); err != nil {
		t.Fatalf("sync: %v", err)
	}
	return conn
}

// Forum creates a forum through conn and returns its id.
func Forum(t testing.TB, ctx context.Context, conn *client.Conn, name string) string {
	t.Helper()
	return CreateRoom(t, ctx, conn, map[string]any{"kind": "forum", "name": name})
}

// CreateRoom creates a room with the fields of a create_room frame
// through conn and returns its id.
func CreateRoom(t testing.TB, ctx context.Context, conn *client.Conn, fields map[string]any) string {
	t.Helper()
	var room struct{ Room string }
	if err := conn.Call(ctx, "create_room", fields, &room); err != nil {
		t.Fatalf("create room %v: %v", fields, err)
	}
	return room.Room
}

// WithMailRelay starts an SMTP relay in process (STARTTLS, with a login)
// and points the node at it through the real SMTP client.
func WithMailRelay(t testing.TB) (*smtptest.Server, Option) {
	t.Helper()
	relay := smtptest.Start(t, smtptest.WithStartTLS(), smtptest.WithAuth("relais", "s3cret"))
	sender, err := mail.NewSMTP(mail.SMTPConfig{Host: relay.Host, Port: relay.Port, Username: "relais", Password: "s3cret",
		From: "Relais <no-reply@agents.gouv.fr>", TLSConfig: relay.ClientTLSConfig(), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("smtp client: %v", err)
	}
	return relay, WithOptions(func(o *node.Options) { o.Mailer = sender })
}

// ClosedWith waits for the node to close conn with the websocket status
// code, failing with what it saw otherwise.
func ClosedWith(t testing.TB, conn *client.Conn, code websocket.StatusCode, within time.Duration, what string) {
	t.Helper()
	select {
	case <-conn.Done():
		if s := websocket.CloseStatus(conn.Err()); s != code {
			t.Fatalf("%s: closed with %v, want status %d", what, conn.Err(), code)
		}
	case <-time.After(within):
		t.Fatalf("%s: still open after %v", what, within)
	}
}
