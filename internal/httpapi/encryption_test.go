package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/store/pgstore/pgtest"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// marker returns a plaintext that appears nowhere unless written.
func marker(t *testing.T) string {
	t.Helper()
	var b [8]byte
	rand.Read(b[:])
	return "MARKER" + hex.EncodeToString(b[:])
}

var encPeopleSchema = map[string]any{
	"type":     "object",
	"required": []any{"name"},
	"properties": map[string]any{
		"name": map[string]any{"type": "string"},
		"ssn":  map[string]any{"type": "string", "minLength": 3},
		"pin":  map[string]any{"type": "number"},
	},
}

// putPeople declares the people collection with ssn and pin encrypted.
func (b *testBundle) putPeople(slug, key string) {
	b.t.Helper()
	b.must(200, "PUT", tpath(slug, "collections", "people"), key, map[string]any{
		"schema": encPeopleSchema, "encrypted_fields": []any{"ssn", "pin"},
		"indexes": []any{map[string]any{"fields": []any{"name"}}},
	})
}

// rawRecord reads the stored data of a pooled tenant's record straight
// from the database, as an attacker with a copy would.
func (b *testBundle) rawRecord(id string) map[string]any {
	b.t.Helper()
	var data string
	if postgresBackend() {
		c := b.superConn()
		if err := c.QueryRow(context.Background(), `SELECT data FROM bulkhead.records WHERE id = $1`, id).Scan(&data); err != nil {
			b.t.Fatalf("read record %s: %v", id, err)
		}
	} else if err := b.tenantDB("", tenant.Pooled).QueryRow(`SELECT data FROM records WHERE id = ?`, id).Scan(&data); err != nil {
		b.t.Fatalf("read record %s: %v", id, err)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(data), &doc); err != nil {
		b.t.Fatal(err)
	}
	return doc
}

// setRawRecord overwrites a pooled tenant's stored record data.
func (b *testBundle) setRawRecord(id string, doc map[string]any) {
	b.t.Helper()
	data, _ := json.Marshal(doc)
	if postgresBackend() {
		c := b.superConn()
		if _, err := c.Exec(context.Background(), `UPDATE bulkhead.records SET data = $1 WHERE id = $2`, string(data), id); err != nil {
			b.t.Fatalf("write record %s: %v", id, err)
		}
		return
	}
	execRows(b.t, b.tenantDB("", tenant.Pooled), 1, `UPDATE records SET data = ? WHERE id = ?`, string(data), id)
}

// superConn connects to the test's PostgreSQL database as a superuser,
// which row-level security does not bind: it reads every tenant's rows.
func (b *testBundle) superConn() *pgx.Conn {
	b.t.Helper()
	if c, ok := superConns.Load(b.dir); ok {
		return c.(*pgx.Conn)
	}
	v, ok := pgDatabases.Load(b.dir)
	if !ok {
		b.t.Fatal("no PostgreSQL database for this bundle")
	}
	c, err := pgx.Connect(context.Background(), v.(*pgtest.Database).URL(b.t, ""))
	if err != nil {
		b.t.Fatal(err)
	}
	superConns.Store(b.dir, c)
	b.t.Cleanup(func() { superConns.Delete(b.dir); c.Close(context.Background()) })
	return c
}

// superConns holds one superuser connection per bundle directory; a
// bundle's test uses it from one goroutine.
var superConns sync.Map

