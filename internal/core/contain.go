package core

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/access"
	"github.com/bulkheadhq/bulkhead/internal/audit"
	"github.com/bulkheadhq/bulkhead/internal/changefeed"
	"github.com/bulkheadhq/bulkhead/internal/contain"
	"github.com/bulkheadhq/bulkhead/internal/secevent"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// ErrCredentialSuspended means automatic containment suspended the
// credential (an API key, or a user's sessions) until an administrator
// lifts it.
var ErrCredentialSuspended = errors.New("credential suspended")

// systemActor names automatic containment in audit entries and events.
const systemActor = "system"

// deniedWindow is how long the denied requests of one credential are
// aggregated into one audit entry.
const deniedWindow = time.Minute

// maxDeniedWindows bounds the credentials whose denied requests are being
// aggregated; past it the windows that ended are written out first, and a
// credential beyond the bound has each denial written after its answer.
const maxDeniedWindows = 10_000

// guard is automatic containment's state on this node: the rules' counters,
// the denied requests being aggregated, and the containments made here
// whose transaction has not committed yet (so that they apply at once).
type guard struct {
	rules  contain.Rules
	probes *contain.Counter
	logins *contain.Counter
	addrs  *contain.Distinct[credentialKey, netip.Addr]
	shared contain.Shared // nil without one
	// sharedSem bounds the calls to shared in flight; past it an event is
	// counted on this node only.
	sharedSem chan struct{}

	mu      sync.Mutex
	denied  map[string]*denials           // by tenant "|" actor
	pending map[string]*store.Containment // by tenant "|" kind "|" subject
	wg      sync.WaitGroup                // containments being written
}

// denials are one credential's denied requests in the current window: the
// first is audited after its answer, the rest as one entry with their count
// once the window ends.
type denials struct {
	tenant    tenant.ID
	actor     string
	start     time.Time
	more      int    // denied after the first, not yet audited
	requestID string // of the last of them
}

func (g *guard) init(r contain.Rules, shared contain.Shared) {
	g.rules = r
	g.shared = shared
	g.sharedSem = make(chan struct{}, 64)
	g.probes = contain.NewCounter(r.Probes)
	g.logins = contain.NewCounter(r.Logins)
	g.addrs = contain.NewDistinct[credentialKey, netip.Addr](r.Addresses)
	g.denied = map[string]*denials{}
	g.pending = map[string]*store.Containment{}
}

// Denied records that p was answered 404 for a request naming another
// tenant's slug or ids unknown in p's own tenant: it audits the attempt in
// p's own tenant's chain, never the addressed one's, and emits a security
// event; enough of them within the probes rule's window suspend the
// credential. Call it after the answer is written: it does no database work
// itself (entries are written in the background, aggregated per credential
// per minute), so the answer is the same, in content and time, as any 404.
func (c *Core) Denied(ctx context.Context, p *tenant.Principal, path, requestID string) {
	if p == nil || p.IsOperator() || p.Tenant == "" {
		return
	}
	now := c.now()
	actor := p.Actor()
	key := string(p.Tenant) + "|" + actor
	g := &c.guard
	g.mu.Lock()
	d := g.denied[key]
	var ended *denials
	first := d == nil || now.Sub(d.start) >= deniedWindow
	if first {
		if d != nil && d.more > 0 {
			ended = d
		}
		if d == nil && len(g.denied) >= maxDeniedWindows {
			c.sweepDeniedLocked(now, false)
		}
		if len(g.denied) < maxDeniedWindows || d != nil {
			g.denied[key] = &denials{tenant: p.Tenant, actor: actor, start: now}
		}
	} else {
		d.more++
		d.requestID = requestID
	}
	g.mu.Unlock()
	if ended != nil {
		c.auditDenials(ended)
	}
	if first {
		resource := "request:" + truncate(path, 200)
		c.auditLater(p.Tenant, audit.Event{Time: now, Actor: actor, Action: "access.denied", Resource: resource,
			RequestID: requestID, Outcome: audit.Denied})
		c.emit(ctx, secevent.Event{Action: "access.denied", Category: "intrusion_detection", Outcome: "failure", Severity: 2,
			Tenant: p.Tenant, Actor: actor, Target: resource, RequestID: requestID,
			Reason: "answered 404: another tenant's slug or an id unknown in the credential's tenant"})
	}
	suspend := func(n int) {
		c.contain(ctx, p.Tenant, store.ContainSuspended, actor,
			fmt.Sprintf("%d requests for other tenants' or unknown resources within %s", n, g.rules.Probes.Window), n, requestID, nil)
	}
	if n, reached := g.probes.Hit(key, now); reached {
		suspend(n)
	}
	c.sharedHit("probes|"+key, g.rules.Probes, now, suspend)
}

