package storetest

import (
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

func (h *harness) testDataKeys(t *testing.T) {
	t.Run("Lifecycle", func(t *testing.T) {
		t.Parallel()
		e := h.setup(t)
		a, b := e.tenant(tenant.Pooled), e.tenant(tenant.Silo)
		keyA1 := &store.DataKey{Tenant: a.ID, Purpose: store.PurposeData, Version: 1, State: store.KeyActive,
			Wrapped: []byte("wrapped-a1"), CreatedAt: base, UpdatedAt: base}
		keyAi := &store.DataKey{Tenant: a.ID, Purpose: store.PurposeIndex, Version: 1, State: store.KeyActive,
			Wrapped: []byte("wrapped-ai"), CreatedAt: base, UpdatedAt: base}
		keyB1 := &store.DataKey{Tenant: b.ID, Purpose: store.PurposeData, Version: 1, State: store.KeyActive,
			Wrapped: []byte("wrapped-b1"), CreatedAt: base, UpdatedAt: base}
		e.platform(func(tx store.PlatformTx) error {
			for _, k := range []*store.DataKey{keyAi, keyA1, keyB1} {
				errIs(t, "CreateDataKey", tx.CreateDataKey(e.ctx, k), nil)
			}
			dup := *keyA1
			errIs(t, "CreateDataKey(duplicate)", tx.CreateDataKey(e.ctx, &dup), store.ErrConflict)
			ghost := *keyA1
			ghost.Tenant = tenant.ID(createParams(tenant.Pooled).ID)
			errIs(t, "CreateDataKey(no such tenant)", tx.CreateDataKey(e.ctx, &ghost), store.ErrNotFound)
			return nil
		})
		// A second version, and the first retiring then retired.
		keyA2 := &store.DataKey{Tenant: a.ID, Purpose: store.PurposeData, Version: 2, State: store.KeyActive,
			Wrapped: []byte("wrapped-a2"), CreatedAt: at(time.Second), UpdatedAt: at(time.Second)}
		e.platform(func(tx store.PlatformTx) error {
			errIs(t, "CreateDataKey(v2)", tx.CreateDataKey(e.ctx, keyA2), nil)
			keyA1.State, keyA1.UpdatedAt = store.KeyRetiring, at(time.Second)
			errIs(t, "UpdateDataKey(retiring)", tx.UpdateDataKey(e.ctx, keyA1), nil)
			return nil
		})
		e.readPlatform(func(tx store.PlatformTx) error {
			got, err := tx.ListDataKeys(e.ctx, a.ID)
			if errIs(t, "ListDataKeys(a)", err, nil) {
				diff(t, "ListDataKeys(a)", []*store.DataKey{keyA1, keyA2, keyAi}, got)
			}
			got, err = tx.ListDataKeys(e.ctx, b.ID)
			if errIs(t, "ListDataKeys(b)", err, nil) {
				diff(t, "ListDataKeys(b)", []*store.DataKey{keyB1}, got)
			}
			all, err := tx.ListDataKeys(e.ctx, "")
			if errIs(t, "ListDataKeys(all)", err, nil) && len(all) != 4 {
				t.Errorf("ListDataKeys(all) returned %d keys, want 4", len(all))
			}
			return nil
		})
		e.platform(func(tx store.PlatformTx) error {
			keyA1.State, keyA1.Wrapped, keyA1.UpdatedAt = store.KeyRetired, nil, at(2*time.Second)
			errIs(t, "UpdateDataKey(retired)", tx.UpdateDataKey(e.ctx, keyA1), nil)
			missing := *keyA1
			missing.Version = 9
			errIs(t, "UpdateDataKey(missing)", tx.UpdateDataKey(e.ctx, &missing), store.ErrNotFound)
			return nil
		})
		e.readPlatform(func(tx store.PlatformTx) error {
			got, err := tx.ListDataKeys(e.ctx, a.ID)
			if errIs(t, "ListDataKeys(a) after retiring", err, nil) {
				diff(t, "ListDataKeys(a) after retiring", []*store.DataKey{keyA1, keyA2, keyAi}, got)
			}
			errIs(t, "UpdateDataKey in a read-only transaction", tx.UpdateDataKey(e.ctx, keyA1), store.ErrReadOnly)
			return nil
		})
		e.platform(func(tx store.PlatformTx) error {
			errIs(t, "DeleteDataKeys(a)", tx.DeleteDataKeys(e.ctx, a.ID), nil)
			errIs(t, "DeleteDataKeys(a) again", tx.DeleteDataKeys(e.ctx, a.ID), nil)
			return nil
		})
		e.readPlatform(func(tx store.PlatformTx) error {
			got, err := tx.ListDataKeys(e.ctx, a.ID)
			if errIs(t, "ListDataKeys(a) after delete", err, nil) && len(got) != 0 {
				t.Errorf("ListDataKeys(a) after delete = %d keys, want none", len(got))
			}
			got, err = tx.ListDataKeys(e.ctx, b.ID)
			if errIs(t, "ListDataKeys(b) after deleting a's", err, nil) {
				diff(t, "ListDataKeys(b) after deleting a's", []*store.DataKey{keyB1}, got)
			}
			return nil
		})
		// Deleting the tenant takes its keys with it.
		if err := e.s.DeleteTenant(e.ctx, b.ID, nil); err != nil {
			t.Fatalf("DeleteTenant = %v", err)
		}
		e.readPlatform(func(tx store.PlatformTx) error {
			got, err := tx.ListDataKeys(e.ctx, "")
			if errIs(t, "ListDataKeys(all) after DeleteTenant", err, nil) && len(got) != 0 {
				t.Errorf("ListDataKeys(all) after DeleteTenant = %d keys, want none", len(got))
			}
			return nil
		})
	})

	for _, iso := range isolations {
		t.Run("EncryptedFields"+isoName(iso), func(t *testing.T) {
			t.Parallel()
			e := h.setup(t)
			tn := e.tenant(iso)
			col := &store.Collection{Name: "secrets", EncryptedFields: []string{"ssn", "pin"}, CreatedAt: base, UpdatedAt: base}
			e.in(tn.ID, func(tx store.Tx) error {
				_, err := tx.PutCollection(e.ctx, col)
				errIs(t, "PutCollection", err, nil)
				_, err = tx.PutCollection(e.ctx, &store.Collection{Name: "plain", CreatedAt: base, UpdatedAt: base})
				errIs(t, "PutCollection(plain)", err, nil)
				return nil
			})
			e.read(tn.ID, func(tx store.Tx) error {
				got, err := tx.GetCollection(e.ctx, "secrets")
				if errIs(t, "GetCollection", err, nil) {
					diff(t, "GetCollection(secrets).EncryptedFields", []string{"ssn", "pin"}, got.EncryptedFields)
				}
				got, err = tx.GetCollection(e.ctx, "plain")
				if errIs(t, "GetCollection(plain)", err, nil) && got.EncryptedFields != nil {
					t.Errorf("GetCollection(plain).EncryptedFields = %q, want nil", got.EncryptedFields)
				}
				cols, err := tx.ListCollections(e.ctx)
				if errIs(t, "ListCollections", err, nil) && len(cols) == 2 {
					diff(t, "ListCollections[1].EncryptedFields", []string{"ssn", "pin"}, cols[1].EncryptedFields)
				}
				return nil
			})
		})
	}
}
