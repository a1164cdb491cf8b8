package sqlitestore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/internal/recsql"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Every statement on a tenant table binds tenant_id to the transaction's
// tenant, in silo files too. The statements are fixed text: every value is a
// bind parameter.
const (
	sqlCreateUser = `INSERT INTO users (tenant_id, id, email, password_hash, role, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?)`
	userColumns          = `id, email, password_hash, role, created_at, updated_at`
	sqlGetUser           = `SELECT ` + userColumns + ` FROM users WHERE tenant_id = ? AND id = ?`
	sqlGetUserByEmail    = `SELECT ` + userColumns + ` FROM users WHERE tenant_id = ? AND email = ?`
	sqlListUsers         = `SELECT ` + userColumns + ` FROM users WHERE tenant_id = ? ORDER BY created_at, id`
	sqlSetUserRole       = `UPDATE users SET role = ?, updated_at = ? WHERE tenant_id = ? AND id = ?`
	sqlDeleteUser        = `DELETE FROM users WHERE tenant_id = ? AND id = ?`
	sqlDeleteUserRefresh = `DELETE FROM refresh_tokens WHERE tenant_id = ? AND user_id = ?`
	sqlRevokeUserRefresh = `UPDATE refresh_tokens SET revoked_at = ? WHERE tenant_id = ? AND user_id = ? AND revoked_at IS NULL`
	sqlFamilyState       = `SELECT count(*), count(revoked_at) FROM refresh_tokens WHERE tenant_id = ? AND family = ?`
	sqlCreateAPIKey      = `INSERT INTO api_keys (tenant_id, id, name, role, hash, created_by, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	apiKeyColumns        = `id, name, role, hash, created_by, created_at, revoked_at`
	sqlGetAPIKey         = `SELECT ` + apiKeyColumns + ` FROM api_keys WHERE tenant_id = ? AND id = ?`
	sqlListAPIKeys       = `SELECT ` + apiKeyColumns + ` FROM api_keys WHERE tenant_id = ? ORDER BY created_at, id`
	sqlRevokeAPIKey      = `UPDATE api_keys SET revoked_at = ? WHERE tenant_id = ? AND id = ? AND revoked_at IS NULL`
	sqlCreateRefresh     = `INSERT INTO refresh_tokens (tenant_id, id, user_id, family, hash, expires_at, created_at, used_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlGetRefresh        = `SELECT id, user_id, family, hash, expires_at, created_at, used_at, revoked_at FROM refresh_tokens WHERE tenant_id = ? AND id = ?`
	sqlUseRefresh        = `UPDATE refresh_tokens SET used_at = ? WHERE tenant_id = ? AND id = ? AND used_at IS NULL AND revoked_at IS NULL`
	sqlRefreshExists     = `SELECT 1 FROM refresh_tokens WHERE tenant_id = ? AND id = ?`
	sqlRevokeFamily      = `UPDATE refresh_tokens SET revoked_at = ? WHERE tenant_id = ? AND family = ? AND revoked_at IS NULL`
	collectionColumns    = `name, schema, created_at, updated_at, encrypted_fields, retention_seconds, retention_field`
	sqlGetCollection     = `SELECT ` + collectionColumns + ` FROM collections WHERE tenant_id = ? AND name = ?`
	sqlListCollections   = `SELECT ` + collectionColumns + ` FROM collections WHERE tenant_id = ? ORDER BY name`
	sqlInsertColl        = `INSERT INTO collections (tenant_id, name, schema, created_at, updated_at, encrypted_fields, retention_seconds, retention_field) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	sqlUpdateColl        = `UPDATE collections SET schema = ?, updated_at = ?, encrypted_fields = ?, retention_seconds = ?, retention_field = ? WHERE tenant_id = ? AND name = ?`
	// sqlCreateRecord inserts nothing when the collection does not exist,
	// which CreateRecord reports as ErrNotFound rather than relying on the
	// foreign key's error.
	sqlCreateRecord = `INSERT INTO records (tenant_id, collection, id, version, data, created_at, updated_at)
		SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
		WHERE EXISTS (SELECT 1 FROM collections WHERE tenant_id = ?1 AND name = ?2)`
	sqlGetRecord = `SELECT version, data, created_at, updated_at FROM records
		WHERE tenant_id = ? AND collection = ? AND id = ?`
	sqlRecordHead = `SELECT version, octet_length(data), created_at FROM records
		WHERE tenant_id = ? AND collection = ? AND id = ?`
	sqlUpdateRecord = `UPDATE records SET version = version + 1, data = ?, updated_at = ?
		WHERE tenant_id = ? AND collection = ? AND id = ?`
	sqlDeleteRecord = `DELETE FROM records WHERE tenant_id = ? AND collection = ? AND id = ?`
	sqlAddUsage     = `INSERT INTO usage (tenant_id, records, bytes) VALUES (?, ?, ?)
		ON CONFLICT (tenant_id) DO UPDATE SET records = records + excluded.records, bytes = bytes + excluded.bytes`
	sqlGetUsage       = `SELECT records, bytes FROM usage WHERE tenant_id = ?`
	sqlGetIdempotency = `SELECT request_hash, response, created_at FROM idempotency_keys WHERE tenant_id = ? AND key = ?`
	sqlPutIdempotency = `INSERT INTO idempotency_keys (tenant_id, key, request_hash, response, created_at)
		VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (tenant_id, key) DO UPDATE SET request_hash = excluded.request_hash,
		response = excluded.response, created_at = excluded.created_at`
	sqlAuditHead   = `SELECT seq, hash FROM audit_log WHERE tenant_id = ? ORDER BY seq DESC LIMIT 1`
	sqlAppendAudit = `INSERT INTO audit_log (tenant_id, seq, time, actor, action, resource, request_id, outcome, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlListAudit = `SELECT seq, time, actor, action, resource, request_id, outcome, prev_hash, hash FROM audit_log
		WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?`
	sqlPutCheckpoint = `INSERT INTO audit_checkpoints (tenant_id, seq, hash, key_id, signature, time)
		VALUES (?, ?, ?, ?, ?, ?)`
	sqlListCheckpoints = `SELECT seq, hash, key_id, signature, time FROM audit_checkpoints
		WHERE tenant_id = ? AND seq > ? ORDER BY seq LIMIT ?`
)

// tx implements store.Tx for one tenant on one connection: the writer's (in
// a savepoint of a group-commit batch) or a reader's.
type tx struct {
	c        *conn
	tid      string
	readOnly bool
	ended    atomic.Bool
}

var _ store.Tx = (*tx)(nil)

// begin checks that the transaction may run a statement and returns the
// context to run it on: in a read-write transaction one that is never
// cancelled, because the statement shares its transaction with the rest of a
// group-commit batch.
func (t *tx) begin(ctx context.Context, write bool) (context.Context, error) {
	if t.ended.Load() {
		return nil, errTxDone
	}
	if write && t.readOnly {
		return nil, store.ErrReadOnly
	}
	if !t.readOnly {
		ctx = context.WithoutCancel(ctx)
	}
	return ctx, nil
}

func (t *tx) Tenant() tenant.ID { return tenant.ID(t.tid) }

func (t *tx) CreateUser(ctx context.Context, u *store.User) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	_, err = t.c.exec(ctx, sqlCreateUser, t.tid, string(u.ID), u.Email, u.PasswordHash, string(u.Role),
		u.CreatedAt.UnixMicro(), u.UpdatedAt.UnixMicro())
	return wrap(err, "create user %s", u.ID)
}

func scanUser(r scanner) (*store.User, error) {
	var u store.User
	var created, updated int64
	if err := r.Scan(&u.ID, &u.Email, &u.PasswordHash, &u.Role, &created, &updated); err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &u, nil
}

func (t *tx) GetUser(ctx context.Context, id store.UserID) (*store.User, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	u, err := scanUser(t.c.queryRow(ctx, sqlGetUser, t.tid, string(id)))
	return u, wrap(err, "get user %s", id)
}

func (t *tx) GetUserByEmail(ctx context.Context, email string) (*store.User, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	u, err := scanUser(t.c.queryRow(ctx, sqlGetUserByEmail, t.tid, email))
	return u, wrap(err, "get user by email")
}

func (t *tx) ListUsers(ctx context.Context) ([]*store.User, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	rows, err := t.c.query(ctx, sqlListUsers, t.tid)
	return collect(rows, err, scanUser, "list users")
}

func (t *tx) SetUserRole(ctx context.Context, id store.UserID, role tenant.Role, at time.Time) (*store.User, error) {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return nil, err
	}
	res, err := t.c.exec(ctx, sqlSetUserRole, string(role), at.UnixMicro(), t.tid, string(id))
	if err := mustAffect(res, err); err != nil {
		return nil, wrap(err, "set role of user %s", id)
	}
	u, err := scanUser(t.c.queryRow(ctx, sqlGetUser, t.tid, string(id)))
	return u, wrap(err, "set role of user %s", id)
}

