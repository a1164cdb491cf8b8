package core

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// scopeBundle is two tenants, acme and globex, each with an admin API key,
// and the scopes of those keys on their own tenants.
type scopeBundle struct {
	*oracleBundle
	acmeKey, globexKey *tenant.Principal
	acmeAdmin          *Scope // acme's admin key on acme
	globexAdmin        *Scope // globex's admin key on globex
}

func setupScopes(t *testing.T) *scopeBundle {
	t.Helper()
	b := &scopeBundle{oracleBundle: setupOracle(t)}
	ctx := context.Background()
	if _, err := b.ctl.CreateTenant(ctx, CreateTenantParams{Slug: "globex", Name: "Globex"}, nil); err != nil {
		t.Fatal(err)
	}
	globexOp, err := b.c.Scope(ctx, Operator(), "globex", "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		op    *Scope
		p     **tenant.Principal
		scope **Scope
		slug  tenant.Slug
	}{{b.acme, &b.acmeKey, &b.acmeAdmin, "acme"}, {globexOp, &b.globexKey, &b.globexAdmin, "globex"}} {
		k, err := tc.op.CreateAPIKey(ctx, CreateAPIKeyParams{Name: "admin", Role: tenant.Admin})
		if err != nil {
			t.Fatal(err)
		}
		if *tc.p, err = b.c.Authenticate(ctx, k.Key); err != nil {
			t.Fatal(err)
		}
		if *tc.scope, err = b.c.Scope(ctx, *tc.p, tc.slug, "test"); err != nil {
			t.Fatal(err)
		}
		if _, err := (*tc.scope).PutCollection(ctx, "notes", PutCollectionParams{}); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// TestScopeBindsPrincipalToItsTenant: Scope is the only way to a tenant's
// data, and it binds a tenant's principal to that tenant only: another
// tenant's slug is not found (the same answer as a slug of no tenant), a
// suspended own tenant is refused, and the operator may address any.
func TestScopeBindsPrincipalToItsTenant(t *testing.T) {
	t.Parallel()
	b := setupScopes(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		p    *tenant.Principal
		slug tenant.Slug
		want error
	}{
		{"OwnTenant", b.acmeKey, "acme", nil},
		{"OtherTenant", b.acmeKey, "globex", store.ErrNotFound},
		{"NoSuchTenant", b.acmeKey, "initech", store.ErrNotFound},
		{"InvalidSlug", b.acmeKey, "../globex", store.ErrNotFound},
		{"OperatorAnyTenant", Operator(), "globex", nil},
		{"NoPrincipal", nil, "acme", ErrUnauthorized},
		// A principal claiming a tenant ID it does not hold still reaches
		// only the tenant whose ID it carries.
		{"ForgedRoleOtherTenant", &tenant.Principal{Kind: tenant.ActorAPIKey, Tenant: b.acmeKey.Tenant, ActorID: "x", Role: tenant.Owner}, "globex", store.ErrNotFound},
	} {
		sc, err := b.c.Scope(ctx, tc.p, tc.slug, "test")
		if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
			t.Errorf("%s: Scope = %v, want %v", tc.name, err, tc.want)
			continue
		}
		if err == nil && sc.Tenant().Slug != tc.slug {
			t.Errorf("%s: Scope bound to %s, want %s", tc.name, sc.Tenant().Slug, tc.slug)
		}
	}

	suspended := tenant.Suspended
	if _, err := b.ctl.UpdateTenant(ctx, b.acme, UpdateTenantParams{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.c.Scope(ctx, b.acmeKey, "acme", "test"); !errors.Is(err, ErrTenantSuspended) {
		t.Errorf("Scope of a suspended tenant = %v, want ErrTenantSuspended", err)
	}
}

// TestScopeReachesOnlyItsTenant: what one tenant's scope writes, another
// tenant's scope cannot read, update, delete or list, even knowing its id.
func TestScopeReachesOnlyItsTenant(t *testing.T) {
	t.Parallel()
	b := setupScopes(t)
	ctx := context.Background()
	rec, err := b.acmeAdmin.CreateRecord(ctx, "notes", []byte(`{"secret":"acme's"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	g := b.globexAdmin
	if _, err := g.GetRecord(ctx, "notes", rec.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("globex GetRecord(acme's id) = %v, want ErrNotFound", err)
	}
	if _, err := g.UpdateRecord(ctx, "notes", rec.ID, []byte(`{"secret":"globex's"}`), 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("globex UpdateRecord(acme's id) = %v, want ErrNotFound", err)
	}
	if err := g.DeleteRecord(ctx, "notes", rec.ID, 0); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("globex DeleteRecord(acme's id) = %v, want ErrNotFound", err)
	}
	page, err := g.ListRecords(ctx, "notes", ListQuery{Filter: `secret = "acme's"`, Count: true})
	if err != nil || len(page.Items) != 0 {
		t.Errorf("globex ListRecords = %+v, %v, want no items", page, err)
	}
	acmeKeyID := store.APIKeyID(b.acmeKey.ActorID)
	if err := g.RevokeAPIKey(ctx, acmeKeyID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("globex RevokeAPIKey(acme's key) = %v, want ErrNotFound", err)
	}
	if _, err := b.c.Authenticate(ctx, ""); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Authenticate(\"\") = %v", err)
	}
	// acme's record is untouched and acme's key still works.
	got, err := b.acmeAdmin.GetRecord(ctx, "notes", rec.ID)
	if err != nil || string(got.Data) != `{"secret":"acme's"}` || got.Version != 1 {
		t.Errorf("acme GetRecord = %+v, %v; want its own record, version 1", got, err)
	}
}

// TestZeroScopeAndControlRefuse: a Scope or Control not made by Core (a zero
// value another package could declare) refuses every operation.
func TestZeroScopeAndControlRefuse(t *testing.T) {
	t.Parallel()
	for _, v := range []any{&Scope{}, &Control{}, (*Scope)(nil), (*Control)(nil)} {
		rv := reflect.ValueOf(v)
		for i := range rv.NumMethod() {
			m := rv.Type().Method(i)
			ft := m.Type // includes the receiver
			if ft.NumOut() == 0 || !ft.Out(ft.NumOut()-1).Implements(reflect.TypeFor[error]()) {
				continue // accessors such as Tenant and Plan
			}
			args := []reflect.Value{rv}
			for j := 1; j < ft.NumIn(); j++ {
				if ft.In(j) == reflect.TypeFor[context.Context]() {
					args = append(args, reflect.ValueOf(context.Background()))
					continue
				}
				args = append(args, reflect.Zero(ft.In(j)))
			}
			out := m.Func.Call(args)
			err, _ := out[len(out)-1].Interface().(error)
			if !errors.Is(err, ErrNoScope) {
				t.Errorf("%T.%s on a value not made by Core = %v, want ErrNoScope", v, m.Name, err)
			}
		}
	}
}

// TestOnlyScopesReachTenantData checks core's API by its shape: no exported
// method of Core takes a tenant's ID or row (the only ways to name a tenant
// are a slug, through Scope and the public login routes, and a credential),
// and no method of Scope takes a tenant at all, so an operation cannot be
// pointed at a tenant other than the one its scope was bound to.
func TestOnlyScopesReachTenantData(t *testing.T) {
	t.Parallel()
	forbiddenTypes := []reflect.Type{reflect.TypeFor[tenant.ID](), reflect.TypeFor[*store.Tenant](), reflect.TypeFor[store.Tenant]()}
	slugOK := map[string]bool{"Scope": true, "ScopeWhileDeleting": true, "Login": true, "Refresh": true, "SlugKnown": true, "StartOIDC": true, "FinishOIDC": true}
	check := func(typ reflect.Type, allowSlug map[string]bool) {
		for i := range typ.NumMethod() {
			m := typ.Method(i)
			for j := 1; j < m.Type.NumIn(); j++ {
				in := m.Type.In(j)
				for _, f := range forbiddenTypes {
					if in == f {
						t.Errorf("%s.%s takes a %s: tenant data must be reached through a Scope", typ, m.Name, in)
					}
				}
				if in == reflect.TypeFor[tenant.Slug]() && !allowSlug[m.Name] {
					t.Errorf("%s.%s takes a tenant.Slug", typ, m.Name)
				}
				if in == reflect.TypeFor[*tenant.Principal]() && typ != reflect.TypeFor[*Core]() {
					t.Errorf("%s.%s takes a principal: a scope's principal is fixed when it is made", typ, m.Name)
				}
			}
		}
	}
	check(reflect.TypeFor[*Core](), slugOK)
	check(reflect.TypeFor[*Scope](), nil)
	check(reflect.TypeFor[*Control](), nil)
}

// TestScopeRefusalsNameTheRule: a refusal says which rule refused, and
// never names another tenant.
func TestScopeRefusalsNameTheRule(t *testing.T) {
	t.Parallel()
	b := setupScopes(t)
	ctx := context.Background()
	viewerKey, err := b.acme.CreateAPIKey(ctx, CreateAPIKeyParams{Name: "v", Role: tenant.Viewer})
	if err != nil {
		t.Fatal(err)
	}
	vp, err := b.c.Authenticate(ctx, viewerKey.Key)
	if err != nil {
		t.Fatal(err)
	}
	viewer, err := b.c.Scope(ctx, vp, "acme", "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"ViewerWrites", func() error { _, err := viewer.CreateRecord(ctx, "notes", []byte(`{}`), nil); return err }(), "needs the member role"},
		{"AdminGrantsOwner", func() error {
			_, err := b.acmeAdmin.CreateAPIKey(ctx, CreateAPIKeyParams{Name: "o", Role: tenant.Owner})
			return err
		}(), "above its own (admin)"},
		{"OperatorReadsRecords", func() error { _, err := b.acme.ListRecords(ctx, "notes", ListQuery{}); return err }(), "does not reach a tenant's data"},
		{"TenantKeyOnControlPlane", func() error { _, err := b.c.Control(b.acmeKey, "test"); return err }(), "only the platform operator"},
	} {
		var e *Error
		if !errors.As(tc.err, &e) || e.Kind != KindForbidden || !errors.Is(tc.err, ErrForbidden) {
			t.Errorf("%s: err = %v, want a forbidden *Error", tc.name, tc.err)
			continue
		}
		if !strings.Contains(e.Detail, tc.want) || strings.Contains(e.Detail, "globex") {
			t.Errorf("%s: detail %q, want it to say %q and name no other tenant", tc.name, e.Detail, tc.want)
		}
	}
}

// TestScopeCarriesThePlan: admission reads the plan from the scope; a
// plan changed through this node applies to the next scope made.
func TestScopeCarriesThePlan(t *testing.T) {
	t.Parallel()
	b := setupScopes(t)
	ctx := context.Background()
	if got := b.acmeAdmin.Plan(); got.Name != tenant.DefaultPlan || got.RatePerSec != 10 {
		t.Errorf("Plan() = %+v, want the free plan", got)
	}
	p := tenant.DefaultPlans[0]
	p.RatePerSec = 77
	if _, err := b.ctl.PutPlan(ctx, p.Name, p); err != nil {
		t.Fatal(err)
	}
	sc, err := b.c.Scope(ctx, b.acmeKey, "acme", "test")
	if err != nil {
		t.Fatal(err)
	}
	if got := sc.Plan().RatePerSec; got != 77 {
		t.Errorf("Plan().RatePerSec after PutPlan = %v, want 77", got)
	}
}

// TestColdKeyCostsOneRead: a request by an API key this node has not seen
// reads the key, its tenant and the tenant's plan in one transaction;
// scoping it to its tenant then costs nothing more.
func TestColdKeyCostsOneRead(t *testing.T) {
	t.Parallel()
	b := setupScopes(t)
	ctx := context.Background()
	k, err := b.acme.CreateAPIKey(ctx, CreateAPIKeyParams{Name: "cold", Role: tenant.Member})
	if err != nil {
		t.Fatal(err)
	}
	// Forget what creating the tenant and the key left in the caches.
	b.c.forgetTenant(b.acme.Tenant().ID, "")
	b.c.forgetPlan(b.acme.Plan().Name)
	got := b.measure(func() {
		p, err := b.c.Authenticate(ctx, k.Key)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.c.Scope(ctx, p, "acme", "test"); err != nil {
			t.Fatal(err)
		}
	})
	if got != (work{reads: 1}) {
		t.Errorf("Authenticate and Scope of a cold key cost %+v, want one read", got)
	}
}
