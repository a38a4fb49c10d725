package ws

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"relais/server/chat"
	"relais/server/proto"
	"relais/server/ratelimit"
	"relais/server/store"
)

// Close codes of the protocol (4000–4999 are the application's).
const (
	closeSlowConsumer websocket.StatusCode = 4008 // the queue filled up: resync
	closeRevoked      websocket.StatusCode = 4001 // signed out, revoked or deactivated
	closeFlood        websocket.StatusCode = 4029 // too many refused frames
)

// session is one websocket connection of one device.
//
// Outgoing frames go through a bounded queue. A writer goroutine runs only
// while the queue is non-empty, so an idle connection costs no goroutine
// but its reader; a client that does not read fills its queue and is
// disconnected, never holding more than the bound in memory.
type session struct {
	srv   *Server
	conn  *websocket.Conn
	out   *socket // the socket under conn
	actor chat.Actor

	rooms map[string]struct{} // owned by hub.mu

	mu      sync.Mutex
	cond    sync.Cond // signals writing == false
	queue   []*outFrame
	spare   []*outFrame
	qbytes  int
	writing bool
	writer  func() // s.writeLoop, bound by startWriter
	paused  bool   // a resync is writing directly; frames wait in the queue
	closed  bool
	// sent is the last event seq written per room, to drop events a
	// resync already delivered. Written by the writer, or under mu while
	// paused.
	sent map[string]uint64

	// lmu guards the rate limits' buckets and the frames kept over them
	// (limits.go); buckets is nil until the first limited frame.
	lmu             sync.Mutex
	buckets         []ratelimit.Bucket
	pendingReads    map[string]uint64
	pendingPresence string
	flushTimer      *time.Timer

	// remoteDir is held while a directory search waits for the peers.
	remoteDir atomic.Bool

	refused  int // consecutive refused frames
	lastRead time.Time
}

// logger is the session's logger. It is built when something is logged,
// which is rare, rather than kept: every idle connection would carry it.
func (s *session) logger() *slog.Logger {
	return s.srv.log.With("user", s.actor.User, "device", s.actor.Device)
}

func (s *session) enqueue(f *outFrame) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if len(s.queue) >= s.srv.opts.QueueFrames || s.qbytes+len(f.data) > s.srv.opts.QueueBytes {
		s.closed = true
		s.queue, s.qbytes = nil, 0
		s.mu.Unlock()
		// Closing writes a frame: never on the fan-out's goroutine.
		go s.close(closeSlowConsumer, "too slow: reconnect and resync")
		s.logger().Info("slow consumer disconnected")
		return
	}
	s.queue = append(s.queue, f)
	s.qbytes += len(f.data)
	if !s.writing && !s.paused {
		s.startWriter()
	}
	s.mu.Unlock()
}

