// Package core performs bulkhead's operations — validation, authorization,
// the tenant-scoped transaction and its audit entry — for the HTTP API and
// the command line alike, in three parts: identity (Authenticate, Login,
// Refresh, and a tenant's users and API keys), the control plane (Control:
// tenants and plans, the operator's only) and tenant data (Scope: every
// operation on one tenant's data is a method of a Scope, which binds a
// principal to a tenant it may address). core returns domain errors
// (*Error, its sentinels and the store's); callers map them to answers.
package core

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"gocloud.dev/blob"

	"github.com/bulkheadhq/bulkhead/internal/audit"
	"github.com/bulkheadhq/bulkhead/internal/auth"
	"github.com/bulkheadhq/bulkhead/internal/changefeed"
	"github.com/bulkheadhq/bulkhead/internal/contain"
	"github.com/bulkheadhq/bulkhead/internal/fairq"
	"github.com/bulkheadhq/bulkhead/internal/jobs"
	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/internal/secevent"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Config configures a Core. Store, Keys and AdminToken are required.
type Config struct {
	Store store.Store
	Keys  *keyring.Keyring
	// AdminToken is the platform operator's bearer token.
	AdminToken string
	// KeyEnv is the environment word in new API keys ("bh_<env>_…").
	// Defaults to "live".
	KeyEnv string
	// Issuer is the "iss" of access tokens. Defaults to "bulkhead".
	Issuer string
	// Audience is the "aud" of access tokens, which the API requires of
	// them. Defaults to "bulkhead-api".
	Audience string
	// AccessTTL is the lifetime of access tokens. Defaults to 15 minutes.
	AccessTTL time.Duration
	// MaxAccessTTL is the longest lifetime an access token may claim to be
	// accepted. Defaults to AccessTTL.
	MaxAccessTTL time.Duration
	// RefreshTTL is the lifetime of refresh tokens. Defaults to 30 days.
	RefreshTTL time.Duration
	// PasswordParams are the argon2id parameters for new password hashes.
	// Defaults to auth.DefaultPasswordParams.
	PasswordParams auth.PasswordParams
	// HashLimits bound password hashing: how many hashes run at once, how
	// many wait, and for how long. Zero fields take auth's defaults.
	HashLimits auth.HashLimits
	// AuditCheckpointEvery is how many audit entries lie between signed
	// checkpoints. Defaults to 100.
	AuditCheckpointEvery int
	// Feed carries cache invalidations between nodes: a change made
	// through any node (a revoked key, a suspended tenant, a changed plan,
	// an ended session) reaches every node's caches through it. Defaults to
	// changefeed.NewUnlinked(): nothing cached is trusted for longer than
	// CacheTTL, safe for any number of nodes; give a single node
	// changefeed.NewLocal() and nodes sharing a database a feed that links
	// them. Core does not close it.
	Feed changefeed.Feed
	// CacheLife is how long a node serves from memory a tenant, an API
	// key, a plan or a session check while Feed is live. Defaults to 10
	// minutes.
	CacheLife time.Duration
	// CacheTTL is how long it serves them while Feed is not live (its
	// subscription is down and changes may be missed): changes made by
	// other nodes then apply here within CacheTTL. Changes made through
	// this node apply at once either way. Defaults to 1s.
	CacheTTL time.Duration
	// KMS wraps tenants' data keys (see package keyring). Without one,
	// everything that needs a data key — encrypted fields, sealed secrets —
	// answers ErrKeysUnavailable; the rest works.
	KMS keyring.KMS
	// Events receives security events for a SIEM. Defaults to
	// secevent.Discard.
	Events secevent.Publisher
	// Containment are the rules of automatic containment. nil means
	// contain.Defaults; a zero Rules turns containment off.
	Containment *contain.Rules
	// SharedCounts, if set, counts containment's events across nodes
	// (contain.NewRedis) besides each node's own counts, so that a rule
	// trips on the events of all nodes together. Defaults to none: each
	// node counts what it serves.
	SharedCounts contain.Shared
	// OIDCAllowPrivateNetworks lets tenants' OpenID providers be reached
	// on loopback, private and link-local addresses. Defaults to false:
	// such addresses are refused when they are dialed (after DNS), so that
	// a tenant admin cannot make the server probe the networks it sits
	// in. Turn it on for development and tests.
	OIDCAllowPrivateNetworks bool
	// OIDCTransport, if set, wraps the transport of every request to a
	// provider: bulkhead puts a circuit breaker per provider host there.
	OIDCTransport func(http.RoundTripper) http.RoundTripper
	// Jobs runs tenants' background work (package jobs). Core registers
	// the kinds of job it does on it in New; the caller starts it after.
	// Without it, operations that run as jobs answer ErrJobsUnavailable.
	Jobs jobs.Queue
	// DeletionGrace is how long a deleted tenant stays deleting — suspended,
	// its admins still able to export — before its keys are shredded and
	// its data purged, when the operator's DELETE names no grace period.
	// Defaults to DefaultDeletionGrace (30 days); a negative value means
	// none: deleted tenants are purged at once.
	DeletionGrace time.Duration
	// DefaultPlan is the plan of a tenant created without one. It must
	// name an existing plan. Defaults to tenant.DefaultPlan ("free").
	DefaultPlan string
	// AuditVerifyFailed, if set, is called with "tenant" or "platform"
	// each time a verification (GET …/audit/verify, the audit retention
	// job) finds a chain broken; bulkhead counts it in a metric.
	AuditVerifyFailed func(chain string)
	// Blobs keeps tenants' export archives and uploaded restore archives
	// (gocloud.dev/blob: a directory, S3 or an S3-compatible store). Core
	// does not close it. Without it, exports and restores are refused as
	// unsupported.
	Blobs *blob.Bucket
	// Logger receives operational logs. Defaults to slog.Default().
	Logger *slog.Logger
	// NowFunc returns the current time. Defaults to time.Now.
	NowFunc func() time.Time
}

