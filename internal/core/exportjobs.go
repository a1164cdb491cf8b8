package core

// registerExportJobs registers the kinds of job of this part.
func (c *Core) registerExportJobs() {}
