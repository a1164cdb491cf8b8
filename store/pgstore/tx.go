package pgstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Every statement on a tenant table names its tables unqualified, found
// through the transaction's search_path (the pooled schema or the silo
// tenant's own), and binds tenant_id = $1 to the transaction's tenant,
// although row-level security already confines it: the predicate keeps the
// statements correct should a policy ever be lost, and lets the planner use
// the indexes, which tenant_id leads. The statements are fixed text: every
// value is a bind parameter.
//
// Writes that can fail in the ways store.Tx documents (a taken id, a
// missing collection, a stale version) detect it without raising an error,
// with ON CONFLICT DO NOTHING and data-modifying CTEs, because a failed
// statement would abort the whole PostgreSQL transaction. Each write is one
// statement: one round trip. What a write changes in the tenant's usage is
// added up in the transaction and written with its COMMIT (pendingUsage).
const (
	sqlCreateUser = `INSERT INTO users (tenant_id, id, email, password_hash, role, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`
	userColumns       = `id, email, password_hash, role, created_at, updated_at`
	sqlGetUser        = `SELECT ` + userColumns + ` FROM users WHERE tenant_id = $1 AND id = $2`
	sqlGetUserByEmail = `SELECT ` + userColumns + ` FROM users WHERE tenant_id = $1 AND email = $2`
	sqlListUsers      = `SELECT ` + userColumns + ` FROM users WHERE tenant_id = $1 ORDER BY created_at, id`
	sqlSetUserRole    = `UPDATE users SET role = $3, updated_at = $4 WHERE tenant_id = $1 AND id = $2 RETURNING ` + userColumns
	// sqlDeleteUser deletes the user, its refresh tokens, identity links
	// and login security (TOTP, recovery codes, remembered addresses), and
	// counts the users deleted.
	sqlDeleteUser = `WITH u AS (DELETE FROM users WHERE tenant_id = $1 AND id = $2 RETURNING id),
		r AS (DELETE FROM refresh_tokens WHERE tenant_id = $1 AND user_id IN (SELECT id FROM u)),
		l AS (DELETE FROM identity_links WHERE tenant_id = $1 AND user_id IN (SELECT id FROM u)),
		m AS (DELETE FROM user_mfa WHERE tenant_id = $1 AND user_id IN (SELECT id FROM u)),
		c AS (DELETE FROM recovery_codes WHERE tenant_id = $1 AND user_id IN (SELECT id FROM u)),
		a AS (DELETE FROM login_addresses WHERE tenant_id = $1 AND user_id IN (SELECT id FROM u))
		SELECT count(*) FROM u`

	sqlCreateAPIKey = `INSERT INTO api_keys (tenant_id, id, name, role, hash, created_by, created_at, revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`
	apiKeyColumns   = `id, name, role, hash, created_by, created_at, revoked_at`
	sqlGetAPIKey    = `SELECT ` + apiKeyColumns + ` FROM api_keys WHERE tenant_id = $1 AND id = $2`
	sqlListAPIKeys  = `SELECT ` + apiKeyColumns + ` FROM api_keys WHERE tenant_id = $1 ORDER BY created_at, id`
	sqlRevokeAPIKey = `UPDATE api_keys SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2 AND revoked_at IS NULL`

	sqlCreateRefresh = `INSERT INTO refresh_tokens (tenant_id, id, user_id, family, hash, expires_at, created_at, used_at, revoked_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING`
	sqlGetRefresh = `SELECT id, user_id, family, hash, expires_at, created_at, used_at, revoked_at
		FROM refresh_tokens WHERE tenant_id = $1 AND id = $2`
	sqlUseRefresh = `UPDATE refresh_tokens SET used_at = $3
		WHERE tenant_id = $1 AND id = $2 AND used_at IS NULL AND revoked_at IS NULL`
	sqlRefreshExists = `SELECT 1 FROM refresh_tokens WHERE tenant_id = $1 AND id = $2`
	sqlRevokeFamily  = `UPDATE refresh_tokens SET revoked_at = $3
		WHERE tenant_id = $1 AND family = $2 AND revoked_at IS NULL`
	sqlRevokeUserRefresh = `UPDATE refresh_tokens SET revoked_at = $3
		WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL`
	sqlFamilyState = `SELECT count(*), count(revoked_at) FROM refresh_tokens WHERE tenant_id = $1 AND family = $2`

	// sqlCreateRecord inserts the record if its collection exists and its
	// id is free, and reports whether the collection exists and the
	// record's size if it was inserted (NULL if not). Any unique index is an
	// arbiter of the ON CONFLICT, so a record that a declared unique index
	// refuses is not inserted either, without an error (see CreateRecord).
	sqlCreateRecord = `WITH col AS (SELECT 1 FROM collections WHERE tenant_id = $1::uuid AND name = $2::text),
		ins AS (
			INSERT INTO records (tenant_id, collection, id, version, data, created_at, updated_at)
			SELECT $1::uuid, $2::text, $3::text, $4::bigint, $5::text, $6::timestamptz, $7::timestamptz
			WHERE EXISTS (SELECT 1 FROM col)
			ON CONFLICT DO NOTHING RETURNING octet_length(data) AS size)
		SELECT EXISTS (SELECT 1 FROM col), (SELECT size FROM ins)`
	// sqlCreateRecordNamed is sqlCreateRecord with the primary key as the
	// only arbiter, so that a unique index's violation raises an error that
	// names it. It runs in a savepoint (see txn.guarded).
	sqlCreateRecordNamed = `WITH col AS (SELECT 1 FROM collections WHERE tenant_id = $1::uuid AND name = $2::text),
		ins AS (
			INSERT INTO records (tenant_id, collection, id, version, data, created_at, updated_at)
			SELECT $1::uuid, $2::text, $3::text, $4::bigint, $5::text, $6::timestamptz, $7::timestamptz
			WHERE EXISTS (SELECT 1 FROM col)
			ON CONFLICT (tenant_id, collection, id) DO NOTHING RETURNING octet_length(data) AS size)
		SELECT EXISTS (SELECT 1 FROM col), (SELECT size FROM ins)`
	sqlRecordExists = `SELECT 1 FROM records WHERE tenant_id = $1 AND collection = $2 AND id = $3`
	sqlGetRecord    = `SELECT version, data, created_at, updated_at FROM records
		WHERE tenant_id = $1 AND collection = $2 AND id = $3`
	// sqlUpdateRecord locks the record, updates it if $4 is zero or its
	// version, and returns the size difference. In READ COMMITTED, FOR
	// UPDATE returns the newest version of the row once any concurrent
	// writer has committed, so old holds the version and size that the
	// update replaces. It returns no row if the record does not exist, and
	// a NULL difference if the version did not match.
	//
	// An UPDATE that a unique index refuses fails, which would abort the
	// transaction; with $7 true, the statement leaves a collection with
	// unique indexes (declared, or still to be dropped) alone and says so
	// in its last column, and UpdateRecord runs it again with $7 false in a
	// savepoint (see txn.guarded). Collections without unique indexes pay
	// nothing for them.
	sqlUpdateRecord = `WITH uq AS (
			SELECT $7::boolean AND EXISTS (SELECT 1 FROM collection_indexes
				WHERE tenant_id = $1::uuid AND collection = $2::text AND is_unique) AS deferred),
		old AS (
			SELECT version, octet_length(data) AS size, created_at FROM records
			WHERE tenant_id = $1::uuid AND collection = $2::text AND id = $3::text FOR UPDATE),
		upd AS (
			UPDATE records r SET version = r.version + 1, data = $5::text, updated_at = $6::timestamptz
			FROM old
			WHERE r.tenant_id = $1::uuid AND r.collection = $2::text AND r.id = $3::text
				AND ($4::bigint = 0 OR old.version = $4::bigint) AND NOT (SELECT deferred FROM uq)
			RETURNING octet_length(r.data) - old.size AS delta)
		SELECT old.version, old.created_at, (SELECT delta FROM upd), (SELECT deferred FROM uq) FROM old`
	// sqlDeleteRecord is sqlUpdateRecord for deletes, and returns what it
	// deleted and its size.
	sqlDeleteRecord = `WITH old AS (
			SELECT version, data, created_at, updated_at FROM records
			WHERE tenant_id = $1::uuid AND collection = $2::text AND id = $3::text FOR UPDATE),
		del AS (
			DELETE FROM records r USING old
			WHERE r.tenant_id = $1::uuid AND r.collection = $2::text AND r.id = $3::text
				AND ($4::bigint = 0 OR old.version = $4::bigint)
			RETURNING octet_length(r.data) AS size)
		SELECT old.version, old.data, old.created_at, old.updated_at, (SELECT size FROM del) FROM old`
	sqlGetUsage = `SELECT records, bytes FROM usage WHERE tenant_id = $1`
	// sqlAddUsage adds a transaction's changes to the usage row; see
	// pendingUsage.
	sqlAddUsage = `INSERT INTO usage AS u (tenant_id, records, bytes) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id) DO UPDATE SET records = u.records + excluded.records, bytes = u.bytes + excluded.bytes`

	sqlGetIdempotency = `SELECT request_hash, response, created_at FROM idempotency_keys WHERE tenant_id = $1 AND key = $2`
	sqlPutIdempotency = `INSERT INTO idempotency_keys AS k (tenant_id, key, request_hash, response, created_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (tenant_id, key) DO UPDATE SET request_hash = excluded.request_hash,
		response = excluded.response, created_at = excluded.created_at`
)

