package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// noteSchema is the schema of the records tests' collection.
var noteSchema = map[string]any{
	"type":     "object",
	"required": []string{"title"},
	"properties": map[string]any{
		"title": map[string]any{"type": "string", "minLength": 1},
		"stars": map[string]any{"type": "integer", "minimum": 0},
		"meta":  map[string]any{"type": "object"},
	},
}

type collectionBody struct {
	Name      string          `json:"name"`
	Schema    json.RawMessage `json:"schema"`
	CreatedAt string          `json:"created_at"`
	UpdatedAt string          `json:"updated_at"`
}

func TestCollections(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	admin := b.apiKey("acme", tenant.Admin)
	member := b.apiKey("acme", tenant.Member)

	// A local file and a local server that a schema could try to pull in.
	// Each holds a schema that would compile, so a loaded reference would
	// turn the 400 into a 200.
	dir := t.TempDir()
	refFile := filepath.Join(dir, "ref.json")
	if err := os.WriteFile(refFile, []byte(`{"type":"string"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	var fetched atomic.Int64
	ref := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"type":"string"}`))
	}))
	t.Cleanup(ref.Close)

	put := func(name string, body any) (string, string, any) {
		return "PUT", tpath("acme", "collections", name), body
	}
	scenario := func(name string, method, path string, body any, status int, code problem.Code) apiScenario {
		return apiScenario{name: name, method: method, path: path, token: admin, body: body, wantStatus: status, wantCode: code}
	}
	externalRef := func(name, target string) apiScenario {
		m, p, body := put("ext", map[string]any{"schema": map[string]any{
			"type": "object", "properties": map[string]any{"x": map[string]any{"$ref": target}}}})
		sc := scenario(name, m, p, body, 400, problem.CodeInvalidSchema)
		sc.wantNotContains = []string{"root:", "/bin/"}
		return sc
	}
	withSchema := func(s any) map[string]any { return map[string]any{"schema": s} }

	runScenarios(t, b, []apiScenario{
		{name: "PutWithSchema", method: "PUT", path: tpath("acme", "collections", "notes"), token: admin,
			body: withSchema(noteSchema), wantStatus: 200,
			check: func(t *testing.T, r *response) {
				var c collectionBody
				r.JSON(t, &c)
				if c.Name != "notes" || c.CreatedAt == "" || len(c.Schema) == 0 {
					t.Errorf("collection = %+v", c)
				}
				var got map[string]any
				json.Unmarshal(c.Schema, &got)
				if got["type"] != "object" {
					t.Errorf("schema = %s", c.Schema)
				}
			}},
		{name: "PutWithoutSchema", method: "PUT", path: tpath("acme", "collections", "free_form"), token: admin,
			body: map[string]any{}, wantStatus: 200, wantNotContains: []string{`"schema"`}},
		{name: "PutNullSchema", method: "PUT", path: tpath("acme", "collections", "nulls"), token: admin,
			body: map[string]any{"schema": nil}, wantStatus: 200},
		{name: "PutEmptyLists", method: "PUT", path: tpath("acme", "collections", "lists"), token: admin,
			body: map[string]any{"encrypted_fields": []string{}, "indexes": []string{}}, wantStatus: 200},
		{name: "ReplaceSchema", method: "PUT", path: tpath("acme", "collections", "free_form"), token: admin,
			body: withSchema(map[string]any{"type": "object"}), wantStatus: 200, wantContains: []string{`"schema":{"type":"object"}`}},
		scenario("BadSchemaType", "PUT", tpath("acme", "collections", "bad"), withSchema(map[string]any{"type": "banana"}), 400, problem.CodeInvalidSchema),
		scenario("BadSchemaMinimum", "PUT", tpath("acme", "collections", "bad"), withSchema(map[string]any{"minimum": "ten"}), 400, problem.CodeInvalidSchema),
		scenario("SchemaNotObject", "PUT", tpath("acme", "collections", "bad"), withSchema(42), 400, problem.CodeInvalidSchema),
		scenario("BadPattern", "PUT", tpath("acme", "collections", "bad"), withSchema(map[string]any{"pattern": "("}), 400, problem.CodeInvalidSchema),
		scenario("SchemaTooBig", "PUT", tpath("acme", "collections", "bad"),
			withSchema(map[string]any{"description": strings.Repeat("d", 70<<10)}), 400, problem.CodeInvalidSchema),
		externalRef("RefFile", "file://"+refFile),
		externalRef("RefEtcPasswd", "file:///etc/passwd"),
		externalRef("RefHTTP", ref.URL+"/schema.json"),
		externalRef("RefHTTPAnchor", ref.URL+"/schema.json#/definitions/x"),
		{name: "MetaSchemaRemote", method: "PUT", path: tpath("acme", "collections", "ext"), token: admin,
			body:       withSchema(map[string]any{"$schema": ref.URL + "/meta", "type": "object"}),
			wantStatus: 400, wantCode: problem.CodeInvalidSchema},
		{name: "IDRemote", method: "PUT", path: tpath("acme", "collections", "ext"), token: admin,
			body: withSchema(map[string]any{"$id": ref.URL + "/root.json", "type": "object",
				"properties": map[string]any{"x": map[string]any{"$ref": "other.json"}}}),
			wantStatus: 400, wantCode: problem.CodeInvalidSchema},
		{name: "LocalRefAllowed", method: "PUT", path: tpath("acme", "collections", "local_ref"), token: admin,
			body: withSchema(map[string]any{"$defs": map[string]any{"s": map[string]any{"type": "string"}},
				"type": "object", "properties": map[string]any{"x": map[string]any{"$ref": "#/$defs/s"}}}),
			wantStatus: 200},
		scenario("EncryptedFieldsBadName", "PUT", tpath("acme", "collections", "enc"), map[string]any{"encrypted_fields": []string{"9ssn"}}, 400, problem.CodeInvalidRequest),
		scenario("EncryptedFieldIndexed", "PUT", tpath("acme", "collections", "enc"), map[string]any{"encrypted_fields": []string{"ssn"},
			"indexes": []any{map[string]any{"fields": []string{"ssn"}}}}, 400, problem.CodeEncryptedField),
		scenario("IndexNotAnObject", "PUT", tpath("acme", "collections", "idx"), map[string]any{"indexes": []string{"title"}}, 400, problem.CodeInvalidRequest),
		scenario("IndexNoFields", "PUT", tpath("acme", "collections", "idx"), map[string]any{"indexes": []any{map[string]any{"fields": []string{}}}}, 400, problem.CodeInvalidRequest),
		scenario("IndexTooManyFields", "PUT", tpath("acme", "collections", "idx"),
			map[string]any{"indexes": []any{map[string]any{"fields": []string{"a", "b", "c", "d", "e"}}}}, 400, problem.CodeInvalidRequest),
		scenario("TooManyIndexes", "PUT", tpath("acme", "collections", "idx"), map[string]any{"indexes": []any{
			map[string]any{"fields": []string{"a"}}, map[string]any{"fields": []string{"b"}}, map[string]any{"fields": []string{"c"}},
			map[string]any{"fields": []string{"d"}}, map[string]any{"fields": []string{"e"}}, map[string]any{"fields": []string{"f"}},
			map[string]any{"fields": []string{"g"}}, map[string]any{"fields": []string{"h"}}, map[string]any{"fields": []string{"i"}}}}, 400, problem.CodeInvalidRequest),
		scenario("IndexFieldTwice", "PUT", tpath("acme", "collections", "idx"), map[string]any{"indexes": []any{map[string]any{"fields": []string{"a", "-a"}}}}, 400, problem.CodeInvalidRequest),
		scenario("IndexBadField", "PUT", tpath("acme", "collections", "idx"), map[string]any{"indexes": []any{map[string]any{"fields": []string{"a.b"}}}}, 400, problem.CodeInvalidRequest),
		scenario("SameIndexTwice", "PUT", tpath("acme", "collections", "idx"), map[string]any{"indexes": []any{
			map[string]any{"fields": []string{"a"}}, map[string]any{"fields": []string{"a"}, "unique": true}}}, 400, problem.CodeInvalidRequest),
		scenario("IndexFieldNotInSchema", "PUT", tpath("acme", "collections", "idx"), map[string]any{
			"schema":  map[string]any{"type": "object", "properties": map[string]any{"owner": map[string]any{"type": "string"}}},
			"indexes": []any{map[string]any{"fields": []string{"ownr"}}}}, 400, problem.CodeUnknownField),
		scenario("UnknownField", "PUT", tpath("acme", "collections", "unk"), map[string]any{"ttl": 5}, 400, problem.CodeUnknownField),
		scenario("BadName", "PUT", tpath("acme", "collections", "Bad-Name"), map[string]any{}, 400, problem.CodeInvalidRequest),
		scenario("NameTooLong", "PUT", tpath("acme", "collections", "a"+strings.Repeat("b", 63)), map[string]any{}, 400, problem.CodeInvalidRequest),
		scenario("NameLeadingDigit", "PUT", tpath("acme", "collections", "1notes"), map[string]any{}, 400, problem.CodeInvalidRequest),
		{name: "MemberCannotPut", method: "PUT", path: tpath("acme", "collections", "mine"), token: member,
			body: map[string]any{}, wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "List", method: "GET", path: tpath("acme", "collections"), token: member, wantStatus: 200,
			check: func(t *testing.T, r *response) {
				var p page[collectionBody]
				r.JSON(t, &p)
				var names []string
				for _, c := range p.Items {
					names = append(names, c.Name)
				}
				want := []string{"free_form", "lists", "local_ref", "notes", "nulls"}
				if diff := cmp.Diff(want, names); diff != "" {
					t.Errorf("collections (-want +got):\n%s", diff)
				}
			}},
	})
	if n := fetched.Load(); n != 0 {
		t.Errorf("the schema compiler fetched %d URLs from the reference server, want none", n)
	}
}

