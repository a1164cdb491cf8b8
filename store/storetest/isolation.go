package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

func (h *harness) testConcurrency(t *testing.T) {
	// Many writers in separate transactions across a pooled and a silo
	// tenant all succeed, and every write counts exactly once, while
	// readers always see a consistent snapshot.
	t.Run("Writers", func(t *testing.T) {
		t.Parallel()
		e := h.setup(t)
		tenants := []*store.Tenant{e.tenant(tenant.Pooled), e.tenant(tenant.Silo)}
		for _, tn := range tenants {
			e.collection(tn.ID, "c")
		}
		const goroutines, perGoroutine = 16, 25
		errs := make(chan error, goroutines*perGoroutine+64)
		done := make(chan struct{})
		var readers sync.WaitGroup
		for _, tn := range tenants {
			readers.Go(func() {
				for {
					select {
					case <-done:
						return
					default:
					}
					err := e.s.ReadTenant(e.ctx, tn.ID, func(tx store.Tx) error {
						rs, err := listAll(e.ctx, tx, store.ListRecordsParams{Collection: "c"})
						if err != nil {
							return err
						}
						u, err := tx.Usage(e.ctx)
						if err != nil {
							return err
						}
						if u.Records != int64(len(rs)) {
							return fmt.Errorf("snapshot has %d records but usage says %d", len(rs), u.Records)
						}
						return nil
					})
					if err != nil {
						errs <- err
						return
					}
				}
			})
		}
		var writers sync.WaitGroup
		for g := range goroutines {
			tn := tenants[g%len(tenants)]
			writers.Go(func() {
				for i := range perGoroutine {
					id := store.RecordID(fmt.Sprintf("g%02d-%02d", g, i))
					err := e.s.InTenant(e.ctx, tn.ID, func(tx store.Tx) error {
						return tx.CreateRecord(e.ctx, record("c", id, fmt.Sprintf(`{"g":%d,"i":%d}`, g, i), base))
					})
					if err != nil {
						errs <- fmt.Errorf("InTenant(create %s) = %w", id, err)
					}
				}
			})
		}
		writers.Wait()
		close(done)
		readers.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for ti, tn := range tenants {
			var want []store.RecordID
			for g := ti; g < goroutines; g += len(tenants) {
				for i := range perGoroutine {
					want = append(want, store.RecordID(fmt.Sprintf("g%02d-%02d", g, i)))
				}
			}
			e.read(tn.ID, func(tx store.Tx) error {
				rs, err := listAll(e.ctx, tx, store.ListRecordsParams{Collection: "c", Order: orderByID})
				if errIs(t, "ListRecords", err, nil) {
					diff(t, "records of "+string(tn.Isolation)+" tenant", want, recordIDs(rs))
				}
				u, err := tx.Usage(e.ctx)
				if errIs(t, "Usage", err, nil) && u.Records != int64(len(want)) {
					t.Errorf("Usage.Records = %d, want %d", u.Records, len(want))
				}
				return nil
			})
		}
	})

	// AuditHead in a read-write transaction holds the head: concurrent
	// appenders that read the head and append head+1 never collide, and the
	// chain stays linked.
	t.Run("AuditAppenders", func(t *testing.T) {
		t.Parallel()
		e := h.setup(t)
		for _, iso := range isolations {
			tn := e.tenant(iso)
			const goroutines, perGoroutine = 8, 10
			var wg sync.WaitGroup
			errs := make(chan error, goroutines*perGoroutine)
			for g := range goroutines {
				wg.Go(func() {
					for i := range perGoroutine {
						err := e.s.InTenant(e.ctx, tn.ID, func(tx store.Tx) error {
							seq, hash, err := tx.AuditHead(e.ctx)
							if err != nil {
								return err
							}
							return tx.AppendAudit(e.ctx, &store.AuditEntry{Seq: seq + 1, Time: base, Actor: "a", Action: "x",
								Resource: "r", RequestID: fmt.Sprintf("g%d-%d", g, i), Outcome: "success",
								PrevHash: hash, Hash: fmt.Appendf(nil, "g%d-%d", g, i)})
						})
						if err != nil {
							errs <- err
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Errorf("append: %v", err)
			}
			e.read(tn.ID, func(tx store.Tx) error {
				entries, err := tx.ListAudit(e.ctx, 0, 1000)
				if !errIs(t, "ListAudit", err, nil) {
					return nil
				}
				if len(entries) != goroutines*perGoroutine {
					t.Errorf("%s: %d audit entries, want %d", iso, len(entries), goroutines*perGoroutine)
				}
				var prev []byte
				for i, entry := range entries {
					if entry.Seq != int64(i+1) || string(entry.PrevHash) != string(prev) {
						t.Errorf("%s: entry %d has seq %d, prev %q; want seq %d, prev %q", iso, i, entry.Seq, entry.PrevHash, i+1, prev)
						break
					}
					prev = entry.Hash
				}
				return nil
			})
		}
	})
}

// populate writes writeEverything's rows with suffix sfx into tid, plus rows
// whose names every tenant of the isolation tests shares.
func (e *env) populate(tid tenant.ID, sfx string) {
	t := e.t
	t.Helper()
	e.in(tid, func(tx store.Tx) error {
		writeEverything(t, e.ctx, tx, sfx)
		_, err := tx.PutCollection(e.ctx, &store.Collection{Name: "shared", CreatedAt: base, UpdatedAt: base})
		errIs(t, "PutCollection(shared)", err, nil)
		for _, id := range []store.RecordID{"same-id", store.RecordID("rec-" + sfx)} {
			errIs(t, "CreateRecord(shared)", tx.CreateRecord(e.ctx, record("shared", id, `{"owner":"`+sfx+`"}`, base)), nil)
		}
		errIs(t, "CreateUser(shared email)", tx.CreateUser(e.ctx, &store.User{ID: store.UserID("user2-" + sfx),
			Email: "same@example.com", PasswordHash: "h-" + sfx, Role: tenant.Member, CreatedAt: base, UpdatedAt: base}), nil)
		errIs(t, "CreateRefreshToken", tx.CreateRefreshToken(e.ctx, &store.RefreshToken{ID: store.RefreshTokenID("rt2-" + sfx),
			UserID: store.UserID("user2-" + sfx), Family: "fam-" + sfx, Hash: []byte("h-" + sfx), ExpiresAt: at(time.Hour), CreatedAt: base}), nil)
		errIs(t, "PutIdempotency(shared key)", tx.PutIdempotency(e.ctx, &store.Idempotency{Key: "idem",
			RequestHash: []byte("q-" + sfx), Response: []byte("r-" + sfx), CreatedAt: base}), nil)
		errIs(t, "CreateIdentityLink(shared identity)", tx.CreateIdentityLink(e.ctx, &store.IdentityLink{Issuer: sharedIssuer,
			Subject: "same-sub", UserID: store.UserID("user2-" + sfx), CreatedAt: base}), nil)
		return nil
	})
}

func (h *harness) testIsolation(t *testing.T) {
	t.Run("Indexes", h.testIndexIsolation)
	for _, pair := range [][2]tenant.Isolation{
		{tenant.Pooled, tenant.Pooled},
		{tenant.Pooled, tenant.Silo},
		{tenant.Silo, tenant.Pooled},
		{tenant.Silo, tenant.Silo},
	} {
		t.Run(isoName(pair[0])+isoName(pair[1]), func(t *testing.T) {
			t.Parallel()
			e := h.setup(t)
			a, b := e.tenant(pair[0]), e.tenant(pair[1])
			e.populate(a.ID, "a")
			e.populate(b.ID, "b")
			before := e.dump(a.ID, "a")
			e.assertOwnedBy(b.ID, "b")

			// B reads nothing of A's.
			e.read(b.ID, func(tx store.Tx) error {
				probeOther(t, e.ctx, tx, "a")
				return nil
			})
			// B writes nothing of A's, and B's writes to names A also uses
			// touch only B's rows.
			e.in(b.ID, func(tx store.Tx) error {
				probeOther(t, e.ctx, tx, "a")
				ctx := e.ctx
				_, err := tx.UpdateRecord(ctx, &store.UpdateRecordParams{Collection: "things_a", ID: "rec-a", Data: json.RawMessage(`{"owner":"b"}`), UpdatedAt: at(time.Hour)})
				errIs(t, "UpdateRecord(A's record)", err, store.ErrNotFound)
				_, err = tx.UpdateRecord(ctx, &store.UpdateRecordParams{Collection: "shared", ID: "rec-a", Data: json.RawMessage(`{"owner":"b"}`), UpdatedAt: at(time.Hour)})
				errIs(t, "UpdateRecord(A's record in shared)", err, store.ErrNotFound)
				_, err = tx.DeleteRecord(ctx, "things_a", "rec-a", 0)
				errIs(t, "DeleteRecord(A's record)", err, store.ErrNotFound)
				_, err = tx.DeleteRecord(ctx, "shared", "rec-a", 0)
				errIs(t, "DeleteRecord(A's record in shared)", err, store.ErrNotFound)
				errIs(t, "CreateRecord(A's collection)", tx.CreateRecord(ctx, record("things_a", "new", `{"owner":"b"}`, base)), store.ErrNotFound)
				errIs(t, "RevokeAPIKey(A's key)", tx.RevokeAPIKey(ctx, "key-a", at(time.Hour)), store.ErrNotFound)
				errIs(t, "UseRefreshToken(A's token)", tx.UseRefreshToken(ctx, "rt-a", at(time.Hour)), store.ErrNotFound)
				errIs(t, "RevokeRefreshFamily(A's family)", tx.RevokeRefreshFamily(ctx, "fam-a", at(time.Hour)), nil)
				_, err = tx.SetUserRole(ctx, "user-a", tenant.Owner, at(time.Hour))
				errIs(t, "SetUserRole(A's user)", err, store.ErrNotFound)
				errIs(t, "DeleteUser(A's user)", tx.DeleteUser(ctx, "user-a"), store.ErrNotFound)
				errIs(t, "CreateIdentityLink(to A's user)", tx.CreateIdentityLink(ctx, &store.IdentityLink{Issuer: "https://idp-b.example",
					Subject: "stolen", UserID: "user-a", CreatedAt: base}), store.ErrNotFound)
				errIs(t, "CreateIdentityLink(A's identity)", tx.CreateIdentityLink(ctx, &store.IdentityLink{Issuer: "https://idp-a.example",
					Subject: "sub-a", UserID: "user-b", CreatedAt: base}), nil)
				errIs(t, "PutOIDCConfig(B's)", tx.PutOIDCConfig(ctx, oidcConfig("b2")), nil)
				errIs(t, "RevokeUserRefreshTokens(A's user)", tx.RevokeUserRefreshTokens(ctx, "user-a", at(time.Hour)), nil)
				if ended, err := tx.RefreshFamilyEnded(ctx, "fam-a"); errIs(t, "RefreshFamilyEnded(A's family)", err, nil) && !ended {
					t.Error("RefreshFamilyEnded(A's family) in B = false, want true: B has no such family")
				}
				if us, err := tx.ListUsers(ctx); errIs(t, "ListUsers", err, nil) {
					for _, u := range us {
						if u.ID == "user-a" {
							t.Errorf("ListUsers in B lists A's user %+v", u)
						}
					}
				}

				_, err = tx.UpdateRecord(ctx, &store.UpdateRecordParams{Collection: "shared", ID: "same-id", IfVersion: 1, Data: json.RawMessage(`{"owner":"b","v":2}`), UpdatedAt: at(time.Hour)})
				errIs(t, "UpdateRecord(B's same-id)", err, nil)
				_, err = tx.DeleteRecord(ctx, "shared", "rec-b", 1)
				errIs(t, "DeleteRecord(B's record)", err, nil)
				errIs(t, "PutIdempotency(shared key)", tx.PutIdempotency(ctx, &store.Idempotency{Key: "idem", RequestHash: []byte("q2-b"), Response: []byte("r2-b"), CreatedAt: at(time.Hour)}), nil)
				// Names A uses are free in B.
				_, err = tx.PutCollection(ctx, &store.Collection{Name: "things_a", CreatedAt: at(time.Hour), UpdatedAt: at(time.Hour)})
				errIs(t, "PutCollection(A's collection name)", err, nil)
				errIs(t, "CreateRecord(A's record id)", tx.CreateRecord(ctx, record("things_a", "rec-a", `{"owner":"b"}`, at(time.Hour))), nil)
				errIs(t, "CreateUser(A's user id and email)", tx.CreateUser(ctx, &store.User{ID: "user-a", Email: "a@example.com",
					PasswordHash: "h-b", Role: tenant.Viewer, CreatedAt: base, UpdatedAt: base}), nil)
				errIs(t, "CreateAPIKey(A's key id)", tx.CreateAPIKey(ctx, &store.APIKey{ID: "key-a", Name: "b", Role: tenant.Viewer,
					Hash: []byte("b"), CreatedBy: "b", CreatedAt: base}), nil)
				errIs(t, "RevokeAPIKey(B's key-a)", tx.RevokeAPIKey(ctx, "key-a", at(time.Hour)), nil)
				errIs(t, "CreateRefreshToken(A's token id)", tx.CreateRefreshToken(ctx, &store.RefreshToken{ID: "rt-a", UserID: "user-a",
					Family: "fam-a", Hash: []byte("b"), ExpiresAt: at(time.Hour), CreatedAt: base}), nil)
				errIs(t, "UseRefreshToken(B's rt-a)", tx.UseRefreshToken(ctx, "rt-a", at(time.Hour)), nil)
				errIs(t, "RevokeRefreshFamily(B's fam-a)", tx.RevokeRefreshFamily(ctx, "fam-a", at(time.Hour)), nil)
				errIs(t, "PutIdempotency(A's key)", tx.PutIdempotency(ctx, &store.Idempotency{Key: "idem-a", RequestHash: []byte("b"), Response: []byte("b"), CreatedAt: base}), nil)
				errIs(t, "AppendAudit(next seq)", tx.AppendAudit(ctx, &store.AuditEntry{Seq: 2, Time: base, Actor: "user:user-b",
					Action: "x", Resource: "r", RequestID: "q", Outcome: "success", PrevHash: []byte("audit-b"), Hash: []byte("audit2-b")}), nil)
				errIs(t, "PutAuditCheckpoint(next seq)", tx.PutAuditCheckpoint(ctx, &store.AuditCheckpoint{Seq: 2, Hash: []byte("audit2-b"),
					KeyID: "kid-1", Signature: []byte("sig2-b"), Time: base}), nil)
				return nil
			})
			e.read(b.ID, func(tx store.Tx) error {
				r, err := tx.GetRecord(e.ctx, "shared", "same-id")
				if errIs(t, "GetRecord(B's same-id)", err, nil) && r.Version != 2 {
					t.Errorf("B's same-id has version %d, want 2", r.Version)
				}
				return nil
			})
			diff(t, "A after B's reads and writes", before, e.dump(a.ID, "a"))

			// Deleting B leaves A alone.
			if err := e.s.DeleteTenant(e.ctx, b.ID, nil); err != nil {
				t.Fatalf("DeleteTenant(B) = %v", err)
			}
			diff(t, "A after B's deletion", before, e.dump(a.ID, "a"))
		})
	}
}

// probeOther checks that tx sees nothing that tenant sfx (populated by
// populate) owns, while the names both tenants use resolve to tx's own
// rows. It runs in read-only and read-write transactions.
func probeOther(t *testing.T, ctx context.Context, tx store.Tx, sfx string) {
	t.Helper()
	notFound := func(what string, err error) {
		t.Helper()
		errIs(t, what+" of the other tenant", err, store.ErrNotFound)
	}
	_, err := tx.GetUser(ctx, store.UserID("user-"+sfx))
	notFound("GetUser", err)
	_, err = tx.GetUser(ctx, store.UserID("user2-"+sfx))
	notFound("GetUser", err)
	_, err = tx.GetUserByEmail(ctx, sfx+"@example.com")
	notFound("GetUserByEmail", err)
	_, err = tx.GetAPIKey(ctx, store.APIKeyID("key-"+sfx))
	notFound("GetAPIKey", err)
	_, err = tx.GetRefreshToken(ctx, store.RefreshTokenID("rt-"+sfx))
	notFound("GetRefreshToken", err)
	_, err = tx.GetRefreshToken(ctx, store.RefreshTokenID("rt2-"+sfx))
	notFound("GetRefreshToken", err)
	_, err = tx.GetCollection(ctx, store.CollectionName("things_"+sfx))
	notFound("GetCollection", err)
	_, err = tx.GetRecord(ctx, store.CollectionName("things_"+sfx), store.RecordID("rec-"+sfx))
	notFound("GetRecord", err)
	_, err = tx.GetRecord(ctx, "shared", store.RecordID("rec-"+sfx))
	notFound("GetRecord(shared)", err)
	_, err = tx.GetIdempotency(ctx, "idem-"+sfx)
	notFound("GetIdempotency", err)

	page, err := tx.ListRecords(ctx, &store.ListRecordsParams{Collection: store.CollectionName("things_" + sfx), Limit: 100})
	if err == nil && len(page.Records) > 0 {
		t.Errorf("ListRecords(other tenant's collection) = %d records, want none", len(page.Records))
	} else if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ListRecords(other tenant's collection) = %v, want no records or ErrNotFound", err)
	}
	own := tx.Tenant()
	mine := func(what, s string) {
		t.Helper()
		if strings.HasSuffix(s, "-"+sfx) || strings.HasSuffix(s, "_"+sfx) || strings.Contains(s, `"owner":"`+sfx+`"`) {
			t.Errorf("%s in tenant %s shows %q, which belongs to the other tenant", what, own, s)
		}
	}
	rs, err := listAll(ctx, tx, store.ListRecordsParams{Collection: "shared", Order: orderByID})
	if errIs(t, "ListRecords(shared)", err, nil) {
		if len(rs) == 0 {
			t.Error("ListRecords(shared) is empty, want the tenant's own records")
		}
		for _, r := range rs {
			mine("ListRecords(shared) id", string(r.ID))
			mine("ListRecords(shared) data", string(r.Data))
		}
	}
	u, err := tx.GetUserByEmail(ctx, "same@example.com")
	if errIs(t, "GetUserByEmail(shared email)", err, nil) {
		mine("GetUserByEmail(shared email)", string(u.ID))
	}
	if l, err := tx.GetIdentityLink(ctx, "https://idp-"+sfx+".example", "sub-"+sfx); err == nil {
		mine("GetIdentityLink(other tenant's identity)", string(l.UserID))
	} else {
		errIs(t, "GetIdentityLink(other tenant's identity)", err, store.ErrNotFound)
	}
	if l, err := tx.GetIdentityLink(ctx, sharedIssuer, "same-sub"); errIs(t, "GetIdentityLink(shared identity)", err, nil) {
		mine("GetIdentityLink(shared identity)", string(l.UserID))
	}
	if c, err := tx.GetOIDCConfig(ctx); err == nil {
		mine("GetOIDCConfig", c.ClientID)
		mine("GetOIDCConfig", string(c.SealedSecret))
	} else {
		errIs(t, "GetOIDCConfig", err, store.ErrNotFound)
	}
	idem, err := tx.GetIdempotency(ctx, "idem")
	if errIs(t, "GetIdempotency(shared key)", err, nil) {
		mine("GetIdempotency(shared key)", "-"+strings.TrimPrefix(string(idem.Response), "r-"))
	}
	cols, err := tx.ListCollections(ctx)
	if errIs(t, "ListCollections", err, nil) {
		for _, c := range cols {
			mine("ListCollections", string(c.Name))
		}
	}
	keys, err := tx.ListAPIKeys(ctx)
	if errIs(t, "ListAPIKeys", err, nil) {
		for _, k := range keys {
			mine("ListAPIKeys", string(k.ID))
		}
	}
	entries, err := tx.ListAudit(ctx, 0, 100)
	if errIs(t, "ListAudit", err, nil) {
		for _, entry := range entries {
			mine("ListAudit", entry.Actor)
			mine("ListAudit", string(entry.Hash))
		}
	}
	seq, hash, err := tx.AuditHead(ctx)
	if errIs(t, "AuditHead", err, nil) {
		if seq != int64(len(entries)) {
			t.Errorf("AuditHead seq = %d, but the tenant has %d entries", seq, len(entries))
		}
		mine("AuditHead", string(hash))
	}
	cps, err := tx.ListAuditCheckpoints(ctx, 0, 100)
	if errIs(t, "ListAuditCheckpoints", err, nil) {
		for _, cp := range cps {
			mine("ListAuditCheckpoints", string(cp.Signature))
		}
	}
}

// assertOwnedBy checks that everything tenant tid lists is its own: what
// populate wrote with suffix sfx, and its usage counts exactly its records.
func (e *env) assertOwnedBy(tid tenant.ID, sfx string) {
	t := e.t
	t.Helper()
	s := e.dump(tid, sfx)
	var names []store.CollectionName
	var records int64
	var bytes int64
	for _, c := range s.Collections {
		names = append(names, c.Name)
		for _, r := range s.Records[c.Name] {
			records++
			bytes += int64(len(r.Data))
			if string(r.Data) != `{"owner":"`+sfx+`"}` {
				t.Errorf("record %s/%s of tenant %s holds %s", c.Name, r.ID, sfx, r.Data)
			}
		}
	}
	diff(t, "collections", []store.CollectionName{"shared", store.CollectionName("things_" + sfx)}, names)
	diff(t, "usage", &store.Usage{Records: records, Bytes: bytes}, s.Usage)
	if len(s.Keys) != 1 || s.Keys[0].ID != store.APIKeyID("key-"+sfx) {
		t.Errorf("tenant %s lists keys %v", sfx, s.Keys)
	}
	if len(s.Audit) != 1 || !slices.Equal(s.Audit[0].Hash, []byte("audit-"+sfx)) {
		t.Errorf("tenant %s lists audit entries %v", sfx, s.Audit)
	}
	if len(s.Checkpoints) != 1 || !slices.Equal(s.Checkpoints[0].Signature, []byte("sig-"+sfx)) {
		t.Errorf("tenant %s lists audit checkpoints %v", sfx, s.Checkpoints)
	}
}