// txCore is what a Tx and a PlatformTx share: the transaction, its mode,
// and the lock that serializes the Tx's methods (a pgx connection runs one
// statement at a time; a Tx may be handed to several goroutines).
type txCore struct {
	q        *txn
	readOnly bool
	mu       sync.Mutex
	ended    atomic.Bool
}

// begin checks that the transaction may run a statement and takes the
// lock; the caller calls the returned unlock when done. A read-only
// transaction's write methods fail here, without touching the database.
func (c *txCore) begin(write bool) (unlock func(), err error) {
	if c.ended.Load() {
		return nil, errTxDone
	}
	if write && c.readOnly {
		return nil, store.ErrReadOnly
	}
	c.mu.Lock()
	if c.ended.Load() {
		c.mu.Unlock()
		return nil, errTxDone
	}
	return c.mu.Unlock, nil
}

// end marks the transaction ended, after any method in progress returns.
func (c *txCore) end() {
	c.mu.Lock()
	c.ended.Store(true)
	c.mu.Unlock()
}

// tx implements store.Tx for one tenant.
type tx struct {
	*txCore
	tid tenantID
	auditLog
	// usage is what the transaction's writes changed in the usage; nil in
	// a read-only transaction.
	usage *pendingUsage
}

var _ store.Tx = (*tx)(nil)