// sharedHit counts an event in the shared counts too, in the background,
// and calls trip if that made them reach rule's limit.
func (c *Core) sharedHit(key string, rule contain.Rule, now time.Time, trip func(n int)) {
	g := &c.guard
	if g.shared == nil || !rule.On() {
		return
	}
	select {
	case g.sharedSem <- struct{}{}:
	default:
		return
	}
	g.wg.Add(1)
	go func() {
		defer func() { <-g.sharedSem; g.wg.Done() }()
		n, reached, err := g.shared.Hit(c.life, key, rule, now)
		if err != nil {
			c.log.Debug("shared containment count failed; this node's own count applies", "err", err)
			return
		}
		if reached {
			trip(n)
		}
	}()
}

// auditDenials writes the aggregate entry of a window's denied requests
// after the first.
func (c *Core) auditDenials(d *denials) {
	resource := "requests:" + strconv.Itoa(d.more)
	c.auditLater(d.tenant, audit.Event{Time: c.now(), Actor: d.actor, Action: "access.denied_repeated", Resource: resource,
		RequestID: d.requestID, Outcome: audit.Denied})
	c.emit(context.Background(), secevent.Event{Action: "access.denied_repeated", Category: "intrusion_detection", Outcome: "failure",
		Severity: 2, Tenant: d.tenant, Actor: d.actor, Target: resource, RequestID: d.requestID,
		Reason: strconv.Itoa(d.more) + " more requests answered 404 within a minute of the first"})
}

// sweepDenied writes out the windows of denied requests that have ended
// (all of them if all), and forgets them.
func (c *Core) sweepDenied(now time.Time, all bool) {
	c.guard.mu.Lock()
	ended := c.sweepDeniedLocked(now, all)
	c.guard.mu.Unlock()
	for _, d := range ended {
		c.auditDenials(d)
	}
}

func (c *Core) sweepDeniedLocked(now time.Time, all bool) []*denials {
	var ended []*denials
	for k, d := range c.guard.denied {
		if all || now.Sub(d.start) >= deniedWindow {
			delete(c.guard.denied, k)
			if d.more > 0 {
				ended = append(ended, d)
			}
		}
	}
	return ended
}

// sweepGuard frees the memory of counters that went quiet and writes out
// the aggregated denials whose window ended.
func (c *Core) sweepGuard(now time.Time) {
	c.guard.probes.Sweep(now)
	c.guard.logins.Sweep(now)
	c.guard.addrs.Sweep(now)
	c.sweepDenied(now, false)
}

// credentialKey names a credential without building its actor string, so
// that checking it on every request allocates nothing.
type credentialKey struct {
	tenant tenant.ID
	kind   tenant.ActorKind
	id     string
}

// admitCredential is the containment check of Authenticate: it refuses a
// suspended credential, and watches the client addresses an API key is
// used from. It reads the store only when the tenant's containments are
// not cached.
func (c *Core) admitCredential(ctx context.Context, p *tenant.Principal) error {
	if p.IsOperator() {
		return nil
	}
	if c.anyContainment(ctx, p.Tenant) {
		k, err := c.containmentOf(ctx, p.Tenant, p.Actor(), store.ContainSuspended)
		if err != nil {
			return err
		}
		if k != nil {
			return ErrCredentialSuspended
		}
	}
	if p.Kind == tenant.ActorAPIKey {
		if a := ClientFrom(ctx); a.IsValid() {
			c.watchAddress(ctx, p, a)
		}
	}
	return nil
}