// assertNowhere fails if plaintext appears in any byte the database keeps:
// SQLite: the main file, its WAL and every silo file (raw bytes);
// PostgreSQL: every row of every table of the database, as text (bytea in
// hex), which covers records, idempotency and audit tables.
func (b *testBundle) assertNowhere(plaintext string) {
	b.t.Helper()
	needles := [][]byte{[]byte(plaintext), []byte(hex.EncodeToString([]byte(plaintext)))}
	if postgresBackend() {
		c := b.superConn()
		rows, err := c.Query(context.Background(), `SELECT quote_ident(table_schema) || '.' || quote_ident(table_name)
			FROM information_schema.tables WHERE table_type = 'BASE TABLE' AND table_schema NOT IN ('pg_catalog', 'information_schema')`)
		if err != nil {
			b.t.Fatal(err)
		}
		tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			b.t.Fatal(err)
		}
		seen := 0
		for _, tbl := range tables {
			rows, err := c.Query(context.Background(), `SELECT t::text FROM `+tbl+` t`)
			if err != nil {
				b.t.Fatalf("%s: %v", tbl, err)
			}
			texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				b.t.Fatalf("%s: %v", tbl, err)
			}
			for _, txt := range texts {
				seen++
				for _, n := range needles {
					if bytes.Contains([]byte(txt), n) {
						b.t.Errorf("the plaintext is stored in table %s: %s", tbl, txt)
					}
				}
			}
		}
		if seen < 10 {
			b.t.Fatalf("read only %d rows: the scan looked in the wrong place", seen)
		}
		return
	}
	files, _ := filepath.Glob(filepath.Join(b.dir, "*.db*"))
	silos, _ := filepath.Glob(filepath.Join(b.dir, "tenants", "*.db*"))
	files = append(files, silos...)
	if len(files) < 2 {
		b.t.Fatalf("found only %v: the scan looked in the wrong place", files)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			b.t.Fatal(err)
		}
		for _, n := range needles {
			if bytes.Contains(raw, n) {
				b.t.Errorf("the plaintext is in %s", filepath.Base(f))
			}
		}
	}
}

