package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBenchCRUDEndToEnd runs bench crud briefly at a low rate against its
// in-process server and checks the report's shape. It asserts no timing.
func TestBenchCRUDEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server and loads it for about a second")
	}
	code, out, errOut := run(t, t.TempDir(), "bench", "crud", "--json",
		"--duration", "300ms", "--rate", "20", "--tenants", "2", "--seed", "3")
	if code != 0 {
		t.Fatalf("bench crud = exit %d, stderr:\n%s", code, errOut)
	}
	var rep struct {
		Bench  string
		Target struct{ Mode, Note string }
		Phases []struct {
			Name      string
			Scheduled int64
			Sent      int64
			OK        int64 `json:"ok_2xx"`
			Latency   struct {
				Count int64
				P50   float64 `json:"p50_ms"`
				P99   float64 `json:"p99_ms"`
				P999  float64 `json:"p999_ms"`
			}
		}
		Goals []struct{ Name, Status string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("bench crud --json printed no JSON document: %v\n%s", err, out)
	}
	if rep.Bench != "crud" || rep.Target.Mode != "in-process" || !strings.Contains(rep.Target.Note, "share") {
		t.Errorf("report header = %q, %+v; want crud, in process, saying the machine is shared", rep.Bench, rep.Target)
	}
	var names []string
	for _, p := range rep.Phases {
		names = append(names, p.Name)
		if p.Sent == 0 || p.OK != p.Sent || p.Scheduled != p.Sent || p.Latency.Count != p.Sent {
			t.Errorf("phase %s: scheduled %d, sent %d, 2xx %d, latencies %d; want all equal and > 0",
				p.Name, p.Scheduled, p.Sent, p.OK, p.Latency.Count)
		}
		if p.Latency.P50 <= 0 || p.Latency.P99 < p.Latency.P50 || p.Latency.P999 < p.Latency.P99 {
			t.Errorf("phase %s: quantiles %+v are not positive and ordered", p.Name, p.Latency)
		}
	}
	if strings.Join(names, ",") != "create,get,list" {
		t.Errorf("phases = %v, want create, get, list", names)
	}
	if len(rep.Goals) != 6 {
		t.Errorf("report lists %d goals, want the 6 of admission control", len(rep.Goals))
	}
	if !strings.Contains(errOut, "crud/get") {
		t.Errorf("stderr shows no progress for the get phase:\n%s", errOut)
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
