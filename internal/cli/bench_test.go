package cli

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

// crudReport is what the bench crud tests read of its JSON report.
type crudReport struct {
	Bench  string
	Target struct{ Mode, Note string }
	Phases []struct {
		Name       string
		Scheduled  int64
		Sent       int64
		OK         int64   `json:"ok_2xx"`
		Throughput float64 `json:"throughput_ok_per_s"`
		Latency    struct {
			Count int64
			P50   float64 `json:"p50_ms"`
			P99   float64 `json:"p99_ms"`
			P999  float64 `json:"p999_ms"`
		}
	}
	Index *struct {
		Records int
		State   string
	}
	Ratios []struct {
		Phase, Base string
		Throughput  *float64 `json:"throughput_ratio"`
		P50         *float64 `json:"p50_ratio"`
		P99         *float64 `json:"p99_ratio"`
	}
	Goals []struct{ Name, Status, Measured, Note string }
}

// runCRUD runs bench crud --json with args and decodes its report.
func runCRUD(t *testing.T, args ...string) (crudReport, string) {
	t.Helper()
	code, out, errOut := run(t, t.TempDir(), append([]string{"bench", "crud", "--json"}, args...)...)
	if code != 0 {
		t.Fatalf("bench crud = exit %d, stderr:\n%s", code, errOut)
	}
	var rep crudReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("bench crud --json printed no JSON document: %v\n%s", err, out)
	}
	return rep, errOut
}

// checkCRUDReport checks that every phase of rep is in want, in order, with
// all its requests answered 2xx, and that every ratio is the quotient of
// the measured numbers of its phases; throughput ratios only in closed
// loop. It asserts no timing.
func checkCRUDReport(t *testing.T, rep crudReport, closed bool, want ...string) {
	t.Helper()
	if rep.Bench != "crud" || rep.Target.Mode != "in-process" || !strings.Contains(rep.Target.Note, "share") {
		t.Errorf("report header = %q, %+v; want crud, in process, saying the machine is shared", rep.Bench, rep.Target)
	}
	var names []string
	byName := map[string]int{}
	for i, p := range rep.Phases {
		names = append(names, p.Name)
		byName[p.Name] = i
		if p.Sent == 0 || p.OK != p.Sent || p.Scheduled != p.Sent || p.Latency.Count != p.Sent {
			t.Errorf("phase %s: scheduled %d, sent %d, 2xx %d, latencies %d; want all equal and > 0",
				p.Name, p.Scheduled, p.Sent, p.OK, p.Latency.Count)
		}
		if p.Latency.P50 <= 0 || p.Latency.P99 < p.Latency.P50 || p.Latency.P999 < p.Latency.P99 {
			t.Errorf("phase %s: quantiles %+v are not positive and ordered", p.Name, p.Latency)
		}
	}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Errorf("phases = %v, want %v", names, want)
	}
	quotient := func(r *float64, a, b float64) bool { return r != nil && math.Abs(*r-a/b) <= 1e-9*a/b }
	bases := map[string]bool{}
	for _, r := range rep.Ratios {
		bases[r.Phase+"/"+r.Base] = true
		p, b := rep.Phases[byName[r.Phase]], rep.Phases[byName[r.Base]]
		if !quotient(r.P50, p.Latency.P50, b.Latency.P50) || !quotient(r.P99, p.Latency.P99, b.Latency.P99) {
			t.Errorf("%s / %s latency ratios = %v, %v; want the quotients of the phases' p50 and p99", r.Phase, r.Base, r.P50, r.P99)
		}
		if closed && !quotient(r.Throughput, p.Throughput, b.Throughput) || !closed && r.Throughput != nil {
			t.Errorf("%s / %s throughput ratio = %v; want the quotient of the phases' in closed loop, null in open loop", r.Phase, r.Base, r.Throughput)
		}
	}
	for _, name := range want[1:] {
		if !bases[name+"/bare"] {
			t.Errorf("no ratio of %s to bare", name)
		}
	}
}

