package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/bulkheadhq/bulkhead/store"
)

const (
	jobColumns   = `id, kind, state, args, done, total, attempts, error, result, created_by, queue_id, created_at, updated_at, started_at, finished_at`
	sqlCreateJob = `INSERT INTO jobs (tenant_id, ` + jobColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlGetJob    = `SELECT ` + jobColumns + ` FROM jobs WHERE tenant_id = ? AND id = ?`
	sqlUpdateJob = `UPDATE jobs SET state = ?, done = ?, total = ?, attempts = ?, error = ?, result = ?, updated_at = ?,
		started_at = ?, finished_at = ? WHERE tenant_id = ? AND id = ? AND state NOT IN ('succeeded', 'failed', 'cancelled')`
	sqlJobExists = `SELECT 1 FROM jobs WHERE tenant_id = ? AND id = ?`
	// The listing's order and its continuation follow the index
	// jobs_created_at (or jobs_kind_created_at), newest first.
	sqlListJobs = `SELECT ` + jobColumns + ` FROM jobs WHERE tenant_id = ?1
		AND (?2 = '' OR kind = ?2)
		AND (?3 IS NULL OR created_at < ?3 OR (created_at = ?3 AND id < ?4))
		ORDER BY created_at DESC, id DESC LIMIT ?5`
	sqlCountActiveJobs = `SELECT count(*) FROM (SELECT 1 FROM jobs WHERE tenant_id = ? AND state IN ('queued', 'running') LIMIT ?)`
)

func scanJob(r scanner) (*store.Job, error) {
	var j store.Job
	var args, result []byte
	var created, updated int64
	var started, finished sql.NullInt64
	if err := r.Scan(&j.ID, &j.Kind, &j.State, &args, &j.Done, &j.Total, &j.Attempts, &j.Error, &result, &j.CreatedBy,
		&j.QueueID, &created, &updated, &started, &finished); err != nil {
		return nil, err
	}
	j.Args = json.RawMessage(args)
	if result != nil {
		j.Result = json.RawMessage(result)
	}
	j.CreatedAt, j.UpdatedAt = fromMicros(created), fromMicros(updated)
	j.StartedAt, j.FinishedAt = fromNullMicros(started), fromNullMicros(finished)
	return &j, nil
}

// jobJSON is the stored form of optional JSON: NULL for none.
func jobJSON(m json.RawMessage) any {
	if m == nil {
		return nil
	}
	return []byte(m)
}

func (t *tx) CreateJob(ctx context.Context, j *store.Job) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	args := []byte(j.Args)
	if args == nil {
		args = []byte("null")
	}
	_, err = t.c.exec(ctx, sqlCreateJob, t.tid, string(j.ID), j.Kind, string(j.State), args, j.Done, j.Total, j.Attempts,
		j.Error, jobJSON(j.Result), j.CreatedBy, j.QueueID, j.CreatedAt.UnixMicro(), j.UpdatedAt.UnixMicro(),
		nullMicros(j.StartedAt), nullMicros(j.FinishedAt))
	return wrap(err, "create job %s", j.ID)
}

func (t *tx) GetJob(ctx context.Context, id store.JobID) (*store.Job, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	j, err := scanJob(t.c.queryRow(ctx, sqlGetJob, t.tid, string(id)))
	return j, wrap(err, "get job %s", id)
}

func (t *tx) UpdateJob(ctx context.Context, j *store.Job) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	res, err := t.c.exec(ctx, sqlUpdateJob, string(j.State), j.Done, j.Total, j.Attempts, j.Error, jobJSON(j.Result),
		j.UpdatedAt.UnixMicro(), nullMicros(j.StartedAt), nullMicros(j.FinishedAt), t.tid, string(j.ID))
	if err != nil {
		return wrap(err, "update job %s", j.ID)
	}
	if n, err := res.RowsAffected(); err != nil {
		return wrap(err, "update job %s", j.ID)
	} else if n > 0 {
		return nil
	}
	var one int
	if err := t.c.queryRow(ctx, sqlJobExists, t.tid, string(j.ID)).Scan(&one); err != nil {
		return wrap(err, "update job %s", j.ID)
	}
	return fmt.Errorf("update job %s: the job is finished: %w", j.ID, store.ErrConflict)
}

func (t *tx) ListJobs(ctx context.Context, params *store.ListJobsParams) ([]*store.Job, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	var before, beforeID any
	if params.Before != nil {
		before, beforeID = params.Before.CreatedAt.UnixMicro(), string(params.Before.ID)
	}
	rows, err := t.c.query(ctx, sqlListJobs, t.tid, params.Kind, before, beforeID, limitArg(params.Limit))
	return collect(rows, err, scanJob, "list jobs")
}

func (t *tx) CountActiveJobs(ctx context.Context, limit int) (int, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return 0, err
	}
	var n int
	err = t.c.queryRow(ctx, sqlCountActiveJobs, t.tid, limitArg(limit)).Scan(&n)
	return n, wrap(err, "count active jobs")
}
