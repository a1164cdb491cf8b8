package pgtest

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
)

// Proxy forwards TCP connections on loopback to a PostgreSQL server until a
// test cuts it: the way tests see what a store does when the database
// becomes unreachable or restarts, and when it comes back.
type Proxy struct {
	t      testing.TB
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener
	cut   CutMode
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// CutMode is what a cut Proxy does with new connections.
type CutMode int

const (
	serving CutMode = iota
	// Reset accepts them and resets them at once, as a host whose server
	// is down.
	Reset
	// Refuse stops listening: connects are refused.
	Refuse
	// Drop accepts them and never answers, as a host that is unreachable
	// behind a firewall.
	Drop
)

// NewProxy starts a Proxy to target (host:port), stopped when t ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{t: t, target: target, addr: ln.Addr().String(), conns: make(map[net.Conn]bool)}
	p.serve(ln)
	t.Cleanup(func() {
		p.mu.Lock()
		if p.ln != nil {
			p.ln.Close()
		}
		p.closeConns()
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

// URL returns u with its host replaced by the proxy's.
func (p *Proxy) URL(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		p.t.Fatal(err)
	}
	pu.Host = p.addr
	return pu.String()
}

func (p *Proxy) serve(ln net.Listener) {
	p.ln = ln
	p.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			switch p.cut {
			case Reset:
				c.(*net.TCPConn).SetLinger(0)
				c.Close()
			case Drop:
				p.conns[c] = true
			default:
				p.conns[c] = true
				p.wg.Go(func() { p.forward(c) })
			}
			p.mu.Unlock()
		}
	})
}

func (p *Proxy) forward(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	p.mu.Lock()
	if err != nil || !p.conns[c] { // cut meanwhile
		p.mu.Unlock()
		c.Close()
		if up != nil {
			up.Close()
		}
		return
	}
	p.conns[up] = true
	p.mu.Unlock()
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		dst.Close()
		src.Close()
	}
	wg.Go(func() { pipe(up, c) })
	pipe(c, up)
	wg.Wait()
}

// closeConns closes every connection, both ends. p.mu is held.
func (p *Proxy) closeConns() {
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
		delete(p.conns, c)
	}
}

// Cut closes every connection the proxy carries and treats new ones as
// mode says.
func (p *Proxy) Cut(mode CutMode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = mode
	p.closeConns()
	if mode == Refuse {
		p.ln.Close()
		p.ln = nil
	}
}

// Restore forwards new connections again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut == Drop {
		p.closeConns()
	}
	if p.ln == nil {
		ln, err := net.Listen("tcp", p.addr)
		if err != nil {
			p.t.Fatalf("listen again on %s: %v", p.addr, err)
		}
		p.serve(ln)
	}
	p.cut = serving
}
