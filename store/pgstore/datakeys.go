package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

const (
	dataKeyColumns     = `tenant_id::text, purpose, version, state, wrapped, created_at, updated_at`
	sqlListDataKeys    = `SELECT ` + dataKeyColumns + ` FROM bulkhead.data_keys WHERE tenant_id = $1 ORDER BY purpose, version`
	sqlListAllDataKeys = `SELECT ` + dataKeyColumns + ` FROM bulkhead.data_keys ORDER BY tenant_id, purpose, version`
	sqlInsertDataKey   = `INSERT INTO bulkhead.data_keys (tenant_id, purpose, version, state, wrapped, created_at, updated_at)
		SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM bulkhead.tenants WHERE id = $1)
		ON CONFLICT DO NOTHING`
	sqlUpdateDataKey = `UPDATE bulkhead.data_keys SET state = $4, wrapped = $5, updated_at = $6
		WHERE tenant_id = $1 AND purpose = $2 AND version = $3`
	sqlDeleteDataKeys = `DELETE FROM bulkhead.data_keys WHERE tenant_id = $1`
)

func scanDataKey(r scanner) (*store.DataKey, error) {
	var k store.DataKey
	var tid, purpose, state string
	var version int32
	if err := r.Scan(&tid, &purpose, &version, &state, &k.Wrapped, &k.CreatedAt, &k.UpdatedAt); err != nil {
		return nil, err
	}
	k.Tenant, k.Purpose, k.Version, k.State = tenant.ID(tid), store.KeyPurpose(purpose), int(version), store.DataKeyState(state)
	k.CreatedAt, k.UpdatedAt = k.CreatedAt.UTC(), k.UpdatedAt.UTC()
	return &k, nil
}

func (t *platformTx) ListDataKeys(ctx context.Context, id tenant.ID) ([]*store.DataKey, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var rows pgx.Rows
	if id == "" {
		rows, err = t.q.query(ctx, sqlListAllDataKeys)
	} else {
		tid, perr := parseTenantID(id)
		if perr != nil {
			return nil, nil // no such tenant: no keys
		}
		rows, err = t.q.query(ctx, sqlListDataKeys, tid.arg)
	}
	if err != nil {
		return nil, wrap(err, "list data keys")
	}
	defer rows.Close()
	var ks []*store.DataKey
	for rows.Next() {
		k, err := scanDataKey(rows)
		if err != nil {
			return nil, wrap(err, "list data keys")
		}
		ks = append(ks, k)
	}
	return ks, wrap(rows.Err(), "list data keys")
}

func (t *platformTx) CreateDataKey(ctx context.Context, k *store.DataKey) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	tid, err := parseTenantID(k.Tenant)
	if err != nil {
		return fmt.Errorf("create data key: %w", err)
	}
	tag, err := t.q.exec(ctx, sqlInsertDataKey, tid.arg, string(k.Purpose), int32(k.Version), string(k.State), k.Wrapped,
		k.CreatedAt, k.UpdatedAt)
	if err != nil || tag.RowsAffected() == 1 {
		return wrap(err, "create data key %s/%d of tenant %s", k.Purpose, k.Version, k.Tenant)
	}
	// Nothing inserted (a failed statement would abort the transaction):
	// the tenant does not exist, or the key does.
	var one int
	if err := t.q.queryRow(ctx, sqlTenantExists, tid.arg).Scan(&one); err != nil {
		return wrap(err, "create data key of tenant %s", k.Tenant)
	}
	return fmt.Errorf("create data key %s/%d of tenant %s: %w", k.Purpose, k.Version, k.Tenant, store.ErrConflict)
}

func (t *platformTx) UpdateDataKey(ctx context.Context, k *store.DataKey) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	tid, err := parseTenantID(k.Tenant)
	if err != nil {
		return fmt.Errorf("update data key: %w", err)
	}
	tag, err := t.q.exec(ctx, sqlUpdateDataKey, tid.arg, string(k.Purpose), int32(k.Version), string(k.State), k.Wrapped, k.UpdatedAt)
	if err == nil && tag.RowsAffected() == 0 {
		return fmt.Errorf("update data key %s/%d of tenant %s: %w", k.Purpose, k.Version, k.Tenant, store.ErrNotFound)
	}
	return wrap(err, "update data key %s/%d of tenant %s", k.Purpose, k.Version, k.Tenant)
}

func (t *platformTx) DeleteDataKeys(ctx context.Context, id tenant.ID) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	tid, err := parseTenantID(id)
	if err != nil {
		return nil
	}
	_, err = t.q.exec(ctx, sqlDeleteDataKeys, tid.arg)
	return wrap(err, "delete data keys of tenant %s", id)
}
