package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr returns the address of the client a request came from: the
// peer's, unless the peer is a trusted proxy, in which case X-Forwarded-For
// is read from its right end, skipping trusted proxies, and the first
// address that is not one is the client. A header from an untrusted peer is
// ignored: any client can write one.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := remoteAddr(r)
	if !peer.IsValid() || !isTrusted(peer, trusted) {
		return peer
	}
	hops := r.Header.Values("X-Forwarded-For")
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		parts := strings.Split(hops[i], ",")
		for j := len(parts) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(parts[j]))
			if err != nil {
				return client // a malformed hop: trust nothing beyond it
			}
			client = a.Unmap()
			if !isTrusted(client, trusted) {
				return client
			}
		}
	}
	return client
}

// remoteAddr is the peer's address, or the zero Addr when it is not an IP
// address (a Unix socket, a test's made-up value).
func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
