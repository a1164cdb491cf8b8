package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
)

const (
	// sqlAddUsageHour adds to the hour's counts; records and bytes are
	// replaced only by a sample ($7).
	sqlAddUsageHour = `INSERT INTO usage_hourly AS u (tenant_id, hour, records, bytes, requests, job_ms)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (tenant_id, hour) DO UPDATE SET
			requests = u.requests + excluded.requests, job_ms = u.job_ms + excluded.job_ms,
			records = CASE WHEN $7 THEN excluded.records ELSE u.records END,
			bytes = CASE WHEN $7 THEN excluded.bytes ELSE u.bytes END`
	sqlListUsageHours = `SELECT hour, records, bytes, requests, job_ms FROM usage_hourly
		WHERE tenant_id = $1 AND hour >= $2 AND hour < $3 ORDER BY hour LIMIT $4`
)

func (t *tx) AddUsageHour(ctx context.Context, h *store.UsageHour) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	if !h.Hour.Equal(h.Hour.Truncate(time.Hour)) {
		return fmt.Errorf("pgstore: usage hour %v does not start an hour", h.Hour)
	}
	var records, bytes int64
	if h.Sampled {
		records, bytes = h.Records, h.Bytes
	}
	_, err = t.q.exec(ctx, sqlAddUsageHour, t.tid.arg, h.Hour.UTC(), records, bytes, h.Requests, h.JobMS, h.Sampled)
	return wrap(err, "add usage of hour %v", h.Hour)
}

func (t *tx) ListUsageHours(ctx context.Context, from, to time.Time, limit int) ([]*store.UsageHour, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rows, err := t.q.query(ctx, sqlListUsageHours, t.tid.arg, from, to, limitArg(limit))
	if err != nil {
		return nil, wrap(err, "list usage hours")
	}
	defer rows.Close()
	var hs []*store.UsageHour
	for rows.Next() {
		var h store.UsageHour
		if err := rows.Scan(&h.Hour, &h.Records, &h.Bytes, &h.Requests, &h.JobMS); err != nil {
			return nil, wrap(err, "list usage hours")
		}
		h.Hour = h.Hour.UTC()
		hs = append(hs, &h)
	}
	return hs, wrap(rows.Err(), "list usage hours")
}
