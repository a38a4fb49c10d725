//go:build !unix

package ws

// pending is always true where the socket cannot be peeked at: the
// reader then waits in the library's read, with a deeper stack.
func pending(uintptr) bool { return true }
