package sqlitestore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/internal/recsql"
)

// Expiry on created_at or updated_at deletes the oldest records first
// through the records' (tenant_id, collection, <time>, id) index. Expiry on
// a data field reads the collection in id order (the primary key), Limit
// records at a time, skips in SQL any record whose field cannot hold an
// expired timestamp, and parses the rest in Go, so that both stores read
// timestamps alike.
var (
	sqlExpireByTime = map[string]string{}
	sqlCountByTime  = map[string]string{}
)

func init() {
	for _, col := range []string{store.RetentionCreatedAt, store.RetentionUpdatedAt} {
		sqlExpireByTime[col] = `DELETE FROM records WHERE tenant_id = ?1 AND collection = ?2 AND id IN (
			SELECT id FROM records WHERE tenant_id = ?1 AND collection = ?2 AND ` + col + ` < ?3
			ORDER BY ` + col + `, id LIMIT ?4)
			RETURNING octet_length(data)`
		sqlCountByTime[col] = `SELECT count(*) FROM records WHERE tenant_id = ? AND collection = ? AND ` + col + ` < ?`
	}
}

const (
	// sqlScanRetentionField returns the next records in id order, with
	// their field's text where it may be an expired timestamp (?4 is
	// recsql.RetentionDateBound), else NULL.
	sqlScanRetentionField = `SELECT id, CASE WHEN json_type(data, ?3) = 'text' AND substr(json_extract(data, ?3), 1, 10) <= ?4
			THEN json_extract(data, ?3) END
		FROM records WHERE tenant_id = ?1 AND collection = ?2 AND id > ?5 ORDER BY id LIMIT ?6`
	sqlCountRetentionField = `SELECT count(*) FROM records WHERE tenant_id = ?1 AND collection = ?2
		AND json_type(data, ?3) = 'text' AND substr(json_extract(data, ?3), 1, 10) <= ?4`
	sqlExpireRecord = `DELETE FROM records WHERE tenant_id = ? AND collection = ? AND id = ? RETURNING octet_length(data)`

	sqlGetAuditRetention = `SELECT keep_seconds, updated_by, updated_at FROM audit_retention WHERE tenant_id = ?`
	sqlPutAuditRetention = `INSERT INTO audit_retention (tenant_id, keep_seconds, updated_by, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (tenant_id) DO UPDATE SET keep_seconds = excluded.keep_seconds, updated_by = excluded.updated_by,
		updated_at = excluded.updated_at`
	sqlAuditStart = `SELECT seq, hash, key_id, signature, time FROM audit_cuts WHERE tenant_id = ? ORDER BY seq DESC LIMIT 1`
	sqlCutMatches = `SELECT EXISTS (SELECT 1 FROM audit_log WHERE tenant_id = ?1 AND seq = ?2 AND hash = ?3)
		AND EXISTS (SELECT 1 FROM audit_checkpoints WHERE tenant_id = ?1 AND seq = ?2 AND hash = ?3)`
	sqlInsertCut          = `INSERT INTO audit_cuts (tenant_id, seq, hash, key_id, signature, time) VALUES (?, ?, ?, ?, ?, ?)`
	sqlCutAuditLog        = `DELETE FROM audit_log WHERE tenant_id = ? AND seq < ?`
	sqlCutAuditCheckpoint = `DELETE FROM audit_checkpoints WHERE tenant_id = ? AND seq < ?`
)

// jsonPath is the SQLite JSON path of a top-level key.
func jsonPath(field string) string {
	return `$."` + strings.ReplaceAll(field, `"`, `\"`) + `"`
}

