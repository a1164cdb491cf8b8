package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulkheadhq/bulkhead/tenant"
)

func TestParseAggressorModes(t *testing.T) {
	t.Parallel()
	all := []AggressorMode{ModeFlood, ModeSlowBody, ModeSlowRead, ModeLoginFlood}
	for _, tt := range []struct {
		in      string
		want    []AggressorMode
		wantErr bool
	}{
		{in: "flood", want: []AggressorMode{ModeFlood}},
		{in: "slow-body", want: []AggressorMode{ModeSlowBody}},
		{in: "slow-read", want: []AggressorMode{ModeSlowRead}},
		{in: "login-flood", want: []AggressorMode{ModeLoginFlood}},
		{in: "all", want: all},
		{in: "login-flood, slow-body", want: []AggressorMode{ModeLoginFlood, ModeSlowBody}},
		{in: "slow-read,all", want: []AggressorMode{ModeSlowRead, ModeFlood, ModeSlowBody, ModeLoginFlood}},
		{in: "flood,flood", want: []AggressorMode{ModeFlood}},
		// rotate is opt-in: named, never through "all".
		{in: "rotate", want: []AggressorMode{ModeRotate}},
		{in: "all,rotate", want: []AggressorMode{ModeFlood, ModeSlowBody, ModeSlowRead, ModeLoginFlood, ModeRotate}},
		{in: "rotate,flood", want: []AggressorMode{ModeRotate, ModeFlood}},
		{in: "Rotate", wantErr: true},
		{in: "", wantErr: true},
		{in: "slowloris", wantErr: true},
		{in: "flood,", wantErr: true},
		{in: "Flood", wantErr: true},
	} {
		got, err := ParseAggressorModes(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("ParseAggressorModes(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseAggressorModes(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestRandomSlugIsValidAndNoBenchTenant(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	hyphens := 0
	for range 10_000 {
		s := randomSlug()
		if !tenant.Slug(s).Valid() {
			t.Fatalf("randomSlug() = %q, which does not match %s", s, tenant.SlugPattern)
		}
		if len(s) < 9 || len(s) > 24 {
			t.Fatalf("randomSlug() = %q, %d characters; want 9 to 24", s, len(s))
		}
		if strings.HasPrefix(s, "bn-") {
			t.Fatalf("randomSlug() = %q, which could be a bench tenant's", s)
		}
		if strings.Contains(s, "-") {
			hyphens++
		}
		seen[s] = true
	}
	if len(seen) < 9_990 {
		t.Errorf("10,000 random slugs hold only %d distinct ones", len(seen))
	}
	if hyphens == 0 || hyphens == 10_000 {
		t.Errorf("%d of 10,000 random slugs have a hyphen; want some, not all", hyphens)
	}
}

func TestReadAnswer(t *testing.T) {
	t.Parallel()
	head := "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\nContent-Length: 100000\r\n\r\n{"
	a := readAnswer(bufio.NewReader(strings.NewReader(head)))
	if a.err != nil || a.status != 429 || a.retryAfter != 3*time.Second {
		t.Errorf("readAnswer(429 head) = %+v, want status 429, Retry-After 3s", a)
	}
	for _, in := range []string{"", "HTTP/1.1 200 OK\r\nContent-"} {
		a := readAnswer(bufio.NewReader(strings.NewReader(in)))
		if !errors.Is(a.err, errUnanswered) {
			t.Errorf("readAnswer(%q) error = %v, want errUnanswered", in, a.err)
		}
	}
}

func TestLargeRecordBody(t *testing.T) {
	t.Parallel()
	b := largeRecordBody(7, 5000)
	var rec struct{ Title, Pad string }
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatalf("largeRecordBody is not JSON: %v", err)
	}
	if rec.Title != "large 7" || len(rec.Pad) != 5000 {
		t.Errorf("largeRecordBody(7, 5000) = title %q and %d bytes of padding", rec.Title, len(rec.Pad))
	}
}

// fakeServer accepts connections on a loopback port and hands each to
// serve.
func fakeServer(t *testing.T, serve func(c net.Conn)) *rawDialer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	d, err := newRawDialer("http://"+ln.Addr().String(), 1024)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSlowBody(t *testing.T) {
	t.Parallel()
	f := &tenantFixture{Slug: "acme", Keys: []string{"k0", "k1"}}
	t.Run("Answered", func(t *testing.T) {
		t.Parallel()
		heads := make(chan *http.Request, 1)
		d := fakeServer(t, func(c net.Conn) {
			req, err := http.ReadRequest(bufio.NewReader(c))
			if err != nil {
				return
			}
			heads <- req
			io.WriteString(c, "HTTP/1.1 413 Request Entity Too Large\r\nContent-Length: 0\r\n\r\n")
		})
		a := &slowBody{d: d, f: f, size: 64 << 10, rate: 4}
		status, err := a.send(context.Background(), 1)
		if err != nil || status != 413 {
			t.Fatalf("send = %d, %v; want the server's 413", status, err)
		}
		req := <-heads
		if req.Method != "POST" || req.URL.Path != recordsPath("acme") || req.ContentLength != 64<<10 ||
			req.Header.Get("Authorization") != "Bearer k1" || req.Header.Get("Content-Type") != "application/json" {
			t.Errorf("request head = %s %s, Content-Length %d, headers %v", req.Method, req.URL.Path, req.ContentLength, req.Header)
		}
	})
	t.Run("Closed", func(t *testing.T) {
		t.Parallel()
		d := fakeServer(t, func(c net.Conn) { http.ReadRequest(bufio.NewReader(c)) })
		a := &slowBody{d: d, f: f, size: 64 << 10, rate: 4}
		if _, err := a.send(context.Background(), 0); !errors.Is(err, errUnanswered) {
			t.Errorf("send to a server that closes = %v, want errUnanswered", err)
		}
	})
}

// An admitted slow read is held until the server closes the connection,
// and then counts as answered.
func TestSlowReadHeldUntilClosed(t *testing.T) {
	t.Parallel()
	f := &tenantFixture{Slug: "acme", Keys: []string{"k0"}}
	paths := make(chan string, 1)
	d := fakeServer(t, func(c net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			return
		}
		paths <- req.URL.RequestURI()
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n")
	})
	a := &slowRead{d: d, f: f, path: recordsPath("acme") + "?limit=1000"}
	status, err := a.send(context.Background(), 0)
	if err != nil || status != 200 {
		t.Errorf("send = %d, %v; want 200 once the server closed", status, err)
	}
	if got, want := <-paths, recordsPath("acme")+"?limit=1000"; got != want {
		t.Errorf("asked for %q, want %q", got, want)
	}
}

func TestNewRawDialer(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		base, addr, host, prefix string
		tls                      bool
	}{
		{base: "http://127.0.0.1:8080", addr: "127.0.0.1:8080", host: "127.0.0.1:8080"},
		{base: "http://example.com", addr: "example.com:80", host: "example.com"},
		{base: "https://example.com/api/", addr: "example.com:443", host: "example.com", prefix: "/api", tls: true},
	} {
		d, err := newRawDialer(tt.base, 0)
		if err != nil {
			t.Errorf("newRawDialer(%q): %v", tt.base, err)
			continue
		}
		if d.addr != tt.addr || d.host != tt.host || d.prefix != tt.prefix || (d.tls != nil) != tt.tls {
			t.Errorf("newRawDialer(%q) = addr %q, host %q, prefix %q, TLS %v", tt.base, d.addr, d.host, d.prefix, d.tls != nil)
		}
	}
	if _, err := newRawDialer("ftp://example.com", 0); err == nil {
		t.Error("newRawDialer(ftp://…) succeeded, want an error")
	}
}
