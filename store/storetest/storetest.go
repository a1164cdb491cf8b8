// Package storetest is the conformance suite every store.Store backend runs,
// shaped like testing/slogtest: a backend's test calls Run with a factory
// that opens a fresh, empty store, and the suite checks the whole contract of
// package store against it — the platform, every tenant method, the filter
// language and its ordering, pagination, concurrency and, above all, that
// no tenant can reach another's data, for pooled and silo tenants alike.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := sqlitestore.Open(filepath.Join(t.TempDir(), "bulkhead.db"), nil)
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		}, storetest.Caps{})
//	}
//
// The suite knows nothing of any backend: it uses the store interfaces only.
// A change to package store changes this suite in the same commit.
//
// The suite is not yet stable: cases are added as the contract is
// clarified, and Caps gains a field whenever a backend legitimately cannot
// do something.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Caps declares what a backend legitimately does differently, so that the
// suite can adapt instead of the backend failing (spicedb's test
// categories). Every backend so far implements the whole contract, so Caps
// has no fields yet; pass Caps{}. A field is added here, documented with
// what it relaxes, only when a backend cannot meet part of the contract.
type Caps struct{}

// Run runs the conformance suite against the stores newStore returns.
// newStore is called once per subtest and must return a new, empty store
// (fresh database, plans seeded) that is closed when t's test ends, for
// example with t.Cleanup. Subtests call t.Parallel, so newStore must be
// safe to call concurrently.
//
// Functions the suite passes to InTenant and friends report failures with
// t.Errorf, never t.Fatal: a backend may run them on a goroutine of its own.
func Run(t *testing.T, newStore func(t *testing.T) store.Store, caps Caps) {
	t.Helper()
	h := &harness{newStore: newStore, caps: caps}
	t.Run("Platform", h.testPlatform)
	t.Run("Lifecycle", h.testLifecycle)
	t.Run("PlatformAudit", h.testPlatformAudit)
	t.Run("KeyLookup", h.testKeyLookup)
	t.Run("Containments", h.testContainments)
	t.Run("BreakGlass", h.testBreakGlass)
	t.Run("Jobs", h.testJobs)
	t.Run("DataKeys", h.testDataKeys)
	t.Run("Retention", h.testRetention)
	for _, iso := range isolations {
		t.Run(isoName(iso), func(t *testing.T) {
			t.Parallel()
			h.testTenantData(t, iso)
			h.testFilters(t, iso)
			h.testIndexes(t, iso)
			h.testOIDC(t, iso)
			t.Run("LoginSecurity", func(t *testing.T) { h.testLoginSecurity(t, iso) })
		})
	}
	t.Run("Concurrency", h.testConcurrency)
	t.Run("WriteTransactions", h.testWriteTransactions)
	t.Run("Isolation", h.testIsolation)
}

var isolations = []tenant.Isolation{tenant.Pooled, tenant.Silo}

func isoName(iso tenant.Isolation) string {
	switch iso {
	case tenant.Pooled:
		return "Pooled"
	case tenant.Silo:
		return "Silo"
	}
	return string(iso)
}

type harness struct {
	newStore func(t *testing.T) store.Store
	caps     Caps
}

// env is one subtest's store.
type env struct {
	t   *testing.T
	s   store.Store
	ctx context.Context
}

func (h *harness) setup(t *testing.T) *env {
	t.Helper()
	return &env{t: t, s: h.newStore(t), ctx: t.Context()}
}

// base is the suite's epoch: a UTC time with whole microseconds, which every
// backend stores exactly.
var base = time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)

// at returns base+d.
func at(d time.Duration) time.Time { return base.Add(d) }

func ptr[T any](v T) *T { return &v }

// createParams returns the parameters of a new tenant with a fresh id and
// slug.
func createParams(iso tenant.Isolation) *store.CreateTenantParams {
	id := uuid.NewString()
	return &store.CreateTenantParams{
		ID:        tenant.ID(id),
		Slug:      tenant.Slug("t-" + id[:8] + id[9:13]),
		Name:      "Tenant " + id[:8],
		Plan:      tenant.DefaultPlan,
		Isolation: iso,
		CreatedAt: base,
	}
}