// Core is safe for concurrent use.
type Core struct {
	store       store.Store
	keys        *keyring.Keyring
	adminHash   [32]byte
	keyEnv      string
	refreshTTL  time.Duration
	cacheTTL    time.Duration
	feed        changefeed.Feed
	unsubscribe func()
	closeFeed   func() error // the feed's Close if Core made it
	log         *slog.Logger
	events      secevent.Publisher
	now         func() time.Time

	passwords *auth.Passwords
	dummyHash string
	tokens    *auth.Tokens
	keyHasher *auth.KeyHasher
	audit     *audit.Log
	schemas   schemaCache
	later     laterAudits
	guard     guard            // automatic containment (contain.go)
	oidc      oidcRP           // OpenID Connect federation (oidc.go)
	oidcLAN   bool             // Config.OIDCAllowPrivateNetworks
	phantoms  phantomThrottles // login throttles of slugs that name no tenant
	// oidcWrap is Config.OIDCTransport.
	oidcWrap func(http.RoundTripper) http.RoundTripper
	// signing tracks the rotated token signing keys; signingKeep is how
	// long a previous one verifies (see ReloadSigningKeys).
	signing     signingState
	signingKeep time.Duration
	// breakGlass caches each tenant's active break-glass grant.
	breakGlass breakGlassCache

	jobs      jobs.Queue   // nil without Config.Jobs
	bg        background   // the jobs of Core's own this node started
	blobs     *blob.Bucket // nil without Config.Blobs
	kms       keyring.KMS
	deks      keyCache
	encFields sync.Map // encFieldsKey -> []string: a collection's encrypted fields, as last seen
	rotations rotations

	// deletionGrace is Config.DeletionGrace with its default applied.
	deletionGrace time.Duration
	usage         usageMeter // requests and job time not yet flushed (usage.go)

	// defaultPlan is Config.DefaultPlan with its default applied.
	defaultPlan string
	// cursors seals pagination cursors (cursor.go).
	cursors cursorSealer
	// auditVerifyFailed is Config.AuditVerifyFailed, or a no-op.
	auditVerifyFailed func(chain string)

	life   context.Context // ended by Close: background work stops
	stop   context.CancelFunc
	builds sync.WaitGroup // index builds running

	mu       sync.RWMutex
	tenants  *ttlCache[tenant.Slug, *store.Tenant]
	apiKeys  *ttlCache[store.APIKeyID, cachedKey]
	gen      uint64 // incremented by every invalidation, so that a lookup racing with one caches nothing
	plans    *ttlCache[string, *tenant.Plan]
	sessions *ttlCache[sessionKey, bool] // whether an access token's session goes on
	// contained holds each tenant's containments in force (contain.go).
	contained *ttlCache[tenant.ID, []*store.Containment]
	echoes    map[changefeed.Event]int // announced, their echo from the feed not yet back
}

// sessionKey names the session of an access token.
type sessionKey struct {
	tenant  tenant.ID
	user    store.UserID
	role    tenant.Role
	session string
}

type cachedKey struct {
	hash      []byte
	principal *tenant.Principal
}

