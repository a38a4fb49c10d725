package ws

import (
	"context"
	"net"
	"sync"

	"github.com/coder/websocket"
)

// gatherConn lets a session hand a whole websocket message to the socket
// in one write. Through the connection's small write buffer (writeBuffer,
// kept small for idle connections), the library would send a message of
// several frames in two or three writes; gathered, a batch of events costs
// one system call on the node and one wake-up of the client.
//
// Outside a gathered message, writes (pongs, close frames) go straight
// through. All writes take mu, so bytes reach the socket in the order the
// library produced them.
type gatherConn struct {
	net.Conn
	mu   sync.Mutex
	held *[]byte // non-nil while a message is gathered
}

// maxGather is the largest message gathered: past it, the extra writes
// cost little next to the copy.
const maxGather = 16 << 10

// frameHeader is the most a websocket frame header takes.
const frameHeader = 14

var gatherPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func (c *gatherConn) Write(p []byte) (int, error) {
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