func TestEncryptedFields(t *testing.T) {
	for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		t.Run(string(iso), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.tenant("acme", iso)
			key := b.apiKey("acme", tenant.Admin)
			b.putPeople("acme", key)
			secret, secret2, pinSecret := marker(t), marker(t), 4711.25

			// Create, with an Idempotency-Key: the answer is in clear.
			body := map[string]any{"name": "ada", "ssn": secret, "pin": pinSecret}
			var rec record
			b.must(201, "POST", tpath("acme", "collections", "people", "records"), key, body, "Idempotency-Key", "idem-1").JSON(t, &rec)
			if rec.Data["ssn"] != secret || rec.Data["pin"] != pinSecret {
				t.Fatalf("created record data = %v, want the plaintext", rec.Data)
			}
			// The replay answers the same, from the sealed stored response.
			var again record
			r := b.must(201, "POST", tpath("acme", "collections", "people", "records"), key, body, "Idempotency-Key", "idem-1")
			r.JSON(t, &again)
			if again.ID != rec.ID || again.Data["ssn"] != secret || r.Header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("replay = %s (replayed %q), want the first answer", r.Body, r.Header.Get("Idempotent-Replayed"))
			}
			other := b.createRecord("acme", key, "people", map[string]any{"name": "bob", "ssn": "other-ssn"})
			nullish := b.createRecord("acme", key, "people", map[string]any{"name": "cy"})

			// Reads decrypt.
			var got record
			b.must(200, "GET", tpath("acme", "collections", "people", "records", rec.ID), key, nil).JSON(t, &got)
			if got.Data["ssn"] != secret || got.Data["pin"] != pinSecret || got.Data["name"] != "ada" {
				t.Fatalf("GET data = %v", got.Data)
			}
			if _, ok := got.Data["$enc"]; ok {
				t.Fatalf("GET shows the sealed values: %v", got.Data)
			}
			// Schema validation applies to the plaintext: ssn must be a
			// string of at least 3 characters.
			b.mustProblem(422, problem.CodeSchemaViolation, "POST", tpath("acme", "collections", "people", "records"), key,
				map[string]any{"name": "x", "ssn": "no"})
			b.mustProblem(422, problem.CodeSchemaViolation, "POST", tpath("acme", "collections", "people", "records"), key,
				map[string]any{"name": "x", "ssn": 12345})
			// The reserved key is refused.
			b.mustProblem(400, problem.CodeInvalidRequest, "POST", tpath("acme", "collections", "people", "records"), key,
				map[string]any{"name": "x", "$enc": map[string]any{"ssn": "x"}})

			// Equality filters find records through the blind index.
			ids := func(q url.Values) []string {
				var out []string
				for _, r := range b.listRecords("acme", key, "people", q).Items {
					out = append(out, r.ID)
					if ssn := r.Data["ssn"]; ssn != nil && ssn != secret && ssn != secret2 && ssn != "other-ssn" {
						t.Errorf("listed ssn = %v, want plaintext", r.Data["ssn"])
					}
				}
				return out
			}
			for _, tc := range []struct {
				filter string
				want   []string
			}{
				{`ssn = "` + secret + `"`, []string{rec.ID}},
				{`ssn = "` + secret + `" && name = "ada"`, []string{rec.ID}},
				{`ssn != "` + secret + `"`, []string{other.ID, nullish.ID}},
				{`ssn = "nobody"`, nil},
				{`pin = 4711.25`, []string{rec.ID}},
				{`pin = 4711.250`, []string{rec.ID}},
				{`pin = "4711.25"`, nil}, // types stay strict
				{`ssn = null`, []string{nullish.ID}},
				{`ssn = "other-ssn" || ssn = "` + secret + `"`, []string{rec.ID, other.ID}},
			} {
				got := ids(url.Values{"filter": {tc.filter}, "order": {"name"}})
				if strings.Join(got, ",") != strings.Join(tc.want, ",") {
					t.Errorf("filter %s = %v, want %v", tc.filter, got, tc.want)
				}
			}
			// What needs the value in clear is refused with a stable code.
			for _, q := range []url.Values{
				{"filter": {`ssn > "a"`}}, {"filter": {`name = "ada" && ssn ~ "MARK"`}}, {"filter": {`ssn ^= "MARK"`}},
				{"filter": {`pin >= 1`}}, {"order": {"ssn"}}, {"order": {"-pin"}},
			} {
				p := b.mustProblem(400, problem.CodeEncryptedField, "GET", tpath("acme", "collections", "people", "records")+"?"+q.Encode(), key, nil)
				if q.Get("filter") != "" && p.Position == nil {
					t.Errorf("%v: no position in %+v", q, p)
				}
			}
			b.mustProblem(400, problem.CodeEncryptedField, "PUT", tpath("acme", "collections", "people"), key, map[string]any{
				"schema": encPeopleSchema, "encrypted_fields": []any{"ssn", "pin"}, "indexes": []any{map[string]any{"fields": []any{"-ssn"}}}})
			b.mustProblem(409, problem.CodeConflict, "PUT", tpath("acme", "collections", "people"), key, map[string]any{
				"schema": encPeopleSchema, "encrypted_fields": []any{"ssn"}})
			b.mustProblem(400, problem.CodeUnknownField, "PUT", tpath("acme", "collections", "strict"), key, map[string]any{
				"schema": encPeopleSchema, "encrypted_fields": []any{"nope"}})
			// Declaring the same fields again (in another order) keeps them.
			b.must(200, "PUT", tpath("acme", "collections", "people"), key, map[string]any{
				"schema": encPeopleSchema, "encrypted_fields": []any{"pin", "ssn"}, "indexes": []any{map[string]any{"fields": []any{"name"}}}})

			// PATCH merges with the plaintext and seals again.
			var patched record
			b.must(200, "PATCH", tpath("acme", "collections", "people", "records", rec.ID), key, map[string]any{"name": "ada l"}).JSON(t, &patched)
			if patched.Data["ssn"] != secret || patched.Data["name"] != "ada l" {
				t.Fatalf("PATCH answer = %v", patched.Data)
			}
			b.must(200, "PATCH", tpath("acme", "collections", "people", "records", other.ID), key, map[string]any{"ssn": secret2})
			if got := ids(url.Values{"filter": {`ssn = "` + secret2 + `"`}}); len(got) != 1 || got[0] != other.ID {
				t.Errorf("filter on the patched value = %v, want [%s]", got, other.ID)
			}

			// Audit entries name records, never values.
			for _, e := range b.auditLog("acme", key) {
				if strings.Contains(e.Resource+e.Action+e.Actor, "MARKER") {
					t.Errorf("audit entry %+v holds a value", e)
				}
			}
			b.assertNowhere(secret)
			b.assertNowhere(secret2)
			b.assertNowhere(strconv.FormatFloat(pinSecret, 'f', -1, 64))
		})
	}
}

