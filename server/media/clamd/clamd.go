// Package clamd is a client for the ClamAV daemon's socket protocol.
//
// It speaks the null-terminated ("z") form of the commands over a unix or TCP
// socket: zPING, zVERSION and zINSTREAM, which streams the content to scan
// as chunks prefixed by their 4-byte big-endian length and ended by a chunk
// of length zero. The daemon answers "stream: OK" or
// "stream: <signature> FOUND".
//
// The client tells three outcomes apart: a verdict (clean or infected, in a
// Result with a nil error), a stream larger than the daemon's
// StreamMaxLength (ErrSizeLimit), and a daemon that cannot give a verdict —
// not running, not answering in time, or answering with an error
// (ErrUnavailable). Only the last one is worth retrying later.
package clamd

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"path"
	"strings"
	"time"
)

// Defaults used when the corresponding Client field is zero.
const (
	DefaultTimeout   = 30 * time.Second
	DefaultChunkSize = 64 << 10
)

// maxReply bounds what is read of one reply. Replies are one short line.
const maxReply = 4 << 10

// ErrUnavailable reports that clamd gave no verdict: it could not be
// reached, it closed the connection, it did not answer within the timeout,
// or it answered with an error. A caller may hold the content and retry.
var ErrUnavailable = errors.New("clamd unavailable")

// ErrSizeLimit reports that the stream was longer than clamd's
// StreamMaxLength; clamd scanned nothing. Retrying does not help: raise
// StreamMaxLength in clamd.conf to at least the largest accepted file.
var ErrSizeLimit = errors.New("clamd: INSTREAM size limit exceeded")

// Result is clamd's verdict on one stream.
type Result struct {
	// Clean is true when no signature matched.
	Clean bool
	// Signature names the matched signature when Clean is false, as clamd
	// reports it (signatures of unofficial databases end in ".UNOFFICIAL").
	Signature string
}

// Client talks to one clamd. The zero value is not usable: set Network and
// Address, or use Parse. A Client is safe for concurrent use; each call
// opens its own connection.
type Client struct {
	// Network is "unix" or "tcp".
	Network string
	// Address is the socket path for "unix" and host:port for "tcp".
	Address string
	// Timeout bounds the connection and every read or write: a daemon that
	// makes no progress for that long is treated as unavailable. While the
	// verdict is awaited it is the time clamd may take to scan after the
	// last byte was sent, so it must cover the slowest scan of the largest
	// file. Zero means DefaultTimeout.
	Timeout time.Duration
	// ChunkSize is the size of the INSTREAM chunks. Zero means
	// DefaultChunkSize.
	ChunkSize int
}

// Parse returns a client for an address written as "unix:///path/to/socket"
// or "tcp://host:port" (as given by the --clamd flag).
func Parse(s string) (*Client, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("clamd address %q: %w", s, err)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("clamd address %q: want unix:///path or tcp://host:port", s)
	}
	switch u.Scheme {
	case "unix":
		if u.Host != "" || !path.IsAbs(u.Path) || path.Clean(u.Path) != u.Path || strings.ContainsFunc(u.Path, badPathRune) {
			return nil, fmt.Errorf("clamd address %q: want unix:// followed by an absolute, clean socket path", s)
		}
		return &Client{Network: "unix", Address: u.Path}, nil
	case "tcp":
		if u.Path != "" {
			return nil, fmt.Errorf("clamd address %q: unexpected path after host:port", s)
		}
		host, port, err := net.SplitHostPort(u.Host)
		if err != nil || host == "" || port == "" {
			return nil, fmt.Errorf("clamd address %q: want tcp://host:port", s)
		}
		return &Client{Network: "tcp", Address: u.Host}, nil
	default:
		return nil, fmt.Errorf("clamd address %q: scheme must be unix or tcp", s)
	}
}

// badPathRune reports characters refused in a socket path: controls (a
// NUL would cut the path) and what would not survive String and Parse.
func badPathRune(r rune) bool {
	return r < 0x20 || r == 0x7f || r == '?' || r == '#' || r == '%'
}

// String returns the address in the form Parse accepts.
func (c *Client) String() string {
	if c.Network == "unix" {
		return "unix://" + c.Address
	}
	return c.Network + "://" + c.Address
}

func (c *Client) timeout() time.Duration {
	if c.Timeout > 0 {
		return c.Timeout
	}
	return DefaultTimeout
}

func (c *Client) chunkSize() int {
	if c.ChunkSize > 0 {
		return c.ChunkSize
	}
	return DefaultChunkSize
}

// conn is one command's connection. Every read and write pushes the
// deadline forward by the client's timeout, capped by the context's
// deadline; cancelling the context unblocks any pending I/O.
type conn struct {
	net.Conn
	c        *Client
	ctx      context.Context
	stop     func() bool
	deadline time.Time // the context's deadline, or zero
}

func (c *Client) dial(ctx context.Context) (*conn, error) {
	d := net.Dialer{Timeout: c.timeout()}
	nc, err := d.DialContext(ctx, c.Network, c.Address)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, c.unavailable("connect", err)
	}
	cn := &conn{Conn: nc, c: c, ctx: ctx}
	cn.deadline, _ = ctx.Deadline()
	// An expired deadline makes blocked reads and writes return at once.
	cn.stop = context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	return cn, nil
}

func (cn *conn) Close() error {
	cn.stop()
	return cn.Conn.Close()
}

func (cn *conn) extend() {
	if cn.ctx.Err() != nil {
		return // keep the expired deadline set by the AfterFunc
	}
	d := time.Now().Add(cn.c.timeout())
	if !cn.deadline.IsZero() && cn.deadline.Before(d) {
		d = cn.deadline
	}
	cn.SetDeadline(d)
}

