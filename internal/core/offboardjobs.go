package core

import "github.com/bulkheadhq/bulkhead/internal/jobs"

// registerOffboardJobs registers the kinds of job of this part: the purge
// of a deleted tenant when its grace period ends (offboard.go). A purge
// that fails, such as while the KMS cannot destroy the tenant's key, is
// retried with back-off; SweepPurges takes over if its attempts run out.
func (c *Core) registerOffboardJobs() {
	c.register(KindTenantPurge, jobs.KindConfig{Work: c.tenantPurgeWork, MaxAttempts: 25})
}
