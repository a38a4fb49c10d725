// Package sdnotify tells systemd about the service's state (sd_notify(3)):
// READY=1 once the node serves, STOPPING=1 when it begins to stop, so a
// unit of Type=notify starts its dependants at the right time and shows
// the truth in `systemctl status`.
package sdnotify

import (
	"errors"
	"fmt"
	"net"
	"os"
)

// The states the node reports.
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
)

// Notify sends state to the socket named by $NOTIFY_SOCKET. Outside a
// notify-type service (the variable unset) it does nothing and returns
// false.
func Notify(state string) (bool, error) {
	return Send(os.Getenv("NOTIFY_SOCKET"), state)
}

// Send writes state as one datagram to socket, an absolute path or, with
// a leading '@', an abstract socket name. An empty socket is not an
// error: there is no service manager to tell.
func Send(socket, state string) (bool, error) {
	if socket == "" {
		return false, nil
	}
	// Go's net package maps a leading '@' to the abstract namespace's NUL
	// byte itself; anything else must be an absolute path, as systemd
	// never hands out relative ones.
	if socket[0] != '/' && socket[0] != '@' {
		return false, fmt.Errorf("sdnotify: NOTIFY_SOCKET %q is neither an absolute path nor an abstract socket", socket)
	}
	if len(socket) < 2 {
		return false, errors.New("sdnotify: NOTIFY_SOCKET names no socket")
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("sdnotify: %w", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("sdnotify: send %s: %w", state, err)
	}
	return true, nil
}