func (t *tx) DeleteUser(ctx context.Context, id store.UserID) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	res, err := t.c.exec(ctx, sqlDeleteUser, t.tid, string(id))
	if err := mustAffect(res, err); err != nil {
		return wrap(err, "delete user %s", id)
	}
	if _, err = t.c.exec(ctx, sqlDeleteUserRefresh, t.tid, string(id)); err != nil {
		return wrap(err, "delete refresh tokens of user %s", id)
	}
	if _, err = t.c.exec(ctx, sqlDeleteUserLinks, t.tid, string(id)); err != nil {
		return wrap(err, "delete identity links of user %s", id)
	}
	return t.deleteUserSecurity(ctx, id)
}

func (t *tx) CreateAPIKey(ctx context.Context, k *store.APIKey) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	_, err = t.c.exec(ctx, sqlCreateAPIKey, t.tid, string(k.ID), k.Name, string(k.Role), k.Hash, k.CreatedBy,
		k.CreatedAt.UnixMicro(), nullMicros(k.RevokedAt))
	return wrap(err, "create api key %s", k.ID)
}

func scanAPIKey(r scanner) (*store.APIKey, error) {
	var k store.APIKey
	var created int64
	var revoked sql.NullInt64
	if err := r.Scan(&k.ID, &k.Name, &k.Role, &k.Hash, &k.CreatedBy, &created, &revoked); err != nil {
		return nil, err
	}
	k.CreatedAt, k.RevokedAt = fromMicros(created), fromNullMicros(revoked)
	return &k, nil
}

