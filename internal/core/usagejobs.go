package core

// registerUsageJobs registers the kinds of job of this part.
func (c *Core) registerUsageJobs() {}