// New returns a Core for cfg.
func New(cfg Config) (*Core, error) {
	if cfg.Store == nil || cfg.Keys == nil {
		return nil, errors.New("core: Store and Keys are required")
	}
	if cfg.AdminToken == "" {
		return nil, errors.New("core: AdminToken is required")
	}
	if cfg.PasswordParams == (auth.PasswordParams{}) {
		cfg.PasswordParams = auth.DefaultPasswordParams
	}
	if cfg.NowFunc == nil {
		cfg.NowFunc = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	c := &Core{
		// Transactions of admitted requests queue for a database slot.
		store:      fairq.Store(cfg.Store),
		keys:       cfg.Keys,
		adminHash:  sha256.Sum256([]byte(cfg.AdminToken)),
		keyEnv:     or(cfg.KeyEnv, "live"),
		refreshTTL: orDuration(cfg.RefreshTTL, 30*24*time.Hour),
		cacheTTL:   orDuration(cfg.CacheTTL, time.Second),
		feed:       cfg.Feed,
		log:        cfg.Logger,
		events:     cfg.Events,
		oidcLAN:    cfg.OIDCAllowPrivateNetworks,
		oidcWrap:   cfg.OIDCTransport,
		now:        func() time.Time { return cfg.NowFunc().UTC().Truncate(time.Microsecond) },
		passwords:  auth.NewPasswords(cfg.PasswordParams, cfg.HashLimits),
		keyHasher:  auth.NewKeyHasher(cfg.Keys.APIKeyMAC),
		kms:        cfg.KMS,
		jobs:       cfg.Jobs,
		blobs:      cfg.Blobs,
	}
	c.defaultPlan = or(cfg.DefaultPlan, tenant.DefaultPlan)
	c.auditVerifyFailed = cfg.AuditVerifyFailed
	if c.auditVerifyFailed == nil {
		c.auditVerifyFailed = func(string) {}
	}
	switch {
	case cfg.DeletionGrace == 0:
		c.deletionGrace = DefaultDeletionGrace
	case cfg.DeletionGrace > 0:
		c.deletionGrace = min(cfg.DeletionGrace, MaxDeletionGrace)
	}
	c.deks.sets = map[tenant.ID]*keySet{}
	c.rotations.running = map[tenant.ID]*rotation{}
	c.bg.pending = map[store.JobID]tenant.ID{}
	c.rotations.erasing = map[tenant.ID]bool{}
	life := max(orDuration(cfg.CacheLife, 10*time.Minute), c.cacheTTL)
	if c.events == nil {
		c.events = secevent.Discard{}
	}
	c.tenants = newTTLCache[tenant.Slug, *store.Tenant](life)
	c.apiKeys = newTTLCache[store.APIKeyID, cachedKey](life)
	c.plans = newTTLCache[string, *tenant.Plan](life)
	c.sessions = newTTLCache[sessionKey, bool](life)
	c.contained = newTTLCache[tenant.ID, []*store.Containment](life)
	rules := contain.Defaults
	if cfg.Containment != nil {
		rules = *cfg.Containment
	}
	c.guard.init(rules, cfg.SharedCounts)
	if c.feed == nil {
		own := changefeed.NewUnlinked()
		c.feed, c.closeFeed = own, own.Close
	}
	c.echoes = map[changefeed.Event]int{}
	c.unsubscribe = c.feed.Subscribe(c.receive)
	c.later.sem = make(chan struct{}, maxLaterAudits)
	c.life, c.stop = context.WithCancel(context.Background())
	c.tokens = auth.NewTokens(cfg.Keys.TokenKey, auth.TokenConfig{Issuer: or(cfg.Issuer, "bulkhead"), Audience: or(cfg.Audience, "bulkhead-api"),
		TTL: orDuration(cfg.AccessTTL, 15*time.Minute), MaxTTL: cfg.MaxAccessTTL})
	c.tokens.NowFunc = cfg.NowFunc
	c.tokens.UnknownKeyFunc = c.reloadForUnknownKey
	c.signingKeep = SigningKeyKeep(max(cfg.MaxAccessTTL, orDuration(cfg.AccessTTL, 15*time.Minute)))
	if err := c.ReloadSigningKeys(); err != nil {
		return nil, fmt.Errorf("core: token signing keys: %w", err)
	}
	c.audit = audit.New(audit.Config{
		SigningKey:      cfg.Keys.AuditKey,
		CheckpointEvery: cfg.AuditCheckpointEvery,
		NowFunc:         cfg.NowFunc,
	})
	c.registerJobs()
	var err error
	// A hash of a random password, verified against when a login names no
	// known user, so that such logins cost as much as real ones.
	if c.dummyHash, err = c.passwords.Hash(context.Background(), "", uuid.NewString()); err != nil {
		return nil, fmt.Errorf("core: %w", err)
	}
	return c, nil
}

// Tokens returns the access token issuer, for publishing its public keys.
func (c *Core) Tokens() *auth.Tokens { return c.tokens }

// isOperatorToken compares in constant time, over hashes so that the
// token's length does not leak either.
func (c *Core) isOperatorToken(token string) bool {
	h := sha256.Sum256([]byte(token))
	return subtle.ConstantTimeCompare(h[:], c.adminHash[:]) == 1
}

func newID() string { return uuid.Must(uuid.NewV7()).String() }

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// emit publishes a security event, stamped with the current time if it has
// none and with the client address ctx carries.
func (c *Core) emit(ctx context.Context, ev secevent.Event) {
	if ev.Time.IsZero() {
		ev.Time = c.now()
	}
	if ev.ClientAddr == "" {
		if a := ClientFrom(ctx); a.IsValid() {
			ev.ClientAddr = a.String()
		}
	}
	c.events.Publish(ev)
}