func (cn *conn) Write(p []byte) (int, error) {
	cn.extend()
	return cn.Conn.Write(p)
}

func (cn *conn) Read(p []byte) (int, error) {
	cn.extend()
	return cn.Conn.Read(p)
}

// fail turns an I/O error into the error to return: the context's error if
// it is done, otherwise ErrUnavailable.
func (cn *conn) fail(op string, err error) error {
	if cerr := cn.ctx.Err(); cerr != nil {
		return cerr
	}
	return cn.c.unavailable(op, err)
}

func (c *Client) unavailable(op string, err error) error {
	return fmt.Errorf("clamd %s %s: %w: %w", op, c, ErrUnavailable, err)
}

// readReply reads one null-terminated reply (or up to EOF) and returns it
// without the terminator and surrounding space.
func (cn *conn) readReply() (string, error) {
	var buf bytes.Buffer
	b := make([]byte, 512)
	for buf.Len() < maxReply {
		n, err := cn.Read(b)
		if i := bytes.IndexByte(b[:n], 0); i >= 0 {
			buf.Write(b[:i])
			return strings.TrimSpace(buf.String()), nil
		}
		buf.Write(b[:n])
		if err == io.EOF && buf.Len() > 0 {
			return strings.TrimSpace(buf.String()), nil
		}
		if err != nil {
			return "", err
		}
	}
	return "", fmt.Errorf("reply longer than %d bytes", maxReply)
}

// command sends a z-command without payload and returns its reply.
func (c *Client) command(ctx context.Context, cmd string) (string, error) {
	cn, err := c.dial(ctx)
	if err != nil {
		return "", err
	}
	defer cn.Close()
	if _, err := cn.Write([]byte("z" + cmd + "\x00")); err != nil {
		return "", cn.fail(cmd, err)
	}
	reply, err := cn.readReply()
	if err != nil {
		return "", cn.fail(cmd, err)
	}
	return reply, nil
}

// Ping checks that clamd answers. It returns nil, ErrUnavailable (wrapped)
// or the context's error.
func (c *Client) Ping(ctx context.Context) error {
	reply, err := c.command(ctx, "PING")
	if err != nil {
		return err
	}
	if reply != "PONG" {
		return c.unavailable("PING", fmt.Errorf("unexpected reply %q", reply))
	}
	return nil
}

// Version returns clamd's version line, such as
// "ClamAV 1.4.6/27000/Mon Nov 23 08:00:00 2026".
func (c *Client) Version(ctx context.Context) (string, error) {
	reply, err := c.command(ctx, "VERSION")
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(reply, "ClamAV ") {
		return "", c.unavailable("VERSION", fmt.Errorf("unexpected reply %q", reply))
	}
	return reply, nil
}

// Scan streams r to clamd with INSTREAM and returns its verdict. An
// infected stream is a Result with Clean false and a nil error. The errors
// are ErrSizeLimit, ErrUnavailable (both wrapped), the context's error, or
// an error reading r (wrapped, returned as is).
func (c *Client) Scan(ctx context.Context, r io.Reader) (Result, error) {
	cn, err := c.dial(ctx)
	if err != nil {
		return Result{}, err
	}
	defer cn.Close()

	werr := c.stream(cn, r)
	var rerr *readError
	if errors.As(werr, &rerr) {
		return Result{}, rerr.err
	}
	// clamd closes the connection as soon as the stream exceeds
	// StreamMaxLength, after writing its reply: read the reply even when the
	// write failed.
	reply, err := cn.readReply()
	if err != nil {
		if werr != nil {
			return Result{}, cn.fail("INSTREAM", werr)
		}
		return Result{}, cn.fail("INSTREAM", err)
	}
	res, err := parseReply(reply)
	if err != nil {
		if errors.Is(err, ErrSizeLimit) {
			return Result{}, err
		}
		return Result{}, c.unavailable("INSTREAM", err)
	}
	if werr != nil {
		// A verdict after a failed write would be on a partial stream.
		return Result{}, cn.fail("INSTREAM", werr)
	}
	return res, nil
}

// readError marks an error from the caller's reader, as opposed to one from
// the connection.
type readError struct{ err error }

func (e *readError) Error() string { return e.err.Error() }

func (c *Client) stream(cn *conn, r io.Reader) error {
	if _, err := cn.Write([]byte("zINSTREAM\x00")); err != nil {
		return err
	}
	buf := make([]byte, 4+c.chunkSize())
	for {
		n, err := io.ReadFull(r, buf[4:])
		if n > 0 {
			binary.BigEndian.PutUint32(buf, uint32(n))
			if _, werr := cn.Write(buf[:4+n]); werr != nil {
				return werr
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return &readError{fmt.Errorf("clamd INSTREAM: read content: %w", err)}
		}
	}
	_, err := cn.Write([]byte{0, 0, 0, 0})
	return err
}

// parseReply interprets the reply to INSTREAM.
func parseReply(reply string) (Result, error) {
	body, ok := strings.CutPrefix(reply, "stream: ")
	switch {
	case ok && body == "OK":
		return Result{Clean: true}, nil
	case ok && strings.HasSuffix(body, " FOUND"):
		sig := strings.TrimSpace(strings.TrimSuffix(body, " FOUND"))
		if sig == "" {
			return Result{}, fmt.Errorf("malformed reply %q", reply)
		}
		return Result{Signature: sig}, nil
	case strings.Contains(reply, "size limit exceeded"):
		return Result{}, ErrSizeLimit
	case strings.HasSuffix(reply, " ERROR"):
		return Result{}, fmt.Errorf("clamd error: %q", reply)
	default:
		return Result{}, fmt.Errorf("unexpected reply %q", reply)
	}
}