// TestCollectionsWrongContentType sends a body as text/plain, which the
// scenario table cannot express through do's default header.
func TestCollectionsWrongContentType(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	admin := b.apiKey("acme", tenant.Admin)
	b.collection("acme", admin, "notes", nil)
	for _, ct := range []string{"text/plain", "application/xml", "multipart/form-data; boundary=x", "not a media type"} {
		t.Run(ct, func(t *testing.T) {
			bt := b.withT(t)
			bt.mustProblem(415, problem.CodeUnsupportedMediaType, "POST", tpath("acme", "collections", "notes", "records"), admin,
				`{"a":1}`, "Content-Type", ct)
			bt.mustProblem(415, problem.CodeUnsupportedMediaType, "PUT", tpath("acme", "collections", "other"), admin,
				`{}`, "Content-Type", ct)
		})
	}
	for _, ct := range []string{"application/json; charset=utf-8", "application/merge-patch+json", "APPLICATION/JSON"} {
		t.Run(ct, func(t *testing.T) {
			b.withT(t).must(201, "POST", tpath("acme", "collections", "notes", "records"), admin, `{"a":1}`, "Content-Type", ct)
		})
	}
}

// nested returns a JSON object nested depth levels deep.
func nested(depth int) string {
	return strings.Repeat(`{"a":`, depth-1) + `{}` + strings.Repeat(`}`, depth-1)
}