func newTx(q *txn, tid tenantID, readOnly bool) *tx {
	c := &txCore{q: q, readOnly: readOnly}
	t := &tx{txCore: c, tid: tid, auditLog: auditLog{txCore: c, sql: &tenantAuditSQL, prefix: []any{tid.arg}, head: &headState{}}}
	if !readOnly {
		if q.usage == nil {
			q.usage = &pendingUsage{tid: tid.arg}
		}
		t.usage = q.usage
		t.head = &q.usage.head
	}
	return t
}

// pendingUsage is what a read-write tenant transaction's writes changed in
// the tenant's usage. Every write of a tenant changes its one usage row, so
// a write that updated it itself would hold the row's lock from that write
// to COMMIT, and the tenant's concurrent writers would wait for each
// other's every later round trip. Instead writes add to pendingUsage, and
// txn.commitBatch adds it to the row in the batch that commits: the row is
// locked for that one round trip. Tx.Usage adds it to what it reads, so the
// transaction sees its own changes.
type pendingUsage struct {
	tid            any // the tenant's id, as a statement argument
	records, bytes int64
	// head is what the transaction knows of the tenant's audit head. The
	// head is the tenant's write lock: see Tx.Usage and txn.commitBatch.
	head headState
}

func (u *pendingUsage) changed() bool { return u.records != 0 || u.bytes != 0 }

func (u *pendingUsage) add(records, bytes int64) {
	u.records += records
	u.bytes += bytes
}

func (t *tx) Tenant() tenant.ID { return t.tid.id }

