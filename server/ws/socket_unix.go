//go:build unix

package ws

import (
	"errors"
	"syscall"
)

// pending reports whether the socket fd has bytes to read, an end or an
// error: anything but "nothing yet".
func pending(fd uintptr) bool {
	var b [1]byte
	_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	return !errors.Is(err, syscall.EAGAIN)
}
