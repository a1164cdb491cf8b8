package core

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/bulkheadhq/bulkhead/filter"
	"github.com/bulkheadhq/bulkhead/internal/jobs"
	"github.com/bulkheadhq/bulkhead/store"
)

// Retention durations are a positive number with a unit: d (days of 24
// hours), h or m. The number's digits bound them: at most 99999d,
// 999999h or 99999999m (about 274, 114 and 190 years).
var (
	retentionPattern = regexp.MustCompile(`^([1-9][0-9]{0,4}d|[1-9][0-9]{0,5}h|[1-9][0-9]{0,7}m)$`)
	// retentionFieldPattern is what a retention field may be named: a
	// top-level data key that every store can address, or a system time.
	retentionFieldPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
)

// RetentionInterval is how often App enqueues each tenant's retention job
// (EnqueueRetention).
const RetentionInterval = time.Hour

// parseRetention reads a retention duration of field, such as "90d".
func parseRetention(field, s string) (time.Duration, error) {
	if !retentionPattern.MatchString(s) {
		return 0, invalid(field, `a retention is a positive whole number of days, hours or minutes, such as "90d", "12h" or "30m", `+
			"at most 99999d, 999999h or 99999999m")
	}
	n, _ := strconv.ParseInt(s[:len(s)-1], 10, 64) // the pattern bounds it
	unit := map[byte]time.Duration{'d': 24 * time.Hour, 'h': time.Hour, 'm': time.Minute}[s[len(s)-1]]
	return time.Duration(n) * unit, nil
}

// formatRetention spells d in the largest unit that holds it exactly.
func formatRetention(d time.Duration) string {
	switch {
	case d <= 0:
		return ""
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d%time.Hour == 0:
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h"
	default:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m"
	}
}

// validRetention checks a collection's retention settings against its
// schema's fields and its encrypted fields.
func validRetention(p *PutCollectionParams, fields fieldSet, encrypted []string) (time.Duration, string, error) {
	var keep time.Duration
	if p.Retention != nil {
		var err error
		if keep, err = parseRetention("retention", *p.Retention); err != nil {
			return 0, "", err
		}
	}
	if p.RetentionField == nil {
		return keep, "", nil
	}
	f := *p.RetentionField
	switch {
	case !retentionFieldPattern.MatchString(f):
		return 0, "", invalid("retention_field", "retention_field is created_at, updated_at or a top-level data field "+
			"named by ^[A-Za-z_][A-Za-z0-9_]{0,63}$")
	case f == store.RetentionCreatedAt || f == store.RetentionUpdatedAt:
		return keep, f, nil
	case filter.IsSystem(f):
		return 0, "", invalid("retention_field", fmt.Sprintf("%s is not a time; use created_at, updated_at or a data field", f))
	case slices.Contains(encrypted, f):
		return 0, "", &Error{Kind: KindEncryptedField, Field: "retention_field", Pos: -1,
			Detail: fmt.Sprintf("field %q is encrypted; the server cannot read its time", f)}
	case !fields.holds(f):
		return 0, "", &Error{Kind: KindUnknownField, Field: "retention_field", Pos: -1,
			Detail: fmt.Sprintf("the collection's schema has no field %q", f)}
	}
	return keep, f, nil
}

// retentionField is the field a collection's records expire by.
func retentionField(c *store.Collection) string {
	if c.RetentionField == "" {
		return store.RetentionCreatedAt
	}
	return c.RetentionField
}

// EnqueueRetention enqueues a retention job for each tenant that has a
// collection with a retention or an audit retention, unless its latest
// one is still queued or running. App calls it every RetentionInterval;
// with several nodes each may enqueue, and a job that finds nothing left
// to do finishes at once.
func (c *Core) EnqueueRetention(ctx context.Context) error {
	if c.jobs == nil {
		return nil
	}
	var after *store.TenantKey
	var errs []error
	for {
		var page []*store.Tenant
		err := c.store.ReadPlatform(ctx, func(tx store.PlatformTx) (err error) {
			page, err = tx.ListTenants(ctx, &store.ListTenantsParams{After: after, Limit: 100})
			return err
		})
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		for _, t := range page {
			due, err := c.retentionDue(ctx, t)
			if err == nil && due {
				_, err = c.jobs.Enqueue(ctx, t.ID, KindRetention, retentionArgs{}, &jobs.EnqueueOptions{CreatedBy: systemActor})
			}
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				errs = append(errs, fmt.Errorf("retention of tenant %s: %w", t.ID, err))
			}
		}
		if len(page) < 100 {
			return errors.Join(errs...)
		}
		last := page[len(page)-1]
		after = &store.TenantKey{CreatedAt: last.CreatedAt, ID: last.ID}
	}
}

// retentionDue reports whether tenant t has retention settings and no
// retention job queued or running.
func (c *Core) retentionDue(ctx context.Context, t *store.Tenant) (bool, error) {
	due := false
	err := c.store.ReadTenant(ctx, t.ID, func(tx store.Tx) error {
		if _, err := tx.GetAuditRetention(ctx); err == nil {
			due = true
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if !due {
			cols, err := tx.ListCollections(ctx)
			if err != nil {
				return err
			}
			due = slices.ContainsFunc(cols, func(col *store.Collection) bool { return col.Retention > 0 })
		}
		if due {
			last, err := tx.ListJobs(ctx, &store.ListJobsParams{Kind: string(KindRetention), Limit: 1})
			if err != nil {
				return err
			}
			due = len(last) == 0 || last[0].State.Finished()
		}
		return nil
	})
	return due, err
}
