package ws

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestRecordConnStopsAtRecordEnds: whatever the sizes of the records
// and of the reads asked, no read returns bytes of two records, and the
// stream comes out whole.
func TestRecordConnStopsAtRecordEnds(t *testing.T) {
	record := func(typ byte, body []byte) []byte {
		return append([]byte{typ, 3, 3, byte(len(body) >> 8), byte(len(body))}, body...)
	}
	for _, tc := range []struct {
		name   string
		bodies []int
		read   int
	}{
		{"small records, large reads", []int{1, 20, 300}, 4096},
		{"an empty record", []int{10, 0, 10}, 4096},
		{"reads smaller than a header", []int{40, 40}, 3},
		{"records larger than reads", []int{16 << 10, 5000}, 1000},
		{"one byte at a time", []int{7, 1, 2}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stream []byte
			var ends []int // offsets where records end
			for i, n := range tc.bodies {
				stream = append(stream, record(byte(20+i), bytes.Repeat([]byte{byte(i)}, n))...)
				ends = append(ends, len(stream))
			}
			a, b := net.Pipe()
			defer a.Close()
			go func() { b.Write(stream); b.Close() }()
			rc := &recordConn{Conn: a}
			var got []byte
			buf := make([]byte, tc.read)
			for {
				n, err := rc.Read(buf)
				start := len(got)
				got = append(got, buf[:n]...)
				for _, e := range ends {
					if start < e && len(got) > e {
						t.Fatalf("a read of %d bytes at %d crosses the record end at %d", n, start, e)
					}
				}
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(got, stream) {
				t.Fatalf("read %d bytes, want the %d sent", len(got), len(stream))
			}
		})
	}
}

// TestAwaitInputOverTLS: over a record-by-record TLS listener the
// reader's wait is shallow once a read came out short (all the TLS
// connection held was handed out), returns when the client sends more,
// and frames of every size (several records, several frames in one
// record) arrive whole and in order. A read that fills what the library
// asked cannot tell whether more is held: the wait is then the library's
// own, until the next short read (a pong at the latest, PingEvery).
func TestAwaitInputOverTLS(t *testing.T) {
	ch := make(chan accepted, 1)
	ts := httptest.NewUnstartedServer(acceptHandler(t, ch))
	ts.Listener = RecordListener(ts.Listener)
	ts.StartTLS()
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cc, _, err := websocket.Dial(ctx, strings.Replace(ts.URL, "https", "wss", 1), &websocket.DialOptions{HTTPClient: ts.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.CloseNow()
	cc.SetReadLimit(1 << 20)
	a := <-ch
	defer a.conn.CloseNow()
	a.conn.SetReadLimit(1 << 20)
	if a.out.raw == nil || a.out.tls == nil {
		t.Fatal("a TLS connection over RecordListener has no raw socket: the wait is never shallow")
	}
	for i, size := range []int{2, 100, 511, 512, 513, 4000, 16 << 10, 40 << 10, 3} {
		msg := bytes.Repeat([]byte{byte('a' + i)}, size)
		waited := make(chan struct{})
		go func() { a.out.awaitInput(); close(waited) }()
		if i > 0 {
			// The previous round ended with a small message, read
			// short: nothing is pending.
			select {
			case <-waited:
				t.Fatalf("before message %d: awaitInput returned with nothing sent (drained %v)", i, a.out.tls.drained.Load())
			case <-time.After(50 * time.Millisecond):
			}
		}
		if err := cc.Write(ctx, websocket.MessageText, msg); err != nil {
			t.Fatal(err)
		}
		select {
		case <-waited:
		case <-time.After(10 * time.Second):
			t.Fatalf("message %d (%d bytes): awaitInput is still waiting", i, size)
		}
		_, got, err := a.conn.Read(ctx)
		if err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("message %d: read %d bytes, %v; want %d", i, len(got), err, size)
		}
		// And back: writes share the TLS connection.
		if err := a.conn.Write(ctx, websocket.MessageText, msg); err != nil {
			t.Fatal(err)
		}
		if _, back, err := cc.Read(ctx); err != nil || !bytes.Equal(back, msg) {
			t.Fatalf("echo %d: %d bytes, %v", i, len(back), err)
		}
		if err := cc.Write(ctx, websocket.MessageText, []byte("k")); err != nil {
			t.Fatal(err)
		}
		a.out.awaitInput()
		if _, got, err := a.conn.Read(ctx); err != nil || string(got) != "k" {
			t.Fatalf("small message after %d: %q, %v", i, got, err)
		}
		if !a.out.tls.drained.Load() {
			t.Fatalf("a one-byte message after message %d was not read short", i)
		}
	}
	// Several frames in one TLS record, as a client may write them: the
	// first read leaves the others in the TLS connection or the buffer,
	// and the wait must not sit on them.
	for _, tc := range []struct{ frames, size int }{{3, 8}, {9, 122}} { // 122+6: 4 frames fill the 512-byte buffer exactly; 9 fit one record of the client's first (MSS-sized) ones
		raw, err := tls.Dial("tcp", ts.Listener.Addr().String(), ts.Client().Transport.(*http.Transport).TLSClientConfig)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		fmt.Fprintf(raw, "GET / HTTP/1.1\r\nHost: relais\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
		a := <-ch
		defer a.conn.CloseNow()
		if resp, err := http.ReadResponse(bufio.NewReader(raw), nil); err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
			t.Fatalf("upgrade: %v %v", resp, err)
		}
		var record []byte
		for i := range tc.frames {
			body := bytes.Repeat([]byte{byte('A' + i%26)}, tc.size)
			// A masked text frame (a zero mask keeps the bytes as they are).
			record = append(record, 0x81, 0x80|byte(tc.size), 0, 0, 0, 0)
			record = append(record, body...)
		}
		if _, err := raw.Write(record); err != nil { // one write: one record
			t.Fatal(err)
		}
		for i := range tc.frames {
			done := make(chan struct{})
			go func() { a.out.awaitInput(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("%d frames in one record: the wait sits on frame %d", tc.frames, i)
			}
			_, got, err := a.conn.Read(ctx)
			if err != nil || len(got) != tc.size || got[0] != byte('A'+i%26) {
				t.Fatalf("%d frames in one record: frame %d is %q, %v", tc.frames, i, got, err)
			}
		}
	}
}
