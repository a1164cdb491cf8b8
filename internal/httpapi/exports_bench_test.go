package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/jobs"
	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/internal/observe"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// The export benchmarks run on a tenant of exportBenchRecords records
// (SQLite, or PostgreSQL with BULKHEAD_TEST_BACKEND=postgres):
//
//	go test ./internal/httpapi -run '^$' -bench 'Export' -benchtime 1x -timeout 30m
//
// They report rates (records/s) and, for the victims, p99 latencies as a
// ratio to the same victims measured alone in the same run.

// exportBenchRecords is the size of the exported tenant.
const exportBenchRecords = 100_000

// stepQueue is a jobs.Queue that runs a job when the test says so, in the
// test's goroutine, through the Work its kind registered: the job's real
// work on the real store, without a runner's scheduling.
type stepQueue struct {
	mu    sync.Mutex
	kinds map[jobs.Kind]jobs.KindConfig
	jobs  map[store.JobID]*queuedJob
}

type queuedJob struct {
	tid  tenant.ID
	job  *store.Job
	args json.RawMessage
}

func newStepQueue() *stepQueue {
	return &stepQueue{kinds: map[jobs.Kind]jobs.KindConfig{}, jobs: map[store.JobID]*queuedJob{}}
}

func (q *stepQueue) Register(kind jobs.Kind, cfg jobs.KindConfig) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.kinds[kind] = cfg
}

