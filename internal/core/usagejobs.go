package core

// registerUsageJobs registers the kinds of job of this part: none. Usage is
// counted in memory and flushed by FlushUsage (usage.go), which the App
// runs from its ticker loop, not as a job.
func (c *Core) registerUsageJobs() {}
