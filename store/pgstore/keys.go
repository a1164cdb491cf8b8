package pgstore

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// keySchema holds the key functions, which compute a data key's sort key
// (see the migration that creates them), and nothing else. Every role may
// use them: they read only their arguments.
const keySchema = "bulkhead_keys"

// keyFunctions are the key functions, with their arguments.
var keyFunctions = []string{"rank(jsonb, text)", "num(jsonb, text)", "txt(jsonb, text)"}

// LeakproofSQL declares the key functions LEAKPROOF: they raise no error
// and have no side effect, whatever their arguments. A superuser runs it
// once, after the Migrate that creates the functions (Migrate, which runs
// as the owner role, cannot: PostgreSQL lets only a superuser declare a
// function leakproof). Until then, because every tenant table has forced
// row-level security, PostgreSQL does not use a declared index to find the
// records a filter selects, only to list records in its order; results
// are the same either way. Open logs a warning while the functions are not
// leakproof. Running it again changes nothing.
var LeakproofSQL = func() string {
	var b strings.Builder
	for _, f := range keyFunctions {
		b.WriteString("ALTER FUNCTION " + keySchema + "." + f + " LEAKPROOF;\n")
	}
	return b.String()
}()

// sqlKeysLeakproof reports whether every key function is leakproof.
const sqlKeysLeakproof = `SELECT coalesce(bool_and(p.proleakproof), false) FROM pg_proc p
	JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'bulkhead_keys'`

// keysLeakproof reports whether the key functions are leakproof.
func keysLeakproof(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	var ok bool
	err := pool.QueryRow(ctx, sqlKeysLeakproof).Scan(&ok)
	return ok, wrap(err, "pgstore: read the key functions")
}

// KeysLeakproof reports whether the key functions of the database at url
// are declared leakproof (see LeakproofSQL).
func KeysLeakproof(ctx context.Context, url string) (bool, error) {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return false, wrap(err, "pgstore: connect")
	}
	defer pool.Close()
	return keysLeakproof(ctx, pool)
}
