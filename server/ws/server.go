// Package ws is the websocket endpoint: it authenticates connections,
// turns client frames into calls on the chat service, and fans committed
// events out from the bus to this node's connected sessions, encoding each
// event once and queueing the same bytes for every recipient.
package ws

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"relais/server/bus"
	"relais/server/chat"
	"relais/server/proto"
	"relais/server/ratelimit"
)

// Identity is an authenticated connection's user and device.
type Identity struct {
	User     string
	Device   string
	External bool
	// Cookie is true when the request was authenticated by the browser
	// session cookie (and so must come from the node's own origin).
	Cookie bool
}

// Authenticator authenticates an upgrade request; the account service
// implements it.
type Authenticator interface {
	Authenticate(r *http.Request) (Identity, error)
}

// Options tune the endpoint.
type Options struct {
	Logger *slog.Logger
	// QueueFrames and QueueBytes bound each session's outgoing queue.
	QueueFrames int
	QueueBytes  int
	// PingEvery is how often an idle connection is pinged.
	PingEvery time.Duration
	// RateLimits turns on per-session and per-user limits on the frames
	// that change state (limits.go).
	RateLimits bool
	// MaxRefused is how many consecutive refused frames close a session.
	MaxRefused int
	// MaxUserSockets caps the open websockets of one user on this node
	// (default 40: 20 devices with two tabs each); negative: no cap.
	MaxUserSockets int
	// RemoteDirectory, when set, extends directory searches to the peered
	// administrations (fed.Service.SearchDirectory); partial says one did
	// not answer in time.
	RemoteDirectory func(ctx context.Context, q string, limit int) (users []proto.Profile, partial bool)
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.QueueFrames == 0 {
		o.QueueFrames = 1024
	}
	if o.QueueBytes == 0 {
		o.QueueBytes = 4 << 20
	}
	if o.PingEvery == 0 {
		o.PingEvery = 45 * time.Second
	}
	if o.MaxRefused == 0 {
		o.MaxRefused = 50
	}
	if o.MaxUserSockets == 0 {
		o.MaxUserSockets = 40
	}
}

