package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/filter"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

func (h *harness) testLifecycle(t *testing.T) {
	for _, iso := range isolations {
		t.Run("CreateTenantRunsInit"+isoName(iso), func(t *testing.T) {
			t.Parallel()
			e := h.setup(t)
			p := createParams(iso)
			_, err := e.s.CreateTenant(e.ctx, p, nil, func(tx store.Tx) error {
				if tx.Tenant() != p.ID {
					t.Errorf("init Tx.Tenant() = %s, want %s", tx.Tenant(), p.ID)
				}
				return tx.AppendAudit(e.ctx, &store.AuditEntry{Seq: 1, Time: base, Actor: "operator", Action: "tenant.create",
					Resource: "tenant:" + string(p.ID), RequestID: "req-1", Outcome: "success", Hash: []byte("h1")})
			})
			if err != nil {
				t.Fatalf("CreateTenant = %v", err)
			}
			e.read(p.ID, func(tx store.Tx) error {
				seq, hash, err := tx.AuditHead(e.ctx)
				if errIs(t, "AuditHead", err, nil) && (seq != 1 || string(hash) != "h1") {
					t.Errorf("AuditHead = %d, %q; want 1, h1", seq, hash)
				}
				return nil
			})
		})

		// Either all of a tenant exists after CreateTenant, or none of it.
		t.Run("CreateTenantInitFails"+isoName(iso), func(t *testing.T) {
			t.Parallel()
			e := h.setup(t)
			p := createParams(iso)
			_, err := e.s.CreateTenant(e.ctx, p, nil, func(tx store.Tx) error {
				writeEverything(t, e.ctx, tx, "a")
				return errTest
			})
			if !errors.Is(err, errTest) {
				t.Fatalf("CreateTenant = %v, want %v", err, errTest)
			}
			e.assertGone(p)
			// Nothing is left behind: the same id and slug can be used
			// again, and the new tenant starts empty.
			if _, err := e.s.CreateTenant(e.ctx, p, nil, nil); err != nil {
				t.Fatalf("CreateTenant again = %v", err)
			}
			e.assertEmpty(p.ID, "a")
		})

		// The control-plane half of a creation commits with the rest or not
		// at all.
		t.Run("CreateTenantInitPlatform"+isoName(iso), func(t *testing.T) {
			t.Parallel()
			e := h.setup(t)
			p := createParams(iso)
			_, err := e.s.CreateTenant(e.ctx, p, func(tx store.PlatformTx) error {
				if err := tx.AppendAudit(e.ctx, platformEntry(1, "tenant.create")); err != nil {
					return err
				}
				return errTest
			}, func(tx store.Tx) error {
				writeEverything(t, e.ctx, tx, "a")
				return nil
			})
			if !errors.Is(err, errTest) {
				t.Fatalf("CreateTenant = %v, want %v", err, errTest)
			}
			e.assertGone(p)
			e.assertPlatformHead(0)

			if _, err := e.s.CreateTenant(e.ctx, p, func(tx store.PlatformTx) error {
				return tx.AppendAudit(e.ctx, platformEntry(1, "tenant.create"))
			}, nil); err != nil {
				t.Fatalf("CreateTenant = %v", err)
			}
			e.assertPlatformHead(1)
			e.assertEmpty(p.ID, "a")
		})

		t.Run("DeleteTenantRunsFn"+isoName(iso), func(t *testing.T) {
			t.Parallel()
			e := h.setup(t)
			tn := e.tenant(iso)
			e.in(tn.ID, func(tx store.Tx) error {
				writeEverything(t, e.ctx, tx, "a")
				return nil
			})
			before := e.dump(tn.ID, "a")
			err := e.s.DeleteTenant(e.ctx, tn.ID, func(tx store.PlatformTx) error {
				if err := tx.AppendAudit(e.ctx, platformEntry(1, "tenant.delete")); err != nil {
					return err
				}
				return errTest
			})
			if !errors.Is(err, errTest) {
				t.Fatalf("DeleteTenant = %v, want %v", err, errTest)
			}
			diff(t, "tenant after a failed DeleteTenant", before, e.dump(tn.ID, "a"))
			e.assertPlatformHead(0)
			if err := e.s.DeleteTenant(e.ctx, tn.ID, func(tx store.PlatformTx) error {
				return tx.AppendAudit(e.ctx, platformEntry(1, "tenant.delete"))
			}); err != nil {
				t.Fatalf("DeleteTenant = %v", err)
			}
			e.assertPlatformHead(1)
		})

		t.Run("DeleteTenant"+isoName(iso), func(t *testing.T) {
			t.Parallel()
			e := h.setup(t)
			tn := e.tenant(iso)
			neighbour := e.tenant(iso)
			e.in(tn.ID, func(tx store.Tx) error {
				writeEverything(t, e.ctx, tx, "a")
				return nil
			})
			e.in(neighbour.ID, func(tx store.Tx) error {
				writeEverything(t, e.ctx, tx, "a")
				return nil
			})
			before := e.dump(neighbour.ID, "a")
			if err := e.s.DeleteTenant(e.ctx, tn.ID, nil); err != nil {
				t.Fatalf("DeleteTenant = %v", err)
			}
			p := &store.CreateTenantParams{ID: tn.ID, Slug: tn.Slug, Name: tn.Name, Plan: tn.Plan, Isolation: iso, CreatedAt: tn.CreatedAt}
			e.assertGone(p)
			errIs(t, "DeleteTenant again", e.s.DeleteTenant(e.ctx, tn.ID, nil), store.ErrNotFound)
			diff(t, "neighbour after DeleteTenant", before, e.dump(neighbour.ID, "a"))

			// A tenant created later with the same id, of either
			// isolation, never sees the old rows.
			for _, again := range isolations {
				p.Isolation = again
				if _, err := e.s.CreateTenant(e.ctx, p, nil, nil); err != nil {
					t.Fatalf("CreateTenant(%s) with a deleted tenant's id = %v", again, err)
				}
				e.assertEmpty(p.ID, "a")
				if err := e.s.DeleteTenant(e.ctx, p.ID, nil); err != nil {
					t.Fatalf("DeleteTenant = %v", err)
				}
			}
		})
	}

	t.Run("DeleteUnknownTenant", func(t *testing.T) {
		t.Parallel()
		e := h.setup(t)
		errIs(t, "DeleteTenant(unknown)", e.s.DeleteTenant(e.ctx, createParams(tenant.Pooled).ID, nil), store.ErrNotFound)
	})

	t.Run("ZeroTenant", func(t *testing.T) {
		t.Parallel()
		e := h.setup(t)
		e.tenant(tenant.Pooled)
		called := false
		fn := func(store.Tx) error { called = true; return nil }
		errIs(t, "InTenant(\"\")", e.s.InTenant(e.ctx, "", fn), store.ErrNoTenant)
		errIs(t, "ReadTenant(\"\")", e.s.ReadTenant(e.ctx, "", fn), store.ErrNoTenant)
		if called {
			t.Error("fn ran for the zero tenant")
		}
	})

	t.Run("UnknownTenant", func(t *testing.T) {
		t.Parallel()
		e := h.setup(t)
		e.tenant(tenant.Pooled)
		e.tenant(tenant.Silo)
		called := false
		fn := func(store.Tx) error { called = true; return nil }
		for _, id := range []tenant.ID{createParams(tenant.Pooled).ID, "not-a-uuid", "../../etc/passwd"} {
			errIs(t, "InTenant(unknown)", e.s.InTenant(e.ctx, id, fn), store.ErrNotFound)
			errIs(t, "ReadTenant(unknown)", e.s.ReadTenant(e.ctx, id, fn), store.ErrNotFound)
		}
		if called {
			t.Error("fn ran for an unknown tenant")
		}
	})

	t.Run("Ping", func(t *testing.T) {
		t.Parallel()
		e := h.setup(t)
		if err := e.s.Ping(e.ctx); err != nil {
			t.Errorf("Ping = %v", err)
		}
	})

	t.Run("MaxConns", func(t *testing.T) {
		t.Parallel()
		e := h.setup(t)
		n := e.s.MaxConns()
		if n < 1 {
			t.Fatalf("MaxConns = %d, want at least 1", n)
		}
		// MaxConns read transactions run at once: none waits for another
		// to end.
		var started, release sync.WaitGroup
		started.Add(n)
		release.Add(1)
		errs := make(chan error, n)
		for range n {
			go func() {
				errs <- e.s.ReadPlatform(e.ctx, func(tx store.PlatformTx) error {
					started.Done()
					release.Wait()
					_, err := tx.ListPlans(e.ctx)
					return err
				})
			}()
		}
		started.Wait() // hangs (and the test times out) if one had to wait
		release.Done()
		for range n {
			if err := <-errs; err != nil {
				t.Errorf("ReadPlatform = %v", err)
			}
		}
	})
}