func TestRecords(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	admin := b.apiKey("acme", tenant.Admin)
	member := b.apiKey("acme", tenant.Member)
	b.collection("acme", admin, "notes", noteSchema)
	b.collection("acme", admin, "free", nil)
	recs := tpath("acme", "collections", "notes", "records")
	free := tpath("acme", "collections", "free", "records")

	var rec record
	var recPath string
	big := `{"title":"` + strings.Repeat("x", 1<<20) + `"}`
	runScenarios(t, b, []apiScenario{
		{name: "Create", method: "POST", path: recs, token: member,
			body:       map[string]any{"title": "hello", "stars": 3, "meta": map[string]any{"a": 1, "b": map[string]any{"c": 2}}, "drop": "me"},
			wantStatus: 201, wantHeaders: map[string]string{"ETag": `"1"`, "Content-Type": "application/json"},
			check: func(t *testing.T, r *response) {
				r.JSON(t, &rec)
				if _, err := uuid.Parse(rec.ID); err != nil {
					t.Errorf("id %q is not a UUID", rec.ID)
				}
				recPath = recs + "/" + rec.ID
				if got := r.Header.Get("Location"); got != recPath {
					t.Errorf("Location = %q, want %q", got, recPath)
				}
				if rec.Version != 1 || rec.CreatedAt == "" || rec.CreatedAt != rec.UpdatedAt {
					t.Errorf("record = %+v, want version 1 and created_at = updated_at", rec)
				}
				if rec.Data["title"] != "hello" {
					t.Errorf("data = %v", rec.Data)
				}
			}},
		{name: "SchemaViolation", method: "POST", path: recs, token: member,
			body: map[string]any{"stars": -1}, wantStatus: 422, wantCode: problem.CodeSchemaViolation,
			check: func(t *testing.T, r *response) {
				p := assertProblem(t, r, 422, problem.CodeSchemaViolation)
				if len(p.Errors) == 0 {
					t.Fatalf("no errors[] in %s", r.Body)
				}
				fields := map[string]bool{}
				for _, e := range p.Errors {
					fields[e.Field] = true
					if e.Message == "" {
						t.Errorf("error %+v has no message", e)
					}
				}
				if !fields["/stars"] || !fields["/"] {
					t.Errorf("errors %+v, want /stars (minimum) and / (required title)", p.Errors)
				}
			}},
		{name: "SchemaWrongType", method: "POST", path: recs, token: member, body: map[string]any{"title": 5},
			wantStatus: 422, wantCode: problem.CodeSchemaViolation, wantContains: []string{`"field":"/title"`}},
		{name: "BodyArray", method: "POST", path: recs, token: member, body: `[{"title":"x"}]`,
			wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "BodyString", method: "POST", path: free, token: member, body: `"x"`,
			wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "BodyNull", method: "POST", path: free, token: member, body: `null`,
			wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "InvalidJSON", method: "POST", path: free, token: member, body: `{"title":`,
			wantStatus: 400, wantCode: problem.CodeInvalidJSON},
		{name: "TrailingData", method: "POST", path: free, token: member, body: `{"a":1}{"b":2}`,
			wantStatus: 400, wantCode: problem.CodeInvalidJSON},
		{name: "InvalidUTF8", method: "POST", path: free, token: member, body: []byte("{\"a\":\"\xff\"}"),
			wantStatus: 400, wantCode: problem.CodeInvalidJSON},
		{name: "EmptyBody", method: "POST", path: free, token: member, body: "   ",
			wantStatus: 400, wantCode: problem.CodeInvalidJSON},
		{name: "NoBody", method: "POST", path: free, token: member,
			wantStatus: 400, wantCode: problem.CodeInvalidJSON},
		{name: "TooLarge", method: "POST", path: free, token: member, body: big,
			wantStatus: 413, wantCode: problem.CodePayloadTooLarge},
		{name: "JustUnderLimit", method: "POST", path: free, token: member,
			body: `{"t":"` + strings.Repeat("x", 1<<20-100) + `"}`, wantStatus: 201},
		{name: "Depth64", method: "POST", path: free, token: member, body: nested(64), wantStatus: 201},
		{name: "Depth65", method: "POST", path: free, token: member, body: nested(65),
			wantStatus: 400, wantCode: problem.CodeJSONTooDeep},
		{name: "Depth65Arrays", method: "POST", path: free, token: member,
			body: `{"a":` + strings.Repeat("[", 64) + strings.Repeat("]", 64) + `}`, wantStatus: 400, wantCode: problem.CodeJSONTooDeep},
		{name: "BracketsInStringsDoNotCount", method: "POST", path: free, token: member,
			body: `{"a":"` + strings.Repeat("{[", 100) + `\"` + `"}`, wantStatus: 201},
		{name: "NULInString", method: "POST", path: free, token: member, body: `{"a":"x\u0000y"}`,
			wantStatus: 400, wantCode: problem.CodeInvalidRequest, wantContains: []string{`"field":"/a"`}},
		{name: "NULInKey", method: "POST", path: free, token: member, body: `{"a\u0000":1}`,
			wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "NULNested", method: "POST", path: free, token: member, body: `{"a":[{"b":"\u0000"}]}`,
			wantStatus: 400, wantCode: problem.CodeInvalidRequest, wantContains: []string{`"field":"/a/0/b"`}},
		{name: "HugeNumber", method: "POST", path: free, token: member, body: `{"a":1e400}`,
			wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "UnknownCollection", method: "POST", path: tpath("acme", "collections", "nope", "records"), token: member,
			body: map[string]any{"a": 1}, wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "InvalidCollectionName", method: "POST", path: tpath("acme", "collections", "No-Pe", "records"), token: member,
			body: map[string]any{"a": 1}, wantStatus: 404, wantCode: problem.CodeNotFound},
	})

	if recPath == "" {
		t.Fatal("no record created")
	}
	other := b.createRecord("acme", member, "notes", map[string]any{"title": "other"})
	runScenarios(t, b, []apiScenario{
		{name: "Get", method: "GET", path: recPath, token: member, wantStatus: 200,
			wantHeaders: map[string]string{"ETag": `"1"`},
			check: func(t *testing.T, r *response) {
				var got record
				r.JSON(t, &got)
				if diff := cmp.Diff(rec, got); diff != "" {
					t.Errorf("record (-created +got):\n%s", diff)
				}
			}},
		{name: "GetUnknownID", method: "GET", path: recs + "/" + uuid.NewString(), token: member,
			wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "GetMalformedID", method: "GET", path: recs + "/not-a-uuid", token: member,
			wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "GetUpperCaseID", method: "GET", path: recs + "/" + strings.ToUpper(rec.ID), token: member,
			wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "GetSQLishID", method: "GET", path: recs + "/" + url.PathEscape("1' OR '1'='1"), token: member,
			wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "GetWrongCollection", method: "GET", path: free + "/" + rec.ID, token: member,
			wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "GetUnknownCollection", method: "GET", path: tpath("acme", "collections", "nope", "records", rec.ID), token: member,
			wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "ListUnknownCollection", method: "GET", path: tpath("acme", "collections", "nope", "records"), token: member,
			wantStatus: 404, wantCode: problem.CodeNotFound},

		{name: "MergePatch", method: "PATCH", path: recPath, token: member,
			body:       map[string]any{"stars": 4, "meta": map[string]any{"a": nil, "b": map[string]any{"d": 3}}, "drop": nil, "added": []int{1}},
			headers:    []string{"If-Match", `"1"`},
			wantStatus: 200, wantHeaders: map[string]string{"ETag": `"2"`},
			check: func(t *testing.T, r *response) {
				var got record
				r.JSON(t, &got)
				want := map[string]any{"title": "hello", "stars": 4.0, "added": []any{1.0},
					"meta": map[string]any{"b": map[string]any{"c": 2.0, "d": 3.0}}}
				if diff := cmp.Diff(want, got.Data); diff != "" {
					t.Errorf("data after merge patch (-want +got):\n%s", diff)
				}
				if got.Version != 2 || got.CreatedAt != rec.CreatedAt || got.UpdatedAt == rec.UpdatedAt {
					t.Errorf("record = %+v, want version 2, created_at kept, updated_at changed", got)
				}
			}},
		{name: "PatchStale", method: "PATCH", path: recPath, token: member, body: map[string]any{"title": "stale"},
			headers: []string{"If-Match", `"1"`}, wantStatus: 412, wantCode: problem.CodePreconditionFailed},
		{name: "PatchWeakETag", method: "PATCH", path: recPath, token: member, body: map[string]any{"title": "weak"},
			headers: []string{"If-Match", `W/"2"`}, wantStatus: 412, wantCode: problem.CodePreconditionFailed},
		{name: "PatchGarbageETag", method: "PATCH", path: recPath, token: member, body: map[string]any{"title": "garbage"},
			headers: []string{"If-Match", `banana`}, wantStatus: 412, wantCode: problem.CodePreconditionFailed},
		{name: "UnchangedAfterStale", method: "GET", path: recPath, token: member, wantStatus: 200,
			wantHeaders: map[string]string{"ETag": `"2"`}, wantContains: []string{`"title":"hello"`, `"version":2`}},
		{name: "PatchStar", method: "PATCH", path: recPath, token: member, body: map[string]any{"title": "star"},
			headers: []string{"If-Match", `*`}, wantStatus: 200, wantHeaders: map[string]string{"ETag": `"3"`}},
		{name: "PatchNoIfMatch", method: "PATCH", path: recPath, token: member, body: map[string]any{"title": "free"},
			wantStatus: 200, wantHeaders: map[string]string{"ETag": `"4"`}},
		{name: "PatchMergePatchContentType", method: "PATCH", path: recPath, token: member, body: map[string]any{"stars": 5},
			headers: []string{"Content-Type", "application/merge-patch+json"}, wantStatus: 200, wantContains: []string{`"stars":5`}},
		{name: "PatchSchemaViolation", method: "PATCH", path: recPath, token: member, body: map[string]any{"title": nil},
			wantStatus: 422, wantCode: problem.CodeSchemaViolation},
		{name: "PatchNotObject", method: "PATCH", path: recPath, token: member, body: `[1]`,
			wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "PatchInvalidJSON", method: "PATCH", path: recPath, token: member, body: `{`,
			wantStatus: 400, wantCode: problem.CodeInvalidJSON},
		{name: "PatchUnknown", method: "PATCH", path: recs + "/" + uuid.NewString(), token: member, body: map[string]any{"a": 1},
			wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "PatchMalformedID", method: "PATCH", path: recs + "/x", token: member, body: map[string]any{"a": 1},
			wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "StillVersion5", method: "GET", path: recPath, token: member, wantStatus: 200,
			wantHeaders: map[string]string{"ETag": `"5"`}, wantContains: []string{`"title":"free"`}},

		{name: "DeleteStale", method: "DELETE", path: recPath, token: member, headers: []string{"If-Match", `"4"`},
			wantStatus: 412, wantCode: problem.CodePreconditionFailed},
		{name: "StillThere", method: "GET", path: recPath, token: member, wantStatus: 200},
		{name: "Delete", method: "DELETE", path: recPath, token: member, headers: []string{"If-Match", `"5"`}, wantStatus: 204,
			check: func(t *testing.T, r *response) {
				if len(r.Body) != 0 {
					t.Errorf("204 with body %s", r.Body)
				}
			}},
		{name: "GetDeleted", method: "GET", path: recPath, token: member, wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "DeleteAgain", method: "DELETE", path: recPath, token: member, wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "PatchDeleted", method: "PATCH", path: recPath, token: member, body: map[string]any{"a": 1},
			wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "DeleteStarIfMatch", method: "DELETE", path: recs + "/" + other.ID, token: member, headers: []string{"If-Match", "*"},
			wantStatus: 204},
		{name: "DeleteMalformedID", method: "DELETE", path: recs + "/nope", token: member, wantStatus: 404, wantCode: problem.CodeNotFound},
	})
}

