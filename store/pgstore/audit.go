package pgstore

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/bulkheadhq/bulkhead/store"
)

// auditSQL is one audit chain's statements: a tenant's, whose statements
// take the tenant id as $1, or the platform's, whose take none.
type auditSQL struct {
	head, lockHead, append, list, putCheckpoint, listCheckpoints string
	// appendStrict is append failing with a unique violation, which
	// aborts the transaction, instead of inserting nothing when the seq
	// is taken: for an append deferred to a batch that may end in
	// COMMIT (see AppendAudit).
	appendStrict string
}

func init() {
	for _, q := range []*auditSQL{&tenantAuditSQL, &platformAuditSQL} {
		const lenient = "ON CONFLICT DO NOTHING RETURNING seq, hash"
		if strings.Count(q.append, lenient) != 1 {
			panic("pgstore: audit append statement changed; update appendStrict")
		}
		q.appendStrict = strings.Replace(q.append, lenient, "RETURNING seq, hash", 1)
	}
}

// A chain's head (its last entry's seq and hash) is kept in a row of its
// own, which AppendAudit advances. AuditHead in a read-write transaction
// reads it with an upsert, which locks the row (creating it if the chain
// has none yet) until the transaction ends; in READ COMMITTED the upsert
// returns the newest committed head once a concurrent appender commits. So
// appenders of one chain serialize, and each sees its predecessor's entry.
var tenantAuditSQL = auditSQL{
	head: `SELECT seq, hash FROM audit_heads WHERE tenant_id = $1`,
	lockHead: `INSERT INTO audit_heads AS h (tenant_id, seq, hash) VALUES ($1, 0, NULL)
		ON CONFLICT (tenant_id) DO UPDATE SET seq = h.seq RETURNING seq, hash`,
	append: `WITH ins AS (
			INSERT INTO audit_log (tenant_id, seq, time, actor, action, resource, request_id, outcome, prev_hash, hash)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING RETURNING seq, hash),
		h AS (
			INSERT INTO audit_heads AS h (tenant_id, seq, hash) SELECT $1, seq, hash FROM ins
			ON CONFLICT (tenant_id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash WHERE h.seq < excluded.seq)
		SELECT count(*) FROM ins`,
	list: `SELECT seq, time, actor, action, resource, request_id, outcome, prev_hash, hash FROM audit_log
		WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
	putCheckpoint: `INSERT INTO audit_checkpoints (tenant_id, seq, hash, key_id, signature, time)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING`,
	listCheckpoints: `SELECT seq, hash, key_id, signature, time FROM audit_checkpoints
		WHERE tenant_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
}

