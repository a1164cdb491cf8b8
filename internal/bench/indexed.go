package bench

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// The indexed tenant of bench crud has one collection, the bench's items,
// declared with an index on (owner, -n) and seeded with records spread
// over indexedOwners owners: a page of 20 of one owner's records, newest n
// first, is what the index serves. Each record also has a team, one of as
// many values spread independently, that no index covers: the same query
// on it shows what the index saves.
const indexedOwners = 100

// indexFields are the fields of the index declared on the indexed
// tenant's collection.
var indexFields = []string{"owner", "-n"}

// indexPollInterval is how often the indexed collection is read while its
// index builds.
const indexPollInterval = 100 * time.Millisecond

func ownerValue(i int) string { return fmt.Sprintf("u%02d", i) }

func teamValue(i int) string { return fmt.Sprintf("g%02d", i) }

// indexedRecordBody is the JSON of the n-th record of the indexed tenant:
// owner u00…u99 in turn, team g00…g99 scattered, n itself, and a title, in
// about as many bytes as recordBody's.
func indexedRecordBody(n int64) []byte {
	b := make([]byte, 0, 96)
	b = append(b, `{"owner":"`...)
	b = append(b, ownerValue(int(n%indexedOwners))...)
	b = append(b, `","team":"`...)
	b = append(b, teamValue(int(mix(n)%indexedOwners))...)
	b = append(b, `","n":`...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, `,"title":"item `...)
	b = strconv.AppendInt(b, n, 10)
	return append(b, `"}`...)
}

// filteredQueries returns, for each of the indexedOwners values of field,
// the query of a page of 20 of the records holding it, highest n first.
func filteredQueries(field string, value func(int) string) []string {
	qs := make([]string, indexedOwners)
	for i := range qs {
		qs[i] = "?" + url.Values{
			"filter": {fmt.Sprintf(`%s = "%s"`, field, value(i))},
			"order":  {"-n"},
			"limit":  {"20"},
		}.Encode()
	}
	return qs
}

// queryText shows the queries of filteredQueries for a reader, unescaped.
func queryText(field string, value func(int) string) string {
	return fmt.Sprintf(`?filter=%s = "%s"&order=-n&limit=20 (%s cycling through %s…%s)`,
		field, value(0), field, value(0), value(indexedOwners-1))
}

// IndexReport is the indexed tenant's collection: the index it declares,
// the state the index reached before the phases, and how long setting it
// up took.
type IndexReport struct {
	Tenant     string   `json:"tenant"`
	Collection string   `json:"collection"`
	Fields     []string `json:"fields"`
	Records    int      `json:"records"`
	Owners     int      `json:"owners"`
	// State is the index's state when the phases began: "ready",
	// "failed" (Error says why), or "building" when it was still being
	// built after the timeout (TimedOut).
	State    string `json:"state"`
	Error    string `json:"error,omitempty"`
	TimedOut bool   `json:"timed_out,omitempty"`
	// SeedSec is the time the records took to create, and SeedRate the
	// records per second; ReadySec the wait after them for every index
	// of the collection to be ready or failed.
	SeedSec  float64 `json:"seed_s"`
	SeedRate float64 `json:"seed_records_per_s"`
	ReadySec float64 `json:"ready_wait_s"`
}

// collectionState is what the bench reads of a collection's answer.
type collectionState struct {
	Indexes []indexState `json:"indexes"`
}

type indexState struct {
	Fields []string `json:"fields"`
	State  string   `json:"state"`
	Error  string   `json:"error"`
}

// index returns the index on fields, or nil.
func (c *collectionState) index(fields []string) *indexState {
	for i := range c.Indexes {
		if slices.Equal(c.Indexes[i].Fields, fields) {
			return &c.Indexes[i]
		}
	}
	return nil
}

// settled reports whether every index is ready or failed.
func (c *collectionState) settled() bool {
	for _, ix := range c.Indexes {
		if ix.State != "ready" && ix.State != "failed" {
			return false
		}
	}
	return true
}

