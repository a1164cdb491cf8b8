package store

import (
	"context"
	"time"
)

// UsageHours keep a tenant's usage over time, one row per hour: what
// billing reads. Rows are added to, never replaced, so that the nodes
// serving a tenant each add their own counts.
type UsageHours interface {
	// AddUsageHour adds h.Requests and h.JobMS to the row of h.Hour,
	// creating it, and, when h.Sampled, sets its Records and Bytes to
	// h's: the tenant's storage as of the hour's last sample. h.Hour must
	// be the start of an hour (UTC).
	AddUsageHour(ctx context.Context, h *UsageHour) error
	// ListUsageHours returns the rows whose Hour is in [from, to), oldest
	// first, at most limit of them.
	ListUsageHours(ctx context.Context, from, to time.Time, limit int) ([]*UsageHour, error)
}

// UsageHour is a tenant's usage in the hour that starts at Hour.
type UsageHour struct {
	Hour time.Time
	// Records and Bytes are what the tenant stored as of the hour's last
	// sample.
	Records int64
	Bytes   int64
	// Requests counts the requests the tenant's credentials made.
	Requests int64
	// JobMS counts the milliseconds of the tenant's background jobs.
	JobMS int64
	// Sampled says Records and Bytes hold a sample (AddUsageHour only).
	Sampled bool
}
