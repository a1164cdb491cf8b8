package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
)

const (
	jobColumns   = `id, kind, state, args, done, total, attempts, error, result, created_by, queue_id, created_at, updated_at, started_at, finished_at`
	sqlCreateJob = `INSERT INTO jobs (tenant_id, ` + jobColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT DO NOTHING`
	sqlGetJob    = `SELECT ` + jobColumns + ` FROM jobs WHERE tenant_id = $1 AND id = $2`
	sqlUpdateJob = `UPDATE jobs SET state = $3, done = $4, total = $5, attempts = $6, error = $7, result = $8, updated_at = $9,
		started_at = $10, finished_at = $11 WHERE tenant_id = $1 AND id = $2 AND state NOT IN ('succeeded', 'failed', 'cancelled')`
	sqlJobExists = `SELECT 1 FROM jobs WHERE tenant_id = $1 AND id = $2`
	// The listing's order and its continuation follow the index
	// jobs_created_at (or jobs_kind_created_at), newest first.
	sqlListJobs = `SELECT ` + jobColumns + ` FROM jobs WHERE tenant_id = $1
		AND ($2 = '' OR kind = $2)
		AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::text))
		ORDER BY created_at DESC, id DESC LIMIT $5`
	sqlCountActiveJobs = `SELECT count(*) FROM (SELECT 1 FROM jobs WHERE tenant_id = $1 AND state IN ('queued', 'running') LIMIT $2) a`
)

func scanJob(r scanner) (*store.Job, error) {
	var j store.Job
	var args, result []byte
	var state string
	if err := r.Scan(&j.ID, &j.Kind, &state, &args, &j.Done, &j.Total, &j.Attempts, &j.Error, &result, &j.CreatedBy,
		&j.QueueID, &j.CreatedAt, &j.UpdatedAt, &j.StartedAt, &j.FinishedAt); err != nil {
		return nil, err
	}
	j.State = store.JobState(state)
	j.Args = json.RawMessage(args)
	if result != nil {
		j.Result = json.RawMessage(result)
	}
	j.CreatedAt, j.UpdatedAt = j.CreatedAt.UTC(), j.UpdatedAt.UTC()
	j.StartedAt, j.FinishedAt = utcPtr(j.StartedAt), utcPtr(j.FinishedAt)
	return &j, nil
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

// jobJSON is the stored form of optional JSON: NULL for none.
func jobJSON(m json.RawMessage) []byte {
	if m == nil {
		return nil
	}
	return []byte(m)
}

func (t *tx) CreateJob(ctx context.Context, j *store.Job) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	args := []byte(j.Args)
	if args == nil {
		args = []byte("null")
	}
	tag, err := t.q.exec(ctx, sqlCreateJob, t.tid.arg, string(j.ID), j.Kind, string(j.State), args, j.Done, j.Total, j.Attempts,
		j.Error, jobJSON(j.Result), j.CreatedBy, j.QueueID, j.CreatedAt, j.UpdatedAt, j.StartedAt, j.FinishedAt)
	if err != nil {
		return wrap(err, "create job %s", j.ID)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("create job %s: id is taken: %w", j.ID, store.ErrConflict)
	}
	return nil
}

func (t *tx) GetJob(ctx context.Context, id store.JobID) (*store.Job, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	j, err := scanJob(t.q.queryRow(ctx, sqlGetJob, t.tid.arg, string(id)))
	return j, wrap(err, "get job %s", id)
}

func (t *tx) UpdateJob(ctx context.Context, j *store.Job) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	tag, err := t.q.exec(ctx, sqlUpdateJob, t.tid.arg, string(j.ID), string(j.State), j.Done, j.Total, j.Attempts, j.Error,
		jobJSON(j.Result), j.UpdatedAt, j.StartedAt, j.FinishedAt)
	if err != nil {
		return wrap(err, "update job %s", j.ID)
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	var one int
	if err := t.q.queryRow(ctx, sqlJobExists, t.tid.arg, string(j.ID)).Scan(&one); err != nil {
		return wrap(err, "update job %s", j.ID)
	}
	return fmt.Errorf("update job %s: the job is finished: %w", j.ID, store.ErrConflict)
}

func (t *tx) ListJobs(ctx context.Context, params *store.ListJobsParams) ([]*store.Job, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var before *time.Time
	var beforeID string
	if params.Before != nil {
		before, beforeID = &params.Before.CreatedAt, string(params.Before.ID)
	}
	var limit *int
	if params.Limit > 0 {
		limit = &params.Limit
	}
	rows, err := t.q.query(ctx, sqlListJobs, t.tid.arg, params.Kind, before, beforeID, limit)
	if err != nil {
		return nil, wrap(err, "list jobs")
	}
	defer rows.Close()
	var js []*store.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, wrap(err, "list jobs")
		}
		js = append(js, j)
	}
	return js, wrap(rows.Err(), "list jobs")
}

func (t *tx) CountActiveJobs(ctx context.Context, limit int) (int, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return 0, err
	}
	defer unlock()
	var l *int
	if limit > 0 {
		l = &limit
	}
	var n int
	err = t.q.queryRow(ctx, sqlCountActiveJobs, t.tid.arg, l).Scan(&n)
	return n, wrap(err, "count active jobs")
}
