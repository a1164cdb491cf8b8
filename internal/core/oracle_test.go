package core

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/bulkheadhq/bulkhead/internal/auth"
	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/sqlitestore"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// countingStore passes every call to a real store and counts the
// transactions, so that tests can compare the work two requests cost.
type countingStore struct {
	store.Store
	reads, writes atomic.Int64
}

func (s *countingStore) InTenant(ctx context.Context, tid tenant.ID, fn func(store.Tx) error) error {
	s.writes.Add(1)
	return s.Store.InTenant(ctx, tid, fn)
}

func (s *countingStore) ReadTenant(ctx context.Context, tid tenant.ID, fn func(store.Tx) error) error {
	s.reads.Add(1)
	return s.Store.ReadTenant(ctx, tid, fn)
}

func (s *countingStore) InPlatform(ctx context.Context, fn func(store.PlatformTx) error) error {
	s.writes.Add(1)
	return s.Store.InPlatform(ctx, fn)
}

func (s *countingStore) ReadPlatform(ctx context.Context, fn func(store.PlatformTx) error) error {
	s.reads.Add(1)
	return s.Store.ReadPlatform(ctx, fn)
}

func (s *countingStore) LookupAPIKey(ctx context.Context, tid tenant.ID, id store.APIKeyID) (*store.KeyLookup, error) {
	s.reads.Add(1)
	return s.Store.LookupAPIKey(ctx, tid, id)
}

// work is what one call cost: transactions, and password hashes.
type work struct{ reads, writes, hashes int64 }

type oracleBundle struct {
	c     *Core
	st    *countingStore
	ctl   *Control
	acme  *Scope // the operator's scope on acme
	admin *tenant.Principal
}

