//go:build !unix

package bench

import "syscall"

// readBufferControl does nothing here: the receive buffer is set once
// connected (net.TCPConn.SetReadBuffer), the window first offered is the
// system's.
func readBufferControl(n int) func(network, address string, c syscall.RawConn) error {
	return nil
}