// assertGone checks that the tenant p described does not exist.
func (e *env) assertGone(p *store.CreateTenantParams) {
	t := e.t
	t.Helper()
	e.readPlatform(func(tx store.PlatformTx) error {
		_, err := tx.GetTenant(e.ctx, p.ID)
		errIs(t, "GetTenant", err, store.ErrNotFound)
		_, err = tx.GetTenantBySlug(e.ctx, p.Slug)
		errIs(t, "GetTenantBySlug", err, store.ErrNotFound)
		ts, err := tx.ListTenants(e.ctx, &store.ListTenantsParams{Limit: 1000})
		errIs(t, "ListTenants", err, nil)
		for _, tn := range ts {
			if tn.ID == p.ID {
				t.Errorf("ListTenants includes %s", p.ID)
			}
		}
		return nil
	})
	called := false
	fn := func(store.Tx) error { called = true; return nil }
	errIs(t, "InTenant", e.s.InTenant(e.ctx, p.ID, fn), store.ErrNotFound)
	errIs(t, "ReadTenant", e.s.ReadTenant(e.ctx, p.ID, fn), store.ErrNotFound)
	if called {
		t.Errorf("fn ran for tenant %s, which does not exist", p.ID)
	}
}

// writeEverything writes one row of every kind into tx's tenant, all named
// with suffix sfx, reporting failures with t.Errorf.
func writeEverything(t *testing.T, ctx context.Context, tx store.Tx, sfx string) {
	t.Helper()
	col := store.CollectionName("things_" + sfx)
	_, err := tx.PutCollection(ctx, &store.Collection{Name: col, Schema: []byte(`{"type":"object"}`), CreatedAt: base, UpdatedAt: base})
	errIs(t, "PutCollection", err, nil)
	errIs(t, "CreateRecord", tx.CreateRecord(ctx, record(col, store.RecordID("rec-"+sfx), `{"owner":"`+sfx+`"}`, base)), nil)
	errIs(t, "CreateUser", tx.CreateUser(ctx, &store.User{ID: store.UserID("user-" + sfx), Email: sfx + "@example.com",
		PasswordHash: "hash-" + sfx, Role: tenant.Owner, CreatedAt: base, UpdatedAt: base}), nil)
	errIs(t, "CreateAPIKey", tx.CreateAPIKey(ctx, &store.APIKey{ID: store.APIKeyID("key-" + sfx), Name: "key",
		Role: tenant.Admin, Hash: []byte("keyhash-" + sfx), CreatedBy: "user:user-" + sfx, CreatedAt: base}), nil)
	errIs(t, "CreateRefreshToken", tx.CreateRefreshToken(ctx, &store.RefreshToken{ID: store.RefreshTokenID("rt-" + sfx),
		UserID: store.UserID("user-" + sfx), Family: "fam-" + sfx, Hash: []byte("rthash-" + sfx),
		ExpiresAt: at(24 * time.Hour), CreatedAt: base}), nil)
	errIs(t, "PutOIDCConfig", tx.PutOIDCConfig(ctx, oidcConfig(sfx)), nil)
	errIs(t, "CreateIdentityLink", tx.CreateIdentityLink(ctx, &store.IdentityLink{Issuer: "https://idp-" + sfx + ".example",
		Subject: "sub-" + sfx, UserID: store.UserID("user-" + sfx), CreatedAt: base}), nil)
	errIs(t, "PutIdempotency", tx.PutIdempotency(ctx, &store.Idempotency{Key: "idem-" + sfx, RequestHash: []byte("rq-" + sfx),
		Response: []byte("resp-" + sfx), CreatedAt: base}), nil)
	seq, hash, err := tx.AuditHead(ctx)
	errIs(t, "AuditHead", err, nil)
	errIs(t, "AppendAudit", tx.AppendAudit(ctx, &store.AuditEntry{Seq: seq + 1, Time: base, Actor: "user:user-" + sfx,
		Action: "thing.create", Resource: "record:" + string(col), RequestID: "req-" + sfx, Outcome: "success",
		PrevHash: hash, Hash: []byte("audit-" + sfx)}), nil)
	errIs(t, "PutAuditCheckpoint", tx.PutAuditCheckpoint(ctx, &store.AuditCheckpoint{Seq: seq + 1, Hash: []byte("audit-" + sfx),
		KeyID: "kid-1", Signature: []byte("sig-" + sfx), Time: base}), nil)
	errIs(t, "PutAuditRetention", tx.PutAuditRetention(ctx, &store.AuditRetention{Keep: time.Hour, UpdatedBy: "user:user-" + sfx, UpdatedAt: base}), nil)
	errIs(t, "CutAudit", tx.CutAudit(ctx, &store.AuditCut{Seq: seq + 1, Hash: []byte("audit-" + sfx), KeyID: "kid-1",
		Signature: []byte("cut-" + sfx), Time: base}), nil)
}