// anyContainment reports whether tid may have a containment in force: one
// pending on this node, or any in its cached list (read into the cache if
// it is not there). It is the allocation-free fast path of the common case,
// a tenant with none.
func (c *Core) anyContainment(ctx context.Context, tid tenant.ID) bool {
	g := &c.guard
	g.mu.Lock()
	pending := len(g.pending) > 0
	g.mu.Unlock()
	if pending {
		return true
	}
	list, err := c.activeContainments(ctx, tid)
	return err != nil || len(list) > 0 // on an error, let containmentOf report it
}

// watchAddress flags an API key used from more distinct client addresses
// than the addresses rule allows: on this node's count at once, and on the
// shared count in the background (asked only for an address new to this
// node, so that a key's requests from known addresses cost nothing more).
func (c *Core) watchAddress(ctx context.Context, p *tenant.Principal, addr netip.Addr) {
	g := &c.guard
	if !g.rules.Addresses.On() {
		return
	}
	now := c.now()
	n, crossed, added := g.addrs.See(credentialKey{p.Tenant, p.Kind, p.ActorID}, addr, now)
	if crossed {
		c.flagAddresses(ctx, p, n)
	}
	if !added || g.shared == nil {
		return
	}
	select {
	case g.sharedSem <- struct{}{}:
	default:
		return
	}
	g.wg.Add(1)
	go func() {
		defer func() { <-g.sharedSem; g.wg.Done() }()
		key := "addresses|" + string(p.Tenant) + "|" + p.Actor()
		n, crossed, err := g.shared.See(c.life, key, addr.String(), g.rules.Addresses, now)
		if err == nil && crossed {
			c.flagAddresses(ctx, p, n)
		}
	}()
}

// flagAddresses flags an API key seen from n distinct client addresses.
func (c *Core) flagAddresses(ctx context.Context, p *tenant.Principal, n int) {
	c.contain(ctx, p.Tenant, store.ContainFlagged, p.Actor(),
		fmt.Sprintf("used from %d distinct client addresses within %s", n, c.guard.rules.Addresses.Window), n, "", nil)
}

// loginContained reports whether containment refuses the logins of user:
// suspended, or locked after failed logins. The caller answers such a
// login as it answers a wrong password, so that the answer does not tell
// an attacker that the password was right.
func (c *Core) loginContained(ctx context.Context, tid tenant.ID, user store.UserID, requestID string) (bool, error) {
	subject := "user:" + string(user)
	k, err := c.containmentOf(ctx, tid, subject, store.ContainSuspended, store.ContainLocked)
	if err != nil || k == nil {
		return false, err
	}
	c.auditLater(tid, audit.Event{Time: c.now(), Actor: subject, Action: "auth.login", Resource: subject,
		RequestID: requestID, Outcome: audit.Denied})
	return true, nil
}

// containLoginFailure counts a failed login of user in tid for containment; enough of them within
// the logins rule's window lock the account for LockFor. The lock-out with
// back-off of the login flow, where present, is separate; both refuse.
func (c *Core) containLoginFailure(ctx context.Context, tid tenant.ID, user store.UserID, requestID string) {
	subject := "user:" + string(user)
	now := c.now()
	lock := func(n int) {
		until := now.Add(c.guard.rules.LockFor)
		c.contain(ctx, tid, store.ContainLocked, subject,
			fmt.Sprintf("%d failed logins within %s", n, c.guard.rules.Logins.Window), n, requestID, &until)
	}
	key := string(tid) + "|" + subject
	if n, reached := c.guard.logins.Hit(key, now); reached {
		lock(n)
	}
	c.sharedHit("logins|"+key, c.guard.rules.Logins, now, lock)
}