// TestEncryptedValueCopied: a sealed value copied into another record,
// another field or another tenant's record does not open there; the read
// fails instead of answering anything.
func TestEncryptedValueCopied(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b := setupCore(t, t.TempDir(), func(c *core.Config) { c.Logger = logger }, func(c *Config) { c.Logger = logger })
	b.tenant("acme", tenant.Pooled)
	b.tenant("globex", tenant.Pooled)
	key, gkey := b.apiKey("acme", tenant.Admin), b.apiKey("globex", tenant.Admin)
	b.putPeople("acme", key)
	b.putPeople("globex", gkey)
	secret := marker(t)
	a := b.createRecord("acme", key, "people", map[string]any{"name": "a", "ssn": secret, "pin": 1})
	victim := b.createRecord("acme", key, "people", map[string]any{"name": "v", "ssn": "victim", "pin": 2})
	foreign := b.createRecord("globex", gkey, "people", map[string]any{"name": "f", "ssn": "foreign", "pin": 3})
	sealedSSN := b.rawRecord(a.ID)["$enc"].(map[string]any)["ssn"]

	for _, tc := range []struct {
		name, id, field, slug, key string
	}{
		{"OtherRecord", victim.ID, "ssn", "acme", key},
		{"OtherField", a.ID, "pin", "acme", key},
		{"OtherTenant", foreign.ID, "ssn", "globex", gkey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := b.withT(t)
			orig := b.rawRecord(tc.id)
			doc := b.rawRecord(tc.id)
			doc["$enc"].(map[string]any)[tc.field] = sealedSSN
			b.setRawRecord(tc.id, doc)
			defer b.setRawRecord(tc.id, orig)
			r := b.do("GET", tpath(tc.slug, "collections", "people", "records", tc.id), tc.key, nil)
			if r.Status != 500 || bytes.Contains(r.Body, []byte(secret)) {
				t.Fatalf("GET of a record holding a copied sealed value = %d %s, want 500 without the value", r.Status, r.Body)
			}
			r = b.do("GET", tpath(tc.slug, "collections", "people", "records"), tc.key, nil)
			if r.Status != 500 || bytes.Contains(r.Body, []byte(secret)) {
				t.Fatalf("list with a copied sealed value = %d %s, want 500 without the value", r.Status, r.Body)
			}
		})
	}
	// The failures were logged, without the value; so were the requests
	// (a filter holding the value included).
	b.listRecords("acme", key, "people", url.Values{"filter": {`ssn = "` + secret + `"`}})
	if !strings.Contains(logs.String(), "does not open") {
		t.Fatalf("the failed reads were not logged: %s", logs.String())
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatalf("the logs hold the plaintext: %s", logs.String())
	}
	// Restored, everything opens again.
	var got record
	b.must(200, "GET", tpath("acme", "collections", "people", "records", victim.ID), key, nil).JSON(t, &got)
	if got.Data["ssn"] != "victim" {
		t.Fatalf("restored record = %v", got.Data)
	}
}

// TestKEKCorruptBetweenStarts corrupts the platform KEK file between two
// starts of the server on the same database and keys: encrypted
// operations then answer 503 keys_unavailable with Retry-After, never
// anything in clear, while collections without encrypted fields and other
// work go on; restoring the file brings everything back.
func TestKEKCorruptBetweenStarts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := setupIn(t, dir)
	b.tenant("acme", tenant.Pooled)
	key := b.apiKey("acme", tenant.Admin)
	b.putPeople("acme", key)
	b.collection("acme", key, "notes", nil)
	secret := marker(t)
	rec := b.createRecord("acme", key, "people", map[string]any{"name": "ada", "ssn": secret})
	note := b.createRecord("acme", key, "notes", map[string]any{"a": 1})
	b.srv.Close()
	b.core.Close()
	b.store.Close()

	kekPath := filepath.Join(dir, "keys", "kek.key")
	good, err := os.ReadFile(kekPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		corrupt func()
	}{
		{"Garbled", func() { os.WriteFile(kekPath, []byte("1 garbage!\n"), 0o600) }},
		{"OtherKey", func() {
			os.WriteFile(kekPath, []byte("1 "+base64.StdEncoding.EncodeToString(keyring.NewKey())+"\n"), 0o600)
		}},
		{"Deleted", func() { os.Remove(kekPath) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.corrupt()
			b := setupIn(t, dir)
			for _, rq := range []struct{ method, path string }{
				{"GET", tpath("acme", "collections", "people", "records", rec.ID)},
				{"GET", tpath("acme", "collections", "people", "records")},
				{"POST", tpath("acme", "collections", "people", "records")},
				{"PATCH", tpath("acme", "collections", "people", "records", rec.ID)},
			} {
				var body any
				if rq.method != "GET" {
					body = map[string]any{"name": "x", "ssn": "new-value"}
				}
				r := b.do(rq.method, rq.path, key, body)
				assertProblem(t, r, 503, problem.CodeKeysUnavailable)
				if r.Header.Get("Retry-After") == "" {
					t.Errorf("%s %s: no Retry-After", rq.method, rq.path)
				}
				if bytes.Contains(r.Body, []byte(secret)) || bytes.Contains(r.Body, []byte("bi:")) {
					t.Errorf("%s %s answered %s", rq.method, rq.path, r.Body)
				}
			}
			// The rest works: plain collections, new tenants.
			b.must(200, "GET", tpath("acme", "collections", "notes", "records", note.ID), key, nil)
			b.createRecord("acme", key, "notes", map[string]any{"a": 2})
			b.must(200, "GET", tpath("acme", "collections"), key, nil)
			b.tenant("other-"+strings.ToLower(tc.name), tenant.Pooled)
			if _, err := os.Stat(kekPath); tc.name == "Deleted" && err == nil {
				t.Fatal("a new KEK was created while wrapped keys exist")
			}
			b.srv.Close()
			b.core.Close()
			b.store.Close()
			os.WriteFile(kekPath, good, 0o600)
		})
	}
	// With the KEK back, the record opens as before.
	b = setupIn(t, dir)
	var got record
	b.must(200, "GET", tpath("acme", "collections", "people", "records", rec.ID), key, nil).JSON(t, &got)
	if got.Data["ssn"] != secret {
		t.Fatalf("after restoring the KEK, ssn = %v", got.Data["ssn"])
	}
}

