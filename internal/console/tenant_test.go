package console

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestTenantTemplatesExecute renders every tenant page with typical data
// (and with empty data), so that a template error shows here rather than
// as a 500 in a browser.
func TestTenantTemplatesExecute(t *testing.T) {
	pages := mustParsePages()
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	sess := &SessionView{Tenant: "acme", Who: "ada@acme.io"}
	total := int64(3)
	coll := collectionInfo{Name: "tasks", Schema: json.RawMessage(`{"type":"object"}`), EncryptedFields: []string{"ssn"},
		Indexes:   []indexInfo{{Name: "points", Fields: []string{"points"}, State: "failed", Error: "duplicates"}},
		CreatedAt: now, UpdatedAt: now, Retention: "30d", RetentionField: "created_at", Records: 3}
	rec := recordInfo{ID: "0190-x", Version: 2, CreatedAt: now, UpdatedAt: now, Data: json.RawMessage(`{"title":"a"}`)}
	prob := &tenantProblem{APIError: &APIError{Status: 400, Code: "invalid_filter", Title: "Bad Request", Detail: "expected a value"},
		Position: 9, Fields: []problemField{{Field: "filter", Message: "bad"}}}
	revoked := now
	cols, rows := recordTable([]recordInfo{rec})
	cases := map[string][]any{
		"tenant/collections": {&collectionsData{Slug: "acme", Items: []collectionInfo{coll}, Usage: &usageInfo{Records: 3, MaxRecords: 10}},
			&collectionsData{}},
		"tenant/collection": {&collectionData{Slug: "acme", Coll: coll}, &collectionData{}},
		"tenant/records": {&recordsData{Slug: "acme", Coll: "tasks", Filter: "points >=", Columns: cols, Items: rows, Total: &total,
			Cursor: "c", Next: "/n", First: "/f"},
			&recordsData{Problem: prob, Filter: "points >=", FilterBefore: "points >", FilterAfter: "=", NewProblem: prob},
			&recordsData{}},
		"tenant/record": {&recordData{Slug: "acme", Coll: "tasks", Record: rec, JSON: "{}", Edit: "{}", Version: 2, Problem: prob,
			Conflict: "changed"}, &recordData{}},
		"tenant/keys": {&keysData{Slug: "acme", Roles: roles, Role: "viewer", Items: []apiKeyInfo{{ID: "k1", Name: "ci", Role: "viewer",
			CreatedAt: now}, {ID: "k2", Name: "old", RevokedAt: &revoked}}, Created: &newAPIKey{Key: "bh_test_x"}},
			&keysData{ListError: &APIError{Status: 403, Code: "forbidden"}}},
		"tenant/users": {&usersData{Slug: "acme", Roles: roles, Items: []userInfo{{ID: "u1", Email: "a@x.io", Role: "admin", CreatedAt: now}}},
			&usersData{ListError: &APIError{Status: 403, Code: "forbidden"}}},
		"tenant/audit": {&tenantAuditData{Slug: "acme", Items: []auditEntry{{Seq: 1, Action: "record.create", Time: now}}, After: 1, Next: "2",
			Verification: &chainVerification{OK: true, Length: 1, Head: "ab"}},
			&tenantAuditData{Verification: &chainVerification{BrokenAt: 3, Reason: "hash"}},
			&tenantAuditData{VerifyError: &APIError{Code: "forbidden"}, ListError: &APIError{Code: "forbidden"}}},
		"tenant/confirm": {&confirmData{Slug: "acme", Kind: "revoke-key", Heading: "Revoke?"}},
	}
	for page, datas := range cases {
		p, ok := pages[page]
		if !ok {
			t.Errorf("no page %s", page)
			continue
		}
		for i, d := range datas {
			v := &View{Title: "t", Nav: "t-collections", Session: sess, CSRF: "tok", Poll: 3, Data: d}
			var buf bytes.Buffer
			if err := p.t.ExecuteTemplate(&buf, "layout", v); err != nil {
				t.Errorf("%s with data %d: %v", page, i, err)
				continue
			}
			if !strings.Contains(buf.String(), `href="/ui/t/acme/keys"`) {
				t.Errorf("%s lacks the tenant navigation", page)
			}
		}
	}
	var buf bytes.Buffer
	if err := pages["tenant/records"].t.ExecuteTemplate(&buf, "results", &View{Data: &recordsData{Problem: prob}}); err != nil {
		t.Errorf("the records' results fragment: %v", err)
	}
}