// containmentOf returns the containment of one of kinds in force against
// subject in tid, or nil: from the containments made on this node and not
// yet committed, else from the tenant's cached list.
func (c *Core) containmentOf(ctx context.Context, tid tenant.ID, subject string, kinds ...string) (*store.Containment, error) {
	now := c.now()
	g := &c.guard
	g.mu.Lock()
	if len(g.pending) > 0 {
		for _, kind := range kinds {
			if k := g.pending[string(tid)+"|"+kind+"|"+subject]; k != nil {
				g.mu.Unlock()
				return k, nil
			}
		}
	}
	g.mu.Unlock()
	list, err := c.activeContainments(ctx, tid)
	if err != nil {
		return nil, err
	}
	for _, k := range list {
		if k.Subject == subject && k.Active(now) && containsString(kinds, k.Kind) {
			return k, nil
		}
	}
	return nil, nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// activeContainments returns tid's containments in force, from a cache that
// the change feed keeps current (KindContainment), like API keys.
func (c *Core) activeContainments(ctx context.Context, tid tenant.ID) ([]*store.Containment, error) {
	now := c.now()
	c.mu.RLock()
	cached, ok := c.contained.fresh(tid, now, c.maxAge())
	gen := c.gen
	c.mu.RUnlock()
	if ok {
		return cached, nil
	}
	// list is declared after the cache lookup: the closure below moves it
	// to the heap, which a cache hit should not pay for.
	var list []*store.Containment
	err := c.store.ReadTenant(ctx, tid, func(tx store.Tx) (err error) {
		list, err = tx.ListContainments(ctx, now)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		// The tenant is gone: nothing to contain. What a credential of a
		// deleted tenant gets is decided elsewhere (a 404 from Scope).
		list, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.gen == gen {
		c.contained.put(tid, list, now)
	}
	c.mu.Unlock()
	return list, nil
}

// contain takes a containment action: it applies on this node at once,
// and is stored with an audit entry in the tenant's chain in the
// background, then announced to every node and published as an event. An
// action already in force against the subject is not taken again.
func (c *Core) contain(ctx context.Context, tid tenant.ID, kind, subject, reason string, count int, requestID string, expires *time.Time) {
	now := c.now()
	k := &store.Containment{ID: store.ContainmentID(newID()), Kind: kind, Subject: subject, Reason: reason, Count: int64(count),
		CreatedBy: systemActor, CreatedAt: now, ExpiresAt: expires}
	key := string(tid) + "|" + kind + "|" + subject
	g := &c.guard
	g.mu.Lock()
	if g.pending[key] != nil {
		g.mu.Unlock()
		return
	}
	g.pending[key] = k
	g.mu.Unlock()
	client := ""
	if a := ClientFrom(ctx); a.IsValid() {
		client = a.String()
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		defer func() {
			g.mu.Lock()
			delete(g.pending, key)
			g.mu.Unlock()
		}()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if had, err := c.containmentOf(ctx, tid, subject, kind); err == nil && had != nil && had != k {
			return
		}
		user, isUser := strings.CutPrefix(subject, "user:")
		err := c.store.InTenant(ctx, tid, func(tx store.Tx) error {
			if err := tx.CreateContainment(ctx, k); err != nil {
				return err
			}
			if kind == store.ContainSuspended && isUser {
				if err := tx.RevokeUserRefreshTokens(ctx, store.UserID(user), now); err != nil {
					return err
				}
			}
			_, err := c.audit.Append(ctx, tx, audit.TenantChain(tid), audit.Event{Time: now, Actor: systemActor,
				Action: "containment." + kind, Resource: subject, RequestID: requestID, Outcome: audit.Success})
			return err
		})
		if err != nil {
			c.log.Error("containment not stored; it held on this node only while being written", "tenant", string(tid),
				"kind", kind, "subject", subject, "err", err)
			return
		}
		c.announce(changefeed.Event{Kind: changefeed.KindContainment, Tenant: tid})
		if kind == store.ContainSuspended && isUser {
			c.endSessions(tid, store.UserID(user), "")
		}
		c.emit(ctx, secevent.Event{Time: now, Action: "containment." + kind, Category: "intrusion_detection", Outcome: "success",
			Severity: 3, Tenant: tid, Actor: systemActor, Target: subject, ClientAddr: client, RequestID: requestID, Reason: reason})
	}()
}

// Containment is a containment action as the API shows it.
type Containment struct {
	ID        store.ContainmentID `json:"id"`
	Kind      string              `json:"kind"`
	Subject   string              `json:"subject"`
	Reason    string              `json:"reason"`
	Count     int64               `json:"count"`
	Active    bool                `json:"active"`
	CreatedBy string              `json:"created_by"`
	CreatedAt time.Time           `json:"created_at"`
	ExpiresAt *time.Time          `json:"expires_at,omitempty"`
	LiftedAt  *time.Time          `json:"lifted_at,omitempty"`
	LiftedBy  string              `json:"lifted_by,omitempty"`
}

// ListContainments lists the tenant's containment actions, newest first,
// lifted and expired ones included.
func (s *Scope) ListContainments(ctx context.Context) (*List[*Containment], error) {
	if err := s.allow(access.ListContainments); err != nil {
		return nil, err
	}
	var ks []*store.Containment
	err := s.read(ctx, func(tx store.Tx) (err error) {
		ks, err = tx.ListContainments(ctx, time.Time{})
		return err
	})
	if err != nil {
		return nil, err
	}
	now := s.core.now()
	page := &List[*Containment]{Items: make([]*Containment, 0, len(ks))}
	for _, k := range ks {
		page.Items = append(page.Items, &Containment{ID: k.ID, Kind: k.Kind, Subject: k.Subject, Reason: k.Reason, Count: k.Count,
			Active: k.Active(now), CreatedBy: k.CreatedBy, CreatedAt: k.CreatedAt, ExpiresAt: k.ExpiresAt, LiftedAt: k.LiftedAt, LiftedBy: k.LiftedBy})
	}
	return page, nil
}

// LiftContainment lifts a containment action of the tenant: the credential
// works again on this node at once and on the others when the change feed
// tells them, and its counters start again from zero. It is audited. It
// returns store.ErrNotFound if no containment in force has id.
func (s *Scope) LiftContainment(ctx context.Context, id store.ContainmentID) error {
	if err := s.allow(access.LiftContainment); err != nil {
		return err
	}
	if len(id) == 0 || len(id) > 64 {
		return store.ErrNotFound
	}
	now := s.core.now()
	var k *store.Containment
	err := s.write(ctx, func(tx store.Tx) (err error) {
		if k, err = tx.LiftContainment(ctx, id, s.principal.Actor(), now); err != nil {
			return err
		}
		return s.append(ctx, tx, s.event("containment.lift", "containment:"+string(id)))
	})
	if err != nil {
		return err
	}
	c := s.core
	c.announce(changefeed.Event{Kind: changefeed.KindContainment, Tenant: s.tenant.ID})
	key := string(s.tenant.ID) + "|" + k.Subject
	c.guard.probes.Reset(key)
	c.guard.logins.Reset(key)
	s.emitEvent(ctx, "containment.lift", "iam", k.Subject, "lifted "+k.Kind+" "+string(id))
	return nil
}

// emitEvent publishes a security event of the scope's principal and
// request.
func (s *Scope) emitEvent(ctx context.Context, action, category, target, reason string) {
	s.core.emit(ctx, secevent.Event{Action: action, Category: category, Outcome: "success", Severity: 2,
		Tenant: s.tenant.ID, TenantSlug: s.tenant.Slug, Actor: s.principal.Actor(), Target: target,
		RequestID: s.requestID, Reason: reason})
}

// BreakerOpenFunc returns the scheduler's hook (fairq.Config.
// BreakerOpenFunc) that publishes the event of a tenant's breaker opening:
// its database work kept timing out, so it is held to fewer slots for a
// cool-down. The hook is quick and does not block, as it must be.
func (c *Core) BreakerOpenFunc() func(tenant.ID) {
	return func(tid tenant.ID) {
		c.emit(context.Background(), secevent.Event{Action: "scheduler.breaker_opened", Category: "database", Outcome: "success",
			Severity: 3, Tenant: tid, Actor: systemActor, Reason: "the tenant's database work kept timing out; its slots are capped for a cool-down"})
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