var platformAuditSQL = auditSQL{
	head: `SELECT seq, hash FROM bulkhead.platform_audit_head`,
	lockHead: `INSERT INTO bulkhead.platform_audit_head AS h (id, seq, hash) VALUES (true, 0, NULL)
		ON CONFLICT (id) DO UPDATE SET seq = h.seq RETURNING seq, hash`,
	append: `WITH ins AS (
			INSERT INTO bulkhead.platform_audit_log (seq, time, actor, action, resource, request_id, outcome, prev_hash, hash)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING RETURNING seq, hash),
		h AS (
			INSERT INTO bulkhead.platform_audit_head AS h (id, seq, hash) SELECT true, seq, hash FROM ins
			ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash WHERE h.seq < excluded.seq)
		SELECT count(*) FROM ins`,
	list: `SELECT seq, time, actor, action, resource, request_id, outcome, prev_hash, hash
		FROM bulkhead.platform_audit_log WHERE seq > $1 ORDER BY seq LIMIT $2`,
	putCheckpoint: `INSERT INTO bulkhead.platform_audit_checkpoints (seq, hash, key_id, signature, time)
		VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
	listCheckpoints: `SELECT seq, hash, key_id, signature, time FROM bulkhead.platform_audit_checkpoints
		WHERE seq > $1 ORDER BY seq LIMIT $2`,
}

// auditLog implements store.AuditLog over one chain's statements.
type auditLog struct {
	*txCore
	sql    *auditSQL
	prefix []any // the arguments every statement starts with
	head   *headState
}

// headState is what a read-write transaction knows of its chain's head.
type headState struct {
	// locked says that the transaction holds the head's row, locked by
	// AuditHead or (a tenant's) Tx.Usage, until it ends.
	locked bool
	// known says that seq and hash are the head as it was locked, and
	// nothing was appended since: AuditHead returns them without asking
	// the database again, since no other transaction can move the head.
	known bool
	seq   int64
	hash  []byte
}

// args returns the statement arguments prefix, then rest.
func (a *auditLog) args(rest ...any) []any {
	return append(append(make([]any, 0, len(a.prefix)+len(rest)), a.prefix...), rest...)
}

// limitArg is a LIMIT parameter: NULL, no limit, for limit <= 0.
func limitArg(limit int) any {
	if limit <= 0 {
		return nil
	}
	return int64(limit)
}

func (a *auditLog) AuditHead(ctx context.Context) (int64, []byte, error) {
	unlock, err := a.begin(false)
	if err != nil {
		return 0, nil, err
	}
	defer unlock()
	if a.readOnly {
		var seq int64
		var hash []byte
		err = a.q.queryRow(ctx, a.sql.head, a.args()...).Scan(&seq, &hash)
		if isNotFound(err) {
			return 0, nil, nil
		}
		if err != nil {
			return 0, nil, wrap(err, "get audit head")
		}
		return seq, hash, nil
	}
	if h := a.head; !h.known {
		if err := a.q.queryRow(ctx, a.sql.lockHead, a.args()...).Scan(&h.seq, &h.hash); err != nil {
			return 0, nil, wrap(err, "get audit head")
		}
		h.locked, h.known = true, true
	}
	return a.head.seq, bytes.Clone(a.head.hash), nil
}

func (a *auditLog) AppendAudit(ctx context.Context, e *store.AuditEntry) error {
	unlock, err := a.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	if h := a.head; h.known && e.Seq == h.seq+1 {
		// The transaction holds the head, at e.Seq-1: e.Seq is free and
		// stays free until the transaction ends, so the append cannot
		// conflict. It is deferred to the next statement's batch or to
		// COMMIT's, and the head is held for one round trip less.
		seq := e.Seq
		args := a.args(e.Seq, e.Time, e.Actor, e.Action, e.Resource, e.RequestID, e.Outcome,
			bytes.Clone(e.PrevHash), bytes.Clone(e.Hash))
		a.q.defer_(deferred{queued: queued{sql: a.sql.appendStrict, args: args}, check: func(br pgx.BatchResults) error {
			var n int64
			return wrap(br.QueryRow().Scan(&n), "append audit entry %d", seq)
		}})
		h.seq, h.hash = e.Seq, bytes.Clone(e.Hash)
		return nil
	}
	a.head.known = false
	var n int64
	err = a.q.queryRow(ctx, a.sql.append, a.args(e.Seq, e.Time, e.Actor, e.Action, e.Resource, e.RequestID,
		e.Outcome, e.PrevHash, e.Hash)...).Scan(&n)
	if err != nil {
		return wrap(err, "append audit entry %d", e.Seq)
	}
	if n == 0 {
		return fmt.Errorf("append audit entry %d: seq is taken: %w", e.Seq, store.ErrConflict)
	}
	return nil
}

func (a *auditLog) ListAudit(ctx context.Context, after int64, limit int) ([]*store.AuditEntry, error) {
	unlock, err := a.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rows, err := a.q.query(ctx, a.sql.list, a.args(after, limitArg(limit))...)
	if err != nil {
		return nil, wrap(err, "list audit entries")
	}
	defer rows.Close()
	var es []*store.AuditEntry
	for rows.Next() {
		var e store.AuditEntry
		err := rows.Scan(&e.Seq, &e.Time, &e.Actor, &e.Action, &e.Resource, &e.RequestID, &e.Outcome, &e.PrevHash, &e.Hash)
		if err != nil {
			return nil, wrap(err, "list audit entries")
		}
		es = append(es, &e)
	}
	return es, wrap(rows.Err(), "list audit entries")
}

func (a *auditLog) PutAuditCheckpoint(ctx context.Context, c *store.AuditCheckpoint) error {
	unlock, err := a.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	tag, err := a.q.exec(ctx, a.sql.putCheckpoint, a.args(c.Seq, c.Hash, c.KeyID, c.Signature, c.Time)...)
	if err != nil {
		return wrap(err, "put audit checkpoint %d", c.Seq)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("put audit checkpoint %d: seq is taken: %w", c.Seq, store.ErrConflict)
	}
	return nil
}

func (a *auditLog) ListAuditCheckpoints(ctx context.Context, after int64, limit int) ([]*store.AuditCheckpoint, error) {
	unlock, err := a.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rows, err := a.q.query(ctx, a.sql.listCheckpoints, a.args(after, limitArg(limit))...)
	if err != nil {
		return nil, wrap(err, "list audit checkpoints")
	}
	defer rows.Close()
	var cs []*store.AuditCheckpoint
	for rows.Next() {
		var c store.AuditCheckpoint
		if err := rows.Scan(&c.Seq, &c.Hash, &c.KeyID, &c.Signature, &c.Time); err != nil {
			return nil, wrap(err, "list audit checkpoints")
		}
		cs = append(cs, &c)
	}
	return cs, wrap(rows.Err(), "list audit checkpoints")
}
