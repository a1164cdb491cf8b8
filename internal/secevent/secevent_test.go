package secevent

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func sample(action string) Event {
	return Event{Time: time.Date(2026, 12, 5, 7, 0, 0, 0, time.UTC), Action: action, Category: "iam", Outcome: "success",
		Severity: 2, Tenant: "0192d0c4-0000-7000-8000-000000000001", TenantSlug: "acme", Actor: "user:u1",
		Target: "api_key:k1", ClientAddr: "203.0.113.7", RequestID: "req1", Reason: "because"}
}

// lookup follows a dotted ECS name into a decoded document.
func lookup(doc map[string]any, name string) (any, bool) {
	if v, ok := doc[name]; ok { // @timestamp
		return v, true
	}
	var cur any = doc
	for _, part := range bytes.Split([]byte(name), []byte(".")) {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[string(part)]; !ok {
			return nil, false
		}
	}
	return cur, true
}

func TestEncodeECSFields(t *testing.T) {
	t.Parallel()
	line := Encode(sample("api_key.create"))
	if !bytes.HasSuffix(line, []byte("\n")) || bytes.Count(line, []byte("\n")) != 1 {
		t.Fatalf("Encode = %q, want one line", line)
	}
	var doc map[string]any
	if err := json.Unmarshal(line, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"@timestamp":        "2026-12-05T07:00:00Z",
		"event.kind":        "event",
		"event.category":    []any{"iam"},
		"event.type":        []any{"creation"},
		"event.action":      "api_key.create",
		"event.outcome":     "success",
		"event.severity":    float64(2),
		"event.reason":      "because",
		"organization.id":   "0192d0c4-0000-7000-8000-000000000001",
		"organization.name": "acme",
		"user.id":           "user:u1",
		"user.target.id":    "api_key:k1",
		"source.ip":         "203.0.113.7",
		"http.request.id":   "req1",
		"ecs.version":       ECSVersion,
		"service.name":      "bulkhead",
	}
	for name, w := range want {
		got, ok := lookup(doc, name)
		if !ok {
			t.Errorf("%s missing from %s", name, line)
			continue
		}
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(w)
		if !bytes.Equal(gb, wb) {
			t.Errorf("%s = %s, want %s", name, gb, wb)
		}
	}
	alert := sample("containment.credential_suspended")
	alert.Category, alert.Severity, alert.Target = "intrusion_detection", 3, "collection:notes"
	doc = nil
	if err := json.Unmarshal(Encode(alert), &doc); err != nil {
		t.Fatal(err)
	}
	if k, _ := lookup(doc, "event.kind"); k != "alert" {
		t.Errorf("event.kind of a containment = %v, want alert", k)
	}
	denied := sample("access.denied")
	denied.Category, denied.Outcome = "intrusion_detection", "failure"
	var ddoc map[string]any
	if err := json.Unmarshal(Encode(denied), &ddoc); err != nil {
		t.Fatal(err)
	}
	if k, _ := lookup(ddoc, "event.kind"); k != "event" {
		t.Errorf("event.kind of one denied request = %v, want event", k)
	}
	if ty, _ := lookup(ddoc, "event.type"); len(ty.([]any)) != 1 || ty.([]any)[0] != "denied" {
		t.Errorf("event.type of a denied request = %v, want [denied]", ty)
	}
	if v, _ := lookup(doc, "bulkhead.target"); v != "collection:notes" {
		t.Errorf("bulkhead.target = %v, want collection:notes", v)
	}
	if _, ok := lookup(doc, "user.target.id"); ok {
		t.Errorf("user.target.id set for a resource target")
	}
}

