package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// testTenantData covers every Tx method for tenants of isolation iso.
func (h *harness) testTenantData(t *testing.T, iso tenant.Isolation) {
	// setup returns a fresh store with one tenant of isolation iso.
	setup := func(t *testing.T) (*env, *store.Tenant) {
		t.Parallel()
		e := h.setup(t)
		return e, e.tenant(iso)
	}

	t.Run("ReadTenantIsReadOnly", func(t *testing.T) {
		e, tn := setup(t)
		e.collection(tn.ID, "things")
		e.in(tn.ID, func(tx store.Tx) error {
			errIs(t, "CreateRecord", tx.CreateRecord(e.ctx, record("things", "r1", `{"a":1}`, base)), nil)
			return nil
		})
		e.read(tn.ID, func(tx store.Tx) error {
			ctx := e.ctx
			if tx.Tenant() != tn.ID {
				t.Errorf("Tx.Tenant() = %s, want %s", tx.Tenant(), tn.ID)
			}
			writes := map[string]error{
				"CreateUser":          tx.CreateUser(ctx, &store.User{ID: "u", Email: "u@example.com", PasswordHash: "h", Role: tenant.Owner, CreatedAt: base, UpdatedAt: base}),
				"CreateAPIKey":        tx.CreateAPIKey(ctx, &store.APIKey{ID: "k", Name: "k", Role: tenant.Admin, Hash: []byte("h"), CreatedBy: "x", CreatedAt: base}),
				"RevokeAPIKey":        tx.RevokeAPIKey(ctx, "k", base),
				"CreateRefreshToken":  tx.CreateRefreshToken(ctx, &store.RefreshToken{ID: "t", UserID: "u", Family: "f", Hash: []byte("h"), ExpiresAt: base, CreatedAt: base}),
				"UseRefreshToken":     tx.UseRefreshToken(ctx, "t", base),
				"RevokeRefreshFamily": tx.RevokeRefreshFamily(ctx, "f", base),
				"CreateRecord":        tx.CreateRecord(ctx, record("things", "r2", `{"a":2}`, base)),
				"PutIdempotency":      tx.PutIdempotency(ctx, &store.Idempotency{Key: "i", RequestHash: []byte("q"), Response: []byte("r"), CreatedAt: base}),
				"AppendAudit":         tx.AppendAudit(ctx, &store.AuditEntry{Seq: 1, Time: base, Actor: "a", Action: "a", Resource: "r", RequestID: "q", Outcome: "success", Hash: []byte("h")}),
				"PutAuditCheckpoint":  tx.PutAuditCheckpoint(ctx, &store.AuditCheckpoint{Seq: 1, Hash: []byte("h"), KeyID: "k", Signature: []byte("s"), Time: base}),
			}
			writes["DeleteUser"] = tx.DeleteUser(ctx, "u")
			writes["RevokeUserRefreshTokens"] = tx.RevokeUserRefreshTokens(ctx, "u", base)
			_, writes["SetUserRole"] = tx.SetUserRole(ctx, "u", tenant.Viewer, base)
			_, writes["PutCollection"] = tx.PutCollection(ctx, &store.Collection{Name: "other", CreatedAt: base, UpdatedAt: base})
			writes["DeleteCollection"] = tx.DeleteCollection(ctx, "things")
			_, writes["UpdateRecord"] = tx.UpdateRecord(ctx, &store.UpdateRecordParams{Collection: "things", ID: "r1", Data: json.RawMessage(`{"a":9}`), UpdatedAt: base})
			_, writes["DeleteRecord"] = tx.DeleteRecord(ctx, "things", "r1", 0)
			for name, err := range writes {
				errIs(t, name, err, store.ErrReadOnly)
			}
			return nil
		})
		e.read(tn.ID, func(tx store.Tx) error {
			r, err := tx.GetRecord(e.ctx, "things", "r1")
			if errIs(t, "GetRecord", err, nil) {
				diff(t, "GetRecord", record("things", "r1", `{"a":1}`, base), r)
			}
			u, err := tx.Usage(e.ctx)
			if errIs(t, "Usage", err, nil) {
				diff(t, "Usage", &store.Usage{Records: 1, Bytes: int64(len(`{"a":1}`))}, u)
			}
			_, err = tx.GetCollection(e.ctx, "other")
			errIs(t, "GetCollection", err, store.ErrNotFound)
			_, err = tx.GetUser(e.ctx, "u")
			errIs(t, "GetUser", err, store.ErrNotFound)
			seq, _, err := tx.AuditHead(e.ctx)
			if errIs(t, "AuditHead", err, nil) && seq != 0 {
				t.Errorf("AuditHead = %d, want 0", seq)
			}
			return nil
		})
	})

	// A transaction whose function fails leaves nothing behind.
	t.Run("FailedTransactionRollsBack", func(t *testing.T) {
		e, tn := setup(t)
		e.in(tn.ID, func(tx store.Tx) error {
			writeEverything(t, e.ctx, tx, "keep")
			return nil
		})
		before := e.dump(tn.ID, "gone")
		err := e.s.InTenant(e.ctx, tn.ID, func(tx store.Tx) error {
			writeEverything(t, e.ctx, tx, "gone")
			_, err := tx.UpdateRecord(e.ctx, &store.UpdateRecordParams{Collection: "things_keep", ID: "rec-keep",
				Data: json.RawMessage(`{"owner":"changed, then rolled back"}`), UpdatedAt: at(time.Hour)})
			errIs(t, "UpdateRecord", err, nil)
			return errTest
		})
		if !errors.Is(err, errTest) {
			t.Fatalf("InTenant = %v, want %v", err, errTest)
		}
		diff(t, "tenant after a failed transaction", before, e.dump(tn.ID, "gone"))
		e.read(tn.ID, func(tx store.Tx) error {
			r, err := tx.GetRecord(e.ctx, "things_keep", "rec-keep")
			if errIs(t, "GetRecord", err, nil) {
				diff(t, "GetRecord after rollback", record("things_keep", "rec-keep", `{"owner":"keep"}`, base), r)
			}
			return nil
		})
		// The tenant still takes writes.
		e.in(tn.ID, func(tx store.Tx) error {
			writeEverything(t, e.ctx, tx, "later")
			return nil
		})
	})

	t.Run("Users", func(t *testing.T) {
		e, tn := setup(t)
		u1 := &store.User{ID: "u1", Email: "ada@example.com", PasswordHash: "$argon2id$1", Role: tenant.Owner, CreatedAt: base, UpdatedAt: at(time.Second)}
		u2 := &store.User{ID: "u2", Email: "Ada@example.com", PasswordHash: "$argon2id$2", Role: tenant.Viewer, CreatedAt: base, UpdatedAt: base}
		e.in(tn.ID, func(tx store.Tx) error {
			errIs(t, "CreateUser(u1)", tx.CreateUser(e.ctx, u1), nil)
			// Email match is exact: callers normalize.
			errIs(t, "CreateUser(u2)", tx.CreateUser(e.ctx, u2), nil)
			return nil
		})
		e.in(tn.ID, func(tx store.Tx) error {
			dup := *u2
			dup.ID, dup.Email = "u3", u1.Email
			errIs(t, "CreateUser(same email)", tx.CreateUser(e.ctx, &dup), store.ErrConflict)
			dup.ID, dup.Email = u1.ID, "other@example.com"
			errIs(t, "CreateUser(same id)", tx.CreateUser(e.ctx, &dup), store.ErrConflict)
			return nil
		})
		e.read(tn.ID, func(tx store.Tx) error {
			for _, u := range []*store.User{u1, u2} {
				got, err := tx.GetUser(e.ctx, u.ID)
				if errIs(t, "GetUser", err, nil) {
					diff(t, "GetUser", u, got)
				}
				got, err = tx.GetUserByEmail(e.ctx, u.Email)
				if errIs(t, "GetUserByEmail", err, nil) {
					diff(t, "GetUserByEmail", u, got)
				}
			}
			_, err := tx.GetUser(e.ctx, "u3")
			errIs(t, "GetUser(u3)", err, store.ErrNotFound)
			_, err = tx.GetUserByEmail(e.ctx, "other@example.com")
			errIs(t, "GetUserByEmail(other)", err, store.ErrNotFound)
			return nil
		})
		// The same email and id in another tenant are fine.
		for _, otherIso := range isolations {
			other := e.tenant(otherIso)
			e.in(other.ID, func(tx store.Tx) error {
				errIs(t, "CreateUser in another tenant", tx.CreateUser(e.ctx, u1), nil)
				return nil
			})
		}
	})

	t.Run("UserManagement", func(t *testing.T) {
		e, tn := setup(t)
		u1 := &store.User{ID: "u1", Email: "ada@example.com", PasswordHash: "h1", Role: tenant.Owner, CreatedAt: at(time.Second), UpdatedAt: at(time.Second)}
		u2 := &store.User{ID: "u2", Email: "bob@example.com", PasswordHash: "h2", Role: tenant.Member, CreatedAt: base, UpdatedAt: base}
		u3 := &store.User{ID: "u0", Email: "cy@example.com", PasswordHash: "h3", Role: tenant.Viewer, CreatedAt: base, UpdatedAt: base}
		tokens := []*store.RefreshToken{
			{ID: "t1", UserID: "u1", Family: "f1", Hash: []byte{1}, ExpiresAt: at(24 * time.Hour), CreatedAt: base},
			{ID: "t2", UserID: "u1", Family: "f2", Hash: []byte{2}, ExpiresAt: at(24 * time.Hour), CreatedAt: base},
			{ID: "t3", UserID: "u2", Family: "f3", Hash: []byte{3}, ExpiresAt: at(24 * time.Hour), CreatedAt: base},
		}
		e.in(tn.ID, func(tx store.Tx) error {
			for _, u := range []*store.User{u1, u2, u3} {
				errIs(t, "CreateUser", tx.CreateUser(e.ctx, u), nil)
			}
			for _, rt := range tokens {
				errIs(t, "CreateRefreshToken", tx.CreateRefreshToken(e.ctx, rt), nil)
			}
			return nil
		})
		ended := func(tx store.Tx, want map[string]bool) {
			t.Helper()
			for family, w := range want {
				got, err := tx.RefreshFamilyEnded(e.ctx, family)
				if errIs(t, "RefreshFamilyEnded("+family+")", err, nil) && got != w {
					t.Errorf("RefreshFamilyEnded(%s) = %v, want %v", family, got, w)
				}
			}
		}
		e.read(tn.ID, func(tx store.Tx) error {
			got, err := tx.ListUsers(e.ctx)
			if errIs(t, "ListUsers", err, nil) {
				diff(t, "ListUsers (oldest first, then by id)", []*store.User{u3, u2, u1}, got)
			}
			ended(tx, map[string]bool{"f1": false, "f2": false, "f3": false, "f9": true})
			return nil
		})
		e.in(tn.ID, func(tx store.Tx) error {
			got, err := tx.SetUserRole(e.ctx, "u2", tenant.Admin, at(time.Hour))
			want := *u2
			want.Role, want.UpdatedAt = tenant.Admin, at(time.Hour)
			if errIs(t, "SetUserRole", err, nil) {
				diff(t, "SetUserRole", &want, got)
			}
			_, err = tx.SetUserRole(e.ctx, "u9", tenant.Admin, at(time.Hour))
			errIs(t, "SetUserRole(unknown)", err, store.ErrNotFound)
			errIs(t, "RevokeUserRefreshTokens(u1)", tx.RevokeUserRefreshTokens(e.ctx, "u1", at(time.Hour)), nil)
			return nil
		})
		e.read(tn.ID, func(tx store.Tx) error {
			ended(tx, map[string]bool{"f1": true, "f2": true, "f3": false})
			return nil
		})
		e.in(tn.ID, func(tx store.Tx) error {
			errIs(t, "DeleteUser(u2)", tx.DeleteUser(e.ctx, "u2"), nil)
			return nil
		})
		e.in(tn.ID, func(tx store.Tx) error {
			errIs(t, "DeleteUser(u2 again)", tx.DeleteUser(e.ctx, "u2"), store.ErrNotFound)
			_, err := tx.GetUser(e.ctx, "u2")
			errIs(t, "GetUser(deleted)", err, store.ErrNotFound)
			_, err = tx.GetRefreshToken(e.ctx, "t3")
			errIs(t, "GetRefreshToken(of the deleted user)", err, store.ErrNotFound)
			ended(tx, map[string]bool{"f3": true})
			got, err := tx.ListUsers(e.ctx)
			if errIs(t, "ListUsers", err, nil) {
				diff(t, "ListUsers after a delete", []*store.User{u3, u1}, got)
			}
			// The email is free again.
			errIs(t, "CreateUser(the deleted user's email)", tx.CreateUser(e.ctx, &store.User{ID: "u4", Email: u2.Email,
				PasswordHash: "h4", Role: tenant.Viewer, CreatedAt: base, UpdatedAt: base}), nil)
			return nil
		})
	})

	t.Run("APIKeys", func(t *testing.T) {
		e, tn := setup(t)
		keys := []*store.APIKey{
			{ID: "k-c", Name: "ci", Role: tenant.Member, Hash: []byte{0xc}, CreatedBy: "user:u1", CreatedAt: at(2 * time.Second)},
			{ID: "k-a", Name: "deploy", Role: tenant.Admin, Hash: []byte{0xa}, CreatedBy: "user:u1", CreatedAt: at(time.Second)},
			{ID: "k-b", Name: "tie", Role: tenant.Viewer, Hash: []byte{0xb}, CreatedBy: "key:k-a", CreatedAt: at(time.Second)},
		}
		e.in(tn.ID, func(tx store.Tx) error {
			for _, k := range keys {
				errIs(t, "CreateAPIKey", tx.CreateAPIKey(e.ctx, k), nil)
			}
			errIs(t, "CreateAPIKey(duplicate)", tx.CreateAPIKey(e.ctx, keys[0]), store.ErrConflict)
			return nil
		})
		revokedAt := at(time.Hour)
		e.in(tn.ID, func(tx store.Tx) error {
			errIs(t, "RevokeAPIKey", tx.RevokeAPIKey(e.ctx, "k-a", revokedAt), nil)
			return nil
		})
		e.in(tn.ID, func(tx store.Tx) error {
			errIs(t, "RevokeAPIKey(again)", tx.RevokeAPIKey(e.ctx, "k-a", at(2*time.Hour)), store.ErrNotFound)
			errIs(t, "RevokeAPIKey(unknown)", tx.RevokeAPIKey(e.ctx, "k-z", at(2*time.Hour)), store.ErrNotFound)
			return nil
		})
		keys[1].RevokedAt = &revokedAt
		e.read(tn.ID, func(tx store.Tx) error {
			for _, k := range keys {
				got, err := tx.GetAPIKey(e.ctx, k.ID)
				if errIs(t, "GetAPIKey", err, nil) {
					diff(t, "GetAPIKey", k, got)
				}
			}
			_, err := tx.GetAPIKey(e.ctx, "k-z")
			errIs(t, "GetAPIKey(unknown)", err, store.ErrNotFound)
			got, err := tx.ListAPIKeys(e.ctx)
			if errIs(t, "ListAPIKeys", err, nil) {
				// Oldest first, revoked included; the id breaks the tie.
				diff(t, "ListAPIKeys", []*store.APIKey{keys[1], keys[2], keys[0]}, got)
			}
			return nil
		})
	})

	t.Run("RefreshTokens", func(t *testing.T) {
		e, tn := setup(t)
		tokens := []*store.RefreshToken{
			{ID: "t1", UserID: "u1", Family: "f1", Hash: []byte{1}, ExpiresAt: at(24 * time.Hour), CreatedAt: base},
			{ID: "t2", UserID: "u1", Family: "f1", Hash: []byte{2}, ExpiresAt: at(25 * time.Hour), CreatedAt: at(time.Minute)},
			{ID: "t3", UserID: "u2", Family: "f2", Hash: []byte{3}, ExpiresAt: at(26 * time.Hour), CreatedAt: at(time.Minute)},
		}
		e.in(tn.ID, func(tx store.Tx) error {
			for _, rt := range tokens {
				errIs(t, "CreateRefreshToken", tx.CreateRefreshToken(e.ctx, rt), nil)
			}
			errIs(t, "CreateRefreshToken(duplicate)", tx.CreateRefreshToken(e.ctx, tokens[0]), store.ErrConflict)
			return nil
		})
		usedAt, revokedAt := at(time.Hour), at(2*time.Hour)
		e.in(tn.ID, func(tx store.Tx) error {
			errIs(t, "UseRefreshToken(t1)", tx.UseRefreshToken(e.ctx, "t1", usedAt), nil)
			return nil
		})
		e.in(tn.ID, func(tx store.Tx) error {
			errIs(t, "UseRefreshToken(t1 again)", tx.UseRefreshToken(e.ctx, "t1", at(3*time.Hour)), store.ErrConflict)
			errIs(t, "UseRefreshToken(unknown)", tx.UseRefreshToken(e.ctx, "t9", at(3*time.Hour)), store.ErrNotFound)
			errIs(t, "RevokeRefreshFamily(f1)", tx.RevokeRefreshFamily(e.ctx, "f1", revokedAt), nil)
			errIs(t, "RevokeRefreshFamily(unknown)", tx.RevokeRefreshFamily(e.ctx, "f9", revokedAt), nil)
			return nil
		})
		e.in(tn.ID, func(tx store.Tx) error {
			errIs(t, "UseRefreshToken(revoked t2)", tx.UseRefreshToken(e.ctx, "t2", at(3*time.Hour)), store.ErrConflict)
			return nil
		})
		tokens[0].UsedAt = &usedAt
		tokens[0].RevokedAt = &revokedAt
		tokens[1].RevokedAt = &revokedAt
		e.read(tn.ID, func(tx store.Tx) error {
			for _, rt := range tokens {
				got, err := tx.GetRefreshToken(e.ctx, rt.ID)
				if errIs(t, "GetRefreshToken", err, nil) {
					diff(t, "GetRefreshToken("+string(rt.ID)+")", rt, got)
				}
			}
			_, err := tx.GetRefreshToken(e.ctx, "t9")
			errIs(t, "GetRefreshToken(unknown)", err, store.ErrNotFound)
			return nil
		})
		// The other family is untouched and still usable.
		e.in(tn.ID, func(tx store.Tx) error {
			errIs(t, "UseRefreshToken(t3)", tx.UseRefreshToken(e.ctx, "t3", usedAt), nil)
			return nil
		})
	})

	t.Run("Collections", func(t *testing.T) {
		e, tn := setup(t)
		b := &store.Collection{Name: "b", Schema: json.RawMessage(`{"type":"object","required":["x"]}`), CreatedAt: base, UpdatedAt: base}
		a := &store.Collection{Name: "a", CreatedAt: at(time.Second), UpdatedAt: at(time.Second)}
		c := &store.Collection{Name: "c_2", Schema: json.RawMessage(`{"type":"object"}`), CreatedAt: at(time.Second), UpdatedAt: at(time.Second)}
		e.in(tn.ID, func(tx store.Tx) error {
			for _, col := range []*store.Collection{b, a, c} {
				created, err := tx.PutCollection(e.ctx, col)
				if errIs(t, "PutCollection", err, nil) && !created {
					t.Errorf("PutCollection(%s) created = false, want true", col.Name)
				}
			}
			return nil
		})
		// Replacing keeps CreatedAt and takes the new schema, which may be
		// none.
		replaced := &store.Collection{Name: "b", CreatedAt: at(time.Hour), UpdatedAt: at(time.Hour)}
		e.in(tn.ID, func(tx store.Tx) error {
			created, err := tx.PutCollection(e.ctx, replaced)
			if errIs(t, "PutCollection(replace)", err, nil) && created {
				t.Error("PutCollection(replace) created = true, want false")
			}
			return nil
		})
		wantB := &store.Collection{Name: "b", CreatedAt: base, UpdatedAt: at(time.Hour)}
		e.read(tn.ID, func(tx store.Tx) error {
			got, err := tx.GetCollection(e.ctx, "b")
			if errIs(t, "GetCollection(b)", err, nil) {
				diff(t, "GetCollection(b)", wantB, got)
			}
			_, err = tx.GetCollection(e.ctx, "z")
			errIs(t, "GetCollection(unknown)", err, store.ErrNotFound)
			list, err := tx.ListCollections(e.ctx)
			if errIs(t, "ListCollections", err, nil) {
				diff(t, "ListCollections", []*store.Collection{a, wantB, c}, list)
			}
			return nil
		})
	})

	t.Run("Records", func(t *testing.T) {
		e, tn := setup(t)
		e.collection(tn.ID, "notes")
		e.collection(tn.ID, "tasks")
		// Data comes back byte for byte, unicode and escapes included.
		data := `{"title":"Crème brûlée 🍮","tags":["日本語","\u00e9"],"n":1.50,"nested":{"a":[null,true]}}`
		r1 := record("notes", "r1", data, base)
		e.in(tn.ID, func(tx store.Tx) error {
			errIs(t, "CreateRecord", tx.CreateRecord(e.ctx, r1), nil)
			// The same id in another collection is another record.
			errIs(t, "CreateRecord(other collection)", tx.CreateRecord(e.ctx, record("tasks", "r1", `{"done":false}`, base)), nil)
			return nil
		})
		e.in(tn.ID, func(tx store.Tx) error {
			errIs(t, "CreateRecord(duplicate id)", tx.CreateRecord(e.ctx, record("notes", "r1", `{}`, base)), store.ErrConflict)
			errIs(t, "CreateRecord(missing collection)", tx.CreateRecord(e.ctx, record("nope", "r2", `{}`, base)), store.ErrNotFound)
			return nil
		})
		e.read(tn.ID, func(tx store.Tx) error {
			got, err := tx.GetRecord(e.ctx, "notes", "r1")
			if errIs(t, "GetRecord", err, nil) {
				diff(t, "GetRecord", r1, got)
			}
			_, err = tx.GetRecord(e.ctx, "notes", "r2")
			errIs(t, "GetRecord(unknown id)", err, store.ErrNotFound)
			_, err = tx.GetRecord(e.ctx, "nope", "r1")
			errIs(t, "GetRecord(unknown collection)", err, store.ErrNotFound)
			return nil
		})

		v2 := &store.Record{Collection: "notes", ID: "r1", Version: 2, Data: json.RawMessage(`{"title":"v2"}`), CreatedAt: base, UpdatedAt: at(time.Hour)}
		v3 := &store.Record{Collection: "notes", ID: "r1", Version: 3, Data: json.RawMessage(`{"title":"v3","x":[]}`), CreatedAt: base, UpdatedAt: at(2 * time.Hour)}
		e.in(tn.ID, func(tx store.Tx) error {
			got, err := tx.UpdateRecord(e.ctx, &store.UpdateRecordParams{Collection: "notes", ID: "r1", IfVersion: 1, Data: v2.Data, UpdatedAt: v2.UpdatedAt})
			if errIs(t, "UpdateRecord(if version 1)", err, nil) {
				diff(t, "UpdateRecord(if version 1)", v2, got)
			}
			got, err = tx.UpdateRecord(e.ctx, &store.UpdateRecordParams{Collection: "notes", ID: "r1", Data: v3.Data, UpdatedAt: v3.UpdatedAt})
			if errIs(t, "UpdateRecord(any version)", err, nil) {
				diff(t, "UpdateRecord(any version)", v3, got)
			}
			return nil
		})
		e.in(tn.ID, func(tx store.Tx) error {
			_, err := tx.UpdateRecord(e.ctx, &store.UpdateRecordParams{Collection: "notes", ID: "r1", IfVersion: 2, Data: json.RawMessage(`{}`), UpdatedAt: at(3 * time.Hour)})
			errIs(t, "UpdateRecord(stale version)", err, store.ErrVersionMismatch)
			_, err = tx.UpdateRecord(e.ctx, &store.UpdateRecordParams{Collection: "notes", ID: "r9", Data: json.RawMessage(`{}`), UpdatedAt: at(3 * time.Hour)})
			errIs(t, "UpdateRecord(unknown)", err, store.ErrNotFound)
			_, err = tx.UpdateRecord(e.ctx, &store.UpdateRecordParams{Collection: "nope", ID: "r1", Data: json.RawMessage(`{}`), UpdatedAt: at(3 * time.Hour)})
			errIs(t, "UpdateRecord(unknown collection)", err, store.ErrNotFound)
			_, err = tx.DeleteRecord(e.ctx, "notes", "r1", 2)
			errIs(t, "DeleteRecord(stale version)", err, store.ErrVersionMismatch)
			_, err = tx.DeleteRecord(e.ctx, "notes", "r9", 0)
			errIs(t, "DeleteRecord(unknown)", err, store.ErrNotFound)
			return nil
		})
		e.read(tn.ID, func(tx store.Tx) error {
			got, err := tx.GetRecord(e.ctx, "notes", "r1")
			if errIs(t, "GetRecord", err, nil) {
				diff(t, "GetRecord after updates", v3, got)
			}
			return nil
		})
		e.in(tn.ID, func(tx store.Tx) error {
			got, err := tx.DeleteRecord(e.ctx, "notes", "r1", 3)
			if errIs(t, "DeleteRecord", err, nil) {
				diff(t, "DeleteRecord", v3, got)
			}
			return nil
		})
		e.in(tn.ID, func(tx store.Tx) error {
			_, err := tx.GetRecord(e.ctx, "notes", "r1")
			errIs(t, "GetRecord(deleted)", err, store.ErrNotFound)
			_, err = tx.DeleteRecord(e.ctx, "notes", "r1", 0)
			errIs(t, "DeleteRecord(deleted)", err, store.ErrNotFound)
			got, err := tx.GetRecord(e.ctx, "tasks", "r1")
			if errIs(t, "GetRecord(tasks)", err, nil) {
				diff(t, "GetRecord(tasks)", record("tasks", "r1", `{"done":false}`, base), got)
			}
			// A deleted id can be used again, from version 1.
			errIs(t, "CreateRecord(reused id)", tx.CreateRecord(e.ctx, record("notes", "r1", `{"again":true}`, at(time.Hour))), nil)
			return nil
		})
	})

	t.Run("Usage", func(t *testing.T) {
		e, tn := setup(t)
		e.collection(tn.ID, "c")
		usage := func(want store.Usage) {
			t.Helper()
			e.read(tn.ID, func(tx store.Tx) error {
				got, err := tx.Usage(e.ctx)
				if errIs(t, "Usage", err, nil) {
					diff(t, "Usage", &want, got)
				}
				return nil
			})
		}
		usage(store.Usage{})
		d1, d2, d3 := `{"a":1}`, `{"b":"two"}`, `{"c":"ünïcode 🙂"}` // bytes, not characters, count
		e.in(tn.ID, func(tx store.Tx) error {
			errIs(t, "CreateRecord", tx.CreateRecord(e.ctx, record("c", "1", d1, base)), nil)
			errIs(t, "CreateRecord", tx.CreateRecord(e.ctx, record("c", "2", d2, base)), nil)
			return nil
		})
		e.in(tn.ID, func(tx store.Tx) error {
			errIs(t, "CreateRecord", tx.CreateRecord(e.ctx, record("c", "3", d3, base)), nil)
			// Failed writes inside a committed transaction count nothing.
			errIs(t, "CreateRecord(duplicate)", tx.CreateRecord(e.ctx, record("c", "3", d3, base)), store.ErrConflict)
			_, err := tx.UpdateRecord(e.ctx, &store.UpdateRecordParams{Collection: "c", ID: "1", IfVersion: 7, Data: json.RawMessage(`{}`), UpdatedAt: base})
			errIs(t, "UpdateRecord(stale)", err, store.ErrVersionMismatch)
			_, err = tx.DeleteRecord(e.ctx, "c", "2", 7)
			errIs(t, "DeleteRecord(stale)", err, store.ErrVersionMismatch)
			return nil
		})
		usage(store.Usage{Records: 3, Bytes: int64(len(d1) + len(d2) + len(d3))})
		longer := `{"a":"a much longer value than before"}`
		e.in(tn.ID, func(tx store.Tx) error {
			_, err := tx.UpdateRecord(e.ctx, &store.UpdateRecordParams{Collection: "c", ID: "1", Data: json.RawMessage(longer), UpdatedAt: base})
			errIs(t, "UpdateRecord", err, nil)
			return nil
		})
		usage(store.Usage{Records: 3, Bytes: int64(len(longer) + len(d2) + len(d3))})
		e.in(tn.ID, func(tx store.Tx) error {
			_, err := tx.UpdateRecord(e.ctx, &store.UpdateRecordParams{Collection: "c", ID: "3", Data: json.RawMessage(`{}`), UpdatedAt: base})
			errIs(t, "UpdateRecord(shrink)", err, nil)
			_, err = tx.DeleteRecord(e.ctx, "c", "2", 0)
			errIs(t, "DeleteRecord", err, nil)
			return nil
		})
		usage(store.Usage{Records: 2, Bytes: int64(len(longer) + len(`{}`))})
	})

	t.Run("Idempotency", func(t *testing.T) {
		e, tn := setup(t)
		testIdempotency(t, e.ctx, func(fn func(idempotencyTx) error) {
			e.in(tn.ID, func(tx store.Tx) error { return fn(tx) })
		}, func(fn func(idempotencyTx) error) {
			e.read(tn.ID, func(tx store.Tx) error { return fn(tx) })
		})
	})

	t.Run("Audit", func(t *testing.T) {
		e, tn := setup(t)
		e.read(tn.ID, func(tx store.Tx) error {
			seq, hash, err := tx.AuditHead(e.ctx)
			if errIs(t, "AuditHead(empty)", err, nil) && (seq != 0 || hash != nil) {
				t.Errorf("AuditHead(empty) = %d, %x; want 0, nil", seq, hash)
			}
			return nil
		})
		var entries []*store.AuditEntry
		var prev []byte
		for i := range 5 {
			entry := &store.AuditEntry{Seq: int64(i + 1), Time: at(time.Duration(i) * time.Second), Actor: "user:u1",
				Action: "record.create", Resource: "record:c/" + string(rune('a'+i)), RequestID: "req", Outcome: "success",
				PrevHash: prev, Hash: []byte{byte(i + 1), 0xff}}
			entries = append(entries, entry)
			prev = entry.Hash
		}
		// One entry per transaction, as callers append: head, then head+1.
		for _, want := range entries {
			e.in(tn.ID, func(tx store.Tx) error {
				seq, hash, err := tx.AuditHead(e.ctx)
				if errIs(t, "AuditHead", err, nil) && (seq != want.Seq-1 || string(hash) != string(want.PrevHash)) {
					t.Errorf("AuditHead = %d, %x; want %d, %x", seq, hash, want.Seq-1, want.PrevHash)
				}
				return tx.AppendAudit(e.ctx, want)
			})
		}
		e.in(tn.ID, func(tx store.Tx) error {
			dup := *entries[2]
			dup.Actor = "intruder"
			errIs(t, "AppendAudit(taken seq)", tx.AppendAudit(e.ctx, &dup), store.ErrConflict)
			for _, seq := range []int64{2, 4} {
				errIs(t, "PutAuditCheckpoint", tx.PutAuditCheckpoint(e.ctx, &store.AuditCheckpoint{Seq: seq,
					Hash: entries[seq-1].Hash, KeyID: "kid-1", Signature: []byte{byte(seq), 0x51}, Time: at(time.Hour)}), nil)
			}
			return nil
		})
		e.in(tn.ID, func(tx store.Tx) error {
			errIs(t, "PutAuditCheckpoint(taken seq)", tx.PutAuditCheckpoint(e.ctx, &store.AuditCheckpoint{Seq: 2,
				Hash: []byte{9}, KeyID: "kid-2", Signature: []byte{9}, Time: at(2 * time.Hour)}), store.ErrConflict)
			return nil
		})
		cp := func(seq int64) *store.AuditCheckpoint {
			return &store.AuditCheckpoint{Seq: seq, Hash: entries[seq-1].Hash, KeyID: "kid-1", Signature: []byte{byte(seq), 0x51}, Time: at(time.Hour)}
		}
		e.read(tn.ID, func(tx store.Tx) error {
			seq, hash, err := tx.AuditHead(e.ctx)
			if errIs(t, "AuditHead", err, nil) && (seq != 5 || string(hash) != string(entries[4].Hash)) {
				t.Errorf("AuditHead = %d, %x; want 5, %x", seq, hash, entries[4].Hash)
			}
			for _, tc := range []struct {
				after int64
				limit int
				want  []*store.AuditEntry
			}{
				{0, 100, entries},
				{0, 2, entries[:2]},
				{2, 2, entries[2:4]},
				{4, 10, entries[4:]},
				{5, 10, nil},
			} {
				got, err := tx.ListAudit(e.ctx, tc.after, tc.limit)
				if errIs(t, "ListAudit", err, nil) && len(got)+len(tc.want) > 0 {
					diff(t, "ListAudit", tc.want, got)
				}
			}
			got, err := tx.ListAuditCheckpoints(e.ctx, 0, 10)
			if errIs(t, "ListAuditCheckpoints", err, nil) {
				diff(t, "ListAuditCheckpoints", []*store.AuditCheckpoint{cp(2), cp(4)}, got)
			}
			got, err = tx.ListAuditCheckpoints(e.ctx, 2, 10)
			if errIs(t, "ListAuditCheckpoints(after 2)", err, nil) {
				diff(t, "ListAuditCheckpoints(after 2)", []*store.AuditCheckpoint{cp(4)}, got)
			}
			got, err = tx.ListAuditCheckpoints(e.ctx, 0, 1)
			if errIs(t, "ListAuditCheckpoints(limit 1)", err, nil) {
				diff(t, "ListAuditCheckpoints(limit 1)", []*store.AuditCheckpoint{cp(2)}, got)
			}
			return nil
		})
	})
}