// copiedKeys is what a copy of the database holds of one tenant: its
// wrapped data keys and one stored record.
type copiedKeys struct {
	wrapped map[int][]byte // data key version -> wrapped key
	record  map[string]any
}

// copyTenant reads a pooled tenant's wrapped data keys and one record out
// of the database as a backup would hold them: SQLite by VACUUM INTO a new
// file, then reading that file; PostgreSQL by reading the rows out.
func (b *testBundle) copyTenant(tid tenant.ID, recordID string) copiedKeys {
	b.t.Helper()
	out := copiedKeys{wrapped: map[int][]byte{}}
	var data string
	scan := func(purpose string, version int, wrapped []byte) {
		if purpose == "data" && wrapped != nil {
			out.wrapped[version] = wrapped
		}
	}
	if postgresBackend() {
		c := b.superConn()
		rows, err := c.Query(context.Background(), `SELECT purpose, version, wrapped FROM bulkhead.data_keys WHERE tenant_id = $1`, string(tid))
		if err != nil {
			b.t.Fatal(err)
		}
		for rows.Next() {
			var p string
			var v int32
			var w []byte
			if err := rows.Scan(&p, &v, &w); err != nil {
				b.t.Fatal(err)
			}
			scan(p, int(v), w)
		}
		rows.Close()
		if err := c.QueryRow(context.Background(), `SELECT data FROM bulkhead.records WHERE id = $1`, recordID).Scan(&data); err != nil {
			b.t.Fatal(err)
		}
	} else {
		copyPath := filepath.Join(b.t.TempDir(), "backup.db")
		if _, err := b.tenantDB("", tenant.Pooled).Exec(`VACUUM INTO ?`, copyPath); err != nil {
			b.t.Fatalf("VACUUM INTO: %v", err)
		}
		db, err := sql.Open("sqlite", "file:"+copyPath+"?mode=ro")
		if err != nil {
			b.t.Fatal(err)
		}
		defer db.Close()
		rows, err := db.Query(`SELECT purpose, version, wrapped FROM data_keys WHERE tenant_id = ?`, string(tid))
		if err != nil {
			b.t.Fatal(err)
		}
		for rows.Next() {
			var p string
			var v int
			var w []byte
			if err := rows.Scan(&p, &v, &w); err != nil {
				b.t.Fatal(err)
			}
			scan(p, v, w)
		}
		rows.Close()
		if err := db.QueryRow(`SELECT data FROM records WHERE id = ?`, recordID).Scan(&data); err != nil {
			b.t.Fatal(err)
		}
	}
	if len(out.wrapped) == 0 {
		b.t.Fatal("the copy holds no wrapped data key")
	}
	if err := json.Unmarshal([]byte(data), &out.record); err != nil {
		b.t.Fatal(err)
	}
	return out
}

