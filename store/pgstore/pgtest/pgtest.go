// Package pgtest gives tests a PostgreSQL database of their own, with an
// owner role and an application role made as pgstore's one-time setup says,
// dropped with everything in it when the test ends. Tests read the URL of a
// superuser connection from BULKHEAD_TEST_POSTGRES_URL and skip without it.
// It does not migrate: call pgstore.Migrate with OwnerURL.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable holding a superuser URL of the
// PostgreSQL server tests run against.
const EnvURL = "BULKHEAD_TEST_POSTGRES_URL"

// SuperURL returns the superuser URL, or skips t without one.
func SuperURL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(EnvURL)
	if u == "" {
		t.Skip(EnvURL + " is not set; skipping PostgreSQL tests")
	}
	return u
}

// Database is a database of its own with an owner and an application role
// of its own. Roles are cluster-wide, so their names carry the database's
// random suffix.
type Database struct {
	// Name, Owner and App name the database and its roles.
	Name, Owner, App string
	// Password is the password of both roles.
	Password string
	// Super is the superuser URL the database was made with.
	Super string

	extraRoles []string
}

// New creates a database and its roles. They are dropped, with the silo
// roles the application role was given, when owner ends (a parent test,
// when subtests share the database); failures are reported to t.
func New(t, owner testing.TB) *Database {
	t.Helper()
	suffix := randomHex(6)
	d := &Database{
		Name:     "bulkhead_test_" + suffix,
		Owner:    "bh_test_" + suffix + "_owner",
		App:      "bh_test_" + suffix + "_app",
		Password: randomHex(16),
		Super:    SuperURL(t),
	}
	Exec(t, d.Super,
		"CREATE ROLE "+ident(d.Owner)+" LOGIN PASSWORD '"+d.Password+"' NOSUPERUSER NOBYPASSRLS CREATEROLE NOCREATEDB",
		"CREATE ROLE "+ident(d.App)+" LOGIN PASSWORD '"+d.Password+"' NOSUPERUSER NOBYPASSRLS NOCREATEROLE NOCREATEDB NOINHERIT",
		"CREATE DATABASE "+ident(d.Name)+" OWNER "+ident(d.Owner),
		"REVOKE ALL ON DATABASE "+ident(d.Name)+" FROM PUBLIC",
		"GRANT CONNECT ON DATABASE "+ident(d.Name)+" TO "+ident(d.App),
	)
	owner.Cleanup(func() { d.drop(owner) })
	Exec(t, d.URL(t, ""), "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
	return d
}

// Role creates another role of d's with attrs, dropped with d, and returns
// its name.
func (d *Database) Role(t testing.TB, name, attrs string) string {
	t.Helper()
	r := strings.TrimSuffix(d.Owner, "_owner") + "_" + name
	Exec(t, d.Super, "CREATE ROLE "+ident(r)+" PASSWORD '"+d.Password+"' "+attrs)
	d.extraRoles = append(d.extraRoles, r)
	return r
}

// URL returns the URL of the database for role; "" means the superuser.
func (d *Database) URL(t testing.TB, role string) string {
	t.Helper()
	u, err := url.Parse(d.Super)
	if err != nil {
		t.Fatalf("parse %s: %v", EnvURL, err)
	}
	if role != "" {
		u.User = url.UserPassword(role, d.Password)
	}
	u.Path = "/" + d.Name
	return u.String()
}

// OwnerURL is the owner role's URL: for pgstore.Migrate and provisioning.
func (d *Database) OwnerURL(t testing.TB) string { return d.URL(t, d.Owner) }

// AppURL is the application role's URL: for pgstore.Open.
func (d *Database) AppURL(t testing.TB) string { return d.URL(t, d.App) }

// drop removes the database, the silo roles made in it, and its roles.
func (d *Database) drop(t testing.TB) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := pgx.Connect(ctx, d.Super)
	if err != nil {
		t.Errorf("drop test database: %v", err)
		return
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+ident(d.Name)+" WITH (FORCE)"); err != nil {
		t.Errorf("drop test database: %v", err)
	}
	// Silo roles are the roles the application role is a member of.
	rows, _ := c.Query(ctx, `SELECT r.rolname FROM pg_auth_members m
		JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles a ON a.oid = m.member
		WHERE a.rolname = $1 AND r.rolname LIKE 'bulkhead\_t\_%'`, d.App)
	roles, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Errorf("list silo roles: %v", err)
	}
	for _, r := range slices.Concat(roles, d.extraRoles, []string{d.App, d.Owner}) {
		if _, err := c.Exec(ctx, "DROP ROLE IF EXISTS "+ident(r)); err != nil {
			t.Errorf("drop role %s: %v", r, err)
		}
	}
}

// Exec runs statements on the database of url, failing t on an error.
func Exec(t testing.TB, url string, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer c.Close(ctx)
	for _, s := range stmts {
		if _, err := c.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func ident(name string) string { return pgx.Identifier{name}.Sanitize() }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