// flaky is a TLS SIEM endpoint that refuses the first fails requests.
type flaky struct {
	fails    int32
	attempts atomic.Int32
	mu       sync.Mutex
	lines    []map[string]any
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.attempts.Add(1) <= f.fails {
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		http.Error(w, "content type "+ct, http.StatusUnsupportedMediaType)
		return
	}
	sc := bufio.NewScanner(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	for sc.Scan() {
		var doc map[string]any
		if err := json.Unmarshal(sc.Bytes(), &doc); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f.lines = append(f.lines, doc)
	}
}

func TestWebhookRetriesUntilDelivered(t *testing.T) {
	t.Parallel()
	f := &flaky{fails: 2}
	srv := httptest.NewTLSServer(f)
	defer srv.Close()
	q := NewQueue(&WebhookSink{URL: srv.URL, Client: srv.Client()}, Options{Backoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	for i := range 3 {
		ev := sample("user.create")
		ev.RequestID = string(rune('a' + i))
		q.Publish(ev)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.attempts.Load(); got < 3 {
		t.Errorf("attempts = %d, want at least 3 (two refused, then delivered)", got)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.lines) != 3 {
		t.Fatalf("SIEM received %d events, want 3", len(f.lines))
	}
	if st := q.Stats(); st.Published != 3 || st.Failed != 0 || st.Dropped != 0 {
		t.Errorf("Stats = %+v, want 3 published", st)
	}
	if a, _ := lookup(f.lines[0], "event.action"); a != "user.create" {
		t.Errorf("event.action = %v", a)
	}
}

func TestWebhookGivesUpAndCountsFailed(t *testing.T) {
	t.Parallel()
	f := &flaky{fails: 1 << 30}
	srv := httptest.NewTLSServer(f)
	defer srv.Close()
	q := NewQueue(&WebhookSink{URL: srv.URL, Client: srv.Client()}, Options{Retries: 2, Backoff: time.Millisecond})
	q.Publish(sample("user.create"))
	if err := q.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.attempts.Load(); got != 3 {
		t.Errorf("attempts = %d, want 3 (one and two retries)", got)
	}
	if st := q.Stats(); st.Failed != 1 || st.Published != 0 {
		t.Errorf("Stats = %+v, want 1 failed", st)
	}
	q.Close(context.Background())
}

// stuck is a sink that blocks until released.
type stuck struct{ release chan struct{} }

func (s *stuck) Send(ctx context.Context, lines [][]byte) error { <-s.release; return nil }

func TestFullQueueDropsWithoutBlocking(t *testing.T) {
	t.Parallel()
	for _, newest := range []bool{false, true} {
		s := &stuck{release: make(chan struct{})}
		q := NewQueue(s, Options{Size: 10, Batch: 1, DropNewest: newest})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range 1000 {
				ev := sample("x")
				ev.RequestID = string(rune('A' + i%50))
				q.Publish(ev)
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Publish blocked on a full queue")
		}
		// One event is with the stuck sink, at most Size wait.
		st := q.Stats()
		if st.Dropped < 1000-11 || q.Len() > 10 {
			t.Errorf("DropNewest=%v: dropped %d with %d waiting, want >= %d dropped and <= 10 waiting", newest, st.Dropped, q.Len(), 1000-11)
		}
		close(s.release)
		if err := q.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		if st := q.Stats(); st.Published+st.Dropped != 1000 {
			t.Errorf("DropNewest=%v: published %d + dropped %d, want 1000", newest, st.Published, st.Dropped)
		}
	}
}

func TestFileSinkAppendsPrivately(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "events.jsonl")
	for range 2 {
		q, closeFile, err := Open("file:"+path, Options{})
		if err != nil {
			t.Fatal(err)
		}
		q.Publish(sample("api_key.revoke"))
		if err := q.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		closeFile()
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Errorf("mode = %v, want 0600", perm)
	}
	b, _ := os.ReadFile(path)
	if n := bytes.Count(b, []byte("\n")); n != 2 {
		t.Errorf("file has %d lines, want 2 (appended)", n)
	}
}

func TestOpenRefusesUnknownDestinations(t *testing.T) {
	t.Parallel()
	for _, spec := range []string{"http://siem.example/x", "syslog", "file:", "https://user:secret@/"} {
		if _, _, err := Open(spec, Options{}); err == nil {
			t.Errorf("Open(%q) succeeded, want an error", spec)
		} else if bytes.Contains([]byte(err.Error()), []byte("secret")) {
			t.Errorf("Open(%q) error %q shows the secret", spec, err)
		}
	}
}
