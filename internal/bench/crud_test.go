package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestCRUDOptionsDefaults(t *testing.T) {
	t.Parallel()
	var o CRUDOptions
	o.setDefaults()
	if o.Rate != 500 || o.Tenants != 4 || o.Conns != 64 || o.Seed != 100 || o.IndexedRecords != 0 || o.IndexTimeout != time.Minute {
		t.Errorf("CRUDOptions defaults = %+v; want rate 500, 4 tenants, 64 conns, 100 seed, no indexed tenant, 1m index timeout", o)
	}
	o = CRUDOptions{IndexedRecords: -3, IndexTimeout: time.Second}
	o.setDefaults()
	if o.IndexedRecords != 0 || o.IndexTimeout != time.Second {
		t.Errorf("setDefaults: IndexedRecords %d, IndexTimeout %s; want 0 and the 1s set", o.IndexedRecords, o.IndexTimeout)
	}
}

// crudPhase is a phase of n requests over 30 s, bad of them refused with
// 503, all with latency lat.
type crudPhase struct {
	name   string
	n, bad int64
	lat    time.Duration
}

// crudFixture is a report as RunCRUD makes it, from phases.
func crudFixture(mode string, index *IndexReport, phases ...crudPhase) *CRUDReport {
	rep := &CRUDReport{Bench: "crud", Goals: goals(), Index: index, Settings: CRUDSettings{Mode: mode, Rate: 500, BareBodyBytes: 202}}
	for _, p := range phases {
		rep.Phases = append(rep.Phases, streamReport(p.name, p.n, p.bad, p.lat))
	}
	rep.compare()
	return rep
}

// allCRUDPhases measures, in 30 s: bare 30,000 at 1 ms, get 15,000 at
// 2 ms, get-indexed 12,000 at 2.5 ms, list-indexed 6,000 at 5 ms and
// list-unindexed 600 at 50 ms.
func allCRUDPhases() []crudPhase {
	return []crudPhase{
		{"bare", 30_000, 0, time.Millisecond},
		{"create", 3_000, 0, 10 * time.Millisecond},
		{"get", 15_000, 0, 2 * time.Millisecond},
		{"list", 3_000, 0, 10 * time.Millisecond},
		{"get-indexed", 12_000, 0, 2500 * time.Microsecond},
		{"list-indexed", 6_000, 0, 5 * time.Millisecond},
		{"list-unindexed", 600, 0, 50 * time.Millisecond},
	}
}

func readyIndex() *IndexReport {
	return &IndexReport{Tenant: "bn-x-indexed-0", Collection: collection, Fields: indexFields, Records: 20_000, Owners: 100, State: "ready"}
}

// near reports whether a is within the histogram's relative error of b.
func near(a Ratio, b float64) bool { return math.Abs(float64(a)-b) <= 2*RelativeError*b }

