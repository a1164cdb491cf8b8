package httpapi

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/tenant"
)

type indexBody struct {
	Name   string   `json:"name"`
	Fields []string `json:"fields"`
	Unique bool     `json:"unique"`
	State  string   `json:"state"`
	Error  string   `json:"error"`
}

type collectionWithIndexes struct {
	Name    string      `json:"name"`
	Indexes []indexBody `json:"indexes"`
}

// peopleSchema lists its fields, so filters and indexes on others are typos.
var peopleSchema = map[string]any{
	"type": "object",
	"properties": map[string]any{
		"email": map[string]any{"type": []string{"string", "null"}},
		"owner": map[string]any{"type": "string"},
		"n":     map[string]any{"type": "integer"},
	},
}

// awaitIndexes polls the collection until no index is building, and
// returns it. Builds run after the PUT is answered.
func (b *testBundle) awaitIndexes(slug, key, col string) collectionWithIndexes {
	b.t.Helper()
	for range 500 {
		var c collectionWithIndexes
		b.must(200, "GET", tpath(slug, "collections", col), key, nil).JSON(b.t, &c)
		building := false
		for _, ix := range c.Indexes {
			building = building || ix.State == "building"
		}
		if !building {
			return c
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.t.Fatalf("indexes of %s/%s still building", slug, col)
	return collectionWithIndexes{}
}

// TestIndexesEndToEnd declares indexes through the API on a pooled and a
// silo tenant and checks what a client sees: states, uniqueness within the
// tenant's collection only (409 naming the index), and that listings
// through the index answer as before.
func TestIndexesEndToEnd(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	b.tenant("globex", tenant.Silo)
	b.tenant("initech", tenant.Pooled)
	keys := map[string]string{}
	for _, slug := range []string{"acme", "globex", "initech"} {
		keys[slug] = b.apiKey(slug, tenant.Admin)
	}
	decl := map[string]any{"schema": peopleSchema, "indexes": []any{
		map[string]any{"fields": []string{"owner", "-n"}},
		map[string]any{"fields": []string{"email"}, "unique": true},
	}}
	for _, slug := range []string{"acme", "globex", "initech"} {
		var c collectionWithIndexes
		b.must(200, "PUT", tpath(slug, "collections", "people"), keys[slug], decl).JSON(t, &c)
		if len(c.Indexes) != 2 || c.Indexes[0].Name != "owner,-n" || c.Indexes[1].Name != "email" || !c.Indexes[1].Unique {
			t.Fatalf("%s: PUT answered indexes %+v", slug, c.Indexes)
		}
		for _, ix := range c.Indexes {
			if ix.State != "building" && ix.State != "ready" {
				t.Errorf("%s: index %s answered in state %q", slug, ix.Name, ix.State)
			}
		}
		c = b.awaitIndexes(slug, keys[slug], "people")
		for _, ix := range c.Indexes {
			if ix.State != "ready" {
				t.Errorf("%s: index %s = %+v, want ready", slug, ix.Name, ix)
			}
		}
	}

	for _, slug := range []string{"acme", "globex"} {
		t.Run(slug, func(t *testing.T) {
			b := b.withT(t)
			key := keys[slug]
			recPath := tpath(slug, "collections", "people", "records")
			b.must(201, "POST", recPath, key, map[string]any{"email": "ada@example.com", "owner": "ada", "n": 1})
			p := b.mustProblem(409, problem.CodeConflict, "POST", recPath, key, map[string]any{"email": "ada@example.com", "owner": "bob", "n": 2})
			if !strings.Contains(p.Detail, `"email"`) {
				t.Errorf("409 detail %q does not name the index", p.Detail)
			}
			// Records lacking the unique field, or holding null, never conflict.
			b.must(201, "POST", recPath, key, map[string]any{"owner": "ada", "n": 3})
			b.must(201, "POST", recPath, key, map[string]any{"owner": "ada", "n": 4})
			b.must(201, "POST", recPath, key, map[string]any{"email": nil, "owner": "ada", "n": 5})
			// An update into a taken value conflicts too; nothing changed.
			r := b.createRecord(slug, key, "people", map[string]any{"email": "bob@example.com", "owner": "bob", "n": 6})
			b.mustProblem(409, problem.CodeConflict, "PATCH", tpath(slug, "collections", "people", "records", r.ID), key,
				map[string]any{"email": "ada@example.com"})
			var got record
			b.must(200, "GET", tpath(slug, "collections", "people", "records", r.ID), key, nil).JSON(t, &got)
			if got.Version != 1 {
				t.Errorf("refused update changed the record: %+v", got)
			}

			// A listing the index serves answers in the declared order, with a
			// count over all pages.
			q := url.Values{"filter": {`owner = "ada"`}, "order": {"-n"}, "limit": {"2"}, "count": {"true"}}
			pg := b.listRecords(slug, key, "people", q)
			if pg.Total == nil || *pg.Total != 4 || len(pg.Items) != 2 || pg.NextCursor == "" {
				t.Fatalf("list = %d items, total %v, cursor %q; want 2 of 4", len(pg.Items), pg.Total, pg.NextCursor)
			}
			var ns []float64
			all, _ := b.listAllRecords(slug, key, "people", url.Values{"filter": {`owner = "ada"`}, "order": {"-n"}, "limit": {"1"}})
			for _, r := range all {
				ns = append(ns, r.Data["n"].(float64))
			}
			if fmt.Sprint(ns) != "[5 4 3 1]" {
				t.Errorf("ada's n in -n order = %v, want [5 4 3 1]", ns)
			}
			pg = b.listRecords(slug, key, "people", url.Values{"filter": {`owner ^= "b"`}, "count": {"true"}})
			if pg.Total == nil || *pg.Total != 1 || len(pg.Items) != 1 {
				t.Errorf("prefix filter: %d items, total %v; want bob's one", len(pg.Items), pg.Total)
			}
		})
	}

	// The same unique value in another tenant's collection of the same name
	// is no conflict: an index serves one tenant's collection only.
	b.must(201, "POST", tpath("initech", "collections", "people", "records"), keys["initech"],
		map[string]any{"email": "ada@example.com"})
	// Nor in another collection of the same tenant.
	b.collection("acme", keys["acme"], "others", nil)
	b.must(201, "POST", tpath("acme", "collections", "others", "records"), keys["acme"], map[string]any{"email": "ada@example.com"})
}

// TestUniqueIndexOverDuplicatesFails: declaring a unique index over data
// that already repeats its values ends in state failed, saying why, and the
// writes that were accepted stay; declaring it again without unique
// succeeds.
func TestUniqueIndexOverDuplicatesFails(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	key := b.apiKey("acme", tenant.Admin)
	b.collection("acme", key, "people", peopleSchema)
	for range 2 {
		b.createRecord("acme", key, "people", map[string]any{"email": "same@example.com"})
	}
	b.must(200, "PUT", tpath("acme", "collections", "people"), key, map[string]any{"schema": peopleSchema,
		"indexes": []any{map[string]any{"fields": []string{"email"}, "unique": true}}})
	c := b.awaitIndexes("acme", key, "people")
	if len(c.Indexes) != 1 || c.Indexes[0].State != "failed" || c.Indexes[0].Error == "" {
		t.Fatalf("indexes = %+v, want one failed with a reason", c.Indexes)
	}
	b.must(200, "PUT", tpath("acme", "collections", "people"), key, map[string]any{"schema": peopleSchema,
		"indexes": []any{map[string]any{"fields": []string{"email"}}}})
	if c := b.awaitIndexes("acme", key, "people"); len(c.Indexes) != 1 || c.Indexes[0].State != "ready" {
		t.Errorf("non-unique index over the same data = %+v, want ready", c.Indexes)
	}
	if all, _ := b.listAllRecords("acme", key, "people", url.Values{"filter": {`email = "same@example.com"`}}); len(all) != 2 {
		t.Errorf("records = %d, want the 2 written", len(all))
	}
}

// TestUnknownFields: when a collection's schema lists its fields, a filter,
// an order or an index on another field is a 400 unknown_field, not an
// empty page; without a schema (or one that allows other fields) any field
// may be named.
func TestUnknownFields(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	key := b.apiKey("acme", tenant.Admin)
	b.collection("acme", key, "people", peopleSchema)
	b.collection("acme", key, "free", nil)
	b.collection("acme", key, "open", map[string]any{"type": "object", "properties": peopleSchema["properties"], "additionalProperties": true})
	list := func(col string, q url.Values) string {
		return tpath("acme", "collections", col, "records") + "?" + q.Encode()
	}
	runScenarios(t, b, []apiScenario{
		{name: "FilterTypo", method: "GET", path: list("people", url.Values{"filter": {`n > 1 && ownr = "ada"`}}), token: key,
			wantStatus: 400, wantCode: problem.CodeUnknownField, wantContains: []string{`"position":9`, `ownr`}},
		{name: "OrderTypo", method: "GET", path: list("people", url.Values{"order": {"-nn"}}), token: key,
			wantStatus: 400, wantCode: problem.CodeUnknownField},
		{name: "KnownField", method: "GET", path: list("people", url.Values{"filter": {`owner = "ada"`}, "order": {"n"}}), token: key, wantStatus: 200},
		{name: "SystemField", method: "GET", path: list("people", url.Values{"filter": {`id != "x"`}, "order": {"-created_at"}}), token: key, wantStatus: 200},
		{name: "NoSchema", method: "GET", path: list("free", url.Values{"filter": {`anything = 1`}, "order": {"whatever"}}), token: key, wantStatus: 200},
		{name: "OpenSchema", method: "GET", path: list("open", url.Values{"filter": {`extra = 1`}}), token: key, wantStatus: 200},
	})
}

// TestCollectionGetAndDelete: a collection can be read alone and deleted,
// with its records; both are the tenant's only and deletion is audited.
func TestCollectionGetAndDelete(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	b.tenant("globex", tenant.Pooled)
	admin := b.apiKey("acme", tenant.Admin)
	member := b.apiKey("acme", tenant.Member)
	other := b.apiKey("globex", tenant.Admin)
	b.collection("acme", admin, "notes", nil)
	for i := range 3 {
		b.createRecord("acme", admin, "notes", map[string]any{"i": i})
	}
	before := b.usage("acme", admin)
	runScenarios(t, b, []apiScenario{
		{name: "Get", method: "GET", path: tpath("acme", "collections", "notes"), token: member, wantStatus: 200,
			wantContains: []string{`"name":"notes"`, `"indexes":[]`}},
		{name: "GetMissing", method: "GET", path: tpath("acme", "collections", "nope"), token: member, wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "GetOtherTenant", method: "GET", path: tpath("acme", "collections", "notes"), token: other, wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "DeleteOtherTenant", method: "DELETE", path: tpath("acme", "collections", "notes"), token: other, wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "MemberCannotDelete", method: "DELETE", path: tpath("acme", "collections", "notes"), token: member, wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "Delete", method: "DELETE", path: tpath("acme", "collections", "notes"), token: admin, wantStatus: 204},
		{name: "Gone", method: "GET", path: tpath("acme", "collections", "notes"), token: member, wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "RecordsGone", method: "GET", path: tpath("acme", "collections", "notes", "records"), token: member, wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "DeleteAgain", method: "DELETE", path: tpath("acme", "collections", "notes"), token: admin, wantStatus: 404, wantCode: problem.CodeNotFound},
	})
	// The last entry but the 404s' (audited after their answers as
	// access.denied) is the deletion.
	b.core.Flush()
	var last auditEntry
	for _, e := range b.auditLog("acme", admin) {
		if !strings.HasPrefix(e.Action, "access.denied") {
			last = e
		}
	}
	if last.Action != "collection.delete" || last.Resource != "collection:notes" {
		t.Errorf("last audit entry = %+v, want the deletion", last)
	}
	if after := b.usage("acme", admin); after.Records != before.Records-3 {
		t.Errorf("usage records %d → %d, want 3 fewer", before.Records, after.Records)
	}
	// A collection of the same name starts empty.
	b.collection("acme", admin, "notes", nil)
	if all, _ := b.listAllRecords("acme", admin, "notes", nil); len(all) != 0 {
		t.Errorf("recreated collection holds %d records", len(all))
	}
}
