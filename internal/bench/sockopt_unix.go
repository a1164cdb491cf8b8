//go:build unix

package bench

import "syscall"

// readBufferControl sets the socket's receive buffer before it connects,
// so that the window it offers from the start is that small.
func readBufferControl(n int) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
		}); err != nil {
			return err
		}
		return serr
	}
}
