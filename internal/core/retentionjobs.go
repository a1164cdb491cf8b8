package core

// registerRetentionJobs registers the kinds of job of this part.
func (c *Core) registerRetentionJobs() {}