// errNoIndexes explains a collection the bench could not declare.
const errNoIndexes = "the server may not support declared indexes (--indexed-records 0 skips the indexed phases)"

// declareIndexed puts f's bench collection with the index on indexFields
// and returns the server's answer. It fails if the server refuses the
// declaration or answers without the index.
func (s *setup) declareIndexed(ctx context.Context, f *tenantFixture) (*collectionState, error) {
	path := "/v1/tenants/" + f.Slug + "/collections/" + collection
	body := map[string]any{"indexes": []map[string]any{{"fields": indexFields}}}
	var st collectionState
	if err := s.api.do(ctx, "PUT", path, f.Keys[0], body, &st, 200, 201); err != nil {
		return nil, fmt.Errorf("declare the indexed collection: %w; %s", err, errNoIndexes)
	}
	if st.index(indexFields) == nil {
		return nil, fmt.Errorf("declare the indexed collection: PUT %s answered without the index (%s) it declared; %s",
			path, strings.Join(indexFields, ", "), errNoIndexes)
	}
	return &st, nil
}

// waitIndexes reads f's bench collection every poll until every index is
// ready or failed, or until timeout has passed, and returns the last
// answer, with timedOut set if it came to the timeout.
func (s *setup) waitIndexes(ctx context.Context, f *tenantFixture, timeout, poll time.Duration) (st *collectionState, timedOut bool, err error) {
	path := "/v1/tenants/" + f.Slug + "/collections/" + collection
	deadline := time.Now().Add(timeout)
	for {
		st = &collectionState{}
		if err := s.api.do(ctx, "GET", path, f.Keys[0], nil, st, 200); err != nil {
			return nil, false, err
		}
		if st.settled() {
			return st, false, nil
		}
		if !time.Now().Before(deadline) {
			return st, true, nil
		}
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-time.After(min(poll, time.Until(deadline))):
		}
	}
}

// indexedTenant creates the indexed tenant: its collection declared with
// the index, n records seeded, and the index ready, failed or timed out.
// It fails when the collection cannot be declared.
func (e *env) indexedTenant(ctx context.Context, n int, timeout time.Duration) (*tenantFixture, *IndexReport, error) {
	e.p.Stepf("creating the indexed tenant: index (%s) on %s, %s records over %d owners",
		strings.Join(indexFields, ", "), collection, fint(int64(n)), indexedOwners)
	f, err := e.setup.newTenantKeys(ctx, e.setup.slug("indexed", 0), planUnlimited, 1)
	if err != nil {
		return nil, nil, err
	}
	if _, err := e.setup.declareIndexed(ctx, f); err != nil {
		return nil, nil, err
	}
	rep := &IndexReport{Tenant: f.Slug, Collection: collection, Fields: indexFields, Records: n, Owners: indexedOwners}

	var done atomic.Int64
	start := time.Now()
	stop := e.p.count("seeding indexed", n, func() int { return int(done.Load()) })
	err = e.setup.seedCollection(ctx, f, collection, n, indexedRecordBody, true, &done)
	stop()
	if err != nil {
		return nil, nil, err
	}
	rep.SeedSec = time.Since(start).Seconds()
	rep.SeedRate = float64(n) / rep.SeedSec

	e.p.Stepf("waiting up to %s for the index to be ready", timeout)
	start = time.Now()
	st, timedOut, err := e.setup.waitIndexes(ctx, f, timeout, indexPollInterval)
	if err != nil {
		return nil, nil, err
	}
	rep.ReadySec = time.Since(start).Seconds()
	rep.TimedOut = timedOut
	if ix := st.index(indexFields); ix != nil {
		rep.State, rep.Error = ix.State, ix.Error
	} else {
		rep.State, rep.Error = "missing", "the collection no longer lists the index"
	}
	e.p.Stepf("index (%s): %s after %.1fs", strings.Join(indexFields, ", "), rep.State, rep.ReadySec)
	return f, rep, nil
}