// Server serves /api/v1/ws.
type Server struct {
	chat *chat.Service
	auth Authenticator
	opts Options
	log  *slog.Logger
	hub  *hub
	sub  bus.Subscription

	userLimits []*ratelimit.Limiter // by limit class (limits.go)

	// ctx is cancelled by Close: it outlives the HTTP requests that
	// upgraded to websockets.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New subscribes to the bus and returns the endpoint.
func New(c *chat.Service, b bus.Bus, auth Authenticator, opts Options) (*Server, error) {
	opts.defaults()
	s := &Server{chat: c, auth: auth, opts: opts, log: opts.Logger.With("component", "ws"), hub: newHub(c.JoinedRooms)}
	if opts.RateLimits {
		s.userLimits = newUserLimiters()
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	sub, err := b.Subscribe(proto.SubjectAll, s.hub.handle)
	if err != nil {
		return nil, err
	}
	s.sub = sub
	s.wg.Add(1)
	go s.pinger()
	return s, nil
}

// Close disconnects every session (going away) and stops the fan-out.
func (s *Server) Close() error {
	s.cancel()
	for _, ss := range s.hub.sessions() {
		ss.closeWith(websocket.StatusGoingAway, "node shutting down")
	}
	var err error
	if s.sub != nil {
		err = s.sub.Unsubscribe()
	}
	s.wg.Wait()
	return err
}

// Sessions returns the number of connected sessions.
func (s *Server) Sessions() int {
	s.hub.mu.RLock()
	defer s.hub.mu.RUnlock()
	n := 0
	for _, set := range s.hub.byUser {
		n += len(set)
	}
	return n
}

// ServeHTTP upgrades an authenticated request. A browser (cookie) must
// connect from the node's own origin: coder/websocket refuses a foreign
// Origin, and a cookie-authenticated request without one is refused too.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ident, err := s.auth.Authenticate(r)
	if err != nil {
		writeError(w, http.StatusUnauthorized, proto.CodeUnauthorized, "sign in first")
		return
	}
	if ident.Cookie && r.Header.Get("Origin") == "" {
		writeError(w, http.StatusForbidden, proto.CodeForbidden, "cross-origin websocket refused")
		return
	}
	// The cap is checked before the upgrade, and the place held until the
	// session is registered, so that concurrent upgrades cannot pass it.
	if !s.hub.reserve(ident.User, s.opts.MaxUserSockets) {
		w.Header().Set("Retry-After", "60")
		writeError(w, http.StatusTooManyRequests, proto.CodeTooManySockets,
			"too many open connections for this account: close some tabs or sign out unused devices")
		return
	}
	registered := false
	defer func() {
		if !registered {
			s.hub.unreserve(ident.User)
		}
	}()
	sb := &smallBuffers{ResponseWriter: w}
	conn, err := websocket.Accept(sb, r, &websocket.AcceptOptions{})
	if err != nil {
		s.log.Debug("websocket refused", "err", err)
		return // Accept has answered
	}
	// From here on r.Context() must not be used: the request is over.
	// Frames up to twice the limit are read and answered with too_large;
	// beyond, the library closes the connection (1009).
	conn.SetReadLimit(2 * proto.MaxFrame)
	ss := &session{
		srv:   s,
		conn:  conn,
		out:   sb.out,
		actor: chat.Actor{User: ident.User, Device: ident.Device, External: ident.External},
		sent:  map[string]uint64{},
	}
	ss.cond.L = &ss.mu
	ss.lastRead = time.Now()
	// Nothing is written before the client's sync: pause so that events
	// arriving from registration on wait in the queue.
	ss.paused = true
	first, err := s.hub.register(ss)
	registered = err == nil
	if err != nil {
		s.log.Error("register session", "err", err)
		conn.Close(websocket.StatusInternalError, "internal error")
		return
	}
	if first {
		s.chat.Presence(ident.User, "online")
	}
	profile, _ := s.chat.Profiles(ss.actor, []string{ident.User})
	hello := proto.Hello{T: proto.THello, V: proto.Version, Device: ident.Device}
	if len(profile) == 1 {
		hello.User = profile[0]
	}
	if err := conn.Write(s.ctx, websocket.MessageText, proto.Encode(hello)); err != nil {
		s.drop(ss)
		return
	}
	// The reader runs on its own goroutine and the handler returns, so
	// that net/http releases what it held for the request.
	go ss.readLoop()
}

// Buffer sizes of a websocket connection. net/http hands over 4 KiB for
// reading and 4 KiB for writing, which an idle connection would keep for
// its whole life; client frames are small and a larger message is read
// or written past the buffer, straight from or to the socket.
const (
	readBuffer  = 512
	writeBuffer = 1024
)

// smallBuffers makes the hijacked connection use buffers of readBuffer
// and writeBuffer bytes, the writes going through a socket.
type smallBuffers struct {
	http.ResponseWriter
	out *socket
}

func (w *smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if err := brw.Writer.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	var r io.Reader = conn
	n := brw.Reader.Buffered()
	if n > 0 {
		b, _ := brw.Reader.Peek(n)
		r = io.MultiReader(bytes.NewReader(bytes.Clone(b)), conn)
	}
	// A websocket lives past the request: no deadline set for reading the
	// request may stay on it.
	conn.SetDeadline(time.Time{})
	w.out = &socket{Conn: conn, in: bufio.NewReaderSize(r, max(readBuffer, n))}
	if n > 0 {
		// Bytes the client sent right behind its request must be in
		// the reader's buffer, not behind it: the library starts by
		// keeping what the buffer holds and reading the connection
		// directly (golang/go#32314).
		w.out.in.Peek(n)
	} else if sc, ok := conn.(syscall.Conn); ok {
		// Plain TCP only: a TLS connection may hold decrypted bytes
		// that the socket no longer shows as readable; and the early
		// bytes above are, once the library took them, out of sight.
		w.out.raw, _ = sc.SyscallConn()
	}
	return conn, bufio.NewReadWriter(w.out.in, bufio.NewWriterSize(w.out, writeBuffer)), nil
}

// drop unregisters a finished session.
func (s *Server) drop(ss *session) {
	ss.mu.Lock()
	ss.closed = true
	ss.queue = nil
	ss.mu.Unlock()
	ss.stopCoalescing()
	if s.hub.unregister(ss) && s.ctx.Err() == nil {
		s.chat.Presence(ss.actor.User, "offline")
	}
	ss.conn.CloseNow()
}

// pinger pings connections that have been silent for a while, so that
// dead ones are noticed and closed; at most a few pings are in flight.
func (s *Server) pinger() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.PingEvery / 3)
	defer t.Stop()
	sem := make(chan struct{}, 32)
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		for _, ss := range s.hub.sessions() {
			ss.mu.Lock()
			idle := now.Sub(ss.lastRead) > s.opts.PingEvery
			ss.mu.Unlock()
			if !idle {
				continue
			}
			select {
			case sem <- struct{}{}:
			case <-s.ctx.Done():
				return
			}
			go func() {
				defer func() { <-sem }()
				ctx, cancel := context.WithTimeout(s.ctx, 15*time.Second)
				defer cancel()
				if err := ss.conn.Ping(ctx); err != nil {
					if !errors.Is(err, context.Canceled) {
						ss.logger().Debug("ping failed", "err", err)
					}
					ss.closeWith(websocket.StatusGoingAway, "")
					return
				}
				ss.mu.Lock()
				ss.lastRead = time.Now()
				ss.mu.Unlock()
			}()
		}
	}
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(proto.Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}}))
}

// AuthFunc adapts a function to Authenticator.
type AuthFunc func(r *http.Request) (Identity, error)

// Authenticate implements Authenticator.
func (f AuthFunc) Authenticate(r *http.Request) (Identity, error) { return f(r) }
