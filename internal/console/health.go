package console

// The API's per-tenant health answers (GET /v1/tenants/{tenant}/health and
// GET /v1/health/tenants), as the console reads them.

// tenantHealth is one tenant's figures over the last WindowSeconds.
type tenantHealth struct {
	Tenant        string        `json:"tenant"`
	TenantID      string        `json:"tenant_id"`
	Status        string        `json:"status"`
	Plan          string        `json:"plan"`
	WindowSeconds int           `json:"window_seconds"`
	Requests      int64         `json:"requests"`
	Rate          float64       `json:"rate"`
	ErrorRatio    float64       `json:"error_ratio"`
	P50ms         float64       `json:"p50_ms"`
	P99ms         float64       `json:"p99_ms"`
	Throttled     int64         `json:"throttled"`
	Shed          int64         `json:"shed"`
	Quota         []quotaUse    `json:"quota"`
	OpenBreakers  []string      `json:"open_breakers"`
	Series        *healthSeries `json:"series,omitempty"`
}

// quotaUse is one limit of a tenant's plan and how much of it is used.
type quotaUse struct {
	Name  string  `json:"name"`
	Used  int64   `json:"used"`
	Limit int64   `json:"limit"`
	Ratio float64 `json:"ratio"`
}

// healthSeries is the last minutes of a tenant's figures, step by step.
type healthSeries struct {
	StepSeconds int           `json:"step_seconds"`
	Points      []healthPoint `json:"points"`
}

// healthPoint is one step of a healthSeries.
type healthPoint struct {
	T         int64   `json:"t"`
	Rate      float64 `json:"rate"`
	P99ms     float64 `json:"p99_ms"`
	Errors    int64   `json:"errors"`
	Throttled int64   `json:"throttled"`
	Shed      int64   `json:"shed"`
}

// healthRanking is the answer of GET /v1/health/tenants.
type healthRanking struct {
	WindowSeconds int               `json:"window_seconds"`
	Items         []tenantHealth    `json:"items"`
	Breakers      map[string]string `json:"breakers"`
}

// Pressured says whether the tenant was throttled or shed in the window.
func (h *tenantHealth) Pressured() bool { return h.Throttled > 0 || h.Shed > 0 }
