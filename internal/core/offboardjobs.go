package core

// registerOffboardJobs registers the kinds of job of this part.
func (c *Core) registerOffboardJobs() {}