func TestIdempotency(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	admin := b.apiKey("acme", tenant.Admin)
	member := b.apiKey("acme", tenant.Member)
	b.collection("acme", admin, "notes", nil)
	b.collection("acme", admin, "other", nil)
	pair := b.userToken("acme", "ada@example.com", tenant.Member)
	recs := tpath("acme", "collections", "notes", "records")
	body := `{"title":"once"}`

	first := b.must(201, "POST", recs, member, body, "Idempotency-Key", "abc-123")
	if first.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("first answer carries Idempotent-Replayed")
	}
	var rec record
	first.JSON(t, &rec)
	runScenarios(t, b, []apiScenario{
		{name: "Replay", method: "POST", path: recs, token: member, body: body, headers: []string{"Idempotency-Key", "abc-123"},
			wantStatus: 201, wantHeaders: map[string]string{"Idempotent-Replayed": "true", "ETag": `"1"`, "Location": recs + "/" + rec.ID},
			check: func(t *testing.T, r *response) {
				if string(r.Body) != string(first.Body) {
					t.Errorf("replay = %s, want %s", r.Body, first.Body)
				}
			}},
		{name: "ReplayAgain", method: "POST", path: recs, token: member, body: body, headers: []string{"Idempotency-Key", "abc-123"},
			wantStatus: 201, wantHeaders: map[string]string{"Idempotent-Replayed": "true"}},
		{name: "OtherBody", method: "POST", path: recs, token: member, body: `{"title":"twice"}`,
			headers: []string{"Idempotency-Key", "abc-123"}, wantStatus: 422, wantCode: problem.CodeIdempotencyKeyReused},
		{name: "OtherPath", method: "POST", path: tpath("acme", "collections", "other", "records"), token: member, body: body,
			headers: []string{"Idempotency-Key", "abc-123"}, wantStatus: 422, wantCode: problem.CodeIdempotencyKeyReused},
		{name: "OtherKeySameCredential", method: "POST", path: recs, token: member, body: body,
			headers: []string{"Idempotency-Key", "abc-124"}, wantStatus: 201, wantHeaders: map[string]string{"Idempotent-Replayed": ""}},
		{name: "SameKeyOtherAPIKey", method: "POST", path: recs, token: admin, body: body,
			headers: []string{"Idempotency-Key", "abc-123"}, wantStatus: 201, wantHeaders: map[string]string{"Idempotent-Replayed": ""},
			check: func(t *testing.T, r *response) {
				var got record
				r.JSON(t, &got)
				if got.ID == rec.ID {
					t.Errorf("another credential got the first credential's record")
				}
			}},
		{name: "SameKeyJWT", method: "POST", path: recs, token: pair.AccessToken, body: body,
			headers: []string{"Idempotency-Key", "abc-123"}, wantStatus: 201, wantHeaders: map[string]string{"Idempotent-Replayed": ""}},
		{name: "KeyTooLong", method: "POST", path: recs, token: member, body: body,
			headers: []string{"Idempotency-Key", strings.Repeat("k", 256)}, wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "KeyWithSpace", method: "POST", path: recs, token: member, body: body,
			headers: []string{"Idempotency-Key", "a b"}, wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "SchemaFailureNotStored", method: "POST", path: recs, token: member, body: `{"x":"\u0000"}`,
			headers: []string{"Idempotency-Key", "bad-1"}, wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "KeyFreeAfterFailure", method: "POST", path: recs, token: member, body: `{"x":"ok"}`,
			headers: []string{"Idempotency-Key", "bad-1"}, wantStatus: 201, wantHeaders: map[string]string{"Idempotent-Replayed": ""}},
	})

	// abc-123 made one record for member, one for admin and one for the
	// user; abc-124 and bad-1 one each: five in all.
	all, _ := b.listAllRecords("acme", member, "notes", nil)
	n := 0
	for _, r := range all {
		if r.ID == rec.ID {
			n++
		}
	}
	if len(all) != 5 || n != 1 {
		t.Errorf("%d records, %d with the first id; want 5 and 1", len(all), n)
	}
	if u := b.usage("acme", admin); u.Records != 5 {
		t.Errorf("usage records = %d, want 5", u.Records)
	}
	var creates int
	for _, e := range b.auditLog("acme", admin) {
		if e.Action == "record.create" {
			creates++
		}
	}
	if creates != 5 {
		t.Errorf("%d record.create audit entries, want 5 (replays are not audited)", creates)
	}
}

