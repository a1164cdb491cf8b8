package pgstore

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bulkheadhq/bulkhead/store/pgstore/pgtest"
)

// testDB is a pgtest.Database with the short names the tests here use.
type testDB struct{ *pgtest.Database }

func superURL(t testing.TB) string { return pgtest.SuperURL(t) }

func (d *testDB) role(t testing.TB, name, attrs string) string { return d.Role(t, name, attrs) }
func (d *testDB) ownerURL(t testing.TB) string                 { return d.OwnerURL(t) }
func (d *testDB) appURL(t testing.TB) string                   { return d.AppURL(t) }
func (d *testDB) adminURL(t testing.TB) string                 { return d.URL(t, "") }

// newTestDB creates a test database and its roles; with migrate it also
// runs Migrate. The database is dropped when owner ends (a parent test,
// when subtests share it).
func newTestDB(t, owner testing.TB, migrate bool) *testDB {
	t.Helper()
	d := &testDB{pgtest.New(t, owner)}
	if migrate {
		if err := Migrate(context.Background(), d.ownerURL(t), d.App); err != nil {
			t.Fatalf("Migrate = %v", err)
		}
		// The superuser's step of the setup.
		superExec(t, d.adminURL(t), LeakproofSQL)
	}
	return d
}

// superExec runs statements as the superuser on the database of url.
func superExec(t testing.TB, url string, stmts ...string) { pgtest.Exec(t, url, stmts...) }

// openStore opens a store on d as its application role, provisioning as
// its owner, closed when t ends.
func openStore(t testing.TB, d *testDB, opts *Options) *Store {
	t.Helper()
	o := Options{MaxConns: 4, ProvisionURL: d.ownerURL(t)}
	if opts != nil {
		o = *opts
		if o.ProvisionURL == "-" {
			o.ProvisionURL = ""
		} else if o.ProvisionURL == "" {
			o.ProvisionURL = d.ownerURL(t)
		}
	}
	s, err := Open(context.Background(), d.appURL(t), &o)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close = %v", err)
		}
	})
	return s
}

// connect opens a raw connection to url, closed when t ends.
func connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// rawPool opens a raw pool of maxConns connections to url, closed when t
// ends.
func rawPool(t testing.TB, url string, maxConns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = maxConns
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}
