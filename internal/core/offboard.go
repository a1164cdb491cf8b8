package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/audit"
	"github.com/bulkheadhq/bulkhead/internal/jobs"
	"github.com/bulkheadhq/bulkhead/internal/secevent"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Offboarding with a grace period. DELETE of a tenant suspends it at once
// and schedules its purge: the tenant is deleting (tenant.Deleting) until
// its PurgeAt, when a platform job of kind KindTenantPurge shreds its keys
// and purges its data (Control.DeleteTenant's path). Meanwhile its
// credentials are refused on every route but those a deleting tenant's
// admins may still use to take their data with them (see
// Core.ScopeWhileDeleting), and the operator can cancel the deletion by
// setting the tenant's status. The job re-reads the tenant and does
// nothing if the deletion was cancelled or moved; SweepPurges and
// ResumePurges make up for a job that is missing.

// ErrTenantDeleting means the addressed tenant is being deleted: its
// credentials are refused but for its admins' exports.
var ErrTenantDeleting = errors.New("tenant deleting")

// KindTenantPurge is the platform job that purges a deleting tenant when
// its grace period ends.
const KindTenantPurge jobs.Kind = "tenant_purge"

// DefaultDeletionGrace is how long a deleted tenant waits for its purge
// unless the operator or the configuration says otherwise.
const DefaultDeletionGrace = 30 * 24 * time.Hour

// MaxDeletionGrace is the longest grace period: 366 days.
const MaxDeletionGrace = 366 * 24 * time.Hour

// purgeOverdue is how long after its PurgeAt a deleting tenant waits for
// its job before SweepPurges purges it itself, when a job queue is
// configured; without one, SweepPurges purges tenants as soon as they are
// due.
const purgeOverdue = 5 * time.Minute

// GracePattern is what ParseGrace accepts: "0", or a whole number of days
// (1–366), hours (1–8784) or minutes (1–527040) with its unit: at most 366
// days. The API's description of the grace parameter states it.
const GracePattern = `^(0|([1-9][0-9]?|[12][0-9]{2}|3[0-5][0-9]|36[0-6])d|([1-9][0-9]{0,2}|[1-7][0-9]{3}|8[0-6][0-9]{2}|87[0-7][0-9]|878[0-4])h|([1-9][0-9]{0,4}|[1-4][0-9]{5}|5[01][0-9]{4}|52[0-6][0-9]{3}|5270[0-3][0-9]|527040)m)$`

var gracePattern = regexp.MustCompile(GracePattern)

// ParseGrace reads a grace period: a whole number of days, hours or
// minutes ("30d", "12h", "90m") up to MaxDeletionGrace, or "0" for none
// (GracePattern). It refuses anything else with an invalid Error on field
// "grace".
func ParseGrace(s string) (time.Duration, error) {
	if !gracePattern.MatchString(s) {
		return 0, invalid("grace", `grace must be a whole number of days, hours or minutes ("30d", "12h", "90m"), at most 366 days, or 0`)
	}
	if s == "0" {
		return 0, nil
	}
	n, _ := strconv.Atoi(s[:len(s)-1]) // at most six digits: no overflow
	unit := map[byte]time.Duration{'d': 24 * time.Hour, 'h': time.Hour, 'm': time.Minute}[s[len(s)-1]]
	return time.Duration(n) * unit, nil
}

// statusRefusal says whether tenant principal p may address tenant t as it
// stands: an active tenant, yes; a suspended one, never
// (ErrTenantSuspended); a deleting one only for an operation allowed while
// deleting, and only to its admins (ErrTenantDeleting). This is the one
// rule of what a deleting tenant's credentials may still do.
func statusRefusal(t *store.Tenant, p *tenant.Principal, whileDeleting bool) error {
	switch t.Status {
	case tenant.Active:
		return nil
	case tenant.Deleting:
		if whileDeleting && p.Scope == "" && p.Role.AtLeast(tenant.Admin) {
			return nil
		}
		return ErrTenantDeleting
	}
	return ErrTenantSuspended
}

// signInRefusal says whether a user of role may sign in to tenant t (log
// in, refresh): to an active tenant, yes; to a deleting one, its admins,
// whose tokens serve only what statusRefusal lets through; to a suspended
// one, nobody.
func signInRefusal(t *store.Tenant, role tenant.Role) error {
	return statusRefusal(t, &tenant.Principal{Kind: tenant.ActorUser, Tenant: t.ID, Role: role}, true)
}

// ScopeWhileDeleting is Scope for the operations a deleting tenant's
// admins may still use, to take their data with them: exporting it,
// downloading the export and following the export's job. For an active
// tenant it is Scope. For a deleting tenant it binds only the tenant's
// admins (and owners) and the operator; other principals get
// ErrTenantDeleting. The HTTP API calls it for the routes marked so, and
// Scope for every other route.
func (c *Core) ScopeWhileDeleting(ctx context.Context, p *tenant.Principal, slug tenant.Slug, requestID string) (*Scope, error) {
	return c.scope(ctx, p, slug, requestID, true)
}

