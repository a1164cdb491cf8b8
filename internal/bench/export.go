package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// exportCollection is the aggressor's collection that the export mode's
// exports read.
const exportCollection = "exported"

// exportPoll is how often the exporting aggressor asks for its export job.
const exportPoll = 100 * time.Millisecond

// jobStatus is what the exporter reads of GET …/jobs/{id}.
type jobStatus struct {
	ID       string `json:"id"`
	State    string `json:"state"`
	Error    string `json:"error"`
	Progress struct {
		Done  int64 `json:"done"`
		Total int64 `json:"total"`
	} `json:"progress"`
}

func (j *jobStatus) finished() bool {
	return j.State == "succeeded" || j.State == "failed" || j.State == "cancelled"
}

// exporter is the export aggressor: each of its requests is one export of
// its tenant, from the POST that queues it until GET …/jobs/{id} says it
// has finished, polled every exportPoll; the next starts at once.
type exporter struct {
	api  *apiClient
	key  string // a tenant admin's
	slug string

	mu        sync.Mutex
	last      string // the job of the export started last
	started   int64
	completed int64
	failed    int64
	records   int64 // records of the completed exports
	busy      time.Duration
}

// seedExport seeds n records in f's collection exportCollection and returns
// the exporter of f.
func (e *env) seedExport(ctx context.Context, f *tenantFixture, n int) (*exporter, error) {
	e.p.Stepf("creating the aggressor's %s records, to export", fint(int64(n)))
	if err := e.setup.api.do(ctx, "PUT", "/v1/tenants/"+f.Slug+"/collections/"+exportCollection, f.Keys[0],
		map[string]any{}, nil, 200, 201); err != nil {
		return nil, err
	}
	var done atomic.Int64
	stop := e.p.count("seeding exported", n, func() int { return int(done.Load()) })
	err := e.setup.seedCollection(ctx, f, exportCollection, n, recordBody, false, &done)
	stop()
	if err != nil {
		return nil, err
	}
	return &exporter{api: e.setup.api, key: f.Keys[0], slug: f.Slug}, nil
}

// send runs one export to its end, or until ctx ends (the phase's end,
// which cuts the waiting, not the export). It answers 200 when the export
// succeeded.
func (x *exporter) send(ctx context.Context, seq int64) (int, error) {
	begin := time.Now()
	var acc struct{ Job jobStatus }
	if err := x.api.do(ctx, "POST", "/v1/tenants/"+x.slug+"/exports", x.key, nil, &acc, http.StatusAccepted); err != nil {
		return statusOf(err), err
	}
	x.mu.Lock()
	x.started++
	x.last = acc.Job.ID
	x.mu.Unlock()
	for {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(exportPoll):
		}
		var j jobStatus
		if err := x.api.do(ctx, "GET", "/v1/tenants/"+x.slug+"/jobs/"+acc.Job.ID, x.key, nil, &j, http.StatusOK); err != nil {
			return statusOf(err), err
		}
		if !j.finished() {
			continue
		}
		x.mu.Lock()
		defer x.mu.Unlock()
		if j.State != "succeeded" {
			x.failed++
			return http.StatusInternalServerError, fmt.Errorf("export %s %s: %s", j.ID, j.State, j.Error)
		}
		x.completed++
		x.records += j.Progress.Done
		x.busy += time.Since(begin)
		return http.StatusOK, nil
	}
}

// waitIdle waits until the export started last has finished, so that an
// export cut at the end of its phase does not load the next one.
func (x *exporter) waitIdle(ctx context.Context, limit time.Duration) error {
	x.mu.Lock()
	id := x.last
	x.mu.Unlock()
	if id == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		var j jobStatus
		if err := x.api.do(ctx, "GET", "/v1/tenants/"+x.slug+"/jobs/"+id, x.key, nil, &j, http.StatusOK); err != nil {
			return err
		}
		if j.finished() {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the aggressor's export still runs after %s: %w", limit, ctx.Err())
		case <-time.After(exportPoll):
		}
	}
}

// ExportReport is what the export aggressor did during its phase.
type ExportReport struct {
	// Started counts the exports it started; Completed those it saw
	// succeed within the phase, Failed those it saw fail.
	Started   int64 `json:"exports_started"`
	Completed int64 `json:"exports_completed"`
	Failed    int64 `json:"exports_failed"`
	// Records is the records of the completed exports; RatePerSec is
	// Records over the time from their POSTs to their ends seen.
	Records       int64   `json:"records"`
	MeanExportSec float64 `json:"mean_export_s,omitempty"`
	RatePerSec    float64 `json:"records_per_s,omitempty"`
}

func (x *exporter) report() *ExportReport {
	x.mu.Lock()
	defer x.mu.Unlock()
	r := &ExportReport{Started: x.started, Completed: x.completed, Failed: x.failed, Records: x.records}
	if x.completed > 0 {
		r.MeanExportSec = (x.busy / time.Duration(x.completed)).Seconds()
		r.RatePerSec = float64(x.records) / x.busy.Seconds()
	}
	return r
}

// writeExport writes the export phases' exports.
func writeExport(w io.Writer, runs []*FloodReport) {
	rows := [][]string{{"phase", "exports started", "completed", "failed", "mean export", "records", "records/s"}}
	for _, f := range runs {
		er := f.Export
		if er == nil {
			continue
		}
		mean := "-"
		if er.Completed > 0 {
			mean = fmt.Sprintf("%.1f s", er.MeanExportSec)
		}
		rows = append(rows, []string{f.Name, fint(er.Started), fint(er.Completed), fint(er.Failed), mean, fint(er.Records), frate(er.RatePerSec)})
	}
	if len(rows) == 1 {
		return
	}
	fmt.Fprintln(w, "\nAggressor, export (one export at a time, the next as soon as the previous ends)")
	table(w, rows, "l")
	fmt.Fprintf(w, "an export lasts from its POST to the poll of GET …/jobs/{id} (every %s) that finds it finished; the\n", exportPoll)
	fmt.Fprintln(w, "export cut at the end of the phase is left to finish before anything else is measured.")
}
