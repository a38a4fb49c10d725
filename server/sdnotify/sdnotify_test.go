package sdnotify

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// listen opens a real unixgram socket like systemd's notification socket.
func listen(t *testing.T, name string) *net.UnixConn {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func receive(t *testing.T, c *net.UnixConn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 4096)
	n, err := c.Read(b)
	if err != nil {
		t.Fatalf("no datagram received: %v", err)
	}
	return string(b[:n])
}

// TestSdNotifyReachesTheSocket sends READY=1 and STOPPING=1 to a socket
// named by a path and to an abstract one, as systemd hands out both.
func TestSdNotifyReachesTheSocket(t *testing.T) {
	// Unix socket paths are limited to 108 bytes: t.TempDir can be longer.
	dir, err := os.MkdirTemp("", "sdn")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	r := make([]byte, 8)
	rand.Read(r)
	for _, name := range []string{filepath.Join(dir, "notify"), "@relais-sdnotify-test-" + hex.EncodeToString(r)} {
		t.Run(name, func(t *testing.T) {
			c := listen(t, name)
			t.Setenv("NOTIFY_SOCKET", name)
			for _, state := range []string{Ready, Stopping} {
				sent, err := Notify(state)
				if err != nil || !sent {
					t.Fatalf("Notify(%s) = %v, %v", state, sent, err)
				}
				if got := receive(t, c); got != state {
					t.Fatalf("received %q, want %q", got, state)
				}
			}
		})
	}
}

// TestSdNotifyWithoutSystemdDoesNothing: no $NOTIFY_SOCKET, nothing sent
// and no error, so `relais serve` runs the same outside systemd.
func TestSdNotifyWithoutSystemdDoesNothing(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := Notify(Ready); sent || err != nil {
		t.Fatalf("Notify without a socket = %v, %v", sent, err)
	}
}

// TestSdNotifyBadSocketErrors: a socket that is relative, empty after '@'
// or absent is reported, not silently ignored.
func TestSdNotifyBadSocketErrors(t *testing.T) {
	for _, name := range []string{"relative/notify", "@", filepath.Join(t.TempDir(), "absent")} {
		if sent, err := Send(name, Ready); sent || err == nil {
			t.Errorf("Send(%q) = %v, %v; want an error", name, sent, err)
		}
	}
}
