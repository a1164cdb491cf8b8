package core

import (
	"context"
	"strings"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/changefeed"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// maxAge is how old a cached tenant, key, plan or session check may be to
// be served: CacheLife while the change feed is live, CacheTTL while it is
// not (another node's change may then be missed, so nothing is trusted for
// longer than CacheTTL).
func (c *Core) maxAge() time.Duration {
	if c.feed.Live() {
		return c.tenants.ttl
	}
	return c.cacheTTL
}

// Sweep lets the node's caches of tenants, API keys and plans forget what
// has expired. Lookups do it as they go; a periodic call (App does it every
// second) frees the memory of a node that has gone quiet too.
func (c *Core) Sweep() {
	now := c.now()
	c.mu.Lock()
	c.tenants.rotate(now)
	c.apiKeys.rotate(now)
	c.plans.rotate(now)
	c.sessions.rotate(now)
	c.contained.rotate(now)
	c.mu.Unlock()
	c.sweepGuard(now) // containment's counters and aggregated denials
}

// ForgetAll drops everything this node caches about tenants, API keys,
// plans and sessions, so that the next request of each reads them again:
// what the node does when its change feed may have missed changes.
func (c *Core) ForgetAll() { c.apply(changefeed.Reset) }

// announce applies e to this node's caches at once and publishes it on the
// change feed for every other node. A publication that fails is retried in
// the background for a while; meanwhile the others serve what they cached,
// which is why a node whose feed is down trusts its caches for CacheTTL
// only.
func (c *Core) announce(e changefeed.Event) {
	c.mu.Lock()
	if len(c.echoes) > maxEchoes {
		clear(c.echoes)
	}
	c.echoes[e]++
	c.mu.Unlock()
	c.apply(e)
	ctx, cancel := context.WithTimeout(c.life, 5*time.Second)
	err := c.feed.Publish(ctx, e)
	cancel()
	if err == nil || c.life.Err() != nil {
		return
	}
	c.log.Warn("change not yet announced to other nodes; retrying", "kind", string(e.Kind), "tenant", string(e.Tenant), "err", err)
	c.builds.Add(1)
	go func() {
		defer c.builds.Done()
		for attempt := range 10 {
			select {
			case <-time.After(time.Duration(attempt+1) * 500 * time.Millisecond):
			case <-c.life.Done():
				return
			}
			ctx, cancel := context.WithTimeout(c.life, 5*time.Second)
			err = c.feed.Publish(ctx, e)
			cancel()
			if err == nil {
				return
			}
		}
		c.log.Error("change not announced to other nodes; they apply it within CacheLife", "kind", string(e.Kind),
			"tenant", string(e.Tenant), "err", err)
		c.mu.Lock() // no echo will come
		if c.echoes[e] > 0 {
			c.echoes[e]--
		}
		c.mu.Unlock()
	}()
}

// maxEchoes bounds the announcements waiting for their echo.
const maxEchoes = 4096

// receive applies an event of the change feed, unless it is the echo of
// one this node announced (and so applied) itself: applying it again would
// only make lookups that started since skip the cache.
func (c *Core) receive(e changefeed.Event) {
	c.mu.Lock()
	if n := c.echoes[e]; n > 0 {
		if n == 1 {
			delete(c.echoes, e)
		} else {
			c.echoes[e] = n - 1
		}
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.apply(e)
}

// apply drops from this node's caches what e says changed. It runs for the
// node's own changes and for every event of the change feed, so it must be
// idempotent and quick.
func (c *Core) apply(e changefeed.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++ // a lookup that raced with the change caches nothing
	switch e.Kind {
	case changefeed.KindTenant:
		// The tenant's row under whatever slug, the slug's cached
		// absence, and its keys (which carry their tenant's status).
		c.tenants.deleteFunc(func(t *store.Tenant) bool { return t != nil && t.ID == e.Tenant })
		if e.Key != "" {
			c.tenants.delete(tenant.Slug(e.Key))
		}
		c.apiKeys.deleteFunc(func(k cachedKey) bool { return k.principal != nil && k.principal.Tenant == e.Tenant })
		c.contained.delete(e.Tenant)
		c.breakGlass.forget(e.Tenant)
		c.forgetKeys(e.Tenant)
		c.forgetEncFields(e.Tenant)
	case changefeed.KindContainment:
		c.contained.delete(e.Tenant)
	case changefeed.KindDataKeys:
		c.forgetKeys(e.Tenant)
	case changefeed.KindAPIKey:
		c.apiKeys.delete(store.APIKeyID(e.Key))
	case changefeed.KindPlan:
		c.plans.delete(e.Key)
	case changefeed.KindSession:
		user, family, _ := strings.Cut(e.Key, "/")
		c.sessions.deleteKeyFunc(func(k sessionKey) bool {
			return k.tenant == e.Tenant && k.user == store.UserID(user) && (family == "" || k.session == family)
		})
	default: // KindReset, and anything this node does not know
		c.tenants.clear()
		c.apiKeys.clear()
		c.plans.clear()
		c.sessions.clear()
		c.contained.clear()
		c.breakGlass.forget("")
		c.forgetKeys("")
		c.forgetEncFields("")
	}
}

// endSessions ends what every node knows of the sessions of user in tid (of
// one family, or all when family is ""), so that their access tokens are
// checked again at their next use.
func (c *Core) endSessions(tid tenant.ID, user store.UserID, family string) {
	key := string(user)
	if family != "" {
		key += "/" + family
	}
	c.announce(changefeed.Event{Kind: changefeed.KindSession, Tenant: tid, Key: key})
}

// forgetKey ends a revoked API key on every node.
func (c *Core) forgetKey(tid tenant.ID, id store.APIKeyID) {
	c.announce(changefeed.Event{Kind: changefeed.KindAPIKey, Tenant: tid, Key: string(id)})
}

// forgetTenant drops what every node caches about tenant tid (and, when
// given, about its slug, such as that it names no tenant).
func (c *Core) forgetTenant(tid tenant.ID, slug tenant.Slug) {
	c.announce(changefeed.Event{Kind: changefeed.KindTenant, Tenant: tid, Key: string(slug)})
}

// forgetPlan drops a changed plan from every node's cache.
func (c *Core) forgetPlan(name string) {
	c.announce(changefeed.Event{Kind: changefeed.KindPlan, Key: name})
}