func setupOracle(t *testing.T) *oracleBundle {
	t.Helper()
	dir := t.TempDir()
	raw, err := sqlitestore.Open(filepath.Join(dir, "bulkhead.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := keyring.Load(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	st := &countingStore{Store: raw}
	kms, err := keyring.OpenLocal(keyring.LocalConfig{Dir: filepath.Join(dir, "keys")})
	if err != nil {
		t.Fatal(err)
	}
	runner := openRunner(t, raw, filepath.Join(dir, "jobs.db"))
	c, err := New(Config{Store: st, Keys: keys, KMS: kms, AdminToken: "test-operator-token-0123",
		PasswordParams: auth.PasswordParams{Memory: 64, Time: 1, Threads: 1},
		Logger:         slog.New(slog.NewTextHandler(io.Discard, nil)), Jobs: runner})
	if err != nil {
		t.Fatal(err)
	}
	startRunner(t, runner)
	t.Cleanup(func() {
		closeRunner(runner)
		c.Flush()
		raw.Close()
	})
	ctx := context.Background()
	ctl, err := c.Control(Operator(), "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctl.CreateTenant(ctx, CreateTenantParams{Slug: "acme", Name: "Acme"}, nil); err != nil {
		t.Fatal(err)
	}
	acme, err := c.Scope(ctx, Operator(), "acme", "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acme.CreateUser(ctx, CreateUserParams{Email: "ada@example.com", Password: "correct horse battery", Role: tenant.Member}, nil); err != nil {
		t.Fatal(err)
	}
	return &oracleBundle{c: c, st: st, ctl: ctl, acme: acme, admin: Operator()}
}

// measure returns the work fn cost, up to its return.
func (b *oracleBundle) measure(fn func()) work {
	r, w, h := b.st.reads.Load(), b.st.writes.Load(), int64(b.c.passwords.Stats().Granted)
	fn()
	return work{b.st.reads.Load() - r, b.st.writes.Load() - w, int64(b.c.passwords.Stats().Granted) - h}
}

// TestLoginFailuresCostTheSame: a wrong password for a known email, an
// unknown email and a tenant that does not exist are answered after the same
// work, so that the time of the answer tells none of them apart; the
// failures in a tenant are still audited, after the answer.
func TestLoginFailuresCostTheSame(t *testing.T) {
	t.Parallel()
	b := setupOracle(t)
	ctx := context.Background()
	cases := []struct {
		name  string
		slug  tenant.Slug
		email string
		actor string // of the failure's audit entry; "" for none
	}{
		{"WrongPassword", "acme", "ada@example.com", "user:"},
		{"UnknownEmail", "acme", "bob@example.com", "anonymous"},
		{"UnknownTenant", "globex", "ada@example.com", ""},
	}
	var first work
	for i, tc := range cases {
		login := func() {
			_, err := b.c.Login(ctx, tc.slug, LoginParams{Email: tc.email, Password: "wrong horse battery"}, "req-"+tc.name)
			if !errors.Is(err, ErrInvalidCredentials) {
				t.Errorf("%s: Login = %v, want ErrInvalidCredentials", tc.name, err)
			}
		}
		login() // the first lookup of a slug fills the cache, for tenants that exist or not
		b.c.Flush()
		got := b.measure(login)
		if i == 0 {
			first = got
		} else if got != first {
			t.Errorf("%s cost %+v before its answer, %s %+v", tc.name, got, cases[0].name, first)
		}
		if got.writes != 0 || got.hashes != 1 {
			t.Errorf("%s cost %+v before its answer, want one hash and no write", tc.name, got)
		}
	}
	b.c.Flush()
	// The failures in acme are in its chain, by request id.
	var entries []*store.AuditEntry
	err := b.st.ReadTenant(ctx, b.acme.Tenant().ID, func(tx store.Tx) (err error) {
		entries, err = tx.ListAudit(ctx, 0, 1000)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases[:2] {
		n := 0
		for _, e := range entries {
			if e.RequestID == "req-"+tc.name && e.Action == "auth.login" && e.Outcome == "failure" {
				n++
				if len(e.Actor) < len(tc.actor) || e.Actor[:len(tc.actor)] != tc.actor {
					t.Errorf("%s: audit actor = %q, want %q…", tc.name, e.Actor, tc.actor)
				}
			}
		}
		if n != 2 {
			t.Errorf("%s: %d failure entries in the chain, want 2 (one per attempt)", tc.name, n)
		}
	}
}

// TestScopeUnknownTenantCached: with any valid credential, addressing a
// tenant that does not exist costs what addressing another tenant that
// exists costs, once cached: nothing.
func TestScopeUnknownTenantCached(t *testing.T) {
	t.Parallel()
	b := setupOracle(t)
	ctx := context.Background()
	if _, err := b.ctl.CreateTenant(ctx, CreateTenantParams{Slug: "globex", Name: "Globex"}, nil); err != nil {
		t.Fatal(err)
	}
	p := &tenant.Principal{Kind: tenant.ActorAPIKey, Tenant: b.acme.Tenant().ID, ActorID: "k", Role: tenant.Admin}
	for _, slug := range []tenant.Slug{"globex", "ghost"} {
		scope := func() {
			if _, err := b.c.Scope(ctx, p, slug, "test"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Scope(%s) = %v, want ErrNotFound", slug, err)
			}
		}
		scope()
		if got := b.measure(scope); got != (work{}) {
			t.Errorf("Scope(%s) again cost %+v, want nothing (cached)", slug, got)
		}
	}
	// Creating the tenant through this node ends the cached absence at once.
	if _, err := b.ctl.CreateTenant(ctx, CreateTenantParams{Slug: "ghost", Name: "Ghost"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.c.Scope(ctx, b.admin, "ghost", "test"); err != nil {
		t.Errorf("Scope(ghost) after its creation = %v", err)
	}
}

// TestUnknownAPIKeyCached: a well-formed API key that does not exist costs
// a lookup once, and then nothing, like a key that does.
func TestUnknownAPIKeyCached(t *testing.T) {
	t.Parallel()
	b := setupOracle(t)
	ctx := context.Background()
	real, err := b.acme.CreateAPIKey(ctx, CreateAPIKeyParams{Name: "k", Role: tenant.Viewer})
	if err != nil {
		t.Fatal(err)
	}
	_, forged, err := auth.NewAPIKey("live", b.acme.Tenant().ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, key string
		ok        bool
	}{{"Real", real.Key, true}, {"Unknown", forged, false}} {
		authenticate := func() {
			_, err := b.c.Authenticate(ctx, tc.key)
			if (err == nil) != tc.ok {
				t.Errorf("%s: Authenticate = %v", tc.name, err)
			}
		}
		authenticate()
		if got := b.measure(authenticate); got != (work{}) {
			t.Errorf("%s: Authenticate again cost %+v, want nothing (cached)", tc.name, got)
		}
	}
}