func TestCRUDRatiosClosedLoop(t *testing.T) {
	t.Parallel()
	rep := crudFixture("closed-loop", readyIndex(), allCRUDPhases()...)
	type row struct{ Phase, Base string }
	var got []row
	for _, pr := range rep.Ratios {
		got = append(got, row{pr.Phase, pr.Base})
		p, b := rep.phase(pr.Phase), rep.phase(pr.Base)
		if tp := p.Throughput / b.Throughput; float64(pr.Throughput) != tp {
			t.Errorf("%s / %s throughput ratio = %v, want %v from the phases", pr.Phase, pr.Base, pr.Throughput, tp)
		}
		if p50 := p.Latency.P50Ms / b.Latency.P50Ms; float64(pr.P50) != p50 {
			t.Errorf("%s / %s p50 ratio = %v, want %v from the phases", pr.Phase, pr.Base, pr.P50, p50)
		}
		if p99 := p.Latency.P99Ms / b.Latency.P99Ms; float64(pr.P99) != p99 {
			t.Errorf("%s / %s p99 ratio = %v, want %v from the phases", pr.Phase, pr.Base, pr.P99, p99)
		}
	}
	want := []row{{"create", "bare"}, {"get", "bare"}, {"list", "bare"}, {"get-indexed", "bare"}, {"list-indexed", "bare"},
		{"list-unindexed", "bare"}, {"list-indexed", "get-indexed"}, {"list-unindexed", "get-indexed"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ratios mismatch (-want +got):\n%s", diff)
	}
	if pr := rep.ratio("get", "bare"); pr.Throughput != 0.5 || !near(pr.P50, 2) {
		t.Errorf("get / bare = %+v; want throughput 0.50×, p50 2×", *pr)
	}

	g := rep.Goals[goalGetVsBare]
	if g.Status != "met" || g.Measured != "0.50×" || *g.Value != 0.5 || !strings.Contains(g.Note, "500/s / 1,000/s") {
		t.Errorf("GET by id goal = %+v; want met at 0.50× with the rates in its note", g)
	}
	g = rep.Goals[goalListVsGet]
	if g.Status != "met" || g.Measured != "0.50×" {
		t.Errorf("filtered list goal = %+v; want met at 0.50× (6,000 / 12,000)", g)
	}

	// Slower lists miss, and a list phase with errors says so.
	phases := allCRUDPhases()
	phases[5] = crudPhase{"list-indexed", 3_000, 600, 5 * time.Millisecond}
	rep = crudFixture("closed-loop", readyIndex(), phases...)
	g = rep.Goals[goalListVsGet]
	if g.Status != "missed" || g.Measured != "0.20×" || !strings.Contains(g.Note, "43% under the minimum") ||
		!strings.Contains(g.Note, "list-indexed had errors: 600 503") {
		t.Errorf("filtered list goal = %+v; want missed at 0.20× (2,400 / 12,000), 43%% under, with the errors", g)
	}
}

func TestCRUDRatiosOpenLoop(t *testing.T) {
	t.Parallel()
	rep := crudFixture("open-loop", readyIndex(), allCRUDPhases()...)
	pr := rep.ratio("get", "bare")
	if !math.IsNaN(float64(pr.Throughput)) || !near(pr.P50, 2) || !near(pr.P99, 2) {
		t.Errorf("open-loop get / bare = %+v; want no throughput ratio, latency 2×", *pr)
	}
	for _, i := range []int{goalGetVsBare, goalListVsGet} {
		g := rep.Goals[i]
		if g.Status != "not measured" || g.Value != nil || !strings.Contains(g.Note, "--max") || !strings.Contains(g.Note, "latency p50 2.00×") {
			t.Errorf("open-loop goal %q = %+v; want not measured, pointing to --max, with the latency ratios", g.Name, g)
		}
	}
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatalf("the report does not marshal as JSON: %v", err)
	}
	var back struct {
		Ratios []struct {
			Phase      string
			Throughput *float64 `json:"throughput_ratio"`
			P50        *float64 `json:"p50_ratio"`
		}
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if r := back.Ratios[1]; r.Phase != "get" || r.Throughput != nil || r.P50 == nil || !near(Ratio(*r.P50), 2) {
		t.Errorf("open-loop JSON ratio = %+v; want get with throughput_ratio null and p50_ratio 2", r)
	}
}

func TestCRUDGoalsWithoutIndexedPhases(t *testing.T) {
	t.Parallel()
	rep := crudFixture("closed-loop", nil, allCRUDPhases()[:4]...)
	if len(rep.Ratios) != 3 {
		t.Errorf("%d ratios, want create, get and list to bare", len(rep.Ratios))
	}
	if g := rep.Goals[goalListVsGet]; g.Status != "not measured" || !strings.Contains(g.Note, "--indexed-records") {
		t.Errorf("filtered list goal without the indexed tenant = %+v; want not measured, pointing to --indexed-records", g)
	}

	// An index that never got ready is said to have been measured so.
	ix := readyIndex()
	ix.State, ix.TimedOut = "building", true
	rep = crudFixture("closed-loop", ix, allCRUDPhases()...)
	if g := rep.Goals[goalListVsGet]; g.Status != "met" || !strings.Contains(g.Note, "the index was building, not ready") {
		t.Errorf("filtered list goal on a building index = %+v; want judged, saying the index was building", g)
	}
}

func TestRatioJSON(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		r    Ratio
		want string
	}{{0.5, "0.5"}, {Ratio(math.NaN()), "null"}, {Ratio(math.Inf(1)), "null"}, {3, "3"}} {
		b, err := json.Marshal(tt.r)
		if err != nil || string(b) != tt.want {
			t.Errorf("Marshal(%v) = %s, %v; want %s", tt.r, b, err, tt.want)
		}
		var back Ratio
		if err := json.Unmarshal(b, &back); err != nil || !(back == tt.r || math.IsNaN(float64(back)) && tt.want == "null") {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v", b, back, err, tt.r)
		}
	}
}