// openCopied opens, with kms, the sealed field of a copied record as
// someone holding the copy and the key directory would: unwrap the data
// key the value names, then open the value. The formats are those of
// docs/records.md.
func openCopied(kms keyring.KMS, tid tenant.ID, cp copiedKeys, col, id, field string) (string, error) {
	sealedB64, _ := cp.record["$enc"].(map[string]any)[field].(string)
	sealed, err := base64.StdEncoding.DecodeString(sealedB64)
	if err != nil || len(sealed) < 5 || sealed[0] != 1 {
		return "", errors.New("no sealed value")
	}
	version := int(binary.BigEndian.Uint32(sealed[1:5]))
	aad := []byte("bulkhead data key\x00" + string(tid) + "\x00data\x00" + strconv.Itoa(version))
	dek, err := kms.Unwrap(context.Background(), tid, cp.wrapped[version], aad)
	if err != nil {
		return "", err
	}
	fieldAAD := append(append([]byte(nil), sealed[:5]...), "bulkhead record field\x00"+string(tid)+"\x00"+col+"\x00"+id+"\x00"+field...)
	pt, err := keyring.Open(dek, fieldAAD, sealed[5:])
	if err != nil {
		return "", err
	}
	var s string
	err = json.Unmarshal(pt, &s)
	return s, err
}

// TestCryptoShredding copies the database before a tenant is deleted,
// proves that the copy's encrypted fields open with the key directory,
// deletes the tenant, and proves that the same copy no longer opens: the
// tenant's key in the KMS is gone, and no copy of the database brings it
// back. Another tenant's data is untouched.
func TestCryptoShredding(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := setupIn(t, dir)
	tid := b.tenant("doomed", tenant.Pooled)
	b.tenant("keeper", tenant.Pooled)
	key, kkey := b.apiKey("doomed", tenant.Admin), b.apiKey("keeper", tenant.Admin)
	b.putPeople("doomed", key)
	b.putPeople("keeper", kkey)
	secret := marker(t)
	rec := b.createRecord("doomed", key, "people", map[string]any{"name": "ada", "ssn": secret})
	kept := b.createRecord("keeper", kkey, "people", map[string]any{"name": "bob", "ssn": "kept-secret"})

	backup := b.copyTenant(tid, rec.ID)
	kmsBefore, err := keyring.OpenLocal(keyring.LocalConfig{Dir: filepath.Join(dir, "keys")})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := openCopied(kmsBefore, tid, backup, "people", rec.ID, "ssn"); err != nil || got != secret {
		t.Fatalf("before deletion, the copy opens to %q, %v; want the plaintext (else the test proves nothing)", got, err)
	}

	b.must(202, "DELETE", "/v1/tenants/doomed?grace=0", b.admin, nil)
	// The platform chain records the shredding.
	var audit struct{ Items []auditEntry }
	b.must(200, "GET", "/v1/audit?limit=1000", b.admin, nil).JSON(t, &audit)
	shredded := false
	for _, e := range audit.Items {
		shredded = shredded || e.Action == "tenant.shred" && e.Resource == "tenant:"+string(tid)
	}
	if !shredded {
		t.Errorf("no tenant.shred entry in the platform chain: %+v", audit.Items)
	}

	// The same copy, with the same key directory (a fresh KMS reading it,
	// and the one that was open): nothing opens.
	kmsAfter, err := keyring.OpenLocal(keyring.LocalConfig{Dir: filepath.Join(dir, "keys"), WrappedKeysExist: true})
	if err != nil {
		t.Fatal(err)
	}
	for name, kms := range map[string]keyring.KMS{"fresh": kmsAfter, "open before": kmsBefore} {
		got, err := openCopied(kms, tid, backup, "people", rec.ID, "ssn")
		if err == nil || got == secret {
			t.Fatalf("after deletion, the copy opens with the %s KMS: %q", name, got)
		}
		if !errors.Is(err, keyring.ErrKeyNotFound) {
			t.Errorf("after deletion (%s KMS): %v, want ErrKeyNotFound", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "keys", "tenant-keys", string(tid)+".key")); err == nil {
		t.Error("the tenant's key file still exists")
	}
	// The other tenant reads on.
	var got record
	b.must(200, "GET", tpath("keeper", "collections", "people", "records", kept.ID), kkey, nil).JSON(t, &got)
	if got.Data["ssn"] != "kept-secret" {
		t.Fatalf("the other tenant's record = %v", got.Data)
	}
	b.mustProblem(404, problem.CodeNotFound, "GET", tpath("doomed", "collections", "people", "records", rec.ID), b.admin, nil)
}
