package core

import (
	"context"
	"errors"
	"regexp"
	"sync"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/access"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Usage over time. Each node counts, in memory, the requests each tenant's
// credentials make and the time each tenant's jobs work, per hour, and
// FlushUsage adds what it counted to the tenant's rows (store.UsageHours)
// about once a minute and when the Core closes: counting adds no database
// write to a request, and the nodes sharing a database add up.

// MaxUsageRange is the longest range UsageHistory answers: 366 days.
const MaxUsageRange = 366 * 24 * time.Hour

// usageMeter holds the counts this node has not flushed yet.
type usageMeter struct {
	mu     sync.Mutex
	counts map[usageKey]*usageCount
}

type usageKey struct {
	tenant tenant.ID
	hour   int64 // Unix seconds of the hour's start
}

type usageCount struct {
	requests int64
	job      time.Duration
}

func (m *usageMeter) add(tid tenant.ID, hour int64, requests int64, job time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.counts == nil {
		m.counts = map[usageKey]*usageCount{}
	}
	k := usageKey{tid, hour}
	n := m.counts[k]
	if n == nil {
		n = &usageCount{}
		m.counts[k] = n
	}
	n.requests += requests
	n.job += job
}

// take empties the meter and returns what it held.
func (m *usageMeter) take() map[usageKey]*usageCount {
	m.mu.Lock()
	defer m.mu.Unlock()
	counts := m.counts
	m.counts = nil
	return counts
}

// hourOf is the Unix second of the start of t's hour.
func hourOf(t time.Time) int64 { return t.Unix() - t.Unix()%3600 }

// CountRequest counts one request of the scope's tenant in this hour's
// usage. It touches only memory; FlushUsage stores the counts. The request
// path calls it once per admitted request of a tenant's credential.
func (s *Scope) CountRequest() {
	if s == nil || s.core == nil {
		return
	}
	s.core.usage.add(s.tenant.ID, hourOf(s.core.now()), 1, 0)
}

// addJobTime counts d of job work in tid's usage; a zero tid is the
// platform's work and counts nowhere.
func (c *Core) addJobTime(tid tenant.ID, d time.Duration) {
	if tid == "" || d <= 0 {
		return
	}
	c.usage.add(tid, hourOf(c.now()), 0, d)
}

// FlushUsage adds the requests and job time this node counted to each
// tenant's hourly usage, one transaction per tenant, and samples the
// tenant's records and bytes into the same rows. Counts of a tenant whose
// transaction fails are kept for the next flush; counts of a tenant that
// no longer exists are dropped. Job time is stored in whole milliseconds;
// the rest waits for the next flush. It is safe to call concurrently.
func (c *Core) FlushUsage(ctx context.Context) error {
	counts := c.usage.take()
	byTenant := map[tenant.ID][]*store.UsageHour{}
	for k, n := range counts {
		ms := n.job.Milliseconds()
		if rest := n.job - time.Duration(ms)*time.Millisecond; rest > 0 {
			c.usage.add(k.tenant, k.hour, 0, rest)
		}
		if n.requests == 0 && ms == 0 {
			continue
		}
		byTenant[k.tenant] = append(byTenant[k.tenant], &store.UsageHour{Hour: time.Unix(k.hour, 0).UTC(),
			Requests: n.requests, JobMS: ms, Sampled: true})
	}
	var errs []error
	for tid, hours := range byTenant {
		err := c.store.InTenant(ctx, tid, func(tx store.Tx) error {
			u, err := tx.Usage(ctx)
			if err != nil {
				return err
			}
			for _, h := range hours {
				h.Records, h.Bytes = u.Records, u.Bytes
				if err := tx.AddUsageHour(ctx, h); err != nil {
					return err
				}
			}
			return nil
		})
		switch {
		case errors.Is(err, store.ErrNotFound):
			// The tenant was purged: its counts go with it.
		case err != nil:
			for _, h := range hours {
				c.usage.add(tid, h.Hour.Unix(), h.Requests, time.Duration(h.JobMS)*time.Millisecond)
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// UsageHour is one hour of a tenant's usage, as GET …/usage?from=&to=
// answers it.
type UsageHour struct {
	// Hour is the hour's start, UTC.
	Hour time.Time `json:"hour"`
	// Records and Bytes are what the tenant stored as of the hour's last
	// sample.
	Records int64 `json:"records"`
	Bytes   int64 `json:"bytes"`
	// Requests counts the requests of the tenant's credentials.
	Requests int64 `json:"requests"`
	// JobMS counts the milliseconds its background jobs worked.
	JobMS int64 `json:"job_ms"`
}

// UsageHistory is the answer of GET …/usage?from=&to=.
type UsageHistory struct {
	Items []*UsageHour `json:"items"`
}

// UsageTimePattern is what ParseUsageRange accepts for from and to: an
// RFC 3339 time or a date (midnight UTC). The API's description of the
// parameters states it.
const UsageTimePattern = `^[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2}))?$`

var usageTimePattern = regexp.MustCompile(UsageTimePattern)

// DefaultUsageRange is the range of a usage query that names only one end
// of it.
const DefaultUsageRange = 24 * time.Hour

// ParseUsageRange reads the from and to of a usage query: each an RFC 3339
// time or a date (YYYY-MM-DD, midnight UTC), either may be empty. to
// defaults to now, from to DefaultUsageRange before to. The range must run
// forwards and span at most MaxUsageRange. Errors are invalid Errors
// naming the field.
func ParseUsageRange(from, to string, now time.Time) (time.Time, time.Time, error) {
	parse := func(field, s string) (time.Time, error) {
		if usageTimePattern.MatchString(s) {
			layout := time.RFC3339Nano
			if len(s) == len(time.DateOnly) {
				layout = time.DateOnly
			}
			if t, err := time.Parse(layout, s); err == nil {
				return t.UTC(), nil
			}
		}
		return time.Time{}, invalid(field, field+` must be an RFC 3339 time ("2026-12-01T00:00:00Z") or a date ("2026-12-01")`)
	}
	t := now.UTC()
	var err error
	if to != "" {
		if t, err = parse("to", to); err != nil {
			return t, t, err
		}
	}
	f := t.Add(-DefaultUsageRange)
	if from != "" {
		if f, err = parse("from", from); err != nil {
			return f, t, err
		}
	}
	switch {
	case !t.After(f):
		return f, t, invalid("to", "to must be after from")
	case t.Sub(f) > MaxUsageRange:
		return f, t, invalid("to", "the range from from to to must be at most 366 days")
	}
	return f, t, nil
}

// UsageHistory returns the tenant's usage per hour for the hours that
// start in [from, to), oldest first, from and to as ParseUsageRange reads
// them; hours in which the tenant made no request and ran no job have no
// row. Counts reach it within a minute or so (FlushUsage). The tenant's
// admins may read it, and the operator.
func (s *Scope) UsageHistory(ctx context.Context, from, to string) (*UsageHistory, error) {
	if err := s.allow(access.ReadUsageHistory); err != nil {
		return nil, err
	}
	f, t, err := ParseUsageRange(from, to, s.core.now())
	if err != nil {
		return nil, err
	}
	var rows []*store.UsageHour
	err = s.read(ctx, func(tx store.Tx) (err error) {
		rows, err = tx.ListUsageHours(ctx, f, t, int(MaxUsageRange/time.Hour)+1)
		return err
	})
	if err != nil {
		return nil, err
	}
	h := &UsageHistory{Items: make([]*UsageHour, 0, len(rows))}
	for _, r := range rows {
		h.Items = append(h.Items, &UsageHour{Hour: r.Hour, Records: r.Records, Bytes: r.Bytes, Requests: r.Requests, JobMS: r.JobMS})
	}
	return h, nil
}
