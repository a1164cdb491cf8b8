package console

import (
	"cmp"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// operatorRoutes registers the operator's pages.
func (c *Console) operatorRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /ui/noisy", c.page(operatorOnly, c.noisy))
	mux.HandleFunc("GET /ui/tenants/{slug}", c.page(operatorOnly, c.tenantPage))
	mux.HandleFunc("GET /ui/tenants/{slug}/series", c.page(operatorOnly, c.tenantSeries))
	mux.HandleFunc("POST /ui/tenants/{slug}/status", c.page(operatorOnly, c.tenantStatus))
	mux.HandleFunc("POST /ui/tenants/{slug}/plan", c.page(operatorOnly, c.tenantPlan))
	mux.HandleFunc("GET /ui/audit", c.page(operatorOnly, c.audit))
}

// tenantRow is one tenant of the dashboard: the tenant and its health,
// when it had traffic in the window.
type tenantRow struct {
	Slug, Name, Plan, Status string
	Health                   *tenantHealth
}

// dashboardData is the dashboard's data.
type dashboardData struct {
	Tenants    []tenantRow
	NextCursor string
	// HealthMissing says the health figures are not available (the API
	// answered 404 or 403), so the page says "no data".
	HealthMissing bool
	Window        int
	Breakers      []breakerRow
}

// breakerRow is one of the node's circuit breakers.
type breakerRow struct {
	Name, State string
}

// Open says whether the breaker is not closed.
func (b breakerRow) Open() bool { return b.State != "closed" }

