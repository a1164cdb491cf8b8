package bench

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// AggressorMode is how the aggressor of bench noisy misbehaves.
type AggressorMode string

const (
	// ModeFlood sends requests far over the aggressor's plan: 75% heavy
	// lists, 25% creates. It runs twice, on NoisyOptions.AggressorPlan and
	// on an unlimited plan.
	ModeFlood AggressorMode = "flood"
	// ModeSlowBody holds connections, each a record POST whose declared
	// body is sent a few bytes a second and never finished.
	ModeSlowBody AggressorMode = "slow-body"
	// ModeSlowRead asks for pages of 1000 records on connections with a
	// tiny receive buffer, and does not read the answers.
	ModeSlowRead AggressorMode = "slow-read"
	// ModeLoginFlood is clients without credentials posting logins to
	// slugs that name no tenant, back to back.
	ModeLoginFlood AggressorMode = "login-flood"
	// ModeRotate rotates the data key of the aggressor's tenant, whose
	// collection with two encrypted fields holds
	// NoisyOptions.RotateRecords records, again as soon as each
	// rotation's re-encryption ends. It is not among AggressorModes, so
	// "all" leaves it out: its seeding alone takes about a phase on
	// SQLite and up to three on PostgreSQL, on a small machine.
	ModeRotate AggressorMode = "rotate"
	// ModeExport exports the aggressor's tenant, whose collection holds
	// NoisyOptions.ExportRecords records, again as soon as each export
	// ends. Opt-in like ModeRotate: its seeding is long.
	ModeExport AggressorMode = "export"
)

// AggressorModes are the modes, in the order "all" runs them.
var AggressorModes = []AggressorMode{ModeFlood, ModeSlowBody, ModeSlowRead, ModeLoginFlood}

// optInModes are the modes "all" leaves out, which run only when named.
var optInModes = []AggressorMode{ModeRotate, ModeExport}

// ParseAggressorModes parses a comma-separated list of modes, where "all"
// stands for every one of AggressorModes (not the opt-in ModeRotate). A
// mode named twice runs once, where it was first named.
func ParseAggressorModes(s string) ([]AggressorMode, error) {
	var modes []AggressorMode
	add := func(m AggressorMode) {
		if !slices.Contains(modes, m) {
			modes = append(modes, m)
		}
	}
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		switch m := AggressorMode(name); {
		case name == "all":
			for _, m := range AggressorModes {
				add(m)
			}
		case slices.Contains(AggressorModes, m) || slices.Contains(optInModes, m):
			add(m)
		default:
			return nil, fmt.Errorf("unknown aggressor mode %q: want flood, slow-body, slow-read, login-flood, rotate, export or all", name)
		}
	}
	return modes, nil
}

// needsTenant reports whether the mode's aggressor is a tenant with API
// keys; the login flood takes no credential.
func (m AggressorMode) needsTenant() bool { return m != ModeLoginFlood }

// rawDialer opens connections to the target for the aggressors that misuse
// them, without net/http.
type rawDialer struct {
	addr   string // host:port
	host   string // the Host header
	prefix string // the base URL's path, without a trailing slash
	tls    *tls.Config
	// readBuffer, when positive, is the receive buffer asked for, before
	// the connection is made where the system allows (see readBufferControl).
	readBuffer int
}

func newRawDialer(base string, readBuffer int) (*rawDialer, error) {
	u, err := url.Parse(base)
	if err != nil {
		return nil, err
	}
	d := &rawDialer{host: u.Host, prefix: strings.TrimRight(u.Path, "/"), readBuffer: readBuffer}
	port := u.Port()
	switch u.Scheme {
	case "http":
		port = cmp.Or(port, "80")
	case "https":
		port = cmp.Or(port, "443")
		d.tls = &tls.Config{ServerName: u.Hostname()}
	default:
		return nil, fmt.Errorf("target URL %s: the scheme must be http or https", base)
	}
	d.addr = net.JoinHostPort(u.Hostname(), port)
	return d, nil
}

func (d *rawDialer) dial(ctx context.Context) (net.Conn, error) {
	nd := &net.Dialer{Timeout: 5 * time.Second}
	if d.readBuffer > 0 {
		nd.Control = readBufferControl(d.readBuffer)
	}
	c, err := nd.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok && d.readBuffer > 0 {
		tc.SetReadBuffer(d.readBuffer)
	}
	if d.tls == nil {
		return c, nil
	}
	tc := tls.Client(c, d.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return tc, nil
}

// answer is the head of an HTTP answer.
type answer struct {
	status     int
	retryAfter time.Duration
	err        error
}

// readAnswer reads the head of an answer from br and leaves its body
// unread. A failure means the server closed the connection unanswered.
func readAnswer(br *bufio.Reader) answer {
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return answer{err: fmt.Errorf("%w: %v", errUnanswered, err)}
	}
	a := answer{status: resp.StatusCode}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		a.retryAfter = time.Duration(s) * time.Second
	}
	return a
}

