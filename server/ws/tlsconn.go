package ws

import (
	"crypto/tls"
	"net"
	"sync/atomic"
	"syscall"
)

// RecordListener returns ln with its connections reading one TLS record
// at a time, for net/http's ServeTLS to put TLS over. A TLS connection
// reads ahead from its socket into buffers of its own, so the socket's
// readiness does not tell whether it holds input; read record by record,
// it holds none once it has handed out a short read (tlsReader), and an
// idle websocket's reader can then wait on the socket in a shallow frame
// (socket.awaitInput) over TLS as over plain TCP: its stack shrinks.
func RecordListener(ln net.Listener) net.Listener { return recordListener{ln} }

type recordListener struct{ net.Listener }

func (l recordListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &recordConn{Conn: c}, nil
}

// recordHeader is the length of a TLS record header: type, version,
// length (RFC 8446 §5.1).
const recordHeader = 5

// recordConn never returns bytes past the end of the TLS record being
// read: it reads the header first, then at most the length it gives.
// That costs a second read per record, not a byte of memory.
type recordConn struct {
	net.Conn
	left int // bytes of the current record's body still to read
	hdr  [recordHeader]byte
	hdrN int // header bytes read so far, while left == 0
}

func (c *recordConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.left == 0 {
		n, err := c.Conn.Read(p[:min(len(p), recordHeader-c.hdrN)])
		copy(c.hdr[c.hdrN:], p[:n])
		if c.hdrN += n; c.hdrN == recordHeader {
			c.left, c.hdrN = int(c.hdr[3])<<8|int(c.hdr[4]), 0
		}
		return n, err
	}
	n, err := c.Conn.Read(p[:min(len(p), c.left)])
	c.left -= n
	return n, err
}

// tlsReader is the connection a websocket over TLS is given (the library
// reads the hijacked connection itself): drained is true after a read
// shorter than asked, which empties the TLS connection's plaintext;
// record by record (recordConn), it then holds no ciphertext either.
type tlsReader struct {
	*tls.Conn
	drained atomic.Bool
}

func (r *tlsReader) Read(p []byte) (int, error) {
	n, err := r.Conn.Read(p)
	r.drained.Store(n < len(p))
	return n, err
}

// recordAligned returns a reader for conn and its socket when conn is a
// TLS connection over a recordConn; nil otherwise.
func recordAligned(conn net.Conn) (*tlsReader, syscall.RawConn) {
	tc, ok := conn.(*tls.Conn)
	if !ok {
		return nil, nil
	}
	rc, ok := tc.NetConn().(*recordConn)
	if !ok {
		return nil, nil
	}
	sc, ok := rc.Conn.(syscall.Conn)
	if !ok {
		return nil, nil
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, nil
	}
	return &tlsReader{Conn: tc}, raw
}