func TestCRUDReportOutput(t *testing.T) {
	t.Parallel()
	rep := crudFixture("closed-loop", readyIndex(), allCRUDPhases()...)
	var b bytes.Buffer
	rep.WriteText(&b)
	for _, want := range []string{"answering the same 202-byte JSON body", "index (owner, -n): ready", "list-indexed   = GET",
		"Ratios, same run (closed loop", "list-unindexed  get-indexed", "GET by id, throughput / bare net/http",
		"filtered list of 20, throughput / GET by id"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "victims") {
		t.Errorf("text report lists the admission-control goals:\n%s", b.String())
	}
}

func TestBareServer(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"x","data":{"title":"first item"}}`)
	b, err := startBare(body)
	if err != nil {
		t.Fatal(err)
	}
	c := newClientAt(b.URL, 2)
	status, err := c.get(context.Background(), &tenantFixture{Slug: "t"}, "key", 0)
	if err != nil || status != 200 {
		t.Errorf("GET by id from the bare server = %d, %v; want 200", status, err)
	}
	resp, err := http.Get(b.URL + "/anything")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(got, body) || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("bare answer = %q (%s); want %q as application/json", got, resp.Header.Get("Content-Type"), body)
	}
	c.close()
	if err := b.close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

func TestIndexedRecordsAndQueries(t *testing.T) {
	t.Parallel()
	owners, teams := map[string]int{}, map[string]int{}
	for n := range int64(2000) {
		var rec struct {
			Owner, Team, Title string
			N                  int64
		}
		if err := json.Unmarshal(indexedRecordBody(n), &rec); err != nil {
			t.Fatalf("record %d = %s: %v", n, indexedRecordBody(n), err)
		}
		if rec.N != n {
			t.Errorf("record %d has n %d", n, rec.N)
		}
		owners[rec.Owner]++
		teams[rec.Team]++
	}
	if len(owners) != indexedOwners || owners["u00"] != 20 || owners["u99"] != 20 {
		t.Errorf("owners = %d values (u00: %d, u99: %d); want %d, 20 records each", len(owners), owners["u00"], owners["u99"], indexedOwners)
	}
	if len(teams) < indexedOwners*9/10 {
		t.Errorf("teams = %d values; want them spread over about %d", len(teams), indexedOwners)
	}
	qs := filteredQueries("owner", ownerValue)
	if len(qs) != indexedOwners {
		t.Fatalf("%d queries, want %d", len(qs), indexedOwners)
	}
	v, err := url.ParseQuery(strings.TrimPrefix(qs[7], "?"))
	if err != nil || v.Get("filter") != `owner = "u07"` || v.Get("order") != "-n" || v.Get("limit") != "20" {
		t.Errorf("query 7 = %s (%v); want owner = \"u07\", order -n, limit 20", qs[7], v)
	}
}

// fakeCollections serves PUT and GET of collections as the index contract
// says: a declared index is building until ready reads of the collection
// have passed. With refuse it answers PUT with 400 unsupported; with drop
// it keeps no index.
type fakeCollections struct {
	ready         int
	refuse, drop  bool
	mu            sync.Mutex
	reads         int
	declared      [][]string
	authorization string
}

func (fc *fakeCollections) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fc.mu.Lock()
	defer fc.mu.Unlock()
	fc.authorization = r.Header.Get("Authorization")
	w.Header().Set("Content-Type", "application/json")
	if r.Method == "PUT" {
		if fc.refuse {
			w.WriteHeader(400)
			io.WriteString(w, `{"code":"unsupported","detail":"indexes are not supported by this server yet"}`)
			return
		}
		var body struct{ Indexes []struct{ Fields []string } }
		json.NewDecoder(r.Body).Decode(&body)
		if !fc.drop {
			for _, ix := range body.Indexes {
				fc.declared = append(fc.declared, ix.Fields)
			}
		}
	} else {
		fc.reads++
	}
	state := "building"
	if fc.reads >= fc.ready {
		state = "ready"
	}
	type index struct {
		Fields []string `json:"fields"`
		State  string   `json:"state"`
	}
	ans := struct {
		Name    string  `json:"name"`
		Indexes []index `json:"indexes"`
	}{Name: "items", Indexes: []index{}}
	for _, f := range fc.declared {
		ans.Indexes = append(ans.Indexes, index{f, state})
	}
	json.NewEncoder(w).Encode(ans)
}

func fakeSetup(t *testing.T, fc *fakeCollections) (*setup, *tenantFixture) {
	srv := httptest.NewServer(fc)
	t.Cleanup(srv.Close)
	return &setup{api: newAPIClient(srv.URL), token: "operator"}, &tenantFixture{Slug: "acme", Keys: []string{"key"}}
}

func TestDeclareAndWaitForIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	fc := &fakeCollections{ready: 3}
	s, f := fakeSetup(t, fc)
	st, err := s.declareIndexed(ctx, f)
	if err != nil {
		t.Fatalf("declareIndexed: %v", err)
	}
	if ix := st.index(indexFields); ix == nil || ix.State != "building" || fc.authorization != "Bearer key" {
		t.Errorf("declared %+v with %q; want the index (owner, -n) building, declared with the tenant's key", st, fc.authorization)
	}
	st, timedOut, err := s.waitIndexes(ctx, f, 10*time.Second, time.Millisecond)
	if err != nil || timedOut || st.index(indexFields).State != "ready" || fc.reads != 3 {
		t.Errorf("waitIndexes = %+v, timed out %v, %v after %d reads; want ready after 3", st, timedOut, err, fc.reads)
	}

	fc = &fakeCollections{ready: 1 << 30}
	s, f = fakeSetup(t, fc)
	if _, err := s.declareIndexed(ctx, f); err != nil {
		t.Fatal(err)
	}
	st, timedOut, err = s.waitIndexes(ctx, f, 20*time.Millisecond, time.Millisecond)
	if err != nil || !timedOut || st.index(indexFields).State != "building" {
		t.Errorf("waitIndexes on an index never built = %+v, timed out %v, %v; want building, timed out", st, timedOut, err)
	}
}

func TestDeclareIndexRefused(t *testing.T) {
	t.Parallel()
	for _, fc := range []*fakeCollections{{refuse: true}, {drop: true}} {
		s, f := fakeSetup(t, fc)
		_, err := s.declareIndexed(context.Background(), f)
		if err == nil || !strings.Contains(err.Error(), "declare the indexed collection") || !strings.Contains(err.Error(), "--indexed-records 0") {
			t.Errorf("declareIndexed (refuse %v, drop %v) = %v; want an error saying so and how to skip", fc.refuse, fc.drop, err)
		}
		if fc.refuse && !strings.Contains(err.Error(), "400 unsupported") {
			t.Errorf("declareIndexed refused = %v; want the server's 400 unsupported in it", err)
		}
	}
}