// slowBody is the slow-body aggressor: each request is a connection with a
// record POST that declares size bytes of body and sends rate of them a
// second, until the server answers or closes.
type slowBody struct {
	d    *rawDialer
	f    *tenantFixture
	size int
	rate int
}

// send holds one slow POST. It returns the server's status when it
// answers, and errUnanswered when it closes the connection without.
func (a *slowBody) send(ctx context.Context, seq int64) (int, error) {
	conn, err := a.d.dial(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	const start = `{"title":"`
	var b bytes.Buffer
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		a.d.prefix+recordsPath(a.f.Slug), a.d.host, a.f.key(seq), a.size, start)
	if _, err := conn.Write(b.Bytes()); err != nil {
		return 0, fmt.Errorf("%w: %v", errUnanswered, err)
	}
	answered := make(chan answer, 1)
	go func() { answered <- readAnswer(bufio.NewReaderSize(conn, 1024)) }()
	sent := len(start)
	filler := bytes.Repeat([]byte("a"), a.rate)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case ans := <-answered:
			return ans.status, ans.err
		case <-tick.C:
			// The last byte is never sent: the body never ends.
			n := min(a.rate, a.size-1-sent)
			if n <= 0 {
				continue
			}
			if _, err := conn.Write(filler[:n]); err != nil {
				// The server has closed, perhaps after answering.
				ans := <-answered
				return ans.status, ans.err
			}
			sent += n
		}
	}
}

// slowRead is the slow-read aggressor: each request asks for path (a page
// of records, query included) with one of f's keys, on a new connection
// with a tiny receive buffer, and reads nothing of an admitted answer
// after its head.
type slowRead struct {
	d    *rawDialer
	f    *tenantFixture
	path string
}

// send makes one slow read. A refusal is returned at once, after waiting
// its Retry-After (at most a second) as a client that backs off would. An
// admitted answer (200) is held unread until the server closes the
// connection or ctx ends, and then returned as answered: a second request
// follows it on the connection, so that the server is left with a request
// to read and its close comes as a reset, and one byte is read a second to
// notice it.
func (a *slowRead) send(ctx context.Context, seq int64) (int, error) {
	conn, err := a.d.dial(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	req := fmt.Appendf(nil, "GET %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n",
		a.d.prefix+a.path, a.d.host, a.f.key(seq))
	if _, err := conn.Write(req); err != nil {
		return 0, fmt.Errorf("%w: %v", errUnanswered, err)
	}
	ans := readAnswer(bufio.NewReaderSize(conn, 256))
	if ans.err != nil {
		return 0, ans.err
	}
	if ans.status != http.StatusOK {
		wait := min(cmp.Or(ans.retryAfter, time.Second), time.Second)
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		return ans.status, nil
	}
	conn.Write(req)
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		one := make([]byte, 1)
		for {
			if _, err := conn.Read(one); err != nil {
				return
			}
			time.Sleep(time.Second)
		}
	}()
	select {
	case <-closed:
	case <-ctx.Done():
	}
	return ans.status, nil
}

// largeRecordBody is the n-th record of the slow reader's own collection
// when it asks for large records: size bytes of padding.
func largeRecordBody(n int64, size int) []byte {
	b := fmt.Appendf(nil, `{"title":"large %d","pad":"`, n)
	b = append(b, bytes.Repeat([]byte("x"), size)...)
	return append(b, `"}`...)
}

// login posts a login for email to the tenant slug, without credentials,
// from client address addr (see sendFrom).
func (c *client) login(ctx context.Context, slug, email, password, addr string) (int, error) {
	body, err := json.Marshal(struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}{email, password})
	if err != nil {
		return 0, err
	}
	return c.sendFrom(ctx, "POST", "/v1/tenants/"+slug+"/auth/login", "", body, nil, addr)
}

// randomSlug returns a slug that matches tenant.SlugPattern and names no
// tenant: a letter and 8 to 23 random letters and digits, with a hyphen
// in the middle of about half of them. No bench tenant's slug ("bn-…")
// has a hyphen so early.
func randomSlug() string {
	const alnum = "abcdefghijklmnopqrstuvwxyz0123456789"
	n := 9 + rand.IntN(16)
	b := make([]byte, n)
	b[0] = byte('a' + rand.IntN(26))
	hyphen := rand.IntN(2) == 0
	for i := 1; i < n; i++ {
		if hyphen && i == n/2 {
			b[i] = '-'
			continue
		}
		b[i] = alnum[rand.IntN(len(alnum))]
	}
	return string(b)
}
