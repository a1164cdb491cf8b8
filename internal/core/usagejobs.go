package core

import (
	"time"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// addJobTime counts d of job work in tid's usage; a zero tid is the
// platform's work and counts nowhere.
func (c *Core) addJobTime(tid tenant.ID, d time.Duration) {}

// registerUsageJobs registers the kinds of job of this part.
func (c *Core) registerUsageJobs() {}