// idempotencyTx is what Tx and PlatformTx share for idempotency keys.
type idempotencyTx interface {
	GetIdempotency(ctx context.Context, key string) (*store.Idempotency, error)
	PutIdempotency(ctx context.Context, rec *store.Idempotency) error
}

// testIdempotency checks get, put and replace through write and read
// transactions.
func testIdempotency(t *testing.T, ctx context.Context, write, read func(func(idempotencyTx) error)) {
	first := &store.Idempotency{Key: "key-1", RequestHash: []byte{1, 2, 3}, Response: []byte(`{"status":201}`), CreatedAt: base}
	other := &store.Idempotency{Key: "key-2", RequestHash: []byte{4}, Response: []byte(`{"status":200}`), CreatedAt: base}
	read(func(tx idempotencyTx) error {
		_, err := tx.GetIdempotency(ctx, "key-1")
		errIs(t, "GetIdempotency(missing)", err, store.ErrNotFound)
		return nil
	})
	write(func(tx idempotencyTx) error {
		errIs(t, "PutIdempotency", tx.PutIdempotency(ctx, first), nil)
		errIs(t, "PutIdempotency", tx.PutIdempotency(ctx, other), nil)
		return nil
	})
	read(func(tx idempotencyTx) error {
		got, err := tx.GetIdempotency(ctx, "key-1")
		if errIs(t, "GetIdempotency", err, nil) {
			diff(t, "GetIdempotency", first, got)
		}
		return nil
	})
	replaced := &store.Idempotency{Key: "key-1", RequestHash: []byte{9}, Response: []byte(`{"status":409}`), CreatedAt: at(time.Hour)}
	write(func(tx idempotencyTx) error {
		errIs(t, "PutIdempotency(replace)", tx.PutIdempotency(ctx, replaced), nil)
		return nil
	})
	read(func(tx idempotencyTx) error {
		got, err := tx.GetIdempotency(ctx, "key-1")
		if errIs(t, "GetIdempotency(replaced)", err, nil) {
			diff(t, "GetIdempotency(replaced)", replaced, got)
		}
		got, err = tx.GetIdempotency(ctx, "key-2")
		if errIs(t, "GetIdempotency(other)", err, nil) {
			diff(t, "GetIdempotency(other)", other, got)
		}
		return nil
	})
}
