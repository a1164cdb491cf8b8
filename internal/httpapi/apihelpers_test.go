package httpapi

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// This file holds the helpers of api_test.go, auth_test.go, records_test.go
// and audit_test.go. harness_test.go stays untouched.

// apiScenario is one HTTP exchange and what it must answer, in the manner of
// pocketbase's ApiScenario. Scenarios of one table run in order against one
// bundle, so a later scenario may rely on the effects of an earlier one.
type apiScenario struct {
	name    string
	method  string
	path    string
	token   string
	body    any      // as for testBundle.do
	headers []string // name, value pairs

	wantStatus int
	// wantCode is the problem code of an error answer; checked, with the
	// whole problem body, whenever wantStatus >= 400.
	wantCode problem.Code
	// wantHeaders are response headers that must have exactly these values.
	wantHeaders map[string]string
	// wantContains and wantNotContains are substrings of the body.
	wantContains    []string
	wantNotContains []string
	// check runs further assertions on the response.
	check func(t *testing.T, r *response)
}

// runScenarios runs each scenario as a subtest, in order.
func runScenarios(t *testing.T, b *testBundle, scenarios []apiScenario) {
	t.Helper()
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			bt := b.withT(t)
			r := bt.do(sc.method, sc.path, sc.token, sc.body, sc.headers...)
			if r.Status != sc.wantStatus {
				t.Fatalf("%s %s = %d %s, want %d", sc.method, sc.path, r.Status, r.Body, sc.wantStatus)
			}
			if sc.wantStatus >= 400 {
				assertProblem(t, r, sc.wantStatus, sc.wantCode)
			} else if sc.wantCode != "" {
				t.Fatalf("scenario %q: wantCode %q with a success status", sc.name, sc.wantCode)
			}
			for k, v := range sc.wantHeaders {
				if got := r.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
			for _, s := range sc.wantContains {
				if !strings.Contains(string(r.Body), s) {
					t.Errorf("body %s does not contain %q", r.Body, s)
				}
			}
			for _, s := range sc.wantNotContains {
				if strings.Contains(string(r.Body), s) {
					t.Errorf("body %s contains %q", r.Body, s)
				}
			}
			if sc.check != nil {
				sc.check(t, r)
			}
		})
	}
}

// withT returns a copy of b that reports to t, for use inside subtests:
// b.must and b.do call t.Fatalf, which must run on t's own goroutine.
func (b *testBundle) withT(t *testing.T) *testBundle {
	c := *b
	c.t = t
	return &c
}

// problemBody is an application/problem+json body.
type problemBody struct {
	Type      string               `json:"type"`
	Title     string               `json:"title"`
	Status    int                  `json:"status"`
	Detail    string               `json:"detail"`
	Instance  string               `json:"instance"`
	Code      problem.Code         `json:"code"`
	Errors    []problem.FieldError `json:"errors"`
	Position  *int                 `json:"position"`
	RequestID string               `json:"request_id"`
}

// leakPatterns must never appear in an error body: SQL, driver names,
// panics, Go source paths, stack traces.
var leakPatterns = regexp.MustCompile(`(?i)sql|panic|goroutine|\.go:\d+|\.go\b|/internal/|runtime\.|select .* from|insert into|constraint`)

// neighbourSlug is the slug tests give a tenant that no request of another
// tenant may ever name in an error.
const neighbourSlug = "zz-neighbour-corp"

// assertProblem checks that r is a complete RFC 9457 problem with status
// and code that leaks nothing, and returns it.
func assertProblem(t *testing.T, r *response, status int, code problem.Code) problemBody {
	t.Helper()
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("Content-Type = %q, want application/problem+json (body %s)", ct, r.Body)
	}
	var p problemBody
	if err := json.Unmarshal(r.Body, &p); err != nil {
		t.Fatalf("problem body %s: %v", r.Body, err)
	}
	if r.Status != status || p.Status != status {
		t.Errorf("status = %d, body status %d, want %d (body %s)", r.Status, p.Status, status, r.Body)
	}
	if p.Code != code {
		t.Errorf("code = %q, want %q (body %s)", p.Code, code, r.Body)
	}
	if want := problem.TypeBase + string(p.Code); p.Type != want {
		t.Errorf("type = %q, want %q", p.Type, want)
	}
	if p.Title == "" || p.Detail == "" {
		t.Errorf("problem lacks a title or detail: %s", r.Body)
	}
	if p.RequestID == "" || p.RequestID != r.Header.Get("X-Request-Id") {
		t.Errorf("request_id = %q, X-Request-Id header %q: want equal and set", p.RequestID, r.Header.Get("X-Request-Id"))
	}
	if m := leakPatterns.FindString(string(r.Body)); m != "" {
		t.Errorf("problem body leaks %q: %s", m, r.Body)
	}
	// The instance echoes the request's own path, which may name any slug.
	if rest := strings.Replace(string(r.Body), p.Instance, "", 1); strings.Contains(rest, neighbourSlug) {
		t.Errorf("problem body names the neighbour tenant: %s", r.Body)
	}
	return p
}

