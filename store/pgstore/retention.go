package pgstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/internal/recsql"
)

// Expiry on created_at or updated_at picks the oldest records through the
// records' (tenant_id, collection, <time>, id) index and deletes them by
// primary key (id = ANY (ARRAY (…)), which is an index condition, where an
// IN (subquery) can be planned as a nested loop over the collection); the
// DELETE checks the time again, so that a record updated meanwhile is
// kept. Expiry on a data field reads the collection in id order (the
// primary key), Limit records at a time, skips in SQL any record whose
// field cannot hold an expired timestamp, and parses the rest in Go, so
// that both stores read timestamps alike.
var (
	sqlExpireByTime = map[string]string{}
	sqlCountByTime  = map[string]string{}
)

func init() {
	for _, col := range []string{store.RetentionCreatedAt, store.RetentionUpdatedAt} {
		sqlExpireByTime[col] = `WITH del AS (
				DELETE FROM records r WHERE r.tenant_id = $1::uuid AND r.collection = $2::text AND r.` + col + ` < $3::timestamptz
				AND r.id = ANY (ARRAY (SELECT id FROM records WHERE tenant_id = $1::uuid AND collection = $2::text AND ` + col + ` < $3::timestamptz
					ORDER BY ` + col + `, id LIMIT $4))
				RETURNING octet_length(r.data) AS size)
			SELECT count(*), coalesce(sum(size), 0)::bigint FROM del`
		sqlCountByTime[col] = `SELECT count(*) FROM records WHERE tenant_id = $1 AND collection = $2 AND ` + col + ` < $3`
	}
}

const (
	// sqlScanRetentionField returns the next records in id order, with
	// their field's text where it may be an expired timestamp ($4 is
	// recsql.RetentionDateBound), else NULL.
	sqlScanRetentionField = `SELECT id, CASE WHEN jsonb_typeof(doc -> $3::text) = 'string' AND left(doc ->> $3::text, 10) <= $4::text
			THEN doc ->> $3::text END
		FROM records WHERE tenant_id = $1 AND collection = $2 AND id > $5::text ORDER BY id LIMIT $6`
	sqlCountRetentionField = `SELECT count(*) FROM records WHERE tenant_id = $1 AND collection = $2
		AND jsonb_typeof(doc -> $3::text) = 'string' AND left(doc ->> $3::text, 10) <= $4::text`
	sqlExpireRecords = `WITH del AS (
			DELETE FROM records WHERE tenant_id = $1 AND collection = $2 AND id = ANY($3::text[])
			RETURNING octet_length(data) AS size)
		SELECT count(*), coalesce(sum(size), 0)::bigint FROM del`

	sqlGetAuditRetention = `SELECT keep_seconds, updated_by, updated_at FROM audit_retention WHERE tenant_id = $1`
	sqlPutAuditRetention = `INSERT INTO audit_retention AS r (tenant_id, keep_seconds, updated_by, updated_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant_id) DO UPDATE SET keep_seconds = excluded.keep_seconds, updated_by = excluded.updated_by,
		updated_at = excluded.updated_at`
	sqlAuditStart = `SELECT seq, hash, key_id, signature, time FROM audit_cuts WHERE tenant_id = $1 ORDER BY seq DESC LIMIT 1`
	sqlCutMatches = `SELECT EXISTS (SELECT 1 FROM audit_log WHERE tenant_id = $1 AND seq = $2 AND hash = $3)
		AND EXISTS (SELECT 1 FROM audit_checkpoints WHERE tenant_id = $1 AND seq = $2 AND hash = $3)`
	sqlInsertCut = `INSERT INTO audit_cuts (tenant_id, seq, hash, key_id, signature, time) VALUES ($1, $2, $3, $4, $5, $6)`
	// sqlAuditCut removes what lies below the cut just inserted; see
	// tenantschema/00013_retention.sql for why it is a function.
	sqlAuditCut = `SELECT audit_cut()`
)

// auditCutSource is the body of audit_cut as the migration creates it:
// Open accepts that SECURITY DEFINER function with this body only.
var auditCutSource = func() string {
	b, err := migrationFiles.ReadFile("tenantschema/00013_retention.sql")
	if err != nil {
		panic(err)
	}
	_, body, ok := strings.Cut(string(b), "AS $$")
	if body, _, ok2 := strings.Cut(body, "$$;"); ok && ok2 {
		return body
	}
	panic("pgstore: 00013_retention.sql has no audit_cut body")
}()

