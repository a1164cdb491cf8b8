package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// rotateCollection is the aggressor's collection with encrypted fields,
// whose records the rotate mode has re-encrypted.
const rotateCollection = "secrets"

// rotateFields are the fields of rotateCollection that are encrypted: two
// of every bench record's (see recordBody).
var rotateFields = []string{"title", "tag"}

// rotatePoll is how often the rotating aggressor asks for its rotation's
// progress.
const rotatePoll = 100 * time.Millisecond

// keysStatus is what the rotator reads of GET …/keys.
type keysStatus struct {
	ActiveVersion int `json:"active_version"`
	Rotation      struct {
		State       string `json:"state"`
		Reencrypted int64  `json:"reencrypted"`
	} `json:"rotation"`
}

// rotator is the rotate aggressor: each of its requests is one rotation of
// its tenant's data key, from the POST that starts it until GET …/keys
// says no rotation runs any more, polled every rotatePoll; the next one
// starts at once. It counts the records re-encrypted from the progress
// the server reports: the running rotation's count as polled, and, when a
// rotation ends between two polls, the rest of its records (every one of
// the collection's records is re-encrypted once per rotation, and nothing
// else writes to them during the phase).
type rotator struct {
	api     *apiClient
	token   string // the operator's
	slug    string
	records int64 // the records of the collection with encrypted fields

	mu         sync.Mutex
	start      time.Time // the first rotation's start
	last       time.Time // the last progress seen
	counted    int64     // records re-encrypted, as counted
	inferred   int64     // those of them counted at a rotation's end, unseen in its progress
	started    int64     // rotations started
	completed  int64     // rotations seen to end
	completedD time.Duration
}

// seedRotate declares f's collection with encrypted fields, seeds n
// records in it, and returns the rotator of f.
func (e *env) seedRotate(ctx context.Context, f *tenantFixture, n int) (*rotator, error) {
	e.p.Stepf("creating the aggressor's %s records with encrypted %s, to rotate", fint(int64(n)), strings.Join(rotateFields, " and "))
	err := e.setup.api.do(ctx, "PUT", "/v1/tenants/"+f.Slug+"/collections/"+rotateCollection, f.Keys[0],
		map[string]any{"encrypted_fields": rotateFields}, nil, 200, 201)
	if err != nil {
		return nil, err
	}
	var done atomic.Int64
	stop := e.p.count("seeding encrypted", n, func() int { return int(done.Load()) })
	err = e.setup.seedCollection(ctx, f, rotateCollection, n, recordBody, false, &done)
	stop()
	if err != nil {
		return nil, err
	}
	return &rotator{api: e.setup.api, token: e.setup.token, slug: f.Slug, records: int64(n)}, nil
}

// send runs one rotation to its end, or until ctx ends (the phase's end,
// which cuts it). It answers 200 when the rotation has ended.
func (r *rotator) send(ctx context.Context, seq int64) (int, error) {
	begin := time.Now()
	var st keysStatus
	if err := r.api.do(ctx, "POST", "/v1/tenants/"+r.slug+"/keys/rotate", r.token, nil, &st, http.StatusAccepted); err != nil {
		return statusOf(err), err
	}
	r.mu.Lock()
	if r.started == 0 {
		r.start = begin
	}
	r.started++
	r.mu.Unlock()
	seen := int64(0)
	for {
		if st.Rotation.State != "running" {
			// Ended (idle), or "pending" between the rotation's ending and
			// its retiring on this node: a running count is gone either way.
			if st.Rotation.State == "idle" {
				r.observe(r.records-seen, true, time.Since(begin))
				return http.StatusOK, nil
			}
		} else if n := st.Rotation.Reencrypted - seen; n > 0 {
			r.observe(n, false, 0)
			seen = st.Rotation.Reencrypted
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(rotatePoll):
		}
		st = keysStatus{}
		if err := r.api.do(ctx, "GET", "/v1/tenants/"+r.slug+"/keys", r.token, nil, &st, http.StatusOK); err != nil {
			return statusOf(err), err
		}
	}
}