func (t *tx) GetAPIKey(ctx context.Context, id store.APIKeyID) (*store.APIKey, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	k, err := scanAPIKey(t.c.queryRow(ctx, sqlGetAPIKey, t.tid, string(id)))
	return k, wrap(err, "get api key %s", id)
}

func (t *tx) ListAPIKeys(ctx context.Context) ([]*store.APIKey, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	rows, err := t.c.query(ctx, sqlListAPIKeys, t.tid)
	return collect(rows, err, scanAPIKey, "list api keys")
}

func (t *tx) RevokeAPIKey(ctx context.Context, id store.APIKeyID, at time.Time) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	res, err := t.c.exec(ctx, sqlRevokeAPIKey, at.UnixMicro(), t.tid, string(id))
	if err := mustAffect(res, err); err != nil {
		return wrap(err, "revoke api key %s", id)
	}
	return nil
}

// mustAffect turns an UPDATE or DELETE that matched no row into
// sql.ErrNoRows, which interpretError makes store.ErrNotFound.
func mustAffect(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return sql.ErrNoRows
	}
	return nil
}

func (t *tx) CreateRefreshToken(ctx context.Context, rt *store.RefreshToken) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	_, err = t.c.exec(ctx, sqlCreateRefresh, t.tid, string(rt.ID), string(rt.UserID), rt.Family, rt.Hash,
		rt.ExpiresAt.UnixMicro(), rt.CreatedAt.UnixMicro(), nullMicros(rt.UsedAt), nullMicros(rt.RevokedAt))
	return wrap(err, "create refresh token %s", rt.ID)
}