// mustProblem sends a request and checks that it answers the problem.
func (b *testBundle) mustProblem(status int, code problem.Code, method, path, token string, body any, headers ...string) problemBody {
	b.t.Helper()
	r := b.do(method, path, token, body, headers...)
	if r.Status != status {
		b.t.Fatalf("%s %s = %d %s, want %d %s", method, path, r.Status, r.Body, status, code)
	}
	return assertProblem(b.t, r, status, code)
}

// page is a listing page.
type page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
	Total      *int64 `json:"total"`
}

// auditEntry is an audit entry as the API shows it.
type auditEntry struct {
	Seq       int64  `json:"seq"`
	Time      string `json:"time"`
	Actor     string `json:"actor"`
	Action    string `json:"action"`
	Resource  string `json:"resource"`
	RequestID string `json:"request_id"`
	Outcome   string `json:"outcome"`
	PrevHash  string `json:"prev_hash"`
	Hash      string `json:"hash"`
}

// verification is the body of …/audit/verify.
type verification struct {
	OK          bool   `json:"ok"`
	Length      int64  `json:"length"`
	Head        string `json:"head"`
	Checkpoints int    `json:"checkpoints"`
	BrokenAt    int64  `json:"broken_at"`
	Reason      string `json:"reason"`
}

// auditLog returns a tenant's whole audit chain, read with token, paging with
// after and next_cursor.
func (b *testBundle) auditLog(slug, token string) []auditEntry {
	b.t.Helper()
	var all []auditEntry
	after := ""
	for range 1000 {
		path := "/v1/tenants/" + slug + "/audit?limit=1000"
		if after != "" {
			path += "&after=" + after
		}
		var p page[auditEntry]
		b.must(200, "GET", path, token, nil).JSON(b.t, &p)
		all = append(all, p.Items...)
		if p.NextCursor == "" {
			return all
		}
		after = p.NextCursor
	}
	b.t.Fatalf("audit listing of %s does not end", slug)
	return nil
}

// lastAudit returns the newest entry of a tenant's chain.
func (b *testBundle) lastAudit(slug, token string) auditEntry {
	b.t.Helper()
	all := b.auditLog(slug, token)
	if len(all) == 0 {
		b.t.Fatalf("audit log of %s is empty", slug)
	}
	return all[len(all)-1]
}

// verify verifies a tenant's chain with token, as the operator by default.
func (b *testBundle) verify(slug, token string) verification {
	b.t.Helper()
	if token == "" {
		token = b.admin
	}
	var v verification
	b.must(200, "GET", "/v1/tenants/"+slug+"/audit/verify", token, nil).JSON(b.t, &v)
	return v
}

// listRecords fetches one page of records.
func (b *testBundle) listRecords(slug, key, col string, q url.Values) page[record] {
	b.t.Helper()
	path := "/v1/tenants/" + slug + "/collections/" + col + "/records"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var p page[record]
	b.must(200, "GET", path, key, nil).JSON(b.t, &p)
	return p
}

// listAllRecords pages through a listing with q (limit included) and returns
// every record in order, with the number of pages.
func (b *testBundle) listAllRecords(slug, key, col string, q url.Values) ([]record, int) {
	b.t.Helper()
	var all []record
	q = cloneValues(q)
	for pages := 1; pages <= 10_000; pages++ {
		p := b.listRecords(slug, key, col, q)
		all = append(all, p.Items...)
		if p.NextCursor == "" {
			return all, pages
		}
		q.Set("cursor", p.NextCursor)
	}
	b.t.Fatalf("listing of %s does not end", col)
	return nil, 0
}

func cloneValues(q url.Values) url.Values {
	c := url.Values{}
	for k, v := range q {
		c[k] = append([]string(nil), v...)
	}
	return c
}

// usage is the body of …/usage.
type usage struct {
	Records    int64  `json:"records"`
	Bytes      int64  `json:"bytes"`
	Plan       string `json:"plan"`
	MaxRecords int64  `json:"max_records"`
	MaxBytes   int64  `json:"max_bytes"`
}

func (b *testBundle) usage(slug, key string) usage {
	b.t.Helper()
	var u usage
	b.must(200, "GET", "/v1/tenants/"+slug+"/usage", key, nil).JSON(b.t, &u)
	return u
}

// tenantDB opens the SQLite file holding a tenant's rows for tampering.
func (b *testBundle) tenantDB(id tenant.ID, iso tenant.Isolation) *sql.DB {
	sqliteOnly(b.t)
	b.t.Helper()
	path := b.dir + "/bulkhead.db"
	if iso == tenant.Silo {
		path = b.dir + "/tenants/" + string(id) + ".db"
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		b.t.Fatalf("open %s: %v", path, err)
	}
	db.SetMaxOpenConns(1)
	b.t.Cleanup(func() { db.Close() })
	return db
}

// exec runs one statement that must change exactly want rows.
func execRows(t *testing.T, db *sql.DB, want int64, query string, args ...any) {
	t.Helper()
	res, err := db.Exec(query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	if n != want {
		t.Fatalf("%s %v changed %d rows, want %d", query, args, n, want)
	}
}

// path joins the segments of a tenant API path.
func tpath(slug string, segs ...any) string {
	var sb strings.Builder
	sb.WriteString("/v1/tenants/")
	sb.WriteString(slug)
	for _, s := range segs {
		sb.WriteByte('/')
		sb.WriteString(fmt.Sprint(s))
	}
	return sb.String()
}
