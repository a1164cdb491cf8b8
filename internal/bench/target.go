package bench

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/bulkheadhq/bulkhead"
)

// TargetOptions says which server to load.
type TargetOptions struct {
	// URL is the base URL of a running server. Empty means: start one in
	// this process, on a temporary data directory, for the run.
	URL string
	// Token is the operator token of the server at URL. Ignored in
	// process, where the bench sets its own.
	Token string
	// DatabaseURL is passed to bulkhead.Config.DatabaseURL in process.
	// Empty means the embedded SQLite database in the temporary directory.
	DatabaseURL string
	// Log receives the in-process server's error logs. Defaults to
	// io.Discard.
	Log io.Writer
}

// Target is the server under load.
type Target struct {
	// URL is the server's base URL, without a trailing slash.
	URL string
	// App is the in-process server; nil with TargetOptions.URL.
	App *bulkhead.App

	token   string
	dataDir string
	stop    func() error
	api     *apiClient
}

// TargetInfo describes the target in reports.
type TargetInfo struct {
	// Mode is "in-process" or "url"; URL is where the server listens;
	// Database describes its database.
	Mode     string `json:"mode"`
	URL      string `json:"url"`
	Database string `json:"database"`
	// Note says how the numbers are to be read, such as the client and
	// server sharing the machine.
	Note string `json:"note"`
	// The machine and runtime of the load generator (and, in process, of
	// the server).
	GOMAXPROCS int    `json:"gomaxprocs"`
	NumCPU     int    `json:"num_cpu"`
	GoVersion  string `json:"go_version"`
	GOOS       string `json:"goos"`
	GOARCH     string `json:"goarch"`
}

// Open connects to the server opts names, or starts one in process. Close
// releases it.
func Open(ctx context.Context, opts TargetOptions) (*Target, error) {
	if opts.URL != "" {
		if opts.Token == "" {
			return nil, errors.New("a target --url needs the operator --token (or BULKHEAD_ADMIN_TOKEN)")
		}
		t := &Target{URL: strings.TrimRight(opts.URL, "/"), token: opts.Token, stop: func() error { return nil }}
		t.api = newAPIClient(t.URL)
		if err := t.api.waitHealthy(ctx); err != nil {
			return nil, err
		}
		return t, nil
	}
	dir, err := os.MkdirTemp("", "bulkhead-bench-*")
	if err != nil {
		return nil, err
	}
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	token := "bench_" + randomWord(32)
	app, err := bulkhead.New(bulkhead.Config{
		DataDir:         dir,
		DatabaseURL:     opts.DatabaseURL,
		AdminToken:      token,
		ShutdownTimeout: 5 * time.Second,
		// The bench's clients say which address they come from.
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")},
		// Errors only: a line per request or per rejection would cost the
		// server time the bench is measuring.
		Logger: slog.New(slog.NewJSONHandler(logw, &slog.HandlerOptions{Level: slog.LevelError})),
	})
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start the in-process server: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		app.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan error, 1)
	go func() { served <- app.Serve(sctx, ln) }()
	t := &Target{URL: "http://" + ln.Addr().String(), App: app, token: token, dataDir: dir}
	t.api = newAPIClient(t.URL)
	t.stop = func() error {
		t.api.hc.CloseIdleConnections()
		cancel()
		err := <-served
		err = errors.Join(err, app.Close())
		return errors.Join(err, os.RemoveAll(dir))
	}
	if err := t.api.waitHealthy(ctx); err != nil {
		t.stop()
		return nil, err
	}
	return t, nil
}

// Close stops the in-process server and removes its data directory.
func (t *Target) Close() error { return t.stop() }

// Info describes t for reports.
func (t *Target) Info(databaseURL string) TargetInfo {
	info := TargetInfo{URL: t.URL, GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(),
		GoVersion: runtime.Version(), GOOS: runtime.GOOS, GOARCH: runtime.GOARCH}
	if t.App == nil {
		info.Mode = "url"
		info.Database = "(the server's)"
		info.Note = "remote server: latencies include the network between this client and the server"
		return info
	}
	info.Mode = "in-process"
	info.Database = databaseURL
	if info.Database == "" {
		info.Database = "embedded SQLite in a temporary directory"
	}
	info.Note = fmt.Sprintf("the server runs in this process: the load generator and the server share "+
		"its %d CPUs (GOMAXPROCS=%d), so the generator's own work is in these numbers", runtime.NumCPU(), runtime.GOMAXPROCS(0))
	return info
}

func randomWord(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))[:n]
}

// newTransport returns a transport for one stream of at most conns requests
// in flight: one connection per worker, kept alive between requests.
func newTransport(conns int) *http.Transport {
	return &http.Transport{
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          conns,
		MaxIdleConnsPerHost:   conns,
		MaxConnsPerHost:       conns,
		IdleConnTimeout:       90 * time.Second,
		DisableCompression:    true,
		ResponseHeaderTimeout: 0, // the request's context bounds it
	}
}

// apiClient makes the setup calls: provisioning is not measured, so it
// retries the answers that say "later" (429, 503).
type apiClient struct {
	base string
	hc   *http.Client
}

func newAPIClient(base string) *apiClient {
	return &apiClient{base: base, hc: &http.Client{Transport: newTransport(64), Timeout: 60 * time.Second}}
}

func (c *apiClient) waitHealthy(ctx context.Context) error {
	var last error
	for range 50 {
		req, _ := http.NewRequestWithContext(ctx, "GET", c.base+"/healthz", nil)
		resp, err := c.hc.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /healthz: %s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("the server at %s is not healthy: %w", c.base, last)
}

// APIError is a setup call's unexpected answer: its status, and the code
// and detail of its problem+json body when it has one.
type APIError struct {
	Method, Path string
	Status       int
	Code, Detail string
}

// Error says which call got which answer.
func (e *APIError) Error() string {
	s := fmt.Sprintf("%s %s: %d", e.Method, e.Path, e.Status)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// do sends one setup request with body as JSON and decodes the answer into
// out (if not nil). It fails unless the status is one of want.
func (c *apiClient) do(ctx context.Context, method, path, token string, body, out any, want ...int) error {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(raw))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		if (resp.StatusCode == 429 || resp.StatusCode == 503) && attempt < 20 {
			wait := 100 * time.Millisecond
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
				wait = min(time.Duration(s)*time.Second, 5*time.Second)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
			continue
		}
		for _, w := range want {
			if resp.StatusCode == w {
				if out != nil {
					if err := json.Unmarshal(b, out); err != nil {
						return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
					}
				}
				return nil
			}
		}
		e := &APIError{Method: method, Path: path, Status: resp.StatusCode}
		var p struct{ Code, Detail, Title string }
		if json.Unmarshal(b, &p) == nil {
			e.Code, e.Detail = p.Code, cmp.Or(p.Detail, p.Title)
		}
		return e
	}
}