// TestMergePatch checks that the patch of an edit turns the old data into
// the new under RFC 7386: removed members become null, nested objects are
// patched, unchanged members are left out.
func TestMergePatch(t *testing.T) {
	for _, tc := range []struct{ from, to, want string }{
		{`{"a":1,"b":2}`, `{"a":1,"b":3}`, `{"b":3}`},
		{`{"a":1,"b":2}`, `{"a":1}`, `{"b":null}`},
		{`{"a":{"x":1,"y":2}}`, `{"a":{"x":1}}`, `{"a":{"y":null}}`},
		{`{"a":{"x":1}}`, `{"a":[1]}`, `{"a":[1]}`},
		{`{"a":[1,2]}`, `{"a":[1,2]}`, `{}`},
		{`{}`, `{"n":12345678901234567890}`, `{"n":12345678901234567890}`},
	} {
		patch, err := mergePatch(json.RawMessage(tc.from), json.RawMessage(tc.to))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := json.Marshal(patch)
		var g, w any
		_ = json.Unmarshal(got, &g)
		_ = json.Unmarshal([]byte(tc.want), &w)
		if !reflect.DeepEqual(g, w) || (strings.Contains(tc.want, "12345678901234567890") && !strings.Contains(string(got), "12345678901234567890")) {
			t.Errorf("mergePatch(%s, %s) = %s, want %s", tc.from, tc.to, got, tc.want)
		}
	}
}

// TestTenantCallHeaders checks that tcall sends its extra headers (such
// as If-Match) with the session's credential and the client's address,
// and returns a problem's position and fields.
func TestTenantCallHeaders(t *testing.T) {
	var seen *http.Request
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r
		w.Header().Set("Content-Type", "application/problem+json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"status":400,"code":"invalid_filter","title":"Bad Request","detail":"x","position":4,` +
			`"errors":[{"field":"filter","message":"m"}]}`))
	})
	c, err := New(Config{API: api, CookieKey: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/ui/t/acme/", nil)
	r.RemoteAddr = "192.0.2.7:5555"
	p := c.tcall(r, &session{Credential: "cred"}, http.MethodPatch, "/v1/x", ifMatch("3"), map[string]int{"a": 1}, nil)
	if seen == nil {
		t.Fatal("the API was not called")
	}
	if got := seen.Header.Get("If-Match"); got != `"3"` {
		t.Errorf("If-Match %q, want \"3\"", got)
	}
	if got := seen.Header.Get("Authorization"); got != "Bearer cred" {
		t.Errorf("Authorization %q", got)
	}
	if seen.RemoteAddr != r.RemoteAddr {
		t.Errorf("RemoteAddr %q, want %q", seen.RemoteAddr, r.RemoteAddr)
	}
	if p == nil || p.Code != "invalid_filter" || p.Position != 4 || len(p.Fields) != 1 || p.Status != 400 {
		t.Errorf("problem %+v", p)
	}
	// Without extra headers the call is the framework's, and no position
	// reads -1.
	seen = nil
	c, err = New(Config{API: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = r; w.WriteHeader(http.StatusNoContent) }),
		CookieKey: bytes.Repeat([]byte{7}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	if p := c.tcall(r, &session{Credential: "cred"}, http.MethodDelete, "/v1/y", nil, nil, nil); p != nil || seen == nil ||
		seen.Header.Get("If-Match") != "" {
		t.Errorf("a plain call: problem %v, If-Match %q", p, seen.Header.Get("If-Match"))
	}
}