// TestListing covers filters, ordering, limits and cursors over HTTP.
func TestListing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	b.tenant(neighbourSlug, tenant.Pooled)
	admin := b.apiKey("acme", tenant.Admin)
	viewer := b.apiKey("acme", tenant.Viewer)
	b.collection("acme", admin, "people", nil)
	b.collection("acme", admin, "other", nil)
	nkey := b.apiKey(neighbourSlug, tenant.Admin)
	b.collection(neighbourSlug, nkey, "people", nil)

	people := []map[string]any{
		{"name": "alice", "age": 30, "active": true, "city": "Paris"},
		{"name": "bob", "age": 25, "active": false, "nick": nil},
		{"name": "carol", "age": 35, "active": true, "nick": "caz", "city": "Berlin"},
		{"name": "dave", "age": "40", "active": true},
		{"name": "eve", "age": 25.5, "city": "Paris, TX"},
		{"name": "Alicia", "age": 30},
	}
	byName := map[string]record{}
	for _, p := range people {
		r := b.createRecord("acme", admin, "people", p)
		byName[p["name"].(string)] = r
	}
	names := func(rs []record) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Data["name"].(string))
		}
		return out
	}
	listNames := func(t *testing.T, filter, order string) []string {
		t.Helper()
		q := url.Values{}
		if filter != "" {
			q.Set("filter", filter)
		}
		if order != "" {
			q.Set("order", order)
		}
		return names(b.withT(t).listRecords("acme", viewer, "people", q).Items)
	}

	t.Run("Filters", func(t *testing.T) {
		tests := []struct {
			filter string
			want   []string // in creation order
		}{
			{``, []string{"alice", "bob", "carol", "dave", "eve", "Alicia"}},
			{`name = "bob"`, []string{"bob"}},
			{`name != "bob"`, []string{"alice", "carol", "dave", "eve", "Alicia"}},
			{`age = 30`, []string{"alice", "Alicia"}},
			{`age = "40"`, []string{"dave"}},
			{`age = 40`, nil},
			{`age > 25`, []string{"alice", "carol", "eve", "Alicia"}},
			{`age >= 25`, []string{"alice", "bob", "carol", "eve", "Alicia"}},
			{`age < 30`, []string{"bob", "eve"}},
			{`age <= 30`, []string{"alice", "bob", "eve", "Alicia"}},
			{`name > "c"`, []string{"carol", "dave", "eve"}},
			{`name ~ "lic"`, []string{"alice", "Alicia"}},
			{`name ~ "Ali"`, []string{"Alicia"}},
			{`city ~ "Paris"`, []string{"alice", "eve"}},
			{`active = true`, []string{"alice", "carol", "dave"}},
			{`active = false`, []string{"bob"}},
			{`active != true`, []string{"bob", "eve", "Alicia"}},
			{`nick = null`, []string{"alice", "bob", "dave", "eve", "Alicia"}},
			{`nick != null`, []string{"carol"}},
			{`active = true && age >= 30`, []string{"alice", "carol"}},
			{`name = "bob" || name = "eve"`, []string{"bob", "eve"}},
			{`active = true && (name = "alice" || name = "dave")`, []string{"alice", "dave"}},
			{`(active = true && name = "alice") || name = "dave" && age = "40"`, []string{"alice", "dave"}},
			{`((age < 26))`, []string{"bob", "eve"}},
			{"name = \"bob\"\n||\tname = \"carol\"", []string{"bob", "carol"}},
			{`id = "` + byName["carol"].ID + `"`, []string{"carol"}},
			{`id != "` + byName["carol"].ID + `"`, []string{"alice", "bob", "dave", "eve", "Alicia"}},
			{`created_at >= "` + byName["dave"].CreatedAt + `"`, []string{"dave", "eve", "Alicia"}},
			{`created_at < "` + byName["bob"].CreatedAt + `"`, []string{"alice"}},
			{`updated_at > "2000-01-01T00:00:00Z"`, []string{"alice", "bob", "carol", "dave", "eve", "Alicia"}},
			{`age != 30`, []string{"bob", "carol", "dave", "eve"}},
			{`age = 3e1`, []string{"alice", "Alicia"}},
			{`age = 30.0`, []string{"alice", "Alicia"}},
			{`age = "30"`, nil},
			{`active = 1`, nil},
			{`active >= 0`, nil},
			{`active = "true"`, nil},
			{`active != 1`, []string{"alice", "bob", "carol", "dave", "eve", "Alicia"}},
			{`nick = "null"`, nil},
			{`name = null`, nil},
			{`unknown_field = null`, []string{"alice", "bob", "carol", "dave", "eve", "Alicia"}},
			{`unknown_field != null`, nil},
			{`age > "3"`, []string{"dave"}},
			{`age < "3"`, nil},
			{`city = null`, []string{"bob", "dave", "Alicia"}},
			{`name ~ ""`, []string{"alice", "bob", "carol", "dave", "eve", "Alicia"}},
			{`nick ~ "a"`, []string{"carol"}},
			{`id ~ "` + byName["eve"].ID[24:] + `"`, []string{"eve"}},
			{`created_at > "2000-01-01T02:00:00+02:00"`, []string{"alice", "bob", "carol", "dave", "eve", "Alicia"}},
			{`name = "x' OR 1=1 --"`, nil},
			{`name ~ "%"`, nil},
			{`name ~ "_"`, nil},
		}
		for _, tt := range tests {
			if got := listNames(t, tt.filter, ""); !slices.Equal(got, tt.want) {
				t.Errorf("filter %q = %v, want %v", tt.filter, got, tt.want)
			}
		}
	})

	t.Run("Order", func(t *testing.T) {
		tests := []struct {
			order string
			want  []string
		}{
			{"", []string{"alice", "bob", "carol", "dave", "eve", "Alicia"}},
			{"created_at", []string{"alice", "bob", "carol", "dave", "eve", "Alicia"}},
			{"-created_at", []string{"Alicia", "eve", "dave", "carol", "bob", "alice"}},
			{"name", []string{"Alicia", "alice", "bob", "carol", "dave", "eve"}},
			{"+name", []string{"Alicia", "alice", "bob", "carol", "dave", "eve"}},
			{"-name", []string{"eve", "dave", "carol", "bob", "alice", "Alicia"}},
			// Missing before booleans before numbers before strings.
			{"active", []string{"eve", "Alicia", "bob", "alice", "carol", "dave"}},
		}
		for _, tt := range tests {
			if got := listNames(t, "", tt.order); !slices.Equal(got, tt.want) {
				t.Errorf("order %q = %v, want %v", tt.order, got, tt.want)
			}
		}
		// Numbers sort before strings; ties break by id, which follows
		// creation here.
		got := listNames(t, "", "age")
		want := []string{"bob", "eve", "alice", "Alicia", "carol", "dave"}
		if !slices.Equal(got, want) {
			t.Errorf("order age = %v, want %v", got, want)
		}
		got = listNames(t, `age >= 25 && age < 40`, "-age")
		want = []string{"carol", "Alicia", "alice", "eve", "bob"}
		if !slices.Equal(got, want) {
			t.Errorf("filtered order -age = %v, want %v", got, want)
		}
	})

	q := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i+1 < len(kv); i += 2 {
			v.Set(kv[i], kv[i+1])
		}
		return tpath("acme", "collections", "people", "records") + "?" + v.Encode()
	}
	invalidFilter := func(name, filter string, pos int) apiScenario {
		return apiScenario{name: name, method: "GET", path: q("filter", filter), token: viewer,
			wantStatus: 400, wantCode: problem.CodeInvalidFilter,
			check: func(t *testing.T, r *response) {
				p := assertProblem(t, r, 400, problem.CodeInvalidFilter)
				if p.Position == nil {
					t.Fatalf("no position in %s", r.Body)
				}
				if *p.Position != pos {
					t.Errorf("position = %d, want %d", *p.Position, pos)
				}
			}}
	}
	runScenarios(t, b, []apiScenario{
		invalidFilter("MissingValue", `age >`, 5),
		invalidFilter("DoubleAnd", `name = "x" && && age > 1`, 14),
		invalidFilter("BareWord", `name = bob`, 7),
		invalidFilter("Unclosed", `(age > 1`, 8),
		invalidFilter("Unmatched", `age > 1)`, 7),
		invalidFilter("TildeNumber", `age ~ 5`, 0),
		invalidFilter("LiteralFirst", `1 = 2`, 0),
		invalidFilter("SQLInjection", `name = "a"; DROP TABLE records`, 10),
		invalidFilter("BoolOrdered", `active > true`, 0),
		invalidFilter("NullOrdered", `age > null`, 0),
		invalidFilter("CreatedAtNotTime", `created_at > "yesterday"`, 0),
		invalidFilter("CreatedAtNanos", `created_at > "2020-01-01T00:00:00.1234567Z"`, 0),
		invalidFilter("IDNumber", `id = 5`, 0),
		{name: "FilterTooLong", method: "GET", path: q("filter", `name = "`+strings.Repeat("x", 5000)+`"`), token: viewer,
			wantStatus: 400, wantCode: problem.CodeInvalidFilter},
		{name: "TooManyTerms", method: "GET", path: q("filter", strings.Repeat(`age = 1 || `, 64)+`age = 1`), token: viewer,
			wantStatus: 400, wantCode: problem.CodeInvalidFilter},
		{name: "TooDeep", method: "GET", path: q("filter", strings.Repeat("(", 33)+`age = 1`+strings.Repeat(")", 33)), token: viewer,
			wantStatus: 400, wantCode: problem.CodeInvalidFilter},
		{name: "DeepEnough", method: "GET", path: q("filter", strings.Repeat("(", 32)+`age = 1`+strings.Repeat(")", 32)), token: viewer,
			wantStatus: 200},
		{name: "MaxTerms", method: "GET", path: q("filter", strings.Repeat(`age = 1 || `, 63)+`age = 1`), token: viewer,
			wantStatus: 200},
		{name: "BadOrder", method: "GET", path: q("order", "na me"), token: viewer, wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "BadOrderDash", method: "GET", path: q("order", "-"), token: viewer, wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "Limit1001", method: "GET", path: q("limit", "1001"), token: viewer, wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "Limit0", method: "GET", path: q("limit", "0"), token: viewer, wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "LimitEmptyIsDefault", method: "GET", path: q("limit", ""), token: viewer, wantStatus: 200},
		{name: "LimitNegative", method: "GET", path: q("limit", "-5"), token: viewer, wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "LimitText", method: "GET", path: q("limit", "many"), token: viewer, wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "Limit1000", method: "GET", path: q("limit", "1000"), token: viewer, wantStatus: 200},
		{name: "Limit1", method: "GET", path: q("limit", "1"), token: viewer, wantStatus: 200,
			check: func(t *testing.T, r *response) {
				var p page[record]
				r.JSON(t, &p)
				if len(p.Items) != 1 || p.NextCursor == "" {
					t.Errorf("limit 1 gave %d items, next_cursor %q", len(p.Items), p.NextCursor)
				}
			}},
		{name: "Forged", method: "GET", path: q("cursor", "eyJpZCI6IngifQ.AAAA"), token: viewer, wantStatus: 400, wantCode: problem.CodeInvalidCursor},
		{name: "Garbage", method: "GET", path: q("cursor", "%%%"), token: viewer, wantStatus: 400, wantCode: problem.CodeInvalidCursor},
	})

	t.Run("CursorBinding", func(t *testing.T) {
		bt := b.withT(t)
		first := bt.listRecords("acme", viewer, "people", url.Values{"limit": {"2"}, "filter": {`age >= 25`}, "order": {"-name"}})
		if first.NextCursor == "" {
			t.Fatal("no next_cursor")
		}
		cur := first.NextCursor
		good := bt.listRecords("acme", viewer, "people", url.Values{"limit": {"2"}, "filter": {`age >= 25`}, "order": {"-name"}, "cursor": {cur}})
		if got := names(good.Items); !slices.Equal(got, []string{"bob", "alice"}) {
			t.Errorf("second page = %v, want [bob alice]", got)
		}
		// A different limit is the same query.
		bt.must(200, "GET", q("limit", "3", "filter", `age >= 25`, "order", "-name", "cursor", cur), viewer, nil)
		otherTenant := "/v1/tenants/" + neighbourSlug + "/collections/people/records?" +
			url.Values{"limit": {"2"}, "filter": {`age >= 25`}, "order": {"-name"}, "cursor": {cur}}.Encode()
		for name, path := range map[string]string{
			"OtherFilter":     q("limit", "2", "filter", `age >= 26`, "order", "-name", "cursor", cur),
			"NoFilter":        q("limit", "2", "order", "-name", "cursor", cur),
			"OtherOrder":      q("limit", "2", "filter", `age >= 25`, "order", "name", "cursor", cur),
			"NoOrder":         q("limit", "2", "filter", `age >= 25`, "cursor", cur),
			"OtherCollection": tpath("acme", "collections", "other", "records") + "?" + url.Values{"limit": {"2"}, "filter": {`age >= 25`}, "order": {"-name"}, "cursor": {cur}}.Encode(),
			"Truncated":       q("limit", "2", "filter", `age >= 25`, "order", "-name", "cursor", cur[:len(cur)-2]),
			"TenantsListing":  "/v1/tenants?cursor=" + url.QueryEscape(cur),
		} {
			token := viewer
			if name == "TenantsListing" {
				token = b.admin
			}
			r := bt.do("GET", path, token, nil)
			if r.Status != 400 {
				t.Errorf("%s: %d %s, want 400 invalid_cursor", name, r.Status, r.Body)
				continue
			}
			assertProblem(t, r, 400, problem.CodeInvalidCursor)
		}
		r := bt.do("GET", otherTenant, nkey, nil)
		assertProblem(t, r, 400, problem.CodeInvalidCursor)
	})
}

