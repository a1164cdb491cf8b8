package sqlitestore

import (
	"context"
	"database/sql"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

const (
	dataKeyColumns     = `tenant_id, purpose, version, state, wrapped, created_at, updated_at`
	sqlListDataKeys    = `SELECT ` + dataKeyColumns + ` FROM data_keys WHERE tenant_id = ? ORDER BY purpose, version`
	sqlListAllDataKeys = `SELECT ` + dataKeyColumns + ` FROM data_keys ORDER BY tenant_id, purpose, version`
	sqlInsertDataKey   = `INSERT INTO data_keys (` + dataKeyColumns + `)
		SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM tenants WHERE id = ?1)`
	sqlUpdateDataKey = `UPDATE data_keys SET state = ?, wrapped = ?, updated_at = ?
		WHERE tenant_id = ? AND purpose = ? AND version = ?`
	sqlDeleteDataKeys = `DELETE FROM data_keys WHERE tenant_id = ?`
)

func scanDataKey(r scanner) (*store.DataKey, error) {
	var k store.DataKey
	var created, updated int64
	if err := r.Scan(&k.Tenant, &k.Purpose, &k.Version, &k.State, &k.Wrapped, &created, &updated); err != nil {
		return nil, err
	}
	k.CreatedAt, k.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &k, nil
}

func (t *platformTx) ListDataKeys(ctx context.Context, tid tenant.ID) ([]*store.DataKey, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	var rows *sql.Rows
	if tid == "" {
		rows, err = t.c.query(ctx, sqlListAllDataKeys)
	} else {
		rows, err = t.c.query(ctx, sqlListDataKeys, string(tid))
	}
	return collect(rows, err, scanDataKey, "list data keys")
}

func (t *platformTx) CreateDataKey(ctx context.Context, k *store.DataKey) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	res, err := t.c.exec(ctx, sqlInsertDataKey, string(k.Tenant), string(k.Purpose), k.Version, string(k.State),
		k.Wrapped, k.CreatedAt.UnixMicro(), k.UpdatedAt.UnixMicro())
	if err := mustAffect(res, err); err != nil {
		return wrap(err, "create data key %s/%d of tenant %s", k.Purpose, k.Version, k.Tenant)
	}
	return nil
}

func (t *platformTx) UpdateDataKey(ctx context.Context, k *store.DataKey) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	res, err := t.c.exec(ctx, sqlUpdateDataKey, string(k.State), k.Wrapped, k.UpdatedAt.UnixMicro(),
		string(k.Tenant), string(k.Purpose), k.Version)
	if err := mustAffect(res, err); err != nil {
		return wrap(err, "update data key %s/%d of tenant %s", k.Purpose, k.Version, k.Tenant)
	}
	return nil
}

func (t *platformTx) DeleteDataKeys(ctx context.Context, tid tenant.ID) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	_, err = t.c.exec(ctx, sqlDeleteDataKeys, string(tid))
	return wrap(err, "delete data keys of tenant %s", tid)
}