func (t *tx) GetRefreshToken(ctx context.Context, id store.RefreshTokenID) (*store.RefreshToken, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	var rt store.RefreshToken
	var expires, created int64
	var used, revoked sql.NullInt64
	err = t.c.queryRow(ctx, sqlGetRefresh, t.tid, string(id)).Scan(&rt.ID, &rt.UserID, &rt.Family, &rt.Hash,
		&expires, &created, &used, &revoked)
	if err != nil {
		return nil, wrap(err, "get refresh token %s", id)
	}
	rt.ExpiresAt, rt.CreatedAt = fromMicros(expires), fromMicros(created)
	rt.UsedAt, rt.RevokedAt = fromNullMicros(used), fromNullMicros(revoked)
	return &rt, nil
}

func (t *tx) UseRefreshToken(ctx context.Context, id store.RefreshTokenID, at time.Time) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	res, err := t.c.exec(ctx, sqlUseRefresh, at.UnixMicro(), t.tid, string(id))
	err = mustAffect(res, err)
	if !errorsIsNotFound(err) {
		return wrap(err, "use refresh token %s", id)
	}
	// Nothing changed: either the token does not exist, or it was used or
	// revoked already.
	var one int
	if err := t.c.queryRow(ctx, sqlRefreshExists, t.tid, string(id)).Scan(&one); err != nil {
		return wrap(err, "use refresh token %s", id)
	}
	return fmt.Errorf("use refresh token %s: already used or revoked: %w", id, store.ErrConflict)
}

func (t *tx) RevokeRefreshFamily(ctx context.Context, family string, at time.Time) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	_, err = t.c.exec(ctx, sqlRevokeFamily, at.UnixMicro(), t.tid, family)
	return wrap(err, "revoke refresh token family")
}

func (t *tx) RevokeUserRefreshTokens(ctx context.Context, user store.UserID, at time.Time) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	_, err = t.c.exec(ctx, sqlRevokeUserRefresh, at.UnixMicro(), t.tid, string(user))
	return wrap(err, "revoke refresh tokens of user %s", user)
}

func (t *tx) RefreshFamilyEnded(ctx context.Context, family string) (bool, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return false, err
	}
	var tokens, revoked int64
	if err := t.c.queryRow(ctx, sqlFamilyState, t.tid, family).Scan(&tokens, &revoked); err != nil {
		return false, wrap(err, "read refresh token family")
	}
	return tokens == 0 || revoked > 0, nil
}

// jsonArg is the stored form of an optional JSON document: TEXT, or NULL
// for nil. JSON is bound as a string, never a BLOB, which SQLite's JSON
// functions would read as JSONB.
func jsonArg(doc json.RawMessage) any {
	if doc == nil {
		return nil
	}
	return string(doc)
}

func scanCollection(r scanner) (*store.Collection, error) {
	var c store.Collection
	var schema sql.NullString
	var created, updated int64
	var encrypted string
	var retention int64
	if err := r.Scan(&c.Name, &schema, &created, &updated, &encrypted, &retention, &c.RetentionField); err != nil {
		return nil, err
	}
	c.Retention = time.Duration(retention) * time.Second
	if schema.Valid {
		c.Schema = json.RawMessage(schema.String)
	}
	var err error
	if c.EncryptedFields, err = recsql.DecodeEncrypted(encrypted); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &c, nil
}