// TestListingPages pages through every record with several limits, filters
// and orders: each record exactly once, in order.
func TestListingPages(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Silo)
	key := b.apiKey("acme", tenant.Member)
	admin := b.apiKey("acme", tenant.Admin)
	b.collection("acme", admin, "items", nil)
	const n = 137
	var ids []string
	for i := range n {
		data := map[string]any{"i": i, "group": i % 4, "label": fmt.Sprintf("item-%03d", (i*37)%n)}
		// mixed cycles through every rank of the sort key.
		switch i % 7 {
		case 0: // missing
		case 1:
			data["mixed"] = nil
		case 2:
			data["mixed"] = i%2 == 0
		case 3:
			data["mixed"] = float64(i%5) - 2.5
		case 4:
			data["mixed"] = fmt.Sprint("s", i%3)
		case 5:
			data["mixed"] = map[string]any{"k": i}
		case 6:
			data["mixed"] = []any{i}
		}
		if i%10 == 0 {
			data["group"] = nil
		}
		ids = append(ids, b.createRecord("acme", key, "items", data).ID)
	}

	t.Run("DefaultLimit", func(t *testing.T) {
		p := b.withT(t).listRecords("acme", key, "items", nil)
		if len(p.Items) != 50 || p.NextCursor == "" {
			t.Errorf("default page = %d items, next_cursor %q; want 50 and a cursor", len(p.Items), p.NextCursor)
		}
	})
	t.Run("MaxLimit", func(t *testing.T) {
		p := b.withT(t).listRecords("acme", key, "items", url.Values{"limit": {"1000"}})
		if len(p.Items) != n || p.NextCursor != "" {
			t.Errorf("limit 1000 = %d items, next_cursor %q; want %d and none", len(p.Items), p.NextCursor, n)
		}
	})

	tests := []struct {
		name   string
		q      url.Values
		filter func(i int) bool
	}{
		{"Limit1", url.Values{"limit": {"1"}}, nil},
		{"Limit10", url.Values{"limit": {"10"}}, nil},
		{"LimitDivides", url.Values{"limit": {"137"}}, nil},
		{"Default", url.Values{}, nil},
		{"DescCreated", url.Values{"limit": {"9"}, "order": {"-created_at"}}, nil},
		{"ById", url.Values{"limit": {"11"}, "order": {"id"}}, nil},
		{"ByGroupWithTies", url.Values{"limit": {"7"}, "order": {"group"}}, nil},
		{"ByGroupDesc", url.Values{"limit": {"7"}, "order": {"-group"}}, nil},
		{"ByLabel", url.Values{"limit": {"13"}, "order": {"label"}}, nil},
		{"ByMixed", url.Values{"limit": {"5"}, "order": {"mixed"}}, nil},
		{"ByMixedDesc", url.Values{"limit": {"8"}, "order": {"-mixed"}}, nil},
		{"ByMissingField", url.Values{"limit": {"20"}, "order": {"nothing"}}, nil},
		{"Filtered", url.Values{"limit": {"6"}, "filter": {`group = 1 || group = null`}, "order": {"-i"}},
			func(i int) bool { return i%10 == 0 || i%4 == 1 }},
		{"FilteredEmpty", url.Values{"limit": {"6"}, "filter": {`group = 9`}}, func(int) bool { return false }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bt := b.withT(t)
			all, pages := bt.listAllRecords("acme", key, "items", tt.q)
			want := map[string]bool{}
			for i, id := range ids {
				if tt.filter == nil || tt.filter(i) {
					want[id] = true
				}
			}
			seen := map[string]bool{}
			for _, r := range all {
				if seen[r.ID] {
					t.Errorf("record %s listed twice", r.ID)
				}
				seen[r.ID] = true
				if !want[r.ID] {
					t.Errorf("record %s (%v) listed but does not match", r.ID, r.Data)
				}
			}
			if len(seen) != len(want) {
				t.Errorf("listed %d distinct records, want %d", len(seen), len(want))
			}
			if limit := tt.q.Get("limit"); limit != "" {
				var l int
				fmt.Sscan(limit, &l)
				if wantPages := max(1, (len(want)+l-1)/l); pages != wantPages {
					t.Errorf("%d pages, want %d", pages, wantPages)
				}
			}
			// The concatenated pages are in the order one big page has.
			q := cloneValues(tt.q)
			q.Set("limit", "1000")
			one := bt.listRecords("acme", key, "items", q).Items
			if diff := cmp.Diff(recordIDs(one), recordIDs(all)); diff != "" {
				t.Errorf("paged order differs from one page (-one +paged):\n%s", diff)
			}
		})
	}
}