// OffboardTenant deletes a tenant after a grace period: it is suspended at
// once, as deleting, and its keys are shredded and its data purged when
// grace has passed (by a job of kind KindTenantPurge, or by SweepPurges).
// grace nil takes the configured default; 0 purges at once, before
// OffboardTenant returns, and the answer's status is then
// tenant.Deleted. Deleting a tenant that is deleting already moves its
// purge, unless the purge is due: then only grace 0 is accepted, which
// retries it now. The platform chain records the deletion.
func (ct *Control) OffboardTenant(ctx context.Context, sc *Scope, grace *time.Duration) (*Tenant, error) {
	if err := ct.target(sc); err != nil {
		return nil, err
	}
	c, t := ct.core, &sc.tenant
	g := c.deletionGrace
	if grace != nil {
		g = *grace
	}
	if g < 0 || g > MaxDeletionGrace {
		return nil, invalid("grace", "grace must be from 0 to 366 days")
	}
	now := c.now()
	purgeAt := now.Add(g)
	if t.Status == tenant.Deleting && !now.Before(*t.PurgeAt) {
		if g != 0 {
			return nil, &Error{Kind: KindConflict, Field: "grace", Pos: -1,
				Detail: "the tenant's purge is due and cannot be moved; delete it with grace 0 to retry the purge now"}
		}
		purgeAt = *t.PurgeAt
	} else {
		var updated *store.Tenant
		err := c.store.InPlatform(ctx, func(tx store.PlatformTx) error {
			var err error
			updated, err = tx.ScheduleTenantPurge(ctx, &store.ScheduleTenantPurgeParams{ID: t.ID, PurgeAt: purgeAt,
				DeletedBy: ct.principal.Actor(), At: now})
			if err != nil {
				return err
			}
			_, err = c.audit.Append(ctx, tx, audit.PlatformChain, ct.event("tenant.offboard", "tenant:"+string(t.ID)))
			return err
		})
		c.forgetTenant(t.ID, t.Slug)
		if err != nil {
			return nil, err
		}
		c.emit(ctx, secevent.Event{Action: "tenant.offboard", Category: "configuration", Outcome: "success", Severity: 3,
			Tenant: t.ID, TenantSlug: t.Slug, Actor: ct.principal.Actor(), Target: "tenant:" + string(t.ID), RequestID: ct.requestID,
			Reason: "tenant deleted: purge at " + purgeAt.Format(time.RFC3339)})
		if g > 0 {
			c.enqueuePurge(ctx, t.ID, purgeAt, ct.principal.Actor())
			return tenantView(updated), nil
		}
		t = updated
	}
	if _, err := c.purgeTenant(ctx, t.ID, purgeAt, ct.requestID); err != nil {
		return nil, err
	}
	view := tenantView(t)
	view.Status = tenant.Deleted
	return view, nil
}

// undelete cancels the deletion of the deleting tenant sc addresses,
// giving it p.Status and applying p's other changes, in one transaction
// that the platform chain records as tenant.undelete.
func (ct *Control) undelete(ctx context.Context, sc *Scope, p UpdateTenantParams) (*Tenant, error) {
	c, t := ct.core, &sc.tenant
	now := c.now()
	var updated *store.Tenant
	err := c.store.InPlatform(ctx, func(tx store.PlatformTx) error {
		if p.Plan != nil {
			if err := c.checkPlan(ctx, tx, *p.Plan); err != nil {
				return err
			}
		}
		var err error
		updated, err = tx.CancelTenantPurge(ctx, t.ID, *p.Status, now)
		if errors.Is(err, store.ErrNotFound) {
			return &Error{Kind: KindConflict, Field: "status", Pos: -1,
				Detail: "the tenant's purge is due or done: its deletion can no longer be cancelled"}
		}
		if err != nil {
			return err
		}
		if p.Name != nil || p.Plan != nil {
			if updated, err = tx.UpdateTenant(ctx, &store.UpdateTenantParams{ID: t.ID, Name: p.Name, Plan: p.Plan, UpdatedAt: now}); err != nil {
				return err
			}
		}
		_, err = c.audit.Append(ctx, tx, audit.PlatformChain, ct.event("tenant.undelete", "tenant:"+string(t.ID)))
		return err
	})
	c.forgetTenant(t.ID, t.Slug)
	if err != nil {
		return nil, err
	}
	c.emit(ctx, secevent.Event{Action: "tenant.undelete", Category: "configuration", Outcome: "success", Severity: 3,
		Tenant: t.ID, TenantSlug: t.Slug, Actor: ct.principal.Actor(), Target: "tenant:" + string(t.ID), RequestID: ct.requestID,
		Reason: "deletion cancelled; status " + string(*p.Status)})
	return tenantView(updated), nil
}

// purgeArgs are the arguments of a KindTenantPurge job.
type purgeArgs struct {
	Tenant  tenant.ID `json:"tenant_id"`
	PurgeAt time.Time `json:"purge_at"`
}