func (t *tx) addUsage(ctx context.Context, records, bytes int64) error {
	_, err := t.c.exec(ctx, sqlAddUsage, t.tid, records, bytes)
	return wrap(err, "update usage")
}

func (t *tx) CreateRecord(ctx context.Context, r *store.Record) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	res, err := t.c.exec(ctx, sqlCreateRecord, t.tid, string(r.Collection), string(r.ID), r.Version,
		string(r.Data), r.CreatedAt.UnixMicro(), r.UpdatedAt.UnixMicro())
	if err := mustAffect(res, err); err != nil {
		if errorsIsNotFound(err) {
			return fmt.Errorf("create record: collection %q: %w", r.Collection, store.ErrNotFound)
		}
		if uerr := t.uniqueError(ctx, r.Collection, err); uerr != nil {
			return uerr
		}
		return wrap(err, "create record %s", r.ID)
	}
	return t.addUsage(ctx, 1, int64(len(r.Data)))
}

func (t *tx) GetRecord(ctx context.Context, collection store.CollectionName, id store.RecordID) (*store.Record, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	return t.getRecord(ctx, collection, id)
}

func (t *tx) getRecord(ctx context.Context, collection store.CollectionName, id store.RecordID) (*store.Record, error) {
	r := &store.Record{Collection: collection, ID: id}
	var data []byte
	var created, updated int64
	err := t.c.queryRow(ctx, sqlGetRecord, t.tid, string(collection), string(id)).Scan(&r.Version, &data, &created, &updated)
	if err != nil {
		return nil, wrap(err, "get record %s/%s", collection, id)
	}
	r.Data = data
	r.CreatedAt, r.UpdatedAt = fromMicros(created), fromMicros(updated)
	return r, nil
}

func (t *tx) UpdateRecord(ctx context.Context, params *store.UpdateRecordParams) (*store.Record, error) {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return nil, err
	}
	var version, size, created int64
	err = t.c.queryRow(ctx, sqlRecordHead, t.tid, string(params.Collection), string(params.ID)).Scan(&version, &size, &created)
	if err != nil {
		return nil, wrap(err, "update record %s/%s", params.Collection, params.ID)
	}
	if params.IfVersion != 0 && params.IfVersion != version {
		return nil, fmt.Errorf("update record %s/%s: at version %d, not %d: %w",
			params.Collection, params.ID, version, params.IfVersion, store.ErrVersionMismatch)
	}
	_, err = t.c.exec(ctx, sqlUpdateRecord, string(params.Data), params.UpdatedAt.UnixMicro(),
		t.tid, string(params.Collection), string(params.ID))
	if err != nil {
		if uerr := t.uniqueError(ctx, params.Collection, err); uerr != nil {
			return nil, uerr
		}
		return nil, wrap(err, "update record %s/%s", params.Collection, params.ID)
	}
	if err := t.addUsage(ctx, 0, int64(len(params.Data))-size); err != nil {
		return nil, err
	}
	return &store.Record{
		Collection: params.Collection,
		ID:         params.ID,
		Version:    version + 1,
		Data:       bytes.Clone(params.Data),
		CreatedAt:  fromMicros(created),
		UpdatedAt:  fromMicros(params.UpdatedAt.UnixMicro()),
	}, nil
}

func (t *tx) DeleteRecord(ctx context.Context, collection store.CollectionName, id store.RecordID, ifVersion int64) (*store.Record, error) {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return nil, err
	}
	r, err := t.getRecord(ctx, collection, id)
	if err != nil {
		return nil, err
	}
	if ifVersion != 0 && ifVersion != r.Version {
		return nil, fmt.Errorf("delete record %s/%s: at version %d, not %d: %w",
			collection, id, r.Version, ifVersion, store.ErrVersionMismatch)
	}
	if _, err := t.c.exec(ctx, sqlDeleteRecord, t.tid, string(collection), string(id)); err != nil {
		return nil, wrap(err, "delete record %s/%s", collection, id)
	}
	if err := t.addUsage(ctx, -1, -int64(len(r.Data))); err != nil {
		return nil, err
	}
	return r, nil
}

