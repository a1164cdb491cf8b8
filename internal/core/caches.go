package core

import (
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Sweep lets the node's caches of tenants, API keys and plans forget what
// has expired. Lookups do it as they go; a periodic call (App does it every
// CacheTTL) frees the memory of a node that has gone quiet too.
func (c *Core) Sweep() {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tenants.rotate(now)
	c.apiKeys.rotate(now)
	c.plans.rotate(now)
	c.sessions.rotate(now)
}

// ForgetAll drops everything this node caches about tenants, API keys,
// plans and sessions, so that the next request of each reads them again:
// what the node does when its change feed may have missed changes.
func (c *Core) ForgetAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.tenants.clear()
	c.apiKeys.clear()
	c.plans.clear()
	c.sessions.clear()
}

// endSessions forgets what this node knows of the sessions of user in tid
// (of one family, or all when family is ""), so that their access tokens
// are checked again at their next use.
func (c *Core) endSessions(tid tenant.ID, user store.UserID, family string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.sessions.deleteKeyFunc(func(k sessionKey) bool {
		return k.tenant == tid && k.user == user && (family == "" || k.session == family)
	})
}

// forgetKey drops a revoked API key from this node's cache.
func (c *Core) forgetKey(tid tenant.ID, id store.APIKeyID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.apiKeys.delete(id)
}

// forgetTenant drops what this node caches about tenant tid: its row (under
// whatever slug) and its keys.
func (c *Core) forgetTenant(tid tenant.ID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.tenants.deleteFunc(func(t *store.Tenant) bool { return t != nil && t.ID == tid })
	c.apiKeys.deleteFunc(func(k cachedKey) bool { return k.principal != nil && k.principal.Tenant == tid })
}

// forgetSlug drops what this node caches about slug, such as that it names
// no tenant.
func (c *Core) forgetSlug(slug tenant.Slug) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.tenants.delete(slug)
}

// forgetPlan drops a changed plan from this node's cache.
func (c *Core) forgetPlan(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.plans.delete(name)
}