func (q *stepQueue) Enqueue(ctx context.Context, tid tenant.ID, kind jobs.Kind, args any, opts *jobs.EnqueueOptions) (*store.Job, error) {
	a, err := json.Marshal(args)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	j := &store.Job{ID: store.JobID(uuid.NewString()), Kind: string(kind), State: store.JobQueued, Args: a, CreatedAt: now, UpdatedAt: now}
	if opts != nil {
		j.CreatedBy = opts.CreatedBy
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.jobs[j.ID] = &queuedJob{tid: tid, job: j, args: a}
	c := *j
	return &c, nil
}

func (q *stepQueue) Cancel(context.Context, tenant.ID, store.JobID, func(store.Tx) error) (*store.Job, error) {
	return nil, errors.New("no cancelling here")
}

func (q *stepQueue) EnqueuePlatform(context.Context, jobs.Kind, any, *jobs.EnqueueOptions) error {
	return errors.New("no platform jobs here")
}

type exportBench struct {
	h      *Server
	core   *core.Core
	st     store.Store
	q      *stepQueue
	bucket *blob.Bucket
	big    tenant.ID
	call   func(method, path, token, body string) []byte
}

func newExportBench(b *testing.B) *exportBench {
	b.Helper()
	dir := b.TempDir()
	st := openTestStore(b, dir)
	b.Cleanup(func() { st.Close() })
	keys, err := keyring.Load(filepath.Join(dir, "keys"))
	if err != nil {
		b.Fatal(err)
	}
	kms, err := keyring.OpenLocal(keyring.LocalConfig{Dir: filepath.Join(dir, "keys")})
	if err != nil {
		b.Fatal(err)
	}
	bucket, err := fileblob.OpenBucket(filepath.Join(dir, "blobs"), &fileblob.Options{CreateDir: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bucket.Close() })
	q := newStepQueue()
	log := observe.NewLogger(io.Discard, slog.LevelInfo)
	c, err := core.New(core.Config{Store: st, Keys: keys, KMS: kms, AdminToken: testAdminToken, PasswordParams: fastPasswords,
		Logger: log, Jobs: q, Blobs: bucket})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	e := &exportBench{core: c, st: st, q: q, bucket: bucket,
		h: New(Config{Core: c, Store: st, Metrics: observe.NewMetrics(), Logger: log})}
	e.call = func(method, path, token, body string) []byte {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		e.h.ServeHTTP(rec, req)
		if rec.Code >= 300 {
			b.Fatalf("%s %s = %d %s", method, path, rec.Code, rec.Body)
		}
		return rec.Body.Bytes()
	}
	var t struct{ ID tenant.ID }
	json.Unmarshal(e.call("POST", "/v1/tenants", testAdminToken, `{"slug":"big","name":"Big"}`), &t)
	e.big = t.ID
	var k struct{ Key string }
	json.Unmarshal(e.call("POST", "/v1/tenants/big/api-keys", testAdminToken, `{"name":"admin","role":"admin"}`), &k)
	e.call("PUT", "/v1/tenants/big/collections/notes", k.Key, `{}`)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	for start := 0; start < exportBenchRecords; start += 1000 {
		err := st.InTenant(ctx, e.big, func(tx store.Tx) error {
			for i := start; i < min(start+1000, exportBenchRecords); i++ {
				data := fmt.Appendf(nil, `{"n":%d,"title":"record %d of the exported tenant","tag":"t%d"}`, i, i, i%17)
				err := tx.CreateRecord(ctx, &store.Record{Collection: "notes", ID: store.RecordID(uuid.Must(uuid.NewV7()).String()),
					Version: 1, Data: data, CreatedAt: now, UpdatedAt: now})
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return e
}

// work runs a job of kind with args through its registered Work.
func (e *exportBench) work(b *testing.B, kind jobs.Kind, args any) any {
	b.Helper()
	a, _ := json.Marshal(args)
	res, err := e.q.kinds[kind].Work(context.Background(), jobs.NewTask(e.big, &store.Job{ID: store.JobID(uuid.NewString())}, a, nil))
	if err != nil {
		b.Fatalf("%s: %v", kind, err)
	}
	return res
}

// BenchmarkExportRestore measures, per iteration, an export of the tenant,
// a restore of it into the tenant emptied of its collection (every record
// written), and a restore over records already equal to the archive's.
func BenchmarkExportRestore(b *testing.B) {
	e := newExportBench(b)
	ctx := context.Background()
	var exportD, restoreD, sameD time.Duration
	var size int64
	for b.Loop() {
		id := uuid.Must(uuid.NewV7()).String()
		start := time.Now()
		e.work(b, core.KindExport, map[string]string{"export_id": id})
		exportD += time.Since(start)
		arc, err := e.bucket.ReadAll(ctx, "exports/"+string(e.big)+"/"+id)
		if err != nil {
			b.Fatal(err)
		}
		size = int64(len(arc))
		if err := e.st.InTenant(ctx, e.big, func(tx store.Tx) error { return tx.DeleteCollection(ctx, "notes") }); err != nil {
			b.Fatal(err)
		}
		for _, d := range []*time.Duration{&restoreD, &sameD} {
			rid := uuid.Must(uuid.NewV7()).String()
			if err := e.bucket.WriteAll(ctx, "restores/"+string(e.big)+"/"+rid, arc, nil); err != nil {
				b.Fatal(err)
			}
			start = time.Now()
			res := e.work(b, core.KindRestore, map[string]string{"restore_id": rid}).(*core.RestoreResult)
			*d += time.Since(start)
			if res.Records != exportBenchRecords {
				b.Fatalf("restored %d records, want %d", res.Records, exportBenchRecords)
			}
		}
	}
	n := float64(b.N * exportBenchRecords)
	b.ReportMetric(n/exportD.Seconds(), "export_records/s")
	b.ReportMetric(n/restoreD.Seconds(), "restore_records/s")
	b.ReportMetric(n/sameD.Seconds(), "restore_unchanged_records/s")
	b.ReportMetric(float64(size)/exportBenchRecords, "archive_bytes/record")
}

// BenchmarkVictimDuringExport measures a victim tenant's requests (a read
// and a create, alternately, one at a time) alone, then while the big
// tenant exports without pause, and reports the p99 of each and their
// ratio.
func BenchmarkVictimDuringExport(b *testing.B) {
	e := newExportBench(b)
	var t struct{ ID tenant.ID }
	json.Unmarshal(e.call("POST", "/v1/tenants", testAdminToken, `{"slug":"victim","name":"Victim"}`), &t)
	var k struct{ Key string }
	json.Unmarshal(e.call("POST", "/v1/tenants/victim/api-keys", testAdminToken, `{"name":"v","role":"admin"}`), &k)
	e.call("PUT", "/v1/tenants/victim/collections/notes", k.Key, `{}`)
	var r struct{ ID string }
	json.Unmarshal(e.call("POST", "/v1/tenants/victim/collections/notes/records", k.Key, `{"title":"hello"}`), &r)
	const requests = 2000
	victim := func() []time.Duration {
		lat := make([]time.Duration, 0, requests)
		for i := range requests {
			start := time.Now()
			if i%2 == 0 {
				e.call("GET", "/v1/tenants/victim/collections/notes/records/"+r.ID, k.Key, "")
			} else {
				e.call("POST", "/v1/tenants/victim/collections/notes/records", k.Key, `{"title":"victim","n":1}`)
			}
			lat = append(lat, time.Since(start))
		}
		slices.Sort(lat)
		return lat
	}
	p99 := func(lat []time.Duration) float64 { return float64(lat[len(lat)*99/100]) / float64(time.Millisecond) }
	var solo, during float64
	var exported atomic.Int64
	for b.Loop() {
		solo += p99(victim())
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
				}
				a, _ := json.Marshal(map[string]string{"export_id": uuid.Must(uuid.NewV7()).String()})
				_, err := e.q.kinds[core.KindExport].Work(context.Background(), jobs.NewTask(e.big, nil, a, func(d, _ int64) {}))
				if err != nil {
					b.Error(err)
					return
				}
				exported.Add(1)
			}
		}()
		time.Sleep(200 * time.Millisecond) // the export is under way
		during += p99(victim())
		close(stop)
		<-done
	}
	b.ReportMetric(solo/float64(b.N), "solo_p99_ms")
	b.ReportMetric(during/float64(b.N), "during_export_p99_ms")
	b.ReportMetric(during/solo, "p99_ratio")
	b.ReportMetric(float64(exported.Load()), "exports_finished")
}