func (t *tx) CreateUser(ctx context.Context, u *store.User) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	tag, err := t.q.exec(ctx, sqlCreateUser, t.tid.arg, string(u.ID), u.Email, u.PasswordHash, string(u.Role), u.CreatedAt, u.UpdatedAt)
	if err != nil {
		return wrap(err, "create user %s", u.ID)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("create user %s: id or email is taken: %w", u.ID, store.ErrConflict)
	}
	return nil
}

type scanner interface{ Scan(dest ...any) error }

func scanUser(r scanner) (*store.User, error) {
	var u store.User
	if err := r.Scan(&u.ID, &u.Email, &u.PasswordHash, &u.Role, &u.CreatedAt, &u.UpdatedAt); err != nil {
		return nil, err
	}
	return &u, nil
}

func (t *tx) GetUser(ctx context.Context, id store.UserID) (*store.User, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	u, err := scanUser(t.q.queryRow(ctx, sqlGetUser, t.tid.arg, string(id)))
	return u, wrap(err, "get user %s", id)
}

func (t *tx) GetUserByEmail(ctx context.Context, email string) (*store.User, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	u, err := scanUser(t.q.queryRow(ctx, sqlGetUserByEmail, t.tid.arg, email))
	return u, wrap(err, "get user by email")
}

func (t *tx) ListUsers(ctx context.Context) ([]*store.User, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rows, err := t.q.query(ctx, sqlListUsers, t.tid.arg)
	if err != nil {
		return nil, wrap(err, "list users")
	}
	defer rows.Close()
	var us []*store.User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, wrap(err, "list users")
		}
		us = append(us, u)
	}
	return us, wrap(rows.Err(), "list users")
}

func (t *tx) SetUserRole(ctx context.Context, id store.UserID, role tenant.Role, at time.Time) (*store.User, error) {
	unlock, err := t.begin(true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	u, err := scanUser(t.q.queryRow(ctx, sqlSetUserRole, t.tid.arg, string(id), string(role), at))
	return u, wrap(err, "set role of user %s", id)
}

func (t *tx) DeleteUser(ctx context.Context, id store.UserID) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	var n int
	if err := t.q.queryRow(ctx, sqlDeleteUser, t.tid.arg, string(id)).Scan(&n); err != nil {
		return wrap(err, "delete user %s", id)
	}
	if n == 0 {
		return fmt.Errorf("delete user %s: %w", id, store.ErrNotFound)
	}
	return nil
}

func (t *tx) CreateAPIKey(ctx context.Context, k *store.APIKey) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	tag, err := t.q.exec(ctx, sqlCreateAPIKey, t.tid.arg, string(k.ID), k.Name, string(k.Role), k.Hash, k.CreatedBy, k.CreatedAt, k.RevokedAt)
	if err != nil {
		return wrap(err, "create api key %s", k.ID)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("create api key %s: id is taken: %w", k.ID, store.ErrConflict)
	}
	return nil
}

func scanAPIKey(r scanner) (*store.APIKey, error) {
	var k store.APIKey
	if err := r.Scan(&k.ID, &k.Name, &k.Role, &k.Hash, &k.CreatedBy, &k.CreatedAt, &k.RevokedAt); err != nil {
		return nil, err
	}
	return &k, nil
}

func (t *tx) GetAPIKey(ctx context.Context, id store.APIKeyID) (*store.APIKey, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	k, err := scanAPIKey(t.q.queryRow(ctx, sqlGetAPIKey, t.tid.arg, string(id)))
	return k, wrap(err, "get api key %s", id)
}

func (t *tx) ListAPIKeys(ctx context.Context) ([]*store.APIKey, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rows, err := t.q.query(ctx, sqlListAPIKeys, t.tid.arg)
	if err != nil {
		return nil, wrap(err, "list api keys")
	}
	defer rows.Close()
	var ks []*store.APIKey
	for rows.Next() {
		k, err := scanAPIKey(rows)
		if err != nil {
			return nil, wrap(err, "list api keys")
		}
		ks = append(ks, k)
	}
	return ks, wrap(rows.Err(), "list api keys")
}

