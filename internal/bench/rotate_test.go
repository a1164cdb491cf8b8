package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeKeys is a server of POST …/keys/rotate and GET …/keys whose
// rotations report progress as listed, one step per GET, then end.
type fakeKeys struct {
	mu        sync.Mutex
	progress  []int64 // what each GET of a rotation reports while running
	step      int
	rotations int
	auth      []string
}

func (f *fakeKeys) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	state := func(s string, n int64) string {
		return fmt.Sprintf(`{"kms":"local","active_version":%d,"versions":[],"rotation":{"state":%q,"reencrypted":%d}}`, f.rotations+1, s, n)
	}
	switch {
	case r.Method == "POST" && r.URL.Path == "/v1/tenants/agg/keys/rotate":
		f.rotations++
		f.step = 0
		w.WriteHeader(http.StatusAccepted)
		fmt.Fprint(w, state("running", 0))
	case r.Method == "GET" && r.URL.Path == "/v1/tenants/agg/keys":
		if f.step < len(f.progress) {
			fmt.Fprint(w, state("running", f.progress[f.step]))
			f.step++
			return
		}
		fmt.Fprint(w, state("idle", 0))
	default:
		http.Error(w, "no such route", http.StatusNotFound)
	}
}

func TestRotatorCountsProgressAndEnds(t *testing.T) {
	t.Parallel()
	fk := &fakeKeys{progress: []int64{40, 40, 70}}
	srv := httptest.NewServer(fk)
	defer srv.Close()
	r := &rotator{api: newAPIClient(srv.URL), token: "op-token", slug: "agg", records: 100}

	for range 2 {
		status, err := r.send(context.Background(), 0)
		if err != nil || status != http.StatusOK {
			t.Fatalf("send = %d, %v; want 200 once the rotation ends", status, err)
		}
	}
	rr := r.report()
	// Each rotation: 40 and 30 seen in its progress, the last 30 counted at its end.
	if rr.Started != 2 || rr.Completed != 2 || rr.Reencrypted != 200 || rr.Inferred != 60 || rr.Records != 100 {
		t.Errorf("report = %+v; want 2 rotations started and completed, 200 re-encrypted, 60 of them at ends", rr)
	}
	if rr.ObservedSec <= 0 || rr.RatePerSec <= 0 || rr.MeanRotationSec <= 0 {
		t.Errorf("report = %+v; want a positive time observed, rate and mean rotation", rr)
	}
	for _, a := range fk.auth {
		if a != "Bearer op-token" {
			t.Fatalf("a request carried Authorization %q, want the operator's token", a)
		}
	}
}

func TestRotatorCutAtEnd(t *testing.T) {
	t.Parallel()
	fk := &fakeKeys{progress: make([]int64, 1000)}
	for i := range fk.progress {
		fk.progress[i] = int64(10 * (i + 1))
	}
	srv := httptest.NewServer(fk)
	defer srv.Close()
	r := &rotator{api: newAPIClient(srv.URL), token: "op-token", slug: "agg", records: 1_000_000}
	ctx, cancel := context.WithTimeout(context.Background(), 3*rotatePoll+rotatePoll/2)
	defer cancel()
	if _, err := r.send(ctx, 0); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("send error = %v, want the context's deadline", err)
	}
	rr := r.report()
	if rr.Started != 1 || rr.Completed != 0 || rr.Inferred != 0 {
		t.Errorf("report = %+v; want 1 rotation started, none completed, nothing counted at an end", rr)
	}
	// Only the progress polled counts: 10 per poll, never the records not yet reached.
	if rr.Reencrypted == 0 || rr.Reencrypted%10 != 0 || rr.Reencrypted > 100 {
		t.Errorf("re-encrypted = %d; want the last progress polled (a few polls of 10)", rr.Reencrypted)
	}
}

func TestRotatorReportsRefusal(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusConflict)
		fmt.Fprint(w, `{"code":"conflict","detail":"another rotation began"}`)
	}))
	defer srv.Close()
	r := &rotator{api: newAPIClient(srv.URL), token: "op-token", slug: "agg", records: 10}
	status, err := r.send(context.Background(), 0)
	if status != http.StatusConflict || err == nil {
		t.Errorf("send = %d, %v; want 409 and an error", status, err)
	}
	if rr := r.report(); rr.Started != 0 || rr.Reencrypted != 0 {
		t.Errorf("report = %+v after a refused rotation; want nothing started", rr)
	}
}

func TestRotateReportOutput(t *testing.T) {
	t.Parallel()
	rep := noisyFixture()
	rep.Runs = nil
	rep.SoloLogins = nil
	rep.Settings.Modes = []AggressorMode{ModeRotate}
	rep.Settings.RotateRecords = 20_000
	rep.Settings.RotateCollection = "secrets, encrypted_fields title, tag"
	agg := streamReport("aggressor", 10, 0, 2*time.Second)
	agg.Cut, agg.TransportErrors, agg.FirstError = 1, 1, errCut.Error()
	fr := &FloodReport{Name: "rotate", Mode: ModeRotate, AggressorPlan: "free", Victims: victims(100, 0, 20*time.Millisecond),
		Aggressor: agg, Rotate: &RotateReport{Records: 20_000, Started: 10, Completed: 9, MeanRotationSec: 2.2,
			Reencrypted: 185_200, Inferred: 1_800, ObservedSec: 19.8, RatePerSec: 9353.5}}
	fr.compare(rep.Solo, nil)
	rep.Runs = []*FloodReport{fr}
	rep.judge()
	var b bytes.Buffer
	rep.WriteText(&b)
	text := b.String()
	for _, want := range []string{"rotate: the aggressor, on plan free, has 20,000 records", "Aggressor, rotate",
		"185,200", "9,354/s", "2.2 s", "victims' p99, rotate / solo", "victims' errors beside rotate"} {
		if !strings.Contains(text, want) {
			t.Errorf("text report lacks %q:\n%s", want, text)
		}
	}
	// The rotation cut at the end is expected: no error line, and it is
	// not shown as a connection-holding mode.
	for _, absent := range []string{"first aggressor transport error", "Aggressor, other modes"} {
		if strings.Contains(text, absent) {
			t.Errorf("text report holds %q:\n%s", absent, text)
		}
	}
	g := rep.ModeGoals[0]
	if g.Name != "victims' p99, rotate / solo" || g.Status != "missed" || g.Measured != "2.00×" {
		t.Errorf("rotate p99 goal = %+v; want missed at 2.00× (20 ms over 10 ms)", g)
	}
	b.Reset()
	if err := json.NewEncoder(&b).Encode(rep); err != nil {
		t.Fatalf("the report does not marshal as JSON: %v", err)
	}
	if !strings.Contains(b.String(), `"reencrypted_per_s":9353.5`) {
		t.Errorf("JSON report lacks the re-encryption rate: %s", b.String())
	}
}