// assertEmpty checks that tenant tid holds none of what writeEverything
// writes with suffix sfx, and nothing at all in the listings.
func (e *env) assertEmpty(tid tenant.ID, sfx string) {
	t := e.t
	t.Helper()
	e.read(tid, func(tx store.Tx) error {
		col := store.CollectionName("things_" + sfx)
		_, err := tx.GetCollection(e.ctx, col)
		errIs(t, "GetCollection", err, store.ErrNotFound)
		_, err = tx.GetRecord(e.ctx, col, store.RecordID("rec-"+sfx))
		errIs(t, "GetRecord", err, store.ErrNotFound)
		_, err = tx.GetUser(e.ctx, store.UserID("user-"+sfx))
		errIs(t, "GetUser", err, store.ErrNotFound)
		_, err = tx.GetAuditRetention(e.ctx)
		errIs(t, "GetAuditRetention", err, store.ErrNotFound)
		_, err = tx.AuditStart(e.ctx)
		errIs(t, "AuditStart", err, store.ErrNotFound)
		_, err = tx.GetUserByEmail(e.ctx, sfx+"@example.com")
		errIs(t, "GetUserByEmail", err, store.ErrNotFound)
		_, err = tx.GetAPIKey(e.ctx, store.APIKeyID("key-"+sfx))
		errIs(t, "GetAPIKey", err, store.ErrNotFound)
		_, err = tx.GetRefreshToken(e.ctx, store.RefreshTokenID("rt-"+sfx))
		errIs(t, "GetRefreshToken", err, store.ErrNotFound)
		_, err = tx.GetIdempotency(e.ctx, "idem-"+sfx)
		errIs(t, "GetIdempotency", err, store.ErrNotFound)
		_, err = tx.GetOIDCConfig(e.ctx)
		errIs(t, "GetOIDCConfig", err, store.ErrNotFound)
		_, err = tx.GetIdentityLink(e.ctx, "https://idp-"+sfx+".example", "sub-"+sfx)
		errIs(t, "GetIdentityLink", err, store.ErrNotFound)

		cols, err := tx.ListCollections(e.ctx)
		if errIs(t, "ListCollections", err, nil) && len(cols) != 0 {
			t.Errorf("ListCollections = %d collections, want none", len(cols))
		}
		keys, err := tx.ListAPIKeys(e.ctx)
		if errIs(t, "ListAPIKeys", err, nil) && len(keys) != 0 {
			t.Errorf("ListAPIKeys = %d keys, want none", len(keys))
		}
		page, err := tx.ListRecords(e.ctx, &store.ListRecordsParams{Collection: col, Limit: 10})
		if err == nil && len(page.Records) != 0 {
			t.Errorf("ListRecords = %d records, want none", len(page.Records))
		} else if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("ListRecords = %v, want no records or ErrNotFound", err)
		}
		u, err := tx.Usage(e.ctx)
		if errIs(t, "Usage", err, nil) {
			diff(t, "Usage", &store.Usage{}, u)
		}
		seq, hash, err := tx.AuditHead(e.ctx)
		if errIs(t, "AuditHead", err, nil) && (seq != 0 || hash != nil) {
			t.Errorf("AuditHead = %d, %x; want 0, nil", seq, hash)
		}
		entries, err := tx.ListAudit(e.ctx, 0, 100)
		if errIs(t, "ListAudit", err, nil) && len(entries) != 0 {
			t.Errorf("ListAudit = %d entries, want none", len(entries))
		}
		cps, err := tx.ListAuditCheckpoints(e.ctx, 0, 100)
		if errIs(t, "ListAuditCheckpoints", err, nil) && len(cps) != 0 {
			t.Errorf("ListAuditCheckpoints = %d checkpoints, want none", len(cps))
		}
		return nil
	})
}