// goal returns the goal of rep whose name starts with prefix.
func (rep crudReport) goal(t *testing.T, prefix string) (name, status, measured, note string) {
	t.Helper()
	for _, g := range rep.Goals {
		if strings.HasPrefix(g.Name, prefix) {
			return g.Name, g.Status, g.Measured, g.Note
		}
	}
	t.Fatalf("the report has no goal %q: %+v", prefix, rep.Goals)
	return
}

// TestBenchCRUDEndToEnd runs bench crud briefly at a low rate against its
// in-process server, without the indexed tenant, and checks the report's
// shape. It asserts no timing.
func TestBenchCRUDEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and loads it for about a second")
	}
	rep, errOut := runCRUD(t, "--duration", "300ms", "--rate", "20", "--tenants", "2", "--seed", "3", "--indexed-records", "0")
	checkCRUDReport(t, rep, false, "bare", "create", "get", "list")
	if rep.Index != nil {
		t.Errorf("index = %+v with --indexed-records 0; want none", rep.Index)
	}
	if len(rep.Goals) != 8 {
		t.Errorf("report lists %d goals, want 8: admission control's 6 and the CRUD path's 2", len(rep.Goals))
	}
	// Open loop: the throughput goals are not judged, their latency ratios noted.
	if _, status, _, note := rep.goal(t, "GET by id, throughput / bare"); status != "not measured" || !strings.Contains(note, "--max") {
		t.Errorf("GET by id goal in open loop = %s (%s); want not measured, pointing to --max", status, note)
	}
	if _, status, _, note := rep.goal(t, "filtered list of 20"); status != "not measured" || !strings.Contains(note, "--indexed-records") {
		t.Errorf("filtered list goal without the indexed tenant = %s (%s); want not measured", status, note)
	}
	if !strings.Contains(errOut, "crud/bare") || !strings.Contains(errOut, "crud/get") {
		t.Errorf("stderr shows no progress for the bare and get phases:\n%s", errOut)
	}
}

// TestBenchCRUDIndexed runs bench crud closed loop with a small indexed
// tenant and checks that its phases, ratios and goals are reported. It
// needs a server that supports declared indexes; it asserts no timing.
func TestBenchCRUDIndexed(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and loads it for about two seconds")
	}
	rep, errOut := runCRUD(t, "--max", "--conns", "4", "--duration", "200ms", "--tenants", "1", "--seed", "3",
		"--indexed-records", "300", "--index-timeout", "30s")
	checkCRUDReport(t, rep, true, "bare", "create", "get", "list", "get-indexed", "list-indexed", "list-unindexed")
	if rep.Index == nil || rep.Index.Records != 300 || rep.Index.State != "ready" {
		t.Errorf("index = %+v; want 300 records, ready", rep.Index)
	}
	for _, r := range []string{"list-indexed", "list-unindexed"} {
		found := false
		for _, pr := range rep.Ratios {
			found = found || pr.Phase == r && pr.Base == "get-indexed"
		}
		if !found {
			t.Errorf("no ratio of %s to get-indexed", r)
		}
	}
	// Closed loop: both goals are judged, met or missed, on the measured ratio.
	for _, prefix := range []string{"GET by id, throughput / bare", "filtered list of 20, throughput / GET by id"} {
		name, status, measured, _ := rep.goal(t, prefix)
		if status != "met" && status != "missed" || !strings.HasSuffix(measured, "×") {
			t.Errorf("goal %q = %s, measured %q; want met or missed on a ratio", name, status, measured)
		}
	}
	if !strings.Contains(errOut, "seeding indexed") && !strings.Contains(errOut, "index (owner, -n): ready") {
		t.Errorf("stderr shows no progress for the indexed tenant:\n%s", errOut)
	}
}

// An unknown --aggressor mode is refused before anything starts.
func TestBenchNoisyRefusesUnknownMode(t *testing.T) {
	code, _, errOut := run(t, t.TempDir(), "bench", "noisy", "--aggressor", "slow-body,slowloris")
	if code == 0 || !strings.Contains(errOut, `unknown aggressor mode "slowloris"`) {
		t.Errorf("bench noisy --aggressor slow-body,slowloris = exit %d, stderr:\n%s", code, errOut)
	}
	if strings.Contains(errOut, "starting an in-process server") {
		t.Errorf("bench noisy started a server before refusing the mode:\n%s", errOut)
	}
}
