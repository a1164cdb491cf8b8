package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bulkheadhq/bulkhead/filter"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// siloLeftovers returns the schema and role of silo tenant id that exist.
func siloLeftovers(t *testing.T, d *testDB, id tenant.ID) []string {
	t.Helper()
	tid, err := parseTenantID(id)
	if err != nil {
		t.Fatal(err)
	}
	c := connect(t, d.adminURL(t))
	var left []string
	var n int64
	if n = count(t, c, "SELECT count(*) FROM pg_namespace WHERE nspname = $1", tid.siloSchema()); n > 0 {
		left = append(left, "schema "+tid.siloSchema())
	}
	if n = count(t, c, "SELECT count(*) FROM pg_roles WHERE rolname = $1", tid.siloRole()); n > 0 {
		left = append(left, "role "+tid.siloRole())
	}
	if n = count(t, c, "SELECT count(*) FROM bulkhead.tenants WHERE id = $1", string(id)); n > 0 {
		left = append(left, "tenant row")
	}
	return left
}

func TestPostgresProvision(t *testing.T) {
	superURL(t)
	t.Parallel()
	ctx := context.Background()
	d := newTestDB(t, t, true)
	s := openStore(t, d, nil)

	params := func(iso tenant.Isolation) *store.CreateTenantParams {
		id := uuid.NewString()
		return &store.CreateTenantParams{ID: tenant.ID(id), Slug: tenant.Slug("p-" + id[:8]), Name: "P", Plan: tenant.DefaultPlan,
			Isolation: iso, CreatedAt: base}
	}

	// A silo tenant is one transaction: when any part fails, no schema,
	// role or row is left, in the database itself.
	t.Run("SiloFailureLeavesNothing", func(t *testing.T) {
		errBoom := errors.New("boom")
		for _, tc := range []struct {
			name         string
			initPlatform func(store.PlatformTx) error
			initTenant   func(store.Tx) error
		}{
			{"InitTenant", nil, func(tx store.Tx) error {
				populateTx(t, tx)
				return errBoom
			}},
			{"InitPlatform", func(store.PlatformTx) error { return errBoom }, nil},
		} {
			p := params(tenant.Silo)
			if _, err := s.CreateTenant(ctx, p, tc.initPlatform, tc.initTenant); !errors.Is(err, errBoom) {
				t.Fatalf("%s: CreateTenant = %v, want %v", tc.name, err, errBoom)
			}
			if left := siloLeftovers(t, d, p.ID); len(left) > 0 {
				t.Errorf("%s: a failed CreateTenant left %v", tc.name, left)
			}
		}
		// An unknown plan fails before any DDL.
		p := params(tenant.Silo)
		p.Plan = "no-such-plan"
		if _, err := s.CreateTenant(ctx, p, nil, nil); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("CreateTenant(unknown plan) = %v, want ErrNotFound", err)
		}
		if left := siloLeftovers(t, d, p.ID); len(left) > 0 {
			t.Errorf("a CreateTenant with an unknown plan left %v", left)
		}
	})

	t.Run("DeleteDropsSchemaAndRole", func(t *testing.T) {
		p := params(tenant.Silo)
		if _, err := s.CreateTenant(ctx, p, nil, nil); err != nil {
			t.Fatal(err)
		}
		if left := siloLeftovers(t, d, p.ID); len(left) != 3 {
			t.Fatalf("after CreateTenant, found %v, want the schema, the role and the row", left)
		}
		if err := s.DeleteTenant(ctx, p.ID, nil); err != nil {
			t.Fatal(err)
		}
		if left := siloLeftovers(t, d, p.ID); len(left) > 0 {
			t.Errorf("DeleteTenant left %v", left)
		}
	})

	// Without the owner's URL, pooled tenants work and silo provisioning
	// says what it needs; silo tenants that exist are served.
	t.Run("WithoutProvisionURL", func(t *testing.T) {
		silo := createTenant(t, s, tenant.Silo)
		populate(t, s, silo)
		plain := openStore(t, d, &Options{ProvisionURL: "-"})
		if plain.CanProvisionSilos() || !s.CanProvisionSilos() {
			t.Errorf("CanProvisionSilos = %v without ProvisionURL, %v with it; want false, true",
				plain.CanProvisionSilos(), s.CanProvisionSilos())
		}
		// The error is the store's sentinel (what the API maps to an
		// answer, not to a 500), says how to configure the deployment,
		// and comes before anything is written.
		p := params(tenant.Silo)
		ran := false
		initPlatform := func(store.PlatformTx) error { ran = true; return nil }
		_, err := plain.CreateTenant(ctx, p, initPlatform, nil)
		if !errors.Is(err, store.ErrIsolationUnavailable) {
			t.Errorf("CreateTenant(silo) = %v, want store.ErrIsolationUnavailable", err)
		}
		if err == nil || !strings.Contains(err.Error(), "--provision-url") || !strings.Contains(err.Error(), "BULKHEAD_PROVISION_URL") {
			t.Errorf("CreateTenant(silo) = %v, want it to name --provision-url and BULKHEAD_PROVISION_URL", err)
		}
		if ran {
			t.Error("CreateTenant(silo) ran initPlatform")
		}
		if left := siloLeftovers(t, d, p.ID); len(left) > 0 {
			t.Errorf("CreateTenant(silo) without ProvisionURL left %v", left)
		}
		if err := plain.DeleteTenant(ctx, silo, nil); !errors.Is(err, store.ErrIsolationUnavailable) {
			t.Errorf("DeleteTenant(silo) = %v, want store.ErrIsolationUnavailable", err)
		}
		if _, err := plain.CreateTenant(ctx, params(tenant.Pooled), nil, nil); err != nil {
			t.Errorf("CreateTenant(pooled) = %v", err)
		}
		err = plain.ReadTenant(ctx, silo, func(tx store.Tx) error {
			_, err := tx.GetRecord(ctx, "things", "r1")
			return err
		})
		if err != nil {
			t.Errorf("ReadTenant(silo) = %v", err)
		}
	})

	// Another process deletes a tenant this store has cached, and creates
	// it again with the other isolation: the store follows, and never
	// reads the old rows.
	t.Run("StaleRoute", func(t *testing.T) {
		other := openStore(t, d, nil)
		p := params(tenant.Pooled)
		if _, err := s.CreateTenant(ctx, p, nil, nil); err != nil {
			t.Fatal(err)
		}
		populate(t, s, p.ID)
		read := func(st *Store) (string, error) {
			var owner string
			err := st.ReadTenant(ctx, p.ID, func(tx store.Tx) error {
				r, err := tx.GetRecord(ctx, "things", "r1")
				if err == nil {
					owner = string(r.Data)
				}
				return err
			})
			return owner, err
		}
		if _, err := read(s); err != nil {
			t.Fatal(err)
		}
		for _, iso := range []tenant.Isolation{tenant.Silo, tenant.Pooled} {
			if err := other.DeleteTenant(ctx, p.ID, nil); err != nil {
				t.Fatal(err)
			}
			p.Isolation = iso
			if _, err := other.CreateTenant(ctx, p, nil, func(tx store.Tx) error {
				if _, err := tx.PutCollection(ctx, &store.Collection{Name: "things", CreatedAt: base, UpdatedAt: base}); err != nil {
					return err
				}
				return tx.CreateRecord(ctx, &store.Record{Collection: "things", ID: "r1", Version: 1,
					Data: json.RawMessage(`{"iso":"` + string(iso) + `"}`), CreatedAt: base, UpdatedAt: base})
			}); err != nil {
				t.Fatal(err)
			}
			got, err := read(s)
			if err != nil || got != `{"iso":"`+string(iso)+`"}` {
				t.Errorf("after the tenant became %s elsewhere, read = %s, %v", iso, got, err)
			}
		}
		if err := other.DeleteTenant(ctx, p.ID, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := read(s); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("after the tenant was deleted elsewhere, read = %v, want ErrNotFound", err)
		}
		called := false
		err := s.InTenant(ctx, p.ID, func(store.Tx) error { called = true; return nil })
		if !errors.Is(err, store.ErrNotFound) || called {
			t.Errorf("InTenant(deleted) = %v, fn called %t; want ErrNotFound, not called", err, called)
		}
	})

	// Concurrent updates and deletes of one record keep the usage exact:
	// each sees the version and size the previous one left.
	t.Run("ConcurrentUpdates", func(t *testing.T) {
		for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
			tid := createTenant(t, s, iso)
			err := s.InTenant(ctx, tid, func(tx store.Tx) error {
				if _, err := tx.PutCollection(ctx, &store.Collection{Name: "c", CreatedAt: base, UpdatedAt: base}); err != nil {
					return err
				}
				return tx.CreateRecord(ctx, &store.Record{Collection: "c", ID: "hot", Version: 1, Data: json.RawMessage(`{}`), CreatedAt: base, UpdatedAt: base})
			})
			if err != nil {
				t.Fatal(err)
			}
			const goroutines, perGoroutine = 8, 20
			var wg sync.WaitGroup
			for g := range goroutines {
				wg.Go(func() {
					for i := range perGoroutine {
						data := fmt.Sprintf(`{"g":%d,"pad":"%s"}`, g, strings.Repeat("x", (g*7+i*13)%50))
						err := s.InTenant(ctx, tid, func(tx store.Tx) error {
							if g == 0 && i%5 == 4 { // delete and create again
								if _, err := tx.DeleteRecord(ctx, "c", "hot", 0); err != nil {
									return err
								}
								return tx.CreateRecord(ctx, &store.Record{Collection: "c", ID: "hot", Version: 1, Data: json.RawMessage(data), CreatedAt: base, UpdatedAt: base})
							}
							_, err := tx.UpdateRecord(ctx, &store.UpdateRecordParams{Collection: "c", ID: "hot", Data: json.RawMessage(data), UpdatedAt: base})
							return err
						})
						if err != nil {
							t.Errorf("%s: %v", iso, err)
						}
					}
				})
			}
			wg.Wait()
			err = s.ReadTenant(ctx, tid, func(tx store.Tx) error {
				r, err := tx.GetRecord(ctx, "c", "hot")
				if err != nil {
					return err
				}
				u, err := tx.Usage(ctx)
				if err != nil {
					return err
				}
				if u.Records != 1 || u.Bytes != int64(len(r.Data)) {
					t.Errorf("%s: usage = %+v, want 1 record of %d bytes", iso, u, len(r.Data))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	})
}

// populateTx writes a row into every tenant table through tx.
func populateTx(t *testing.T, tx store.Tx) {
	ctx := context.Background()
	_, err := tx.PutCollection(ctx, &store.Collection{Name: "things", CreatedAt: base, UpdatedAt: base})
	err = errors.Join(err,
		tx.CreateRecord(ctx, &store.Record{Collection: "things", ID: "r1", Version: 1, Data: json.RawMessage(`{}`), CreatedAt: base, UpdatedAt: base}),
		tx.CreateUser(ctx, &store.User{ID: "u1", Email: "u1@example.com", PasswordHash: "h", Role: tenant.Owner, CreatedAt: base, UpdatedAt: base}),
		tx.AppendAudit(ctx, &store.AuditEntry{Seq: 1, Time: base, Actor: "a", Action: "x", Resource: "r", RequestID: "q", Outcome: "success"}))
	if err != nil {
		t.Error(err)
	}
}

func TestPostgresStatementTimeout(t *testing.T) {
	superURL(t)
	t.Parallel()
	ctx := context.Background()
	d := newTestDB(t, t, true)
	s := openStore(t, d, &Options{StatementTimeout: 100 * time.Millisecond})
	tid := createTenant(t, s, tenant.Silo)
	err := s.InTenant(ctx, tid, func(stx store.Tx) error {
		_, err := stx.(*tx).q.exec(ctx, "SELECT pg_sleep(2)")
		return err
	})
	if sqlState(err) != "57014" {
		t.Errorf("a statement past StatementTimeout = %v, want SQLSTATE 57014", err)
	}
	if err != nil && strings.Contains(err.Error(), "pg_sleep") {
		t.Errorf("the error %q shows the statement", err)
	}
	// A negative timeout keeps the server's (none here).
	s = openStore(t, d, &Options{StatementTimeout: -1})
	err = s.InTenant(ctx, tid, func(stx store.Tx) error {
		_, err := stx.(*tx).q.exec(ctx, "SELECT pg_sleep(0.2)")
		return err
	})
	if err != nil {
		t.Errorf("with StatementTimeout -1, a 200ms statement = %v", err)
	}
}

// TestPostgresRecordEdgeCases covers records that jsonb cannot hold as
// given, and numbers that float8 cannot hold: they are stored byte for
// byte and filter as package filter says.
func TestPostgresRecordEdgeCases(t *testing.T) {
	superURL(t)
	t.Parallel()
	ctx := context.Background()
	d := newTestDB(t, t, true)
	s := openStore(t, d, nil)
	tid := createTenant(t, s, tenant.Pooled)
	records := map[store.RecordID]string{
		"nul":     `{"a":"x\u0000y","b":"\\u0000","c":"\\\u0000","k\u0000":1}`,
		"huge":    `{"n":1e400,"m":-1e400}`,
		"tiny":    `{"n":1e-400,"m":3e-324}`,
		"big":     `{"n":9007199254740993}`,
		"spacing": `{ "n" : 1.50 , "s":"\u00e9\/" }`,
	}
	err := s.InTenant(ctx, tid, func(tx store.Tx) error {
		if _, err := tx.PutCollection(ctx, &store.Collection{Name: "c", CreatedAt: base, UpdatedAt: base}); err != nil {
			return err
		}
		for id, data := range records {
			if err := tx.CreateRecord(ctx, &store.Record{Collection: "c", ID: id, Version: 1, Data: json.RawMessage(data), CreatedAt: base, UpdatedAt: base}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	cmp := func(field string, op filter.Op, v filter.Value) filter.Expr {
		return &filter.Cmp{Field: field, Op: op, Value: v}
	}
	num := func(f float64) filter.Value { return filter.Value{Kind: filter.Number, Num: f} }
	str := func(s string) filter.Value { return filter.Value{Kind: filter.String, Str: s} }
	err = s.ReadTenant(ctx, tid, func(tx store.Tx) error {
		for id, data := range records {
			r, err := tx.GetRecord(ctx, "c", id)
			if err != nil {
				return err
			}
			if string(r.Data) != data {
				t.Errorf("record %s = %s, want %s byte for byte", id, r.Data, data)
			}
		}
		for _, tc := range []struct {
			name string
			expr filter.Expr
			want string
		}{
			{"NULAsReplacement", cmp("a", filter.Eq, str("x\uFFFDy")), "nul"},
			{"EscapedBackslash", cmp("b", filter.Eq, str(`\u0000`)), "nul"},
			{"HugeIsInfinite", cmp("n", filter.Gt, num(1.7976931348623157e308)), "huge"},
			{"NegativeHuge", cmp("m", filter.Lt, num(-1.7976931348623157e308)), "huge"},
			{"TinyIsZero", cmp("n", filter.Eq, num(0)), "tiny"},
			{"Subnormal", cmp("m", filter.Eq, num(5e-324)), "tiny"},
			// Package filter: numbers compare as 64-bit floats, so
			// integers beyond 2^53 round.
			{"BigIntegerRounds", cmp("n", filter.Eq, num(9007199254740992)), "big"},
			{"Decimal", cmp("n", filter.Eq, num(1.5)), "spacing"},
			{"Escapes", cmp("s", filter.Eq, str("é/")), "spacing"},
		} {
			page, err := tx.ListRecords(ctx, &store.ListRecordsParams{Collection: "c", Filter: tc.expr, Order: filter.Order{Field: "id"}, Limit: 10})
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
				continue
			}
			if len(page.Records) != 1 || string(page.Records[0].ID) != tc.want {
				var got []store.RecordID
				for _, r := range page.Records {
					got = append(got, r.ID)
				}
				t.Errorf("%s: got %v, want [%s]", tc.name, got, tc.want)
			}
		}
		// Ordered by n: missing first, then 0, 1.5, 2^53 and +Inf. Paging
		// with limit 1 keeps that order across the infinite key.
		var ids []store.RecordID
		p := &store.ListRecordsParams{Collection: "c", Order: filter.Order{Field: "n"}, Limit: 1}
		for {
			page, err := tx.ListRecords(ctx, p)
			if err != nil {
				return err
			}
			for _, r := range page.Records {
				ids = append(ids, r.ID)
			}
			if page.Next == nil {
				break
			}
			p.After = page.Next
		}
		if want := []store.RecordID{"nul", "tiny", "spacing", "big", "huge"}; fmt.Sprint(ids) != fmt.Sprint(want) {
			t.Errorf("order by n = %v, want %v", ids, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