// orderByID sorts records by id.
var orderByID = filter.Order{Field: filter.FieldID}

// snapshot is everything a tenant holds that writeEverything (or
// populate) wrote with some suffix, read back through the Tx.
type snapshot struct {
	Collections []*store.Collection
	Records     map[store.CollectionName][]*store.Record
	Users       []*store.User
	Keys        []*store.APIKey
	Tokens      []*store.RefreshToken
	Idempotency []*store.Idempotency
	OIDC        *store.OIDCConfig
	Links       []*store.IdentityLink
	Usage       *store.Usage
	Audit       []*store.AuditEntry
	Checkpoints []*store.AuditCheckpoint
}

// dump reads tenant tid's whole state; the rows with per-id lookups are
// those named with suffix sfx.
func (e *env) dump(tid tenant.ID, sfx string) *snapshot {
	t := e.t
	t.Helper()
	var s snapshot
	e.read(tid, func(tx store.Tx) error {
		var err error
		if s.Collections, err = tx.ListCollections(e.ctx); err != nil {
			return err
		}
		s.Records = map[store.CollectionName][]*store.Record{}
		for _, c := range s.Collections {
			rs, err := listAll(e.ctx, tx, store.ListRecordsParams{Collection: c.Name, Order: orderByID})
			if err != nil {
				return err
			}
			s.Records[c.Name] = rs
		}
		for _, id := range []store.UserID{store.UserID("user-" + sfx), store.UserID("user2-" + sfx)} {
			u, err := tx.GetUser(e.ctx, id)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			s.Users = append(s.Users, u)
		}
		if s.Keys, err = tx.ListAPIKeys(e.ctx); err != nil {
			return err
		}
		for _, id := range []store.RefreshTokenID{store.RefreshTokenID("rt-" + sfx), store.RefreshTokenID("rt2-" + sfx)} {
			rt, err := tx.GetRefreshToken(e.ctx, id)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			s.Tokens = append(s.Tokens, rt)
		}
		for _, key := range []string{"idem-" + sfx, "idem"} {
			rec, err := tx.GetIdempotency(e.ctx, key)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			s.Idempotency = append(s.Idempotency, rec)
		}
		if s.OIDC, err = tx.GetOIDCConfig(e.ctx); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		for _, id := range [][2]string{{"https://idp-" + sfx + ".example", "sub-" + sfx}, {sharedIssuer, "same-sub"}} {
			l, err := tx.GetIdentityLink(e.ctx, id[0], id[1])
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			s.Links = append(s.Links, l)
		}
		if s.Usage, err = tx.Usage(e.ctx); err != nil {
			return err
		}
		if s.Audit, err = tx.ListAudit(e.ctx, 0, 1000); err != nil {
			return err
		}
		s.Checkpoints, err = tx.ListAuditCheckpoints(e.ctx, 0, 1000)
		return err
	})
	return &s
}