func (t *tx) ListRecords(ctx context.Context, params *store.ListRecordsParams) (*store.RecordPage, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	return t.listRecords(ctx, params)
}

func (t *tx) Usage(ctx context.Context) (*store.Usage, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	var u store.Usage
	err = t.c.queryRow(ctx, sqlGetUsage, t.tid).Scan(&u.Records, &u.Bytes)
	if err != nil && !errorsIsNotFound(err) {
		return nil, wrap(err, "get usage")
	}
	return &u, nil
}

func (t *tx) GetIdempotency(ctx context.Context, key string) (*store.Idempotency, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	rec, err := scanIdempotency(key, t.c.queryRow(ctx, sqlGetIdempotency, t.tid, key))
	return rec, wrap(err, "get idempotency key")
}

func (t *tx) PutIdempotency(ctx context.Context, rec *store.Idempotency) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	_, err = t.c.exec(ctx, sqlPutIdempotency, t.tid, rec.Key, rec.RequestHash, rec.Response, rec.CreatedAt.UnixMicro())
	return wrap(err, "put idempotency key")
}

// AuditHead needs no lock in SQLite: a read-write transaction is part of
// the file's only writer's batch, so no other appender runs until it ends.
func (t *tx) AuditHead(ctx context.Context) (int64, []byte, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return 0, nil, err
	}
	var seq int64
	var hash []byte
	err = t.c.queryRow(ctx, sqlAuditHead, t.tid).Scan(&seq, &hash)
	if errorsIsNotFound(err) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, wrap(err, "get audit head")
	}
	return seq, hash, nil
}

func (t *tx) AppendAudit(ctx context.Context, e *store.AuditEntry) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	_, err = t.c.exec(ctx, sqlAppendAudit, t.tid, e.Seq, e.Time.UnixMicro(), e.Actor, e.Action, e.Resource,
		e.RequestID, e.Outcome, e.PrevHash, e.Hash)
	return wrap(err, "append audit entry %d", e.Seq)
}

func (t *tx) ListAudit(ctx context.Context, after int64, limit int) ([]*store.AuditEntry, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	rows, err := t.c.query(ctx, sqlListAudit, t.tid, after, limitArg(limit))
	return collect(rows, err, scanAuditEntry, "list audit entries")
}

func scanAuditEntry(r scanner) (*store.AuditEntry, error) {
	var e store.AuditEntry
	var at int64
	if err := r.Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.Resource, &e.RequestID, &e.Outcome, &e.PrevHash, &e.Hash); err != nil {
		return nil, err
	}
	e.Time = fromMicros(at)
	return &e, nil
}

func (t *tx) PutAuditCheckpoint(ctx context.Context, c *store.AuditCheckpoint) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	_, err = t.c.exec(ctx, sqlPutCheckpoint, t.tid, c.Seq, c.Hash, c.KeyID, c.Signature, c.Time.UnixMicro())
	return wrap(err, "put audit checkpoint %d", c.Seq)
}

func (t *tx) ListAuditCheckpoints(ctx context.Context, after int64, limit int) ([]*store.AuditCheckpoint, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	rows, err := t.c.query(ctx, sqlListCheckpoints, t.tid, after, limitArg(limit))
	return collect(rows, err, scanCheckpoint, "list audit checkpoints")
}

func scanCheckpoint(r scanner) (*store.AuditCheckpoint, error) {
	var c store.AuditCheckpoint
	var at int64
	if err := r.Scan(&c.Seq, &c.Hash, &c.KeyID, &c.Signature, &at); err != nil {
		return nil, err
	}
	c.Time = fromMicros(at)
	return &c, nil
}
