package pgstore

import (
	"math/big"
	"strings"
	"testing"
)

// The tenant migration spells out the bounds beyond which PostgreSQL's
// numeric to float8 conversion fails instead of rounding to ±Inf or 0:
// 2^1024 - 2^970, half an ulp above the largest float64, and 2^-1075, half
// the smallest positive one. Values at or beyond them round to ±Inf and 0
// as IEEE 754 (and SQLite's JSON functions) would.
func TestKeyFunctionBounds(t *testing.T) {
	over := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 1024), new(big.Int).Lsh(big.NewInt(1), 970)).String()
	under := strings.TrimRight(new(big.Rat).SetFrac(big.NewInt(1), new(big.Int).Lsh(big.NewInt(1), 1075)).FloatString(1075), "0")
	b, err := migrationFiles.ReadFile("migrations/00004_key_functions.sql")
	if err != nil {
		t.Fatal(err)
	}
	sql := string(b)
	for _, want := range []string{
		"v::numeric OPERATOR(pg_catalog.>=) " + over + " THEN 'Infinity'::float8",
		"v::numeric OPERATOR(pg_catalog.<=) -" + over + " THEN '-Infinity'::float8",
		"pg_catalog.abs(v::numeric) OPERATOR(pg_catalog.<=) " + under + " THEN 0::float8",
	} {
		if !strings.Contains(sql, want) {
			t.Errorf("bulkhead_keys.num lacks %.60s…", want)
		}
	}
	for _, f := range keyFunctions {
		if !strings.Contains(sql, "CREATE FUNCTION "+keySchema+"."+strings.ReplaceAll(f, "(jsonb, text)", "(d jsonb, k text)")) {
			t.Errorf("the migration does not create %s", f)
		}
	}
}