func (t *tx) ExpireRecords(ctx context.Context, p *store.ExpireRecordsParams) (*store.ExpireRecordsResult, error) {
	unlock, err := t.begin(true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if p.Limit < 1 {
		return nil, fmt.Errorf("expire records: limit %d < 1", p.Limit)
	}
	if err := t.q.queryRow(ctx, sqlCollectionExists, t.tid.arg, string(p.Collection)).Scan(new(int)); err != nil {
		return nil, wrap(err, "expire records of %q", p.Collection)
	}
	res := &store.ExpireRecordsResult{}
	if q, ok := sqlExpireByTime[timeField(p.Field)]; ok {
		if err := t.q.queryRow(ctx, q, t.tid.arg, string(p.Collection), p.Before, p.Limit).Scan(&res.Deleted, &res.Bytes); err != nil {
			return nil, wrap(err, "expire records of %q", p.Collection)
		}
		res.More = res.Deleted == int64(p.Limit)
	} else {
		rows, err := t.q.query(ctx, sqlScanRetentionField, t.tid.arg, string(p.Collection), p.Field,
			recsql.RetentionDateBound(p.Before), string(p.After), p.Limit)
		if err != nil {
			return nil, wrap(err, "expire records of %q", p.Collection)
		}
		var ids []string
		var scanned int
		var last string
		var id string
		var v *string
		_, err = pgx.ForEachRow(rows, []any{&id, &v}, func() error {
			scanned++
			last = id
			if v == nil {
				return nil
			}
			if at, ok := recsql.ParseRetentionTime(*v); ok && at.Before(p.Before) {
				ids = append(ids, id)
			}
			return nil
		})
		if err != nil {
			return nil, wrap(err, "expire records of %q", p.Collection)
		}
		if len(ids) > 0 {
			if err := t.q.queryRow(ctx, sqlExpireRecords, t.tid.arg, string(p.Collection), ids).Scan(&res.Deleted, &res.Bytes); err != nil {
				return nil, wrap(err, "expire records of %q", p.Collection)
			}
		}
		if scanned == p.Limit {
			res.More, res.NextAfter = true, store.RecordID(last)
		}
	}
	t.usage.add(-res.Deleted, -res.Bytes)
	return res, nil
}

// timeField maps the empty field to created_at.
func timeField(f string) string {
	if f == "" {
		return store.RetentionCreatedAt
	}
	return f
}

func (t *tx) CountExpiredRecords(ctx context.Context, collection store.CollectionName, field string, before time.Time) (int64, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return 0, err
	}
	defer unlock()
	var n int64
	if q, ok := sqlCountByTime[timeField(field)]; ok {
		err = t.q.queryRow(ctx, q, t.tid.arg, string(collection), before).Scan(&n)
	} else {
		err = t.q.queryRow(ctx, sqlCountRetentionField, t.tid.arg, string(collection), field, recsql.RetentionDateBound(before)).Scan(&n)
	}
	return n, wrap(err, "count expired records of %q", collection)
}

func (t *tx) GetAuditRetention(ctx context.Context) (*store.AuditRetention, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var r store.AuditRetention
	var keep int64
	if err := t.q.queryRow(ctx, sqlGetAuditRetention, t.tid.arg).Scan(&keep, &r.UpdatedBy, &r.UpdatedAt); err != nil {
		return nil, wrap(err, "get audit retention")
	}
	r.Keep, r.UpdatedAt = time.Duration(keep)*time.Second, r.UpdatedAt.UTC()
	return &r, nil
}

func (t *tx) PutAuditRetention(ctx context.Context, r *store.AuditRetention) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	_, err = t.q.exec(ctx, sqlPutAuditRetention, t.tid.arg, int64(r.Keep/time.Second), r.UpdatedBy, r.UpdatedAt)
	return wrap(err, "put audit retention")
}

func (t *tx) AuditStart(ctx context.Context) (*store.AuditCut, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return t.auditStart(ctx)
}

func (t *tx) auditStart(ctx context.Context) (*store.AuditCut, error) {
	var c store.AuditCut
	if err := t.q.queryRow(ctx, sqlAuditStart, t.tid.arg).Scan(&c.Seq, &c.Hash, &c.KeyID, &c.Signature, &c.Time); err != nil {
		return nil, wrap(err, "get audit start")
	}
	c.Time = c.Time.UTC()
	return &c, nil
}

func (t *tx) CutAudit(ctx context.Context, c *store.AuditCut) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	last, err := t.auditStart(ctx)
	switch {
	case isNotFound(err):
	case err != nil:
		return err
	case c.Seq <= last.Seq:
		return fmt.Errorf("cut audit log at %d: already cut at %d: %w", c.Seq, last.Seq, store.ErrConflict)
	}
	var ok bool
	if err := t.q.queryRow(ctx, sqlCutMatches, t.tid.arg, c.Seq, c.Hash).Scan(&ok); err != nil {
		return wrap(err, "cut audit log at %d", c.Seq)
	}
	if !ok {
		return fmt.Errorf("cut audit log at %d: no entry and checkpoint with its hash: %w", c.Seq, store.ErrNotFound)
	}
	if _, err := t.q.exec(ctx, sqlInsertCut, t.tid.arg, c.Seq, c.Hash, c.KeyID, c.Signature, c.Time); err != nil {
		return wrap(err, "cut audit log at %d", c.Seq)
	}
	if err := t.q.queryRow(ctx, sqlAuditCut).Scan(new(int64)); err != nil {
		return wrap(err, "cut audit log at %d", c.Seq)
	}
	return nil
}