func recordIDs(rs []record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}

func TestUsageCounts(t *testing.T) {
	t.Parallel()
	for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		t.Run(string(iso), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			b.tenant("acme", iso)
			admin := b.apiKey("acme", tenant.Admin)
			b.collection("acme", admin, "notes", nil)

			if u := b.usage("acme", admin); u.Records != 0 || u.Bytes != 0 || u.Plan != "free" || u.MaxRecords != 10_000 || u.MaxBytes != 50<<20 {
				t.Errorf("empty usage = %+v", u)
			}
			r1 := b.createRecord("acme", admin, "notes", map[string]any{"a": "xxxx"}) // {"a":"xxxx"}: 12 bytes
			r2 := b.createRecord("acme", admin, "notes", map[string]any{"b": 1})      // {"b":1}: 7 bytes
			if u := b.usage("acme", admin); u.Records != 2 || u.Bytes != 19 {
				t.Errorf("after 2 creates usage = %+v, want 2 records, 19 bytes", u)
			}
			b.must(200, "PATCH", tpath("acme", "collections", "notes", "records", r1.ID), admin, map[string]any{"a": "xxxxxxxx"})
			if u := b.usage("acme", admin); u.Records != 2 || u.Bytes != 23 {
				t.Errorf("after update usage = %+v, want 2 records, 23 bytes", u)
			}
			b.must(204, "DELETE", tpath("acme", "collections", "notes", "records", r2.ID), admin, nil)
			if u := b.usage("acme", admin); u.Records != 1 || u.Bytes != 16 {
				t.Errorf("after delete usage = %+v, want 1 record, 16 bytes", u)
			}
			// Refused writes change nothing.
			b.do("POST", tpath("acme", "collections", "notes", "records"), admin, `[1]`)
			b.do("DELETE", tpath("acme", "collections", "notes", "records", r1.ID), admin, nil, "If-Match", `"9"`)
			if u := b.usage("acme", admin); u.Records != 1 || u.Bytes != 16 {
				t.Errorf("after refused writes usage = %+v, want 1 record, 16 bytes", u)
			}
		})
	}
}

// TestListingMixedOrder checks the documented rank order of a data key over
// HTTP: missing and null, then booleans, numbers, strings, objects and
// arrays.
func TestListingMixedOrder(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	key := b.apiKey("acme", tenant.Admin)
	b.collection("acme", key, "things", nil)
	values := []struct {
		name string
		v    any
	}{
		{"str-b", "b"}, {"obj", map[string]any{"a": 1}}, {"true", true}, {"num-10", 10}, {"missing", nil},
		{"str-a", "a"}, {"false", false}, {"num--1", -1}, {"null", "NULL"}, {"num-2.5", 2.5},
	}
	for _, v := range values {
		data := map[string]any{"name": v.name}
		switch v.v {
		case nil:
		case "NULL":
			data["v"] = nil
		default:
			data["v"] = v.v
		}
		b.createRecord("acme", key, "things", data)
	}
	names := func(rs []record) []string {
		var out []string
		for _, r := range rs {
			out = append(out, r.Data["name"].(string))
		}
		return out
	}
	got := names(b.listRecords("acme", key, "things", url.Values{"order": {"v"}}).Items)
	want := []string{"missing", "null", "false", "true", "num--1", "num-2.5", "num-10", "str-a", "str-b", "obj"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order v (-want +got):\n%s", diff)
	}
	got = names(b.listRecords("acme", key, "things", url.Values{"order": {"-v"}}).Items)
	slices.Reverse(want)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order -v (-want +got):\n%s", diff)
	}
}

