package httpapi

import (
	"encoding/csv"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/tenant"
)

type usageHour struct {
	Hour     time.Time `json:"hour"`
	Records  int64     `json:"records"`
	Bytes    int64     `json:"bytes"`
	Requests int64     `json:"requests"`
	JobMS    int64     `json:"job_ms"`
}

// usageRange is a from/to query covering the last and the next day, so
// that an hour boundary during the test changes nothing.
func usageRange() string {
	now := time.Now().UTC()
	return "?" + url.Values{"from": {now.Add(-24 * time.Hour).Format(time.RFC3339)}, "to": {now.Add(24 * time.Hour).Format(time.RFC3339)}}.Encode()
}

func (b *testBundle) usageHours(slug, token string) []usageHour {
	b.t.Helper()
	var h struct{ Items []usageHour }
	b.must(200, "GET", tpath(slug, "usage")+usageRange(), token, nil).JSON(b.t, &h)
	return h.Items
}

func sumRequests(hs []usageHour) int64 {
	var n int64
	for _, h := range hs {
		n += h.Requests
	}
	return n
}

// TestUsageHours: two nodes sharing a store each count a tenant's
// requests in memory and add them to the tenant's hourly rows when they
// flush, so the hours hold the requests of both; records and bytes are
// sampled with them. The hours read as JSON and, with Accept: text/csv,
// as the same CSV; the current counters answer as before without a range;
// bad ranges are 400 naming the parameter; another tenant's admin gets
// 404, a member 403, and the operator reads the hours (not the current
// counters, which stay closed to it).
func TestUsageHours(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	one, two := setupIn(t, dir), setupIn(t, dir)
	one.tenant("metered", tenant.Pooled)
	one.tenant("other", tenant.Pooled)
	admin, member := one.apiKey("metered", tenant.Admin), one.apiKey("metered", tenant.Member)
	other := one.apiKey("other", tenant.Admin)
	one.collection("metered", admin, "notes", nil) // 1 request of the tenant's
	for i := range 3 {                             // 3 more, on node one
		one.createRecord("metered", admin, "notes", map[string]any{"i": i})
	}
	for range 4 { // 4 on node two
		two.must(200, "GET", tpath("metered", "collections"), member, nil)
	}
	one.must(200, "GET", tpath("other", "collections"), other, nil) // another tenant's
	one.must(200, "GET", "/v1/tenants/metered", one.admin, nil)     // the operator's: not the tenant's usage

	if got := one.usageHours("metered", admin); len(got) != 0 {
		t.Errorf("hours before any flush = %+v, want none (counting writes nothing per request)", got)
	}
	for _, b := range []*testBundle{one, two} {
		if err := b.core.FlushUsage(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	// Node one served 1+3 requests and the read above, node two 4.
	hours := one.usageHours("metered", admin)
	if got := sumRequests(hours); got != 9 {
		t.Errorf("requests across the hours = %d, want 9 (5 on node one, 4 on node two): %+v", got, hours)
	}
	last := hours[len(hours)-1]
	u := one.usage("metered", admin)
	if last.Records != 3 || last.Records != u.Records || last.Bytes != u.Bytes {
		t.Errorf("the last hour's sample = %d records, %d bytes; want the current %v, %v", last.Records, last.Bytes, u.Records, u.Bytes)
	}
	if last.Hour.Truncate(time.Hour) != last.Hour || last.Hour.Location() != time.UTC {
		t.Errorf("hour %v does not start an hour in UTC", last.Hour)
	}
	if got := sumRequests(one.usageHours("other", other)); got != 1 {
		t.Errorf("the other tenant's requests = %d, want 1", got)
	}

	// CSV, for billing: the same hours.
	r := one.must(200, "GET", tpath("metered", "usage")+usageRange(), admin, nil, "Accept", "text/csv")
	if ct := r.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type = %q, want text/csv; charset=utf-8", ct)
	}
	rows, err := csv.NewReader(strings.NewReader(string(r.Body))).ReadAll()
	if err != nil {
		t.Fatalf("CSV %q: %v", r.Body, err)
	}
	if len(rows) != len(hours)+1 || strings.Join(rows[0], ",") != "hour,records,bytes,requests,job_ms" {
		t.Fatalf("CSV = %q, want the header and %d hours", r.Body, len(hours))
	}
	for i, h := range hours {
		want := []string{h.Hour.Format(time.RFC3339), strconv.FormatInt(h.Records, 10), strconv.FormatInt(h.Bytes, 10),
			strconv.FormatInt(h.Requests, 10), strconv.FormatInt(h.JobMS, 10)}
		if strings.Join(rows[i+1], ",") != strings.Join(want, ",") {
			t.Errorf("CSV line %d = %q, want %q", i+1, rows[i+1], want)
		}
	}
	if !strings.HasSuffix(string(r.Body), "\r\n") {
		t.Errorf("CSV lines do not end in CRLF: %q", r.Body)
	}
	// JSON is preferred unless CSV is preferred to it.
	for accept, wantCSV := range map[string]bool{
		"text/csv":                             true,
		"text/csv, application/json;q=0.5":     true,
		"application/json, text/csv;q=0.5":     false,
		"*/*":                                  false,
		"text/csv;q=0":                         false,
		"application/json;q=0.1, text/csv":     true,
		"application/problem+json, text/plain": false,
	} {
		ct := one.must(200, "GET", tpath("metered", "usage")+usageRange(), admin, nil, "Accept", accept).Header.Get("Content-Type")
		if strings.HasPrefix(ct, "text/csv") != wantCSV {
			t.Errorf("Accept %q: Content-Type %q, want CSV %v", accept, ct, wantCSV)
		}
	}

	// Without a range, the current counters, exactly as before.
	var cur map[string]any
	one.must(200, "GET", tpath("metered", "usage"), admin, nil).JSON(t, &cur)
	if _, ok := cur["max_records"]; !ok || cur["items"] != nil {
		t.Errorf("usage without a range = %v, want the current counters", cur)
	}

	runScenarios(t, one, []apiScenario{
		fieldScenario("FromNotATime", "GET", tpath("metered", "usage")+"?from=yesterday", admin, nil, "from"),
		fieldScenario("FromNoMonth13", "GET", tpath("metered", "usage")+"?from=2026-13-01", admin, nil, "from"),
		fieldScenario("ToBeforeFrom", "GET", tpath("metered", "usage")+"?from=2026-12-02&to=2026-12-01", admin, nil, "to"),
		fieldScenario("RangeTooLong", "GET", tpath("metered", "usage")+"?from=2024-01-01&to=2026-01-01", admin, nil, "to"),
		{name: "MaxRange", method: "GET", path: tpath("metered", "usage") + "?from=2025-01-01&to=2026-01-02", token: admin, wantStatus: 200},
		{name: "OtherTenantsAdmin", method: "GET", path: tpath("metered", "usage") + usageRange(), token: other,
			wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "OtherTenantsAdminCSV", method: "GET", path: tpath("metered", "usage") + usageRange(), token: other,
			headers: []string{"Accept", "text/csv"}, wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "Member", method: "GET", path: tpath("metered", "usage") + usageRange(), token: member,
			wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "OperatorHours", method: "GET", path: tpath("metered", "usage") + usageRange(), token: one.admin, wantStatus: 200},
		{name: "OperatorCurrentCounters", method: "GET", path: tpath("metered", "usage"), token: one.admin,
			wantStatus: 403, wantCode: problem.CodeForbidden},
	})
}