// observe counts n more records re-encrypted, and, if ended, a rotation
// ended after d, n being the records it re-encrypted past its last
// progress seen.
func (r *rotator) observe(n int64, ended bool, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.counted += max(n, 0)
	r.last = time.Now()
	if ended {
		r.inferred += max(n, 0)
		r.completed++
		r.completedD += d
	}
}

// report summarizes what the rotator saw.
func (r *rotator) report() *RotateReport {
	r.mu.Lock()
	defer r.mu.Unlock()
	rr := &RotateReport{Records: r.records, Started: r.started, Completed: r.completed, Reencrypted: r.counted, Inferred: r.inferred}
	if el := r.last.Sub(r.start); el > 0 {
		rr.ObservedSec = el.Seconds()
		rr.RatePerSec = float64(r.counted) / el.Seconds()
	}
	if r.completed > 0 {
		rr.MeanRotationSec = (r.completedD / time.Duration(r.completed)).Seconds()
	}
	return rr
}

// waitIdle waits until no rotation of the aggressor's runs, so that a
// rotation cut at the end of its phase does not load the next one.
func (r *rotator) waitIdle(ctx context.Context, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		var st keysStatus
		if err := r.api.do(ctx, "GET", "/v1/tenants/"+r.slug+"/keys", r.token, nil, &st, http.StatusOK); err != nil {
			return err
		}
		if st.Rotation.State == "idle" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the aggressor's rotation still runs after %s: %w", limit, ctx.Err())
		case <-time.After(rotatePoll):
		}
	}
}

// statusOf is the HTTP status of an APIError, or 0.
func statusOf(err error) int {
	if e, ok := err.(*APIError); ok {
		return e.Status
	}
	return 0
}

// RotateReport is what the rotate aggressor did during its phase.
type RotateReport struct {
	// Records is the records of its collection with encrypted fields,
	// each re-encrypted once by every rotation.
	Records int64 `json:"records"`
	// Started counts the rotations it started; Completed those it saw end
	// within the phase.
	Started   int64 `json:"rotations_started"`
	Completed int64 `json:"rotations_completed"`
	// MeanRotationSec is how long a completed rotation lasted, on average,
	// from the POST that started it to the poll that found it ended.
	MeanRotationSec float64 `json:"mean_rotation_s,omitempty"`
	// Reencrypted counts the records re-encrypted from the first rotation's
	// start to the last progress seen, ObservedSec later; RatePerSec is
	// their quotient.
	Reencrypted int64 `json:"reencrypted"`
	// Inferred is the part of Reencrypted counted at rotations' ends, past
	// the progress last polled.
	Inferred    int64   `json:"reencrypted_at_end"`
	ObservedSec float64 `json:"observed_s"`
	RatePerSec  float64 `json:"reencrypted_per_s"`
}

// writeRotate writes the rotate phases' re-encryption.
func writeRotate(w io.Writer, runs []*FloodReport) {
	rows := [][]string{{"phase", "records", "rotations started", "completed", "mean rotation", "re-encrypted", "of them at ends", "over", "re-encrypted/s"}}
	for _, f := range runs {
		rr := f.Rotate
		if rr == nil {
			continue
		}
		mean := "-"
		if rr.Completed > 0 {
			mean = fmt.Sprintf("%.1f s", rr.MeanRotationSec)
		}
		rows = append(rows, []string{f.Name, fint(rr.Records), fint(rr.Started), fint(rr.Completed), mean, fint(rr.Reencrypted), fint(rr.Inferred),
			fmt.Sprintf("%.1f s", rr.ObservedSec), frate(rr.RatePerSec)})
	}
	if len(rows) == 1 {
		return
	}
	fmt.Fprintln(w, "\nAggressor, rotate (one rotation at a time, the next as soon as the previous ends)")
	table(w, rows, "l")
	fmt.Fprintf(w, "re-encrypted = records counted from GET …/keys (polled every %s) from the first rotation's start to\n", rotatePoll)
	fmt.Fprintln(w, "the last progress seen; a rotation seen to end counts all its records (\"at ends\": those past its last")
	fmt.Fprintln(w, "progress polled). Between two rotations nothing is re-encrypted for up to a poll and a POST. The rotation")
	fmt.Fprintln(w, "cut at the end of the phase is left to finish before anything else is measured.")
}
