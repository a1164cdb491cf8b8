package bulkhead

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bulkheadhq/bulkhead/internal/jobs"
	"github.com/bulkheadhq/bulkhead/store/pgstore"
	"github.com/bulkheadhq/bulkhead/store/pgstore/pgtest"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string // substring of the error; "" for valid
	}{
		{"Zero", Config{}, ""},
		{"SQLiteURL", Config{DatabaseURL: "sqlite:/tmp/x.db"}, ""},
		{"NegativeBody", Config{MaxBodyBytes: -1}, "MaxBodyBytes"},
		{"NegativeShutdown", Config{ShutdownTimeout: -1}, "ShutdownTimeout"},
		{"UnknownDatabase", Config{DatabaseURL: "mysql://x"}, "DatabaseURL"},
		{"ShortToken", Config{AdminToken: "short"}, "AdminToken"},
		{"EventsFile", Config{SecurityEvents: "file:/tmp/events.jsonl", Containment: "probes=5/1m,addresses=off"}, ""},
		{"EventsPlainHTTP", Config{SecurityEvents: "http://siem.example/in"}, "--security-events"},
		{"EventsNoPath", Config{SecurityEvents: "file:"}, "--security-events"},
		{"BadContainment", Config{Containment: "probes=lots"}, "--containment"},
		{"TLSCertOnly", Config{TLSCertFile: "c.pem"}, "TLSKeyFile"},
		{"TLSKeyOnly", Config{TLSKeyFile: "k.pem"}, "TLSCertFile"},
		{"NegativeKeyReload", Config{KeyReloadInterval: -1}, "KeyReloadInterval"},
		{"MetricsTenantsNone", Config{MetricsTenants: -1}, ""},
		{"MetricsTenantsTooMany", Config{MetricsTenants: MaxMetricsTenants + 1}, "--metrics-tenants"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("validate() = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

func TestConfigMetricsTenants(t *testing.T) {
	for in, want := range map[int]int{0: 50, -1: 0, 1: 1, 500: 500} {
		if got := (&Config{MetricsTenants: in}).metricsTenants(); got != want {
			t.Errorf("MetricsTenants %d gives %d labelled tenants, want %d", in, got, want)
		}
	}
}

// The operator token is generated once, kept with mode 0600, and reused.
func TestGeneratedAdminToken(t *testing.T) {
	dir := t.TempDir()
	app, err := New(Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	app.Close()
	path := filepath.Join(dir, "admin-token")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("admin-token mode = %v, want 0600", fi.Mode().Perm())
	}
	token, _ := os.ReadFile(path)
	app, err = New(Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	p, err := app.Core().Authenticate(context.Background(), strings.TrimSpace(string(token)))
	if err != nil || !p.IsOperator() {
		t.Errorf("Authenticate(generated token) = %v, %v; want the operator", p, err)
	}
}

// The data directory and everything New puts in it are readable by the
// process's user only; an existing data directory with looser permissions
// is tightened.
func TestDataDirModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("no group and other permissions on Windows")
	}
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	app, err := New(Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	var files []string
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", path, got, want)
		}
		rel, _ := filepath.Rel(dir, path)
		files = append(files, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".", "keys", "admin-token", "bulkhead.db", "tenants"} {
		if !slices.Contains(files, want) {
			t.Errorf("data directory holds %q, want %s among them", files, want)
		}
	}
}

// On shutdown, Serve stops accepting connections but lets a request already
// in flight finish and answer, then returns nil.
func TestGracefulShutdown(t *testing.T) {
	app, err := New(Config{DataDir: t.TempDir(), AdminToken: "test-operator-token-0123", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &readWatcher{Listener: inner}
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- app.Serve(ctx, ln) }()

	// A request whose body is still arriving when shutdown begins.
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"slug":"late","name":"Late"}`
	fmt.Fprintf(conn, "POST /v1/tenants HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-operator-token-0123\r\n"+
		"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:5])
	// Shutdown waits for a request the server is handling, but drops one
	// whose head it has not read yet: wait until the handler asks for the
	// rest of the body.
	<-ln.readingMore(conn.LocalAddr().String())

	cancel()
	// Wait until the listener is closed: new connections are refused.
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		c.Close()
	}
	fmt.Fprint(conn, body[5:])
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request got no answer: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Errorf("in-flight request = %d, want 201", res.StatusCode)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve = %v, want nil after a graceful shutdown", err)
	}
}

// A server on PostgreSQL without the owner role's URL warns as it starts
// that it cannot provision silo tenants, naming the setting; with the URL it
// does not.
func TestWarnsWithoutProvisionURL(t *testing.T) {
	pgtest.SuperURL(t)
	t.Parallel()
	d := pgtest.New(t, t)
	if err := pgstore.Migrate(context.Background(), d.OwnerURL(t), d.App); err != nil {
		t.Fatal(err)
	}
	if err := jobs.MigratePostgres(context.Background(), d.OwnerURL(t), d.App); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		provision string
		warn      bool
	}{
		{"Without", "", true},
		{"With", d.OwnerURL(t), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			app, err := New(Config{DataDir: t.TempDir(), DatabaseURL: d.AppURL(t), ProvisionURL: tc.provision,
				AdminToken: "test-operator-token-0123", Logger: slog.New(slog.NewTextHandler(&buf, nil))})
			if err != nil {
				t.Fatal(err)
			}
			defer app.Close()
			app.warnConfig()
			got := strings.Contains(buf.String(), "--provision-url") && strings.Contains(buf.String(), "level=WARN")
			if got != tc.warn {
				t.Errorf("start-up log warns about --provision-url: %v, want %v; log:\n%s", got, tc.warn, buf.String())
			}
		})
	}
}

// Security events reach the file of Config.SecurityEvents, written out when
// the App closes, and the ECS lines name the tenant.
func TestSecurityEventsFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "events.jsonl")
	app, err := New(Config{DataDir: dir, AdminToken: "test-operator-token-0123", Logger: slog.New(slog.DiscardHandler),
		SecurityEvents: "file:" + path})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.Handler())
	req := func(method, path, body string) {
		t.Helper()
		r, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer test-operator-token-0123")
		r.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode >= 300 {
			t.Fatalf("%s %s = %d", method, path, res.StatusCode)
		}
	}
	req("POST", "/v1/tenants", `{"slug":"acme","name":"Acme"}`)
	req("POST", "/v1/tenants/acme/api-keys", `{"name":"k","role":"admin"}`)
	req("PATCH", "/v1/tenants/acme", `{"status":"suspended"}`)
	mr, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
	mr.Header.Set("Authorization", "Bearer test-operator-token-0123")
	res, err := http.DefaultClient.Do(mr)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, result := range []string{"published", "dropped", "failed"} {
		if !bytes.Contains(metrics, []byte(`bulkhead_security_events_total{result="`+result+`"}`)) {
			t.Errorf("/metrics lacks bulkhead_security_events_total{result=%q}", result)
		}
	}
	srv.Close()
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var doc struct {
			Event struct {
				Action string `json:"action"`
			} `json:"event"`
			Org struct {
				Name string `json:"name"`
			} `json:"organization"`
			Service struct {
				Name string `json:"name"`
			} `json:"service"`
		}
		if err := json.Unmarshal([]byte(line), &doc); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if doc.Org.Name != "acme" || doc.Service.Name != "bulkhead" {
			t.Errorf("line %s: want organization.name acme and service.name bulkhead", line)
		}
		actions = append(actions, doc.Event.Action)
	}
	if want := []string{"api_key.create", "tenant.suspend"}; strings.Join(actions, ",") != strings.Join(want, ",") {
		t.Errorf("actions = %v, want %v", actions, want)
	}
}

// A blob URL no driver opens stops the server at start, naming the flag
// and the variable that set it.
func TestBadBlobURL(t *testing.T) {
	_, err := New(Config{DataDir: t.TempDir(), BlobURL: "nosuch://bucket", AdminToken: "test-operator-token-0123",
		Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "--blob-url") || !strings.Contains(err.Error(), "BULKHEAD_BLOB_URL") {
		t.Fatalf("New with a blob URL of no driver = %v, want an error naming --blob-url and BULKHEAD_BLOB_URL", err)
	}
}

// readWatcher is a listener whose connections tell, by the remote address,
// when the server asks for more after it has read something: for a request
// whose body is cut short, that the handler is reading the body.
type readWatcher struct {
	net.Listener
	mu    sync.Mutex
	chans map[string]chan struct{}
}

func (l *readWatcher) readingMore(remote string) chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.chans == nil {
		l.chans = map[string]chan struct{}{}
	}
	ch, ok := l.chans[remote]
	if !ok {
		ch = make(chan struct{})
		l.chans[remote] = ch
	}
	return ch
}

func (l *readWatcher) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &watchedConn{Conn: c, more: l.readingMore(c.RemoteAddr().String())}, nil
}

type watchedConn struct {
	net.Conn
	more chan struct{}
	read atomic.Bool
	once sync.Once
}

func (c *watchedConn) Read(p []byte) (int, error) {
	if c.read.Load() {
		c.once.Do(func() { close(c.more) })
	}
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.read.Store(true)
	}
	return n, err
}