func (t *tx) RevokeAPIKey(ctx context.Context, id store.APIKeyID, at time.Time) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	tag, err := t.q.exec(ctx, sqlRevokeAPIKey, t.tid.arg, string(id), at)
	if err != nil {
		return wrap(err, "revoke api key %s", id)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("revoke api key %s: no such key, or already revoked: %w", id, store.ErrNotFound)
	}
	return nil
}

func (t *tx) CreateRefreshToken(ctx context.Context, rt *store.RefreshToken) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	tag, err := t.q.exec(ctx, sqlCreateRefresh, t.tid.arg, string(rt.ID), string(rt.UserID), rt.Family, rt.Hash,
		rt.ExpiresAt, rt.CreatedAt, rt.UsedAt, rt.RevokedAt)
	if err != nil {
		return wrap(err, "create refresh token %s", rt.ID)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("create refresh token %s: id is taken: %w", rt.ID, store.ErrConflict)
	}
	return nil
}

func (t *tx) GetRefreshToken(ctx context.Context, id store.RefreshTokenID) (*store.RefreshToken, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var rt store.RefreshToken
	err = t.q.queryRow(ctx, sqlGetRefresh, t.tid.arg, string(id)).Scan(&rt.ID, &rt.UserID, &rt.Family, &rt.Hash,
		&rt.ExpiresAt, &rt.CreatedAt, &rt.UsedAt, &rt.RevokedAt)
	if err != nil {
		return nil, wrap(err, "get refresh token %s", id)
	}
	return &rt, nil
}

func (t *tx) UseRefreshToken(ctx context.Context, id store.RefreshTokenID, at time.Time) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	tag, err := t.q.exec(ctx, sqlUseRefresh, t.tid.arg, string(id), at)
	if err != nil {
		return wrap(err, "use refresh token %s", id)
	}
	if tag.RowsAffected() > 0 {
		return nil
	}
	// Nothing changed: either the token does not exist, or it was used or
	// revoked already.
	var one int
	if err := t.q.queryRow(ctx, sqlRefreshExists, t.tid.arg, string(id)).Scan(&one); err != nil {
		return wrap(err, "use refresh token %s", id)
	}
	return fmt.Errorf("use refresh token %s: already used or revoked: %w", id, store.ErrConflict)
}

func (t *tx) RevokeRefreshFamily(ctx context.Context, family string, at time.Time) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	_, err = t.q.exec(ctx, sqlRevokeFamily, t.tid.arg, family, at)
	return wrap(err, "revoke refresh token family")
}

func (t *tx) RevokeUserRefreshTokens(ctx context.Context, user store.UserID, at time.Time) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	_, err = t.q.exec(ctx, sqlRevokeUserRefresh, t.tid.arg, string(user), at)
	return wrap(err, "revoke refresh tokens of user %s", user)
}

func (t *tx) RefreshFamilyEnded(ctx context.Context, family string) (bool, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return false, err
	}
	defer unlock()
	var tokens, revoked int64
	if err := t.q.queryRow(ctx, sqlFamilyState, t.tid.arg, family).Scan(&tokens, &revoked); err != nil {
		return false, wrap(err, "read refresh token family")
	}
	return tokens == 0 || revoked > 0, nil
}

// jsonArg is the stored form of an optional JSON document: text, or NULL
// for nil.
func jsonArg(doc json.RawMessage) any {
	if doc == nil {
		return nil
	}
	return string(doc)
}

