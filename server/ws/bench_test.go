package ws

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"relais/server/chat"
	"relais/server/proto"
)

// BenchmarkFanout1k measures the fan-out of one committed event to the
// 1,000 connected members of a room: the bus handler (hub.handle) queues
// the shared frame on every session, and each session's writer goroutine
// writes what queued up as one websocket message on a real loopback TCP
// connection. The clients are raw sockets that only count frames, so that
// the allocations reported are the node's alone: they must not grow with
// the number of recipients (compare sessions=10). In the paced runs each
// event is delivered everywhere before the next is handed over, so every
// session starts its writer goroutine for every event (the worst case for
// allocations); otherwise writers batch what queues up meanwhile.
func BenchmarkFanout1k(b *testing.B) {
	for _, n := range []int{10, 1000} {
		for _, paced := range []bool{false, true} {
			name := fmt.Sprintf("sessions=%d", n)
			if paced {
				name += "/paced"
			}
			b.Run(name, func(b *testing.B) { benchFanout(b, n, paced) })
		}
	}
}

func benchFanout(b *testing.B, sessions int, paced bool) {
	const room = "r-nbench000-abcdefghijklmnop"
	h := newHub(func(string) ([]string, error) { return []string{room}, nil })
	srv := &Server{hub: h, log: slog.New(slog.DiscardHandler), stats: newStats()}
	srv.opts.defaults()
	srv.ctx, srv.cancel = context.WithCancel(context.Background())
	defer srv.cancel()

	ts, accepted := acceptServer(b)

	readers := make([]*rawReader, sessions)
	for i := range readers {
		rr, err := dialRaw(ts.Listener.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer rr.conn.Close()
		readers[i] = rr
		a := <-accepted
		ss := &session{srv: srv, conn: a.conn, out: a.out, sent: map[string]uint64{},
			actor: chat.Actor{User: fmt.Sprintf("u-nbench000-%016d", i), Device: "d-abcdefghijklmnop"}}
		ss.cond.L = &ss.mu
		if _, err := h.register(ss); err != nil {
			b.Fatal(err)
		}
		go rr.count()
	}

	data := make([]byte, 160)
	rand.Read(data)
	frame := proto.Encode(proto.Event{T: proto.TEvent, Room: room, TS: 1763900000123, From: "u-nbench000-0000000000000000",
		Dev: "d-abcdefghijklmnop", CID: "c-1", Type: proto.EvEncrypted, Data: base64.StdEncoding.EncodeToString(data)})
	subject := proto.SubjectEvents(room)
	var seq uint64
	deliver := func() {
		seq++
		// The bus hands each message over in a buffer of its own.
		env := proto.AppendEnvelope(make([]byte, 0, len(frame)+11), proto.Envelope{Kind: proto.EnvEvent, Seq: seq, Frame: frame})
		h.handle(subject, env)
	}
	waitAll := func() {
		for _, rr := range readers {
			for rr.frames.Load() < int64(seq) {
				time.Sleep(20 * time.Microsecond)
			}
		}
	}
	// Warm-up, untimed: each session's first events allocate its queue
	// and spare slices once for its whole life, which is not a cost of
	// the events measured.
	for range 3 {
		deliver()
		waitAll()
	}
	b.SetBytes(int64(len(frame) * sessions))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		deliver()
		if paced {
			waitAll()
			continue
		}
		// Flow control, as the bounded queues would impose on a real
		// publisher: stay within a few hundred frames of the slowest.
		if seq%256 == 0 {
			for _, rr := range readers {
				for rr.frames.Load()+512 < int64(seq) {
					time.Sleep(20 * time.Microsecond)
				}
			}
		}
	}
	deadline := time.Now().Add(time.Minute)
	for _, rr := range readers {
		for rr.frames.Load() < int64(seq) {
			if time.Now().After(deadline) {
				b.Fatalf("a reader got %d of %d frames", rr.frames.Load(), seq)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(seq-3)*float64(sessions)/b.Elapsed().Seconds(), "deliveries/s")
	for _, s := range h.sessions() {
		s.conn.CloseNow()
	}
}

// rawReader is a websocket client reduced to counting the frames of the
// messages it receives (one JSON frame per line), without allocating.
type rawReader struct {
	conn   net.Conn
	br     *bufio.Reader
	frames atomic.Int64
}

func dialRaw(addr string) (*rawReader, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	key := make([]byte, 16)
	rand.Read(key)
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: %s\r\n\r\n",
		addr, base64.StdEncoding.EncodeToString(key))
	br := bufio.NewReaderSize(c, 64<<10)
	status, err := br.ReadString('\n')
	if err != nil || !strings.Contains(status, " 101 ") {
		c.Close()
		return nil, fmt.Errorf("handshake: %q %v", status, err)
	}
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, err
		}
		if line == "\r\n" {
			break
		}
	}
	return &rawReader{conn: c, br: br}, nil
}

// count reads server frames (unmasked) until the connection ends.
func (r *rawReader) count() {
	var hdr [8]byte
	for {
		b0, err := r.br.ReadByte()
		if err != nil {
			return
		}
		b1, err := r.br.ReadByte()
		if err != nil {
			return
		}
		n := int64(b1 & 0x7f)
		switch n {
		case 126:
			if _, err := io.ReadFull(r.br, hdr[:2]); err != nil {
				return
			}
			n = int64(binary.BigEndian.Uint16(hdr[:2]))
		case 127:
			if _, err := io.ReadFull(r.br, hdr[:8]); err != nil {
				return
			}
			n = int64(binary.BigEndian.Uint64(hdr[:8]))
		}
		text := b0&0x0f == 1 || b0&0x0f == 0
		lines := int64(1)
		for n > 0 {
			chunk, err := r.br.Peek(int(min(n, int64(r.br.Size()))))
			if err != nil && len(chunk) == 0 {
				return
			}
			if text {
				for _, c := range chunk {
					if c == '\n' {
						lines++
					}
				}
			}
			r.br.Discard(len(chunk))
			n -= int64(len(chunk))
		}
		if text && b0&0x80 != 0 {
			r.frames.Add(lines)
		}
	}
}
