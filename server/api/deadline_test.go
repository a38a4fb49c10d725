package api_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	"relais/cluster/nodetest"
	"relais/server/api"
	"relais/server/client"
	"relais/server/node"
	"relais/server/proto"
)

// testBodies are test-sized body deadlines: 2 s for a JSON body, and an
// upload must average 1000 bytes per second after a 2 s grace.
var testBodies = nodetest.WithOptions(func(o *node.Options) {
	o.Bodies = api.BodyDeadlines{Timeout: 2 * time.Second, UploadGrace: 2 * time.Second, UploadMinRate: 1000}
})

// slowRequest writes a request's head, then its body one byte every
// interval, and returns how long the node kept the connection open
// (failing the test if still open after limit) and what it answered.
func slowRequest(t *testing.T, addr, head, body string, every, limit time.Duration) (time.Duration, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := range len(body) {
			select {
			case <-stop:
				return
			case <-time.After(every):
			}
			if _, err := conn.Write([]byte{body[i]}); err != nil {
				return
			}
		}
	}()
	conn.SetReadDeadline(start.Add(limit))
	var answer strings.Builder
	_, err = io.Copy(&answer, conn)
	took := time.Since(start)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the connection was still open after %v", took.Round(time.Millisecond))
	}
	return took, answer.String()
}

// TestSlowBodiesAreCut: a body that trickles in (one byte a second) is
// cut at its deadline, on JSON endpoints (a sign-in) and on uploads
// (a file chunk, a key backup): slow-loris connections cannot pile up.
func TestSlowBodiesAreCut(t *testing.T) {
	n := nodetest.Start(t, testBodies)
	c := n.NewUser("Lent Malveillant")
	ctx := context.Background()
	room := group(t, c)
	up, err := c.BeginUpload(ctx, proto.UploadRequest{Room: room, Name: "lent.txt", Size: 100})
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(n.URL(), "http://")
	for _, tc := range []struct {
		name, head string
		answer     string // the status line and the error code
	}{
		{"sign-in", "POST /api/v1/login HTTP/1.1\r\nHost: " + host + "\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n", "408 request_timeout"},
		{"file chunk", "PUT /api/v1/media/uploads/" + url.PathEscape(up.ID) + "?offset=0 HTTP/1.1\r\nHost: " + host +
			"\r\nAuthorization: Bearer " + c.Token() + "\r\nContent-Length: 100\r\n\r\n", "400 interrupted"},
		{"key backup", "PUT /api/v1/backups/slow HTTP/1.1\r\nHost: " + host +
			"\r\nAuthorization: Bearer " + c.Token() + "\r\nContent-Type: application/octet-stream\r\nContent-Length: 100\r\n\r\n", "408 request_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// The start of a valid JSON body: the decoder waits for more.
			body := `{"email":"` + strings.Repeat("a", 90)
			took, answer := slowRequest(t, n.Addr(), tc.head, body, time.Second, 6*time.Second)
			if took < 1500*time.Millisecond {
				t.Fatalf("closed after %v, before the deadline", took)
			}
			status, code, _ := strings.Cut(tc.answer, " ")
			if !strings.HasPrefix(answer, "HTTP/1.1 "+status) || !strings.Contains(answer, `"code":"`+code+`"`) {
				t.Fatalf("answered %q, want %s", answer, tc.answer)
			}
		})
	}
}

// TestSlowHonestUploadsAndIdleWebsocketsLive: a chunk arriving above the
// minimum rate, however long it takes, is accepted; a websocket idle past
// every body deadline stays open.
func TestSlowHonestUploadsAndIdleWebsocketsLive(t *testing.T) {
	n := nodetest.Start(t, testBodies)
	c := n.NewUser("Lent Honnete")
	ctx := context.Background()
	room := group(t, c)
	ws := dialSynced(t, ctx, c)
	defer ws.CloseNow()

	const size = 7000 // 3.5 s at 2000 bytes/s: past the 2 s grace, above 1000 bytes/s
	up, err := c.BeginUpload(ctx, proto.UploadRequest{Room: room, Name: "lent.txt", Size: size})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.Dial("tcp", n.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT /api/v1/media/uploads/%s?offset=0 HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n",
		url.PathEscape(up.ID), strings.TrimPrefix(n.URL(), "http://"), c.Token(), size)
	for sent := 0; sent < size; sent += 200 {
		time.Sleep(100 * time.Millisecond)
		if _, err := conn.Write([]byte(strings.Repeat("a", 200))); err != nil {
			t.Fatalf("cut after %d bytes: %v", sent, err)
		}
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(status, " 200 ") {
		t.Fatalf("slow honest chunk answered %q (%v)", status, err)
	}

	// The websocket has been idle 3.5 s, past the 2 s body deadline.
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := ws.Call(pctx, "ping", nil, nil); err != nil {
		t.Fatalf("websocket after idling: %v", err)
	}
}

// group creates an unencrypted group room of c's.
func group(t *testing.T, c *client.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws := dialSynced(t, ctx, c)
	defer ws.CloseNow()
	var res map[string]string
	if err := ws.Call(ctx, "create_room", map[string]any{"kind": "group", "name": "Lenteur", "encrypted": false}, &res); err != nil {
		t.Fatal(err)
	}
	return res["room"]
}

// dialSynced opens a websocket of c and syncs it.
func dialSynced(t *testing.T, ctx context.Context, c *client.Client) *client.Conn {
	t.Helper()
	ws, err := c.Dial(ctx, 16)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ws.Sync(ctx, nil); err != nil {
		ws.CloseNow()
		t.Fatal(err)
	}
	return ws
}