// TestCollectionSchemaReplace: a replaced schema governs the next write at
// once, in both directions; stored records are not re-validated.
func TestCollectionSchemaReplace(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	admin := b.apiKey("acme", tenant.Admin)
	recs := tpath("acme", "collections", "notes", "records")
	strict := map[string]any{"schema": map[string]any{"type": "object", "required": []string{"title"}}}

	var first collectionBody
	b.must(200, "PUT", tpath("acme", "collections", "notes"), admin, map[string]any{}).JSON(t, &first)
	untitled := b.createRecord("acme", admin, "notes", map[string]any{"body": "no title"})
	var second collectionBody
	b.must(200, "PUT", tpath("acme", "collections", "notes"), admin, strict).JSON(t, &second)
	if second.CreatedAt != first.CreatedAt || second.UpdatedAt == first.UpdatedAt {
		t.Errorf("replaced collection created_at %s updated_at %s; first %s %s: want created_at kept, updated_at new",
			second.CreatedAt, second.UpdatedAt, first.CreatedAt, first.UpdatedAt)
	}
	b.mustProblem(422, problem.CodeSchemaViolation, "POST", recs, admin, map[string]any{"body": "still none"})
	b.must(200, "GET", recs+"/"+untitled.ID, admin, nil)
	// Patching the old record is a new write and meets the new schema.
	b.mustProblem(422, problem.CodeSchemaViolation, "PATCH", recs+"/"+untitled.ID, admin, map[string]any{"body": "edited"})
	b.must(200, "PATCH", recs+"/"+untitled.ID, admin, map[string]any{"title": "now titled"})

	b.must(200, "PUT", tpath("acme", "collections", "notes"), admin, map[string]any{"schema": map[string]any{"type": "object"}})
	b.must(201, "POST", recs, admin, map[string]any{"body": "free again"})
	b.must(200, "PUT", tpath("acme", "collections", "notes"), admin, strict)
	b.mustProblem(422, problem.CodeSchemaViolation, "POST", recs, admin, map[string]any{"body": "strict again"})
	b.must(200, "PUT", tpath("acme", "collections", "notes"), admin, map[string]any{})
	b.must(201, "POST", recs, admin, map[string]any{"body": "no schema"})
}

// TestIdempotentReplayBytes: a replay answers with the bytes of the first
// answer, also when the record holds characters that encoding/json escapes
// by default.
func TestIdempotentReplayBytes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	key := b.apiKey("acme", tenant.Member)
	admin := b.apiKey("acme", tenant.Admin)
	b.collection("acme", admin, "notes", nil)
	body := `{"html":"<b>Tom & Jerry</b>"}`
	first := b.must(201, "POST", tpath("acme", "collections", "notes", "records"), key, body, "Idempotency-Key", "html-1")
	again := b.must(201, "POST", tpath("acme", "collections", "notes", "records"), key, body, "Idempotency-Key", "html-1")
	if string(again.Body) != string(first.Body) {
		t.Errorf("replayed body\n%s\nwant the first answer's\n%s", again.Body, first.Body)
	}
}

// TestRecordIDsAreServerChosen: an "id" in the body is data, never the
// record's id, and the system field id shadows it in filters.
func TestRecordIDsAreServerChosen(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	key := b.apiKey("acme", tenant.Admin)
	b.collection("acme", key, "notes", nil)
	chosen := uuid.NewString()
	rec := b.createRecord("acme", key, "notes", map[string]any{"id": chosen, "version": 99, "created_at": "1970-01-01T00:00:00Z"})
	if rec.ID == chosen || rec.Version != 1 || strings.HasPrefix(rec.CreatedAt, "1970") {
		t.Errorf("record = %+v: the body chose id, version or created_at", rec)
	}
	if rec.Data["id"] != chosen {
		t.Errorf("data.id = %v, want the body's %s kept as data", rec.Data["id"], chosen)
	}
	b.mustProblem(404, problem.CodeNotFound, "GET", tpath("acme", "collections", "notes", "records", chosen), key, nil)
	if got := b.listRecords("acme", key, "notes", url.Values{"filter": {`id = "` + chosen + `"`}}).Items; len(got) != 0 {
		t.Errorf("filter on id matched the data key: %+v", got)
	}
	if got := b.listRecords("acme", key, "notes", url.Values{"filter": {`id = "` + rec.ID + `"`}}).Items; len(got) != 1 {
		t.Errorf("filter on the record id matched %d records, want 1", len(got))
	}
}

// TestNumberRule: every number the API accepts is stored, returned byte for
// byte and filtered on the same way by both stores; every number it refuses
// is refused before the database, with 400 naming the field, and leaves
// nothing behind — for creates and merge patches alike.
func TestNumberRule(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	key := b.apiKey("acme", tenant.Admin)
	b.collection("acme", key, "nums", nil)
	recs := tpath("acme", "collections", "nums", "records")
	accepted := []string{
		"0", "-0", "1.5", "-2E+3", "9007199254740993", "12345678901234567890123456789012345678901234567890",
		"1.7976931348623157e308", "-1.7976931348623157e308", "5e-324", "4.9e-324", "2.4703282292062328e-324",
		"0e-16383", "0.0e-16382", "0E16383", "1." + strings.Repeat("0", 98),
	}
	refused := []string{
		"1e309", "-1e400", "1.7976931348623159e308", // overflow
		"1e-16384", "2e-324", "1e-400", // round to 0
		"0e-16384", "-0.0e-16383", "0e1000000", // exponent or scale beyond PostgreSQL's numeric
		"1." + strings.Repeat("0", 99), // too long
	}
	for _, lit := range accepted {
		body := `{"x":` + lit + `}`
		r := b.must(201, "POST", recs, key, body)
		var rec struct {
			ID   string          `json:"id"`
			Data json.RawMessage `json:"data"`
		}
		r.JSON(t, &rec)
		if string(rec.Data) != body {
			t.Errorf("created %s, answered %s", body, rec.Data)
		}
		got := b.must(200, "GET", recs+"/"+rec.ID, key, nil)
		if !strings.Contains(string(got.Body), body) {
			t.Errorf("stored %s, read back %s", body, got.Body)
		}
	}
	// Filters over every accepted number answer, on both stores, and agree
	// with doubles.
	for _, tc := range []struct {
		filter string
		want   int
	}{
		{"x > 1e308", 1}, {"x < -1e308", 1}, {"x = 0", 5}, {"x > 0 && x < 1e-300", 3}, {"x >= 1", 5},
	} {
		if got := len(b.listRecords("acme", key, "nums", url.Values{"filter": {tc.filter}}).Items); got != tc.want {
			t.Errorf("filter %q: %d records, want %d", tc.filter, got, tc.want)
		}
	}
	first := b.createRecord("acme", key, "nums", map[string]any{"x": 1})
	for _, lit := range refused {
		name := lit
		if len(name) > 30 {
			name = name[:12] + "…"
		}
		p := assertProblem(t, b.do("POST", recs, key, `{"a":{"x":`+lit+`}}`), 400, problem.CodeInvalidRequest)
		if len(p.Errors) != 1 || p.Errors[0].Field != "/a/x" {
			t.Errorf("create with %s: errors %+v, want one for /a/x", name, p.Errors)
		}
		assertProblem(t, b.do("PATCH", recs+"/"+first.ID, key, `{"x":`+lit+`}`), 400, problem.CodeInvalidRequest)
	}
	if got := b.usage("acme", key).Records; got != int64(len(accepted)+1) {
		t.Errorf("%d records, want the %d accepted", got, len(accepted)+1)
	}
	if got := b.must(200, "GET", recs+"/"+first.ID, key, nil); !strings.Contains(string(got.Body), `"version":1`) {
		t.Errorf("a refused patch changed the record: %s", got.Body)
	}
}