func (t *tx) CreateRecord(ctx context.Context, r *store.Record) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	args := []any{t.tid.arg, string(r.Collection), string(r.ID), r.Version, string(r.Data), r.CreatedAt, r.UpdatedAt}
	var collection bool
	var size *int64 // nil: not inserted
	err = t.q.queryRow(ctx, sqlCreateRecord, args...).Scan(&collection, &size)
	switch {
	case err != nil:
		return wrap(err, "create record %s", r.ID)
	case !collection:
		return fmt.Errorf("create record: collection %q: %w", r.Collection, store.ErrNotFound)
	case size != nil:
		t.usage.add(1, *size)
		return nil
	}
	// Not inserted: the id is taken, or a unique index refused it.
	err = t.q.queryRow(ctx, sqlRecordExists, t.tid.arg, string(r.Collection), string(r.ID)).Scan(new(int))
	if err == nil {
		return fmt.Errorf("create record %s/%s: id is taken: %w", r.Collection, r.ID, store.ErrConflict)
	}
	if !isNotFound(err) {
		return wrap(err, "create record %s", r.ID)
	}
	// Insert again with the primary key as the only arbiter, so that the
	// unique index names itself; the savepoint keeps the transaction going.
	err = t.q.guarded(ctx, func(row pgx.Row) error { return row.Scan(&collection, &size) }, sqlCreateRecordNamed, args...)
	if uerr := t.uniqueError(ctx, r.Collection, err); uerr != nil {
		return uerr
	}
	switch {
	case err != nil:
		return wrap(err, "create record %s", r.ID)
	case !collection:
		return fmt.Errorf("create record: collection %q: %w", r.Collection, store.ErrNotFound)
	case size == nil:
		return fmt.Errorf("create record %s/%s: id is taken: %w", r.Collection, r.ID, store.ErrConflict)
	}
	// The record in the way went away meanwhile.
	t.usage.add(1, *size)
	return nil
}

func (t *tx) GetRecord(ctx context.Context, collection store.CollectionName, id store.RecordID) (*store.Record, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	r := &store.Record{Collection: collection, ID: id}
	var data []byte
	err = t.q.queryRow(ctx, sqlGetRecord, t.tid.arg, string(collection), string(id)).Scan(&r.Version, &data, &r.CreatedAt, &r.UpdatedAt)
	if err != nil {
		return nil, wrap(err, "get record %s/%s", collection, id)
	}
	r.Data = data
	return r, nil
}

// utcMicros is t as the store keeps it: whole microseconds, in UTC.
func utcMicros(t time.Time) time.Time { return time.UnixMicro(t.UnixMicro()).UTC() }

