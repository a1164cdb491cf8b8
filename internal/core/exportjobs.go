package core

import (
	"github.com/bulkheadhq/bulkhead/internal/jobs"
)

// registerExportJobs registers the kinds of job of this part: exports and
// restores of a tenant's data (export.go, restore.go).
func (c *Core) registerExportJobs() {
	c.register(KindExport, jobs.KindConfig{Work: c.exportWork, MaxAttempts: 3, Timeout: jobs.MaxTimeout})
	c.register(KindRestore, jobs.KindConfig{Work: c.restoreWork, MaxAttempts: 3, Timeout: jobs.MaxTimeout})
}