// tenantList is the answer of GET /v1/tenants.
type tenantList struct {
	Items []struct {
		Slug   string `json:"slug"`
		Name   string `json:"name"`
		Plan   string `json:"plan"`
		Status string `json:"status"`
	} `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// dashboard shows the tenants with their plan, status and health, and the
// node's breakers.
func (c *Console) dashboard(w http.ResponseWriter, r *http.Request, s *session) {
	q := url.Values{"limit": {"100"}}
	if cur := r.URL.Query().Get("cursor"); cur != "" {
		q.Set("cursor", cur)
	}
	var tl tenantList
	if err := c.call(r, s, http.MethodGet, "/v1/tenants?"+q.Encode(), nil, &tl); err != nil {
		c.renderError(w, r, s, 0, err)
		return
	}
	ranking, missing := c.ranking(r, s, "rate")
	health := map[string]*tenantHealth{}
	for i := range ranking.Items {
		health[ranking.Items[i].Tenant] = &ranking.Items[i]
	}
	d := &dashboardData{NextCursor: tl.NextCursor, HealthMissing: missing, Window: ranking.WindowSeconds,
		Breakers: breakerRows(ranking.Breakers)}
	for _, t := range tl.Items {
		d.Tenants = append(d.Tenants, tenantRow{Slug: t.Slug, Name: t.Name, Plan: t.Plan, Status: t.Status, Health: health[t.Slug]})
	}
	v := c.view(s, "Dashboard", "dashboard", d)
	if isHTMX(r) {
		c.renderFragment(w, r, "dashboard", "live", v)
		return
	}
	c.render(w, r, http.StatusOK, "dashboard", v)
}

// ranking reads GET /v1/health/tenants sorted by sort. missing is true
// when the API has no such route yet or refuses it: pages then say "no
// data" rather than fail.
func (c *Console) ranking(r *http.Request, s *session, sort string) (rk healthRanking, missing bool) {
	err := c.call(r, s, http.MethodGet, "/v1/health/tenants?"+url.Values{"sort": {sort}, "limit": {"100"}}.Encode(), nil, &rk)
	if err != nil {
		c.log.Debug("console: tenant health unavailable", "err", err)
		return healthRanking{}, true
	}
	return rk, false
}

// breakerRows lists breakers by name.
func breakerRows(m map[string]string) []breakerRow {
	rows := make([]breakerRow, 0, len(m))
	for name, state := range m {
		rows = append(rows, breakerRow{Name: name, State: state})
	}
	slices.SortFunc(rows, func(a, b breakerRow) int { return strings.Compare(a.Name, b.Name) })
	return rows
}

// noisySorts are the noisy-neighbour view's orders, as the API names them.
var noisySorts = []string{"rate", "error_ratio", "p99", "throttled", "shed"}

// noisyData is the noisy-neighbour view's data.
type noisyData struct {
	Sort          string
	Sorts         []string
	Items         []tenantHealth
	Pressured     []tenantHealth // throttled or shed in the window
	HealthMissing bool
	Window        int
	Breakers      []breakerRow
}

// noisy shows the tenants that use the most (by the chosen sort), and who
// is throttled or shed right now. htmx reloads its table every few seconds.
func (c *Console) noisy(w http.ResponseWriter, r *http.Request, s *session) {
	sort := r.URL.Query().Get("sort")
	if !slices.Contains(noisySorts, sort) {
		sort = "rate"
	}
	rk, missing := c.ranking(r, s, sort)
	d := &noisyData{Sort: sort, Sorts: noisySorts, Items: rk.Items, HealthMissing: missing, Window: rk.WindowSeconds,
		Breakers: breakerRows(rk.Breakers)}
	for _, h := range rk.Items {
		if h.Pressured() {
			d.Pressured = append(d.Pressured, h)
		}
	}
	slices.SortStableFunc(d.Pressured, func(a, b tenantHealth) int {
		return cmp.Compare(b.Throttled+b.Shed, a.Throttled+a.Shed)
	})
	v := c.view(s, "Noisy neighbours", "noisy", d)
	if isHTMX(r) {
		c.renderFragment(w, r, "noisy", "live", v)
		return
	}
	c.render(w, r, http.StatusOK, "noisy", v)
}

// tenantPageData is the tenant page's data.
type tenantPageData struct {
	Slug, Name, Plan, Status string
	Health                   *tenantHealth
	HealthMissing            bool
	Plans                    []string
}

// tenantDetail is the answer of GET /v1/tenants/{tenant}.
type tenantDetail struct {
	Slug   string `json:"slug"`
	Name   string `json:"name"`
	Plan   string `json:"plan"`
	Status string `json:"status"`
}

// tenantPage shows one tenant: its health figures and live charts, quota
// use, plan and status, with the forms that change them.
func (c *Console) tenantPage(w http.ResponseWriter, r *http.Request, s *session) {
	c.showTenant(w, r, s, http.StatusOK, tenantNotices[r.URL.Query().Get("done")], nil)
}

// tenantNotices are the notices the tenant page shows after a change (its
// "done" parameter): fixed texts, so that a link cannot make the page say
// anything else.
var tenantNotices = map[string]string{
	"suspended": "Tenant suspended.",
	"resumed":   "Tenant resumed.",
	"plan":      "Plan changed.",
}

// showTenant renders the tenant page with a notice or an error above it.
func (c *Console) showTenant(w http.ResponseWriter, r *http.Request, s *session, status int, notice string, e *APIError) {
	slug := r.PathValue("slug")
	var t tenantDetail
	if err := c.call(r, s, http.MethodGet, "/v1/tenants/"+url.PathEscape(slug), nil, &t); err != nil {
		c.renderError(w, r, s, 0, err)
		return
	}
	d := &tenantPageData{Slug: t.Slug, Name: t.Name, Plan: t.Plan, Status: t.Status}
	var h tenantHealth
	if err := c.call(r, s, http.MethodGet, "/v1/tenants/"+url.PathEscape(slug)+"/health", nil, &h); err != nil {
		d.HealthMissing = true
	} else {
		d.Health = &h
	}
	v := c.view(s, "Tenant "+t.Slug, "dashboard", d)
	v.Notice, v.Error = notice, e
	if isHTMX(r) { // the poll of the live part, which has no plan list
		c.renderFragment(w, r, "tenant_op", "live", v)
		return
	}
	var plans struct {
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
	}
	if err := c.call(r, s, http.MethodGet, "/v1/plans", nil, &plans); err == nil {
		for _, p := range plans.Items {
			d.Plans = append(d.Plans, p.Name)
		}
	}
	if !slices.Contains(d.Plans, d.Plan) {
		d.Plans = append(d.Plans, d.Plan)
	}
	c.render(w, r, status, "tenant_op", v)
}

// tenantSeries answers the tenant page's charts: the series of GET
// /v1/tenants/{tenant}/health as columns uPlot takes (time, rate, p99,
// throttled, shed), or empty columns when there is no data.
func (c *Console) tenantSeries(w http.ResponseWriter, r *http.Request, s *session) {
	var h tenantHealth
	cols := [5][]float64{{}, {}, {}, {}, {}}
	err := c.call(r, s, http.MethodGet, "/v1/tenants/"+url.PathEscape(r.PathValue("slug"))+"/health", nil, &h)
	if e := asAPIError(err); e != nil && !e.NotFound() {
		c.log.Debug("console: tenant series unavailable", "err", err)
	}
	if err == nil && h.Series != nil {
		for _, p := range h.Series.Points {
			cols[0] = append(cols[0], float64(p.T))
			cols[1] = append(cols[1], p.Rate)
			cols[2] = append(cols[2], p.P99ms)
			cols[3] = append(cols[3], float64(p.Throttled))
			cols[4] = append(cols[4], float64(p.Shed))
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{"columns": cols, "available": err == nil})
}

// tenantStatus suspends or resumes a tenant (PATCH status).
func (c *Console) tenantStatus(w http.ResponseWriter, r *http.Request, s *session) {
	status := r.PostFormValue("status")
	done := map[string]string{"active": "resumed", "suspended": "suspended"}[status]
	if done == "" {
		c.showTenant(w, r, s, http.StatusBadRequest, "", &APIError{Status: http.StatusBadRequest, Code: "invalid_parameter",
			Detail: "status must be active or suspended"})
		return
	}
	c.patchTenant(w, r, s, map[string]string{"status": status}, done)
}

// tenantPlan moves a tenant to another plan (PATCH plan).
func (c *Console) tenantPlan(w http.ResponseWriter, r *http.Request, s *session) {
	c.patchTenant(w, r, s, map[string]string{"plan": r.PostFormValue("plan")}, "plan")
}

// patchTenant applies a change. Done, it sends the browser back to the
// tenant page (so that reloading does not post again), which says what
// was done; refused, it shows the page with the API's error.
func (c *Console) patchTenant(w http.ResponseWriter, r *http.Request, s *session, change map[string]string, done string) {
	slug := r.PathValue("slug")
	err := c.call(r, s, http.MethodPatch, "/v1/tenants/"+url.PathEscape(slug), change, nil)
	if e := asAPIError(err); e != nil {
		if e.NotFound() {
			c.renderNotFound(w, r, s)
			return
		}
		c.showTenant(w, r, s, e.Status, "", e)
		return
	}
	http.Redirect(w, r, "/ui/tenants/"+url.PathEscape(slug)+"?done="+done, http.StatusSeeOther)
}

// auditData is the platform audit page's data.
type auditData struct {
	Items        []auditEntry
	After        int64
	Next         string
	Verification *auditVerification
	VerifyError  *APIError
}

// auditEntry is one entry of an audit chain, the platform's or a tenant's.
type auditEntry struct {
	Seq       int64     `json:"seq"`
	Time      time.Time `json:"time"`
	Actor     string    `json:"actor"`
	Action    string    `json:"action"`
	Resource  string    `json:"resource"`
	RequestID string    `json:"request_id"`
	Outcome   string    `json:"outcome"`
	Hash      string    `json:"hash"`
}

// auditVerification is the answer of GET /v1/audit/verify.
type auditVerification struct {
	OK          bool   `json:"ok"`
	Length      int64  `json:"length"`
	Head        string `json:"head"`
	Checkpoints int    `json:"checkpoints"`
	BrokenAt    int64  `json:"broken_at"`
	Reason      string `json:"reason"`
	Start       int64  `json:"start"`
}

// auditPageSize is how many audit entries a page shows.
const auditPageSize = 50

// audit shows the platform's audit log, a page at a time (oldest first,
// "after" a sequence number), and whether its chain verifies.
func (c *Console) audit(w http.ResponseWriter, r *http.Request, s *session) {
	after, _ := strconv.ParseInt(r.URL.Query().Get("after"), 10, 64)
	after = max(after, 0)
	q := url.Values{"limit": {strconv.Itoa(auditPageSize)}, "after": {strconv.FormatInt(after, 10)}}
	var page struct {
		Items      []auditEntry `json:"items"`
		NextCursor string       `json:"next_cursor"`
	}
	if err := c.call(r, s, http.MethodGet, "/v1/audit?"+q.Encode(), nil, &page); err != nil {
		c.renderError(w, r, s, 0, err)
		return
	}
	d := &auditData{Items: page.Items, After: after, Next: page.NextCursor}
	var ver auditVerification
	if err := c.call(r, s, http.MethodGet, "/v1/audit/verify", nil, &ver); err != nil {
		d.VerifyError = asAPIError(err)
	} else {
		d.Verification = &ver
	}
	c.render(w, r, http.StatusOK, "audit", c.view(s, "Platform audit", "audit", d))
}