func (t *tx) ExpireRecords(ctx context.Context, p *store.ExpireRecordsParams) (*store.ExpireRecordsResult, error) {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return nil, err
	}
	if p.Limit < 1 {
		return nil, fmt.Errorf("expire records: limit %d < 1", p.Limit)
	}
	if err := t.c.queryRow(ctx, sqlCollectionExists, t.tid, string(p.Collection)).Scan(new(int)); err != nil {
		return nil, wrap(err, "expire records of %q", p.Collection)
	}
	res := &store.ExpireRecordsResult{}
	if q, ok := sqlExpireByTime[timeField(p.Field)]; ok {
		rows, err := t.c.query(ctx, q, t.tid, string(p.Collection), p.Before.UnixMicro(), p.Limit)
		sizes, err := collect(rows, err, scanInt64, "expire records of "+string(p.Collection))
		if err != nil {
			return nil, err
		}
		for _, n := range sizes {
			res.Deleted++
			res.Bytes += n
		}
		res.More = len(sizes) == p.Limit
	} else {
		rows, err := t.c.query(ctx, sqlScanRetentionField, t.tid, string(p.Collection), jsonPath(p.Field),
			recsql.RetentionDateBound(p.Before), string(p.After), p.Limit)
		type cand struct {
			id string
			v  *string
		}
		cands, err := collect(rows, err, func(r scanner) (cand, error) {
			var c cand
			return c, r.Scan(&c.id, &c.v)
		}, "expire records of "+string(p.Collection))
		if err != nil {
			return nil, err
		}
		for _, c := range cands {
			if c.v == nil {
				continue
			}
			if at, ok := recsql.ParseRetentionTime(*c.v); !ok || !at.Before(p.Before) {
				continue
			}
			var size int64
			if err := t.c.queryRow(ctx, sqlExpireRecord, t.tid, string(p.Collection), c.id).Scan(&size); err != nil {
				return nil, wrap(err, "expire record %s/%s", p.Collection, c.id)
			}
			res.Deleted++
			res.Bytes += size
		}
		if len(cands) == p.Limit {
			res.More, res.NextAfter = true, store.RecordID(cands[len(cands)-1].id)
		}
	}
	if res.Deleted > 0 {
		if err := t.addUsage(ctx, -res.Deleted, -res.Bytes); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// timeField maps the empty field to created_at.
func timeField(f string) string {
	if f == "" {
		return store.RetentionCreatedAt
	}
	return f
}

func scanInt64(r scanner) (int64, error) {
	var n int64
	return n, r.Scan(&n)
}

func (t *tx) CountExpiredRecords(ctx context.Context, collection store.CollectionName, field string, before time.Time) (int64, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return 0, err
	}
	var n int64
	if q, ok := sqlCountByTime[timeField(field)]; ok {
		err = t.c.queryRow(ctx, q, t.tid, string(collection), before.UnixMicro()).Scan(&n)
	} else {
		err = t.c.queryRow(ctx, sqlCountRetentionField, t.tid, string(collection), jsonPath(field), recsql.RetentionDateBound(before)).Scan(&n)
	}
	return n, wrap(err, "count expired records of %q", collection)
}

func (t *tx) GetAuditRetention(ctx context.Context) (*store.AuditRetention, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	var r store.AuditRetention
	var keep, at int64
	if err := t.c.queryRow(ctx, sqlGetAuditRetention, t.tid).Scan(&keep, &r.UpdatedBy, &at); err != nil {
		return nil, wrap(err, "get audit retention")
	}
	r.Keep, r.UpdatedAt = time.Duration(keep)*time.Second, fromMicros(at)
	return &r, nil
}

func (t *tx) PutAuditRetention(ctx context.Context, r *store.AuditRetention) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	_, err = t.c.exec(ctx, sqlPutAuditRetention, t.tid, int64(r.Keep/time.Second), r.UpdatedBy, r.UpdatedAt.UnixMicro())
	return wrap(err, "put audit retention")
}

func (t *tx) AuditStart(ctx context.Context) (*store.AuditCut, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	var c store.AuditCut
	var at int64
	if err := t.c.queryRow(ctx, sqlAuditStart, t.tid).Scan(&c.Seq, &c.Hash, &c.KeyID, &c.Signature, &at); err != nil {
		return nil, wrap(err, "get audit start")
	}
	c.Time = fromMicros(at)
	return &c, nil
}

func (t *tx) CutAudit(ctx context.Context, c *store.AuditCut) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	var last int64
	err = t.c.queryRow(ctx, sqlAuditStart, t.tid).Scan(&last, new([]byte), new(string), new([]byte), new(int64))
	if err != nil && !errorsIsNotFound(err) {
		return wrap(err, "cut audit log")
	}
	if c.Seq <= last {
		return fmt.Errorf("cut audit log at %d: already cut at %d: %w", c.Seq, last, store.ErrConflict)
	}
	var ok bool
	if err := t.c.queryRow(ctx, sqlCutMatches, t.tid, c.Seq, c.Hash).Scan(&ok); err != nil {
		return wrap(err, "cut audit log at %d", c.Seq)
	}
	if !ok {
		return fmt.Errorf("cut audit log at %d: no entry and checkpoint with its hash: %w", c.Seq, store.ErrNotFound)
	}
	if _, err := t.c.exec(ctx, sqlInsertCut, t.tid, c.Seq, c.Hash, c.KeyID, c.Signature, c.Time.UnixMicro()); err != nil {
		return wrap(err, "cut audit log at %d", c.Seq)
	}
	if _, err := t.c.exec(ctx, sqlCutAuditCheckpoint, t.tid, c.Seq); err != nil {
		return wrap(err, "cut audit checkpoints at %d", c.Seq)
	}
	_, err = t.c.exec(ctx, sqlCutAuditLog, t.tid, c.Seq)
	return wrap(err, "cut audit log at %d", c.Seq)
}