// enqueuePurge schedules the purge job of tid. Without a job queue, or if
// enqueueing fails, SweepPurges purges the tenant once it is overdue.
func (c *Core) enqueuePurge(ctx context.Context, tid tenant.ID, purgeAt time.Time, by string) {
	if c.jobs == nil {
		return
	}
	err := c.jobs.EnqueuePlatform(ctx, KindTenantPurge, purgeArgs{Tenant: tid, PurgeAt: purgeAt},
		&jobs.EnqueueOptions{RunAt: purgeAt, CreatedBy: by})
	if err != nil {
		c.log.Warn("tenant purge not enqueued; the purge sweeper will run it when it is overdue",
			"tenant", string(tid), "purge_at", purgeAt, "err", err)
	}
}

// errPurgeNotDue is returned by a purge job that runs before its time, so
// that it is retried.
var errPurgeNotDue = errors.New("tenant purge not due yet")

// purgeTenant shreds the keys of deleting tenant tid and purges its data,
// if its purge is the one due at purgeAt. It reports whether it purged:
// a tenant that is gone, whose deletion was cancelled or whose purge was
// moved is left alone, without an error. The platform chain records the
// shredding and the deletion, under requestID.
func (c *Core) purgeTenant(ctx context.Context, tid tenant.ID, purgeAt time.Time, requestID string) (bool, error) {
	var t *store.Tenant
	err := c.store.ReadPlatform(ctx, func(tx store.PlatformTx) (err error) {
		t, err = tx.GetTenant(ctx, tid)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if t.Status != tenant.Deleting || !t.PurgeAt.Equal(purgeAt) {
		c.log.Info("tenant purge skipped: the deletion was cancelled or moved", "tenant", string(tid),
			"status", string(t.Status), "purge_at", t.PurgeAt, "job_purge_at", purgeAt)
		return false, nil
	}
	if c.now().Before(purgeAt) {
		return false, fmt.Errorf("purge tenant %s at %v: %w", tid, purgeAt, errPurgeNotDue)
	}
	op := Operator()
	ct := &Control{core: c, principal: op, requestID: requestID}
	sc := &Scope{core: c, principal: op, tenant: *t}
	if err := ct.DeleteTenant(ctx, sc); err != nil {
		if errors.Is(err, store.ErrNotFound) { // purged meanwhile, by another node
			return false, nil
		}
		return false, fmt.Errorf("purge tenant %s: %w", tid, err)
	}
	c.log.Info("tenant purged", "tenant", string(tid), "slug", string(t.Slug), "purge_at", purgeAt)
	return true, nil
}

// PurgeResult is the result of a KindTenantPurge job.
type PurgeResult struct {
	Tenant tenant.ID `json:"tenant_id"`
	// Purged is false if the deletion was cancelled or moved, or the
	// tenant was purged already.
	Purged bool `json:"purged"`
}

// tenantPurgeWork is the Work of KindTenantPurge.
func (c *Core) tenantPurgeWork(ctx context.Context, t *jobs.Task) (any, error) {
	var args purgeArgs
	if err := json.Unmarshal(t.Args, &args); err != nil || args.Tenant == "" || args.PurgeAt.IsZero() {
		return nil, fmt.Errorf("tenant purge arguments %s: %w", t.Args, jobs.ErrPermanent)
	}
	purged, err := c.purgeTenant(ctx, args.Tenant, args.PurgeAt, "job:"+string(KindTenantPurge))
	if err != nil {
		return nil, err
	}
	return &PurgeResult{Tenant: args.Tenant, Purged: purged}, nil
}

// ResumePurges enqueues the purge job of every deleting tenant, as a node
// starts: a job lost with a queue, or never enqueued, is made up for. A
// job enqueued twice purges once: the second finds the tenant gone.
// Without a job queue it does nothing; SweepPurges purges then.
func (c *Core) ResumePurges(ctx context.Context) error {
	if c.jobs == nil {
		return nil
	}
	ts, err := c.listPurges(ctx)
	if err != nil {
		return err
	}
	for _, t := range ts {
		c.enqueuePurge(ctx, t.ID, *t.PurgeAt, t.DeletedBy)
	}
	return nil
}

// SweepPurges purges the deleting tenants whose purge is due and whose job
// has not run: at once without a job queue, else purgeOverdue after their
// PurgeAt. The App runs it every minute. A purge that fails is logged and
// tried again at the next sweep.
func (c *Core) SweepPurges(ctx context.Context) error {
	ts, err := c.listPurges(ctx)
	if err != nil {
		return err
	}
	cutoff := c.now()
	if c.jobs != nil {
		cutoff = cutoff.Add(-purgeOverdue)
	}
	var errs []error
	for _, t := range ts {
		if t.PurgeAt.After(cutoff) {
			break // soonest first
		}
		if _, err := c.purgeTenant(ctx, t.ID, *t.PurgeAt, "sweep:"+string(KindTenantPurge)); err != nil {
			c.log.Warn("overdue tenant purge failed; retrying at the next sweep", "tenant", string(t.ID), "err", err)
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *Core) listPurges(ctx context.Context) ([]*store.Tenant, error) {
	var ts []*store.Tenant
	err := c.store.ReadPlatform(ctx, func(tx store.PlatformTx) (err error) {
		ts, err = tx.ListTenantPurges(ctx, 0)
		return err
	})
	return ts, err
}
