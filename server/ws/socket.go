package ws

import (
	"bufio"
	"context"
	"net"
	"sync"
	"syscall"

	"github.com/coder/websocket"
)

// socket is what a session's websocket reads from and writes to.
//
// Writes: it lets a session hand a whole websocket message to the socket
// in one write. Through the connection's small write buffer (writeBuffer,
// kept small for idle connections), the library would send a message of
// several frames in two or three writes; gathered, a batch of events costs
// one system call on the node and one wake-up of the client. Outside a
// gathered message, writes (pongs, close frames) go straight through. All
// writes take mu, so bytes reach the socket in the order the library
// produced them.
//
// Reads: see awaitInput.
type socket struct {
	net.Conn
	mu   sync.Mutex
	held *[]byte // non-nil while a message is gathered

	in  *bufio.Reader   // what the library reads through
	raw syscall.RawConn // the socket, for awaitInput; nil when it cannot tell
	tls *tlsReader      // over TLS: whether the TLS connection holds input
	rmu sync.Mutex      // held while the library reads on its own (session.close)
}

// awaitInput returns once the client has sent something (or the
// connection is closed). It waits in a shallow call, so that the runtime
// can shrink the stack of an idle connection's reader, which the
// library's read path and the handling of frames grow to 8 KiB: that
// stack is half of what an idle connection costs.
func (c *socket) awaitInput() {
	if c == nil || c.raw == nil {
		return
	}
	c.rmu.Lock()
	buffered := c.in.Buffered()
	c.rmu.Unlock()
	if buffered > 0 || c.tls != nil && !c.tls.drained.Load() {
		return
	}
	// The poller forgets a readiness it saw before this call, so the
	// function looks at the socket itself: false (nothing there yet)
	// makes Read wait for the socket to become readable and call it
	// again. Errors (a closed socket) are for the library's read.
	c.raw.Read(pending)
}

// maxGather is the largest message gathered: past it, the extra writes
// cost little next to the copy.
const maxGather = 16 << 10

// frameHeader is the most a websocket frame header takes.
const frameHeader = 14

var gatherPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func (c *socket) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held != nil {
		*c.held = append(*c.held, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// writeMessage writes one message of the session, gathered.
func (s *session) writeMessage(ctx context.Context, b []byte) error {
	c := s.out
	if len(b)+frameHeader <= writeBuffer || len(b) > maxGather || c == nil {
		return s.conn.Write(ctx, websocket.MessageText, b)
	}
	held := gatherPool.Get().(*[]byte)
	if cap(*held) < len(b)+frameHeader {
		*held = make([]byte, 0, len(b)+frameHeader)
	}
	c.mu.Lock()
	c.held = held
	c.mu.Unlock()
	err := s.conn.Write(ctx, websocket.MessageText, b)
	c.mu.Lock()
	defer c.mu.Unlock()
	held = c.held // a pong may have made it grow
	c.held = nil
	if err == nil {
		// Nothing else writes meanwhile: the library's own frames wait
		// for mu.
		_, err = c.Conn.Write(*held)
	}
	if cap(*held) <= maxGather+frameHeader {
		*held = (*held)[:0]
		gatherPool.Put(held)
	}
	return err
}
