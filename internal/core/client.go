package core

import (
	"context"
	"net/netip"
)

type clientKey struct{}

// WithClient returns ctx carrying the address of the client a request came
// from, as the HTTP layer determined it (the peer, or the address a trusted
// proxy forwarded). Login protection and containment read it.
func WithClient(ctx context.Context, addr netip.Addr) context.Context {
	return context.WithValue(ctx, clientKey{}, addr)
}

// ClientFrom returns the client address WithClient stored, or the zero
// Addr.
func ClientFrom(ctx context.Context) netip.Addr {
	a, _ := ctx.Value(clientKey{}).(netip.Addr)
	return a
}