func platformEntry(seq int64, action string) *store.AuditEntry {
	return &store.AuditEntry{Seq: seq, Time: base, Actor: "operator", Action: action, Resource: "tenant:x",
		RequestID: "req", Outcome: "success", PrevHash: []byte("p"), Hash: []byte{byte(seq)}}
}

// assertPlatformHead checks the platform chain's last sequence number.
func (e *env) assertPlatformHead(want int64) {
	e.t.Helper()
	e.readPlatform(func(tx store.PlatformTx) error {
		seq, _, err := tx.AuditHead(e.ctx)
		if errIs(e.t, "platform AuditHead", err, nil) && seq != want {
			e.t.Errorf("platform AuditHead = %d, want %d", seq, want)
		}
		return nil
	})
}

func (h *harness) testPlatformAudit(t *testing.T) {
	// The platform chain and tenants' chains are separate logs: each starts
	// at 1 and neither sees the other's entries.
	t.Run("PlatformAuditIsSeparate", func(t *testing.T) {
		t.Parallel()
		e := h.setup(t)
		pooled, silo := e.tenant(tenant.Pooled), e.tenant(tenant.Silo)
		e.platform(func(tx store.PlatformTx) error {
			for i := int64(1); i <= 3; i++ {
				errIs(t, "platform AppendAudit", tx.AppendAudit(e.ctx, platformEntry(i, "plan.put")), nil)
			}
			errIs(t, "platform AppendAudit(dup)", tx.AppendAudit(e.ctx, platformEntry(3, "plan.put")), store.ErrConflict)
			errIs(t, "platform PutAuditCheckpoint", tx.PutAuditCheckpoint(e.ctx, &store.AuditCheckpoint{
				Seq: 2, Hash: []byte{2}, KeyID: "k", Signature: []byte("sig"), Time: base}), nil)
			return nil
		})
		for _, tn := range []*store.Tenant{pooled, silo} {
			e.in(tn.ID, func(tx store.Tx) error {
				seq, _, err := tx.AuditHead(e.ctx)
				if errIs(t, "tenant AuditHead", err, nil) && seq != 0 {
					t.Errorf("tenant AuditHead = %d, want 0: the platform chain leaked in", seq)
				}
				return tx.AppendAudit(e.ctx, platformEntry(1, "record.create"))
			})
		}
		e.readPlatform(func(tx store.PlatformTx) error {
			es, err := tx.ListAudit(e.ctx, 0, 100)
			if errIs(t, "platform ListAudit", err, nil) && len(es) != 3 {
				t.Errorf("platform ListAudit returned %d entries, want 3", len(es))
			}
			for _, en := range es {
				if en.Action != "plan.put" {
					t.Errorf("platform chain holds a %q entry", en.Action)
				}
			}
			cps, err := tx.ListAuditCheckpoints(e.ctx, 0, 100)
			if errIs(t, "platform ListAuditCheckpoints", err, nil) && (len(cps) != 1 || cps[0].Seq != 2) {
				t.Errorf("platform checkpoints = %v, want one at seq 2", cps)
			}
			return nil
		})
		// Deleting a tenant leaves the platform chain alone.
		if err := e.s.DeleteTenant(e.ctx, pooled.ID, nil); err != nil {
			t.Fatalf("DeleteTenant = %v", err)
		}
		e.assertPlatformHead(3)
	})

	t.Run("PlatformAuditReadOnly", func(t *testing.T) {
		t.Parallel()
		e := h.setup(t)
		e.readPlatform(func(tx store.PlatformTx) error {
			errIs(t, "AppendAudit in ReadPlatform", tx.AppendAudit(e.ctx, platformEntry(1, "x")), store.ErrReadOnly)
			return nil
		})
	})
}
