package tenant

// Plan is the set of limits a tenant is held to: the admission layer
// enforces the request limits, the write path the quotas. For every limit
// but Burst and Weight, 0 means none.
type Plan struct {
	// Name identifies the plan, such as "free".
	Name string `json:"name"`
	// RatePerSec is the sustained request rate per tenant; 0 means no rate
	// limit, and Burst is then ignored.
	RatePerSec float64 `json:"rate_per_sec"`
	// Burst is how many requests may arrive at once above the sustained rate.
	Burst int `json:"burst"`
	// MaxInflight caps the tenant's concurrent requests; 0 means no cap.
	MaxInflight int `json:"max_inflight"`
	// Weight is the tenant's share of database slots relative to others.
	Weight int `json:"weight"`
	// MaxRecords caps the number of records the tenant may hold; 0 means
	// no cap.
	MaxRecords int64 `json:"max_records"`
	// MaxBytes caps the total size of the tenant's records (their data as
	// stored, compact JSON); 0 means no cap.
	MaxBytes int64 `json:"max_bytes"`
}

// DefaultPlans are the plans seeded into a new installation.
var DefaultPlans = []Plan{
	{Name: "free", RatePerSec: 10, Burst: 20, MaxInflight: 4, Weight: 1, MaxRecords: 10_000, MaxBytes: 50 << 20},
	{Name: "pro", RatePerSec: 100, Burst: 200, MaxInflight: 32, Weight: 4, MaxRecords: 1_000_000, MaxBytes: 5 << 30},
	{Name: "enterprise", RatePerSec: 1000, Burst: 2000, MaxInflight: 256, Weight: 16, MaxRecords: 100_000_000, MaxBytes: 500 << 30},
}

// DefaultPlan is the plan given to a tenant created without one.
const DefaultPlan = "free"