func (t *tx) UpdateRecord(ctx context.Context, p *store.UpdateRecordParams) (*store.Record, error) {
	unlock, err := t.begin(true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var version int64
	var created time.Time
	var delta *int64 // nil: not updated
	var deferred bool
	args := []any{t.tid.arg, string(p.Collection), string(p.ID), p.IfVersion, string(p.Data), p.UpdatedAt, true}
	// In READ COMMITTED, a statement that waits for another transaction's
	// lock on a row and then finds the row deleted skips it, even if that
	// transaction created the record again under the same id: the new row
	// is not in the statement's snapshot. So when the statement finds no
	// record (and so changed nothing), it runs once more, with a new
	// snapshot. A record that does not exist costs a second round trip.
	for attempt := range 2 {
		err = t.q.queryRow(ctx, sqlUpdateRecord, args...).Scan(&version, &created, &delta, &deferred)
		if attempt > 0 || !isNotFound(err) {
			break
		}
	}
	if err != nil {
		return nil, wrap(err, "update record %s/%s", p.Collection, p.ID)
	}
	if delta == nil && deferred && (p.IfVersion == 0 || p.IfVersion == version) {
		// The collection has unique indexes: update in a savepoint, so
		// that a violation fails this statement only. The row is locked.
		args[len(args)-1] = false
		err = t.q.guarded(ctx, func(row pgx.Row) error { return row.Scan(&version, &created, &delta, &deferred) },
			sqlUpdateRecord, args...)
		if uerr := t.uniqueError(ctx, p.Collection, err); uerr != nil {
			return nil, uerr
		}
		if err != nil {
			return nil, wrap(err, "update record %s/%s", p.Collection, p.ID)
		}
	}
	if delta == nil {
		return nil, fmt.Errorf("update record %s/%s: at version %d, not %d: %w",
			p.Collection, p.ID, version, p.IfVersion, store.ErrVersionMismatch)
	}
	t.usage.add(0, *delta)
	return &store.Record{
		Collection: p.Collection,
		ID:         p.ID,
		Version:    version + 1,
		Data:       bytes.Clone(p.Data),
		CreatedAt:  created,
		UpdatedAt:  utcMicros(p.UpdatedAt),
	}, nil
}

func (t *tx) DeleteRecord(ctx context.Context, collection store.CollectionName, id store.RecordID, ifVersion int64) (*store.Record, error) {
	unlock, err := t.begin(true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	r := &store.Record{Collection: collection, ID: id}
	var data []byte
	// size is the deleted record's; nil if none was deleted.
	var size *int64
	for attempt := range 2 { // no record: once more, as in UpdateRecord
		err = t.q.queryRow(ctx, sqlDeleteRecord, t.tid.arg, string(collection), string(id), ifVersion).
			Scan(&r.Version, &data, &r.CreatedAt, &r.UpdatedAt, &size)
		if attempt > 0 || !isNotFound(err) {
			break
		}
	}
	if err != nil {
		return nil, wrap(err, "delete record %s/%s", collection, id)
	}
	if size == nil {
		return nil, fmt.Errorf("delete record %s/%s: at version %d, not %d: %w",
			collection, id, r.Version, ifVersion, store.ErrVersionMismatch)
	}
	t.usage.add(-1, -*size)
	r.Data = data
	return r, nil
}

func (t *tx) ListRecords(ctx context.Context, params *store.ListRecordsParams) (*store.RecordPage, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	return t.listRecords(ctx, params)
}

// Usage returns the usage row plus what the transaction changed and has not
// written yet (pendingUsage). In a read-write transaction it first locks the
// tenant's audit head, if the transaction does not hold it yet, and reads
// the row in the same batch, after the lock: a quota check (internal/core
// reads the usage after a write) then sees every concurrent writer's
// committed changes and no new ones until it commits, since every
// transaction that changes the usage holds the head when it commits
// (txn.commitBatch). The head stays locked until the transaction ends, and
// a later AuditHead needs no round trip of its own.
func (t *tx) Usage(ctx context.Context) (*store.Usage, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var u store.Usage
	if t.readOnly || t.head.locked {
		err = t.q.queryRow(ctx, sqlGetUsage, t.tid.arg).Scan(&u.Records, &u.Bytes)
	} else {
		err = t.lockHeadAndReadUsage(ctx, &u)
	}
	if err != nil && !isNotFound(err) {
		return nil, wrap(err, "get usage")
	}
	if t.usage != nil {
		u.Records += t.usage.records
		u.Bytes += t.usage.bytes
	}
	return &u, nil
}

// lockHeadAndReadUsage locks the tenant's audit head and reads the usage
// row into u, in one batch. It returns pgx.ErrNoRows if there is no usage
// row.
func (t *tx) lockHeadAndReadUsage(ctx context.Context, u *store.Usage) error {
	br, err := t.q.batch(ctx, queued{sql: t.sql.lockHead, args: t.args()}, queued{sql: sqlGetUsage, args: []any{t.tid.arg}})
	if err != nil {
		return err
	}
	defer br.Close()
	var seq int64
	var hash []byte
	if err := br.QueryRow().Scan(&seq, &hash); err != nil {
		return fmt.Errorf("lock audit head: %w", err)
	}
	*t.head = headState{locked: true, known: true, seq: seq, hash: hash}
	err = br.QueryRow().Scan(&u.Records, &u.Bytes)
	if cerr := br.Close(); err == nil || isNotFound(err) && cerr != nil {
		err = cerr
	}
	return err
}

func (t *tx) GetIdempotency(ctx context.Context, key string) (*store.Idempotency, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rec, err := scanIdempotency(key, t.q.queryRow(ctx, sqlGetIdempotency, t.tid.arg, key))
	return rec, wrap(err, "get idempotency key")
}

func (t *tx) PutIdempotency(ctx context.Context, rec *store.Idempotency) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	_, err = t.q.exec(ctx, sqlPutIdempotency, t.tid.arg, rec.Key, rec.RequestHash, rec.Response, rec.CreatedAt)
	return wrap(err, "put idempotency key")
}

func scanIdempotency(key string, r pgx.Row) (*store.Idempotency, error) {
	rec := &store.Idempotency{Key: key}
	if err := r.Scan(&rec.RequestHash, &rec.Response, &rec.CreatedAt); err != nil {
		return nil, err
	}
	return rec, nil
}