// tenant creates a tenant with isolation iso.
func (e *env) tenant(iso tenant.Isolation) *store.Tenant {
	e.t.Helper()
	tn, err := e.s.CreateTenant(e.ctx, createParams(iso), nil, nil)
	if err != nil {
		e.t.Fatalf("CreateTenant(%s) = %v", iso, err)
	}
	return tn
}

// in runs fn in a read-write transaction of tid and fails the test if it
// returns an error.
func (e *env) in(tid tenant.ID, fn func(tx store.Tx) error) {
	e.t.Helper()
	if err := e.s.InTenant(e.ctx, tid, fn); err != nil {
		e.t.Fatalf("InTenant(%s) = %v", tid, err)
	}
}

// read runs fn in a read-only transaction of tid and fails the test if it
// returns an error.
func (e *env) read(tid tenant.ID, fn func(tx store.Tx) error) {
	e.t.Helper()
	if err := e.s.ReadTenant(e.ctx, tid, fn); err != nil {
		e.t.Fatalf("ReadTenant(%s) = %v", tid, err)
	}
}

func (e *env) platform(fn func(tx store.PlatformTx) error) {
	e.t.Helper()
	if err := e.s.InPlatform(e.ctx, fn); err != nil {
		e.t.Fatalf("InPlatform = %v", err)
	}
}

func (e *env) readPlatform(fn func(tx store.PlatformTx) error) {
	e.t.Helper()
	if err := e.s.ReadPlatform(e.ctx, fn); err != nil {
		e.t.Fatalf("ReadPlatform = %v", err)
	}
}

// collection creates collection name in tid.
func (e *env) collection(tid tenant.ID, name store.CollectionName) {
	e.t.Helper()
	e.in(tid, func(tx store.Tx) error {
		_, err := tx.PutCollection(e.ctx, &store.Collection{Name: name, CreatedAt: base, UpdatedAt: base})
		return err
	})
}

// record returns a record of collection col with version 1.
func record(col store.CollectionName, id store.RecordID, data string, created time.Time) *store.Record {
	return &store.Record{Collection: col, ID: id, Version: 1, Data: json.RawMessage(data), CreatedAt: created, UpdatedAt: created}
}

// errIs reports, with t.Errorf, an error that does not match want. want nil
// means no error.
func errIs(t *testing.T, what string, err, want error) bool {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Errorf("%s = %v, want no error", what, err)
			return false
		}
		return true
	}
	if !errors.Is(err, want) {
		t.Errorf("%s = %v, want %v", what, err, want)
		return false
	}
	return true
}

// diff reports, with t.Errorf, a difference between got and want.
func diff(t *testing.T, what string, want, got any) bool {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
		return false
	}
	return true
}

// errTest is returned by transaction functions that must roll back.
var errTest = errors.New("storetest: deliberate failure")

// recordIDs returns the ids of rs in order.
func recordIDs(rs []*store.Record) []store.RecordID {
	ids := make([]store.RecordID, 0, len(rs))
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	return ids
}

// listAll lists every record of col matching params.Filter and
// params.Order in one page.
func listAll(ctx context.Context, tx store.Tx, p store.ListRecordsParams) ([]*store.Record, error) {
	p.Limit = 10_000
	p.After = nil
	page, err := tx.ListRecords(ctx, &p)
	if err != nil {
		return nil, err
	}
	if page.Next != nil {
		return nil, fmt.Errorf("one page of %d records has Next %+v", len(page.Records), page.Next)
	}
	return page.Records, nil
}

// ids returns the record ids named by the numbers, r01, r02, ….
func ids(ns ...int) []store.RecordID {
	out := make([]store.RecordID, 0, len(ns))
	for _, n := range ns {
		out = append(out, store.RecordID(fmt.Sprintf("r%02d", n)))
	}
	slices.Sort(out)
	return out
}
