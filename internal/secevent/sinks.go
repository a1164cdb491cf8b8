package secevent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
)

// WriterSink writes each batch to W, one JSON line per event, in one Write.
type WriterSink struct {
	mu sync.Mutex
	W  io.Writer
}

// Send implements Sink.
func (s *WriterSink) Send(ctx context.Context, lines [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.W.Write(bytes.Join(lines, nil))
	return err
}

// OpenFile opens path for appending security events, creating it with mode
// 0600: events name accounts, addresses and tenants.
func OpenFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("security events file: %w", err)
	}
	return f, nil
}

// WebhookSink POSTs each batch to URL as JSON lines
// (Content-Type: application/x-ndjson). Any answer but a 2xx is an error,
// which the Queue retries.
type WebhookSink struct {
	URL string
	// Client sends the requests. Defaults to http.DefaultClient.
	Client *http.Client
	// Header is added to every request, such as an Authorization header
	// the SIEM requires.
	Header http.Header
}

// Send implements Sink.
func (s *WebhookSink) Send(ctx context.Context, lines [][]byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(bytes.Join(lines, nil)))
	if err != nil {
		return err
	}
	for k, v := range s.Header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", "application/x-ndjson")
	c := s.Client
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("security events webhook answered %s", resp.Status)
	}
	return nil
}

// Open returns a Queue for the destination spec — "stdout", "file:PATH"
// or an "https://…" URL — and a function that closes what Open opened
// after the queue. An empty spec returns (nil, nil, nil).
func Open(spec string, opts Options) (*Queue, func() error, error) {
	noop := func() error { return nil }
	switch {
	case spec == "":
		return nil, noop, nil
	case spec == "stdout":
		return NewQueue(&WriterSink{W: os.Stdout}, opts), noop, nil
	case strings.HasPrefix(spec, "file:"):
		path := strings.TrimPrefix(spec, "file:")
		if path == "" {
			return nil, nil, fmt.Errorf("security events: file: needs a path")
		}
		f, err := OpenFile(path)
		if err != nil {
			return nil, nil, err
		}
		return NewQueue(&WriterSink{W: f}, opts), f.Close, nil
	case strings.HasPrefix(spec, "https://"):
		u, err := url.Parse(spec)
		if err != nil || u.Host == "" {
			return nil, nil, fmt.Errorf("security events: bad URL %q", redact(spec))
		}
		return NewQueue(&WebhookSink{URL: spec, Client: opts.Client}, opts), noop, nil
	}
	return nil, nil, fmt.Errorf("security events: unknown destination %q (use stdout, file:PATH or https://…)", redact(spec))
}

// redact drops what could be a secret (user info, query) from a
// destination named in an error.
func redact(spec string) string {
	if u, err := url.Parse(spec); err == nil && u.Scheme != "" && u.Host != "" {
		u.User, u.RawQuery = nil, ""
		return u.String()
	}
	if i := strings.LastIndex(spec, "@"); i >= 0 {
		scheme, _, _ := strings.Cut(spec, "://")
		spec = scheme + "://…" + spec[i:]
	}
	if i := strings.Index(spec, "?"); i >= 0 {
		spec = spec[:i] + "?…"
	}
	return spec
}

// Multi publishes every event to each of its Publishers.
type Multi []Publisher

// Publish implements Publisher.
func (m Multi) Publish(ev Event) {
	for _, p := range m {
		p.Publish(ev)
	}
}
