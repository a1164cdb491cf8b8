package sqlitestore

import (
	"context"
	"fmt"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
)

const (
	// sqlAddUsageHour adds to the hour's counts; records and bytes are
	// replaced only by a sample (?7).
	sqlAddUsageHour = `INSERT INTO usage_hourly (tenant_id, hour, records, bytes, requests, job_ms)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6)
		ON CONFLICT (tenant_id, hour) DO UPDATE SET
			requests = requests + excluded.requests, job_ms = job_ms + excluded.job_ms,
			records = CASE WHEN ?7 THEN excluded.records ELSE records END,
			bytes = CASE WHEN ?7 THEN excluded.bytes ELSE bytes END`
	sqlListUsageHours = `SELECT hour, records, bytes, requests, job_ms FROM usage_hourly
		WHERE tenant_id = ? AND hour >= ? AND hour < ? ORDER BY hour LIMIT ?`
)

func (t *tx) AddUsageHour(ctx context.Context, h *store.UsageHour) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	if !h.Hour.Equal(h.Hour.Truncate(time.Hour)) {
		return fmt.Errorf("sqlitestore: usage hour %v does not start an hour", h.Hour)
	}
	var records, bytes int64
	if h.Sampled {
		records, bytes = h.Records, h.Bytes
	}
	_, err = t.c.exec(ctx, sqlAddUsageHour, t.tid, h.Hour.Unix(), records, bytes, h.Requests, h.JobMS, h.Sampled)
	return wrap(err, "add usage of hour %v", h.Hour)
}

func scanUsageHour(r scanner) (*store.UsageHour, error) {
	var h store.UsageHour
	var hour int64
	if err := r.Scan(&hour, &h.Records, &h.Bytes, &h.Requests, &h.JobMS); err != nil {
		return nil, err
	}
	h.Hour = time.Unix(hour, 0).UTC()
	return &h, nil
}

func (t *tx) ListUsageHours(ctx context.Context, from, to time.Time, limit int) ([]*store.UsageHour, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	// An hour is in [from, to) when its start is: round from up and to
	// up to whole seconds, as hours are stored.
	lo, hi := ceilUnix(from), ceilUnix(to)
	rows, err := t.c.query(ctx, sqlListUsageHours, t.tid, lo, hi, limitArg(limit))
	return collect(rows, err, scanUsageHour, "list usage hours")
}

// ceilUnix is t in whole Unix seconds, rounded up.
func ceilUnix(t time.Time) int64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return s
}