// startWriter starts the writer goroutine; s.mu is held. The method value
// is bound once per session, so that starting a writer, which the fan-out
// may do for every recipient of an event, allocates nothing.
func (s *session) startWriter() {
	s.writing = true
	if s.writer == nil {
		s.writer = s.writeLoop
	}
	go s.writer()
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// writeLoop drains the queue, writing whatever is queued as one websocket
// message of newline-separated frames, and exits when the queue is empty.
func (s *session) writeLoop() {
	for {
		s.mu.Lock()
		if len(s.queue) == 0 || s.closed || s.paused {
			s.writing = false
			s.cond.Broadcast()
			s.mu.Unlock()
			return
		}
		batch := s.queue
		s.queue, s.spare = s.spare[:0], nil
		s.qbytes = 0
		s.mu.Unlock()

		buf := bufPool.Get().(*bytes.Buffer)
		buf.Reset()
		for _, f := range batch {
			if f.seq != 0 {
				if f.seq <= s.sent[f.room] {
					continue // already delivered by a resync
				}
				s.sent[f.room] = f.seq
			}
			if buf.Len() > 0 {
				buf.WriteByte('\n')
			}
			buf.Write(f.data)
		}
		clear(batch)
		var err error
		if buf.Len() > 0 {
			// No cancellable context: coder/websocket would register
			// (allocate) a context callback for every write. A write
			// blocked on a client that stopped reading ends when the
			// connection is closed, which every way out of a session
			// does (slow consumer, revocation, shutdown, drop).
			err = s.writeMessage(context.Background(), buf.Bytes())
		}
		if buf.Cap() <= 1<<20 {
			bufPool.Put(buf)
		}
		s.mu.Lock()
		if s.spare == nil && cap(batch) <= 1024 {
			s.spare = batch[:0]
		}
		s.mu.Unlock()
		if err != nil {
			s.closeWith(websocket.StatusGoingAway, "")
			return
		}
	}
}

// pause stops the writer (waiting for a running write to finish) so that
// a resync can write directly without interleaving with queued frames.
func (s *session) pause() {
	s.mu.Lock()
	s.paused = true
	for s.writing {
		s.cond.Wait()
	}
	s.mu.Unlock()
}

// resume restarts the writer for whatever queued up during the pause.
func (s *session) resume() {
	s.mu.Lock()
	s.paused = false
	if len(s.queue) > 0 && !s.writing && !s.closed {
		s.startWriter()
	}
	s.mu.Unlock()
}

// reply queues a frame for this session only.
func (s *session) reply(b []byte) { s.enqueue(&outFrame{data: b}) }

func (s *session) closeWith(code websocket.StatusCode, reason string) {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.queue = nil
	s.mu.Unlock()
	if !already || code != websocket.StatusGoingAway {
		go s.close(code, reason)
	}
}

// close closes the connection with the closing handshake, in which the
// library reads the client's answer itself: the session's reader keeps
// out meanwhile (see awaitInput).
func (s *session) close(code websocket.StatusCode, reason string) {
	if s.out != nil {
		s.out.rmu.Lock()
		defer s.out.rmu.Unlock()
	}
	s.conn.Close(code, reason)
}

// readLoop reads and handles the client's frames until the connection
// ends, then unregisters the session.
func (s *session) readLoop() {
	defer s.srv.drop(s)
	for {
		s.out.awaitInput()
		typ, r, err := s.conn.Reader(s.srv.ctx)
		if err != nil {
			s.logClose(err)
			return
		}
		buf := bufPool.Get().(*bytes.Buffer)
		buf.Reset()
		_, err = buf.ReadFrom(r)
		if err != nil {
			bufPool.Put(buf)
			s.logClose(err)
			return
		}
		s.mu.Lock()
		s.lastRead = time.Now()
		s.mu.Unlock()
		if typ != websocket.MessageText {
			s.refuse("", proto.Errorf(proto.CodeBadFrame, "frames are JSON text messages"))
		} else {
			s.handle(buf.Bytes())
		}
		if buf.Cap() <= 1<<20 {
			bufPool.Put(buf)
		}
	}
}

func (s *session) logClose(err error) {
	switch websocket.CloseStatus(err) {
	case websocket.StatusNormalClosure, websocket.StatusGoingAway, websocket.StatusNoStatusRcvd:
		return
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return
	}
	s.logger().Debug("connection ended", "err", err)
}

// stopping reports whether err comes from the node shutting down rather
// than from a fault.
func (s *session) stopping(err error) bool {
	return s.srv.ctx.Err() != nil || errors.Is(err, store.ErrClosed)
}

// refuse answers a bad or refused frame with an error frame; a client that
// keeps sending refused frames is disconnected.
func (s *session) refuse(id string, err error) {
	pe := proto.AsError(err)
	if pe == nil && s.stopping(err) {
		// The node is shutting down under this request: it may or may not
		// have been committed, so the client must not see a failure but
		// resend the same id after reconnecting, and get the same ack.
		s.closeWith(websocket.StatusGoingAway, "node shutting down")
		return
	}
	if pe == nil {
		s.logger().Error("request failed", "err", err)
	} else {
		s.logger().Debug("request refused", "code", pe.Code, "msg", pe.Message)
	}
	s.reply(proto.ErrorFrameOf(id, err))
	s.refused++
	if s.refused > s.srv.opts.MaxRefused {
		s.closeWith(closeFlood, "too many refused frames")
	}
}
