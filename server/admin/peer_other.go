//go:build !linux

package admin

import "net"

// peerUser cannot read the peer's credentials on this system.
func peerUser(net.Conn) string { return "unknown" }
