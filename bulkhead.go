package bulkhead

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/base32"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	_ "gocloud.dev/blob/s3blob" // s3:// bucket URLs

	"github.com/bulkheadhq/bulkhead/internal/backup"
	"github.com/bulkheadhq/bulkhead/internal/breaker"
	"github.com/bulkheadhq/bulkhead/internal/changefeed"
	"github.com/bulkheadhq/bulkhead/internal/console"
	"github.com/bulkheadhq/bulkhead/internal/contain"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/fairq"
	"github.com/bulkheadhq/bulkhead/internal/httpapi"
	"github.com/bulkheadhq/bulkhead/internal/jobs"
	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/internal/observe"
	"github.com/bulkheadhq/bulkhead/internal/ratelimit"
	"github.com/bulkheadhq/bulkhead/internal/secevent"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/pgstore"
	"github.com/bulkheadhq/bulkhead/store/sqlitestore"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// App is a bulkhead server: a store, the operations on it and the HTTP API.
type App struct {
	cfg     Config
	log     *slog.Logger
	store   store.Store
	core    *core.Core
	handler *httpapi.Server
	jobs    *jobs.Runner
	sched   *fairq.Scheduler // the fair scheduler, shared by requests and jobs
	// startJobs starts the job runner once (StartJobs).
	startJobs sync.Once
	closers   []func() error // run in reverse order by Close
	redis     *redis.Client  // nil without Redis
	feedName  string         // the change feed's kind, for the log
	certs     *certReloader  // nil without TLS
	// sweepers free the memory of idle tenants: expired cache entries and
	// full rate-limit buckets. Serve runs them every second.
	sweepers []func()
	// backups takes the scheduled backups; nil without Config.BackupEvery.
	backups *backup.Scheduler
	// db is the store's circuit breaker; Serve probes it while it is not
	// closed.
	db      *breaker.Store
	metrics *observe.Metrics
	// limiter is the Redis rate limiter; nil without Redis. Serve probes
	// it while its breaker is not closed.
	limiter *ratelimit.Redis
	// tracing exports the requests' spans; nil with tracing off (no
	// OTEL_* variable turns it on).
	tracing *observe.Tracing
	// root serves the web console at /ui and the API everywhere else.
	root http.Handler
}

// New opens the database (creating and migrating it if needed), loads or
// creates the platform keys and builds the HTTP API. Close releases it.
func New(cfg Config) (*App, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.Addr = cmp.Or(cfg.Addr, "127.0.0.1:8080")
	cfg.DataDir = cmp.Or(cfg.DataDir, "./bulkhead-data")
	cfg.ShutdownTimeout = cmp.Or(cfg.ShutdownTimeout, 30*time.Second)
	cfg.KeyReloadInterval = cmp.Or(cfg.KeyReloadInterval, 10*time.Second)
	if cfg.Logger == nil {
		cfg.Logger = observe.NewLogger(os.Stderr, slog.LevelInfo)
	}
	if err := checkSQLitePath(&cfg); err != nil {
		return nil, err
	}
	// Every line about a tenant names its slug beside its ID.
	slugs := observe.WithTenantSlugs(cfg.Logger.Handler())
	cfg.Logger = slog.New(slugs)
	if err := makeDataDir(cfg.DataDir, cfg.Logger); err != nil {
		return nil, err
	}
	keys, err := keyring.Load(filepath.Join(cfg.DataDir, "keys"))
	if err != nil {
		return nil, err
	}
	if cfg.AdminToken == "" {
		if cfg.AdminToken, err = loadAdminToken(cfg.DataDir, cfg.Logger); err != nil {
			return nil, err
		}
	}
	raw, err := openStore(&cfg)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	metrics := observe.NewMetrics()
	// One breaker around every call to the database: while it is down,
	// data routes answer 503 at once instead of waiting for a connection.
	db := breaker.NewStore(raw, breaker.Settings{Name: observe.BreakerDatabase, Report: metrics.Breakers, Logger: cfg.Logger})
	var st store.Store = db
	slugs.SetLookup(func(ctx context.Context, id string) (string, error) { return tenantSlug(ctx, st, id) })
	app := &App{cfg: cfg, log: cfg.Logger, store: st, db: db, metrics: metrics}
	app.closers = append(app.closers, st.Close)
	if err := checkDefaultPlan(st, cfg.DefaultPlan); err != nil {
		app.Close()
		return nil, err
	}
	if app.tracing, err = observe.TracingFromEnv(context.Background(), cfg.Logger); err != nil {
		app.Close()
		return nil, fmt.Errorf("tracing (OTEL_* environment variables): %w", err)
	}
	if app.tracing != nil {
		cfg.Logger.Info("tracing on: spans are exported as the OTEL_* environment variables say")
		// Closed after everything that starts spans: the buffered spans
		// are exported before the App is gone.
		app.closers = append(app.closers, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			return app.tracing.Shutdown(ctx)
		})
	}
	if cfg.TLSCertFile != "" {
		if app.certs, err = newCertReloader(cfg.TLSCertFile, cfg.TLSKeyFile, cfg.Logger); err != nil {
			app.Close()
			return nil, err
		}
	}
	if cfg.RedisURL != "" {
		opt, err := ratelimit.ClientOptions(cfg.RedisURL)
		if err != nil {
			app.Close()
			return nil, fmt.Errorf("RedisURL (--redis, BULKHEAD_REDIS_URL): %w", err)
		}
		app.redis = redis.NewClient(opt)
		app.closers = append(app.closers, app.redis.Close)
	}
	kms, err := openKMS(&cfg, st)
	if err != nil {
		app.Close()
		return nil, err
	}
	if cfg.KMS == "vault" { // one destination: one breaker
		kms = breaker.NewKMS(kms, breaker.Settings{Name: observe.BreakerVault, Timeout: 5 * time.Second, Report: metrics.Breakers, Logger: cfg.Logger})
	}
	blobs, err := openBlobs(&cfg)
	if err != nil {
		app.Close()
		return nil, err
	}
	app.closers = append(app.closers, blobs.Close)
	feed := app.openFeed()
	app.closers = append(app.closers, feed.Close) // after the core's
	metrics.SetTenantLabels(cfg.metricsTenants())
	// Per-tenant health windows of idle tenants are freed, and the tenant
	// labels go to the busiest tenants every 10 seconds.
	app.sweepers = append(app.sweepers, metrics.Sweep)
	auditMetrics := metrics.Audit()
	events, err := app.openSecurityEvents(metrics) // closed after the core, which emits until it closes
	if err != nil {
		app.Close()
		return nil, err
	}
	rules, _ := contain.Parse(cfg.Containment) // checked by validate
	var shared contain.Shared
	if app.redis != nil {
		shared = contain.NewRedis(app.redis) // nodes count containment's events together
	}
	// One slot per database connection, so that a granted slot never waits
	// for a connection; no tenant may hold them all (fairq's default
	// reserve). Requests and background jobs share it.
	if app.sched, err = fairq.New(fairq.Config{Slots: st.MaxConns(), BreakerOpenFunc: app.breakerOpened}); err != nil {
		app.Close()
		return nil, err
	}
	metrics.Registry.MustRegister(app.sched)
	if app.jobs, err = openJobs(&cfg, st, app.sched); err != nil {
		app.Close()
		return nil, err
	}
	if app.core, err = core.New(core.Config{Store: st, Keys: keys, KMS: kms, AdminToken: cfg.AdminToken, Logger: cfg.Logger, Feed: feed,
		Events: events, Blobs: blobs, Containment: &rules, SharedCounts: shared, OIDCAllowPrivateNetworks: cfg.OIDCAllowPrivateNetworks,
		OIDCTransport: breaker.NewHosts(observe.BreakerOIDC, breaker.Settings{Timeout: 5 * time.Second, Report: metrics.Breakers, Logger: cfg.Logger}).Transport,
		DeletionGrace: cfg.DeletionGrace, Jobs: app.jobs, DefaultPlan: cfg.DefaultPlan,
		AuditVerifyFailed: auditMetrics.VerifyFailed}); err != nil {
		app.jobs.Close(context.Background())
		app.Close()
		return nil, err
	}
	app.closers = append(app.closers, func() error { app.core.Close(); return nil }) // before the store's
	app.closers = append(app.closers, func() error {                                 // before the core's: jobs use it
		ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		return app.jobs.Close(ctx)
	})
	app.sweepers = append(app.sweepers, app.core.Sweep)
	admission, err := app.admission(metrics)
	if err != nil {
		app.Close()
		return nil, err
	}
	if cfg.BackupEvery > 0 {
		app.backups = app.backupScheduler(keys, metrics)
		app.backups.Verify.OnBrokenChain = auditMetrics.VerifyFailed
	}
	app.handler = httpapi.New(httpapi.Config{Core: app.core, Store: st, Metrics: metrics, Logger: cfg.Logger,
		MaxBodyBytes: cfg.MaxBodyBytes, Admission: admission, PublicURL: cfg.PublicURL, TrustedProxies: cfg.TrustedProxies, TLS: app.certs != nil,
		Tracing: app.tracing})
	// The console calls the API in process; its session cookies are sealed
	// under a key derived from the cursor secret, which every node sharing
	// the data directory's keys has.
	ui, err := console.New(console.Config{API: app.handler, CookieKey: keys.CursorMAC, Logger: cfg.Logger,
		TLS: app.certs != nil || strings.HasPrefix(cfg.PublicURL, "https://")})
	if err != nil {
		app.Close()
		return nil, err
	}
	app.root = mountConsole(ui, app.handler)
	return app, nil
}

// checkDefaultPlan refuses a Config.DefaultPlan that names no plan of the
// store, listing the plans there are.
func checkDefaultPlan(st store.Store, name string) error {
	if name == "" {
		return nil
	}
	var plans []*tenant.Plan
	err := st.ReadPlatform(context.Background(), func(tx store.PlatformTx) (err error) {
		plans, err = tx.ListPlans(context.Background())
		return err
	})
	if err != nil {
		return fmt.Errorf("read plans: %w", err)
	}
	names := make([]string, len(plans))
	for i, p := range plans {
		if p.Name == name {
			return nil
		}
		names[i] = p.Name
	}
	return fmt.Errorf("DefaultPlan (--default-plan, BULKHEAD_DEFAULT_PLAN): no plan is named %q; the plans are %s", name, strings.Join(names, ", "))
}

// mountConsole serves /ui and everything under it with the console, and
// every other path with the API, untouched (no path cleaning or redirects
// of a mux in between).
func mountConsole(ui, api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := r.URL.Path; p == "/ui" || strings.HasPrefix(p, "/ui/") {
			ui.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// openBlobs opens the bucket of export and restore archives.
func openBlobs(cfg *Config) (*blob.Bucket, error) {
	if cfg.BlobURL == "" {
		b, err := fileblob.OpenBucket(filepath.Join(cfg.DataDir, "blobs"), &fileblob.Options{CreateDir: true, DirFileMode: 0o700})
		if err != nil {
			return nil, fmt.Errorf("open the blob directory: %w", err)
		}
		return b, nil
	}
	b, err := blob.OpenBucket(context.Background(), cfg.BlobURL)
	if err != nil {
		return nil, fmt.Errorf("--blob-url (BULKHEAD_BLOB_URL): %w", err)
	}
	return b, nil
}

// openKMS opens the key management service cfg selects. A local KMS whose
// KEK is missing or corrupt is returned all the same, and logged: what
// needs a key answers 503 keys_unavailable, everything else is served.
func openKMS(cfg *Config, st store.Store) (keyring.KMS, error) {
	if cfg.KMS == "vault" {
		kms, err := keyring.OpenVault(keyring.VaultConfig{Address: cfg.VaultAddr, Token: cfg.VaultToken, Mount: cfg.VaultMount})
		if err != nil {
			return nil, err
		}
		cfg.Logger.Info("tenant keys are held by Vault Transit", "addr", cfg.VaultAddr)
		return kms, nil
	}
	var wrapped []*store.DataKey
	err := st.ReadPlatform(context.Background(), func(tx store.PlatformTx) (err error) {
		wrapped, err = tx.ListDataKeys(context.Background(), "")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read data keys: %w", err)
	}
	kms, err := keyring.OpenLocal(keyring.LocalConfig{Dir: filepath.Join(cfg.DataDir, "keys"), EnvKEK: cfg.KEK,
		WrappedKeysExist: len(wrapped) > 0})
	if err != nil {
		return nil, err
	}
	if err := kms.Err(); err != nil {
		cfg.Logger.Error("the platform KEK is unavailable: encrypted fields and sealed secrets answer 503 keys_unavailable "+
			"until it is restored; everything else is served", "err", err)
	}
	return kms, nil
}

// openStore opens the database cfg names.
func openStore(cfg *Config) (store.Store, error) {
	if strings.HasPrefix(cfg.DatabaseURL, "postgres") {
		return pgstore.Open(context.Background(), withConnectTimeout(cfg.DatabaseURL), &pgstore.Options{ProvisionURL: cfg.ProvisionURL, Logger: cfg.Logger})
	}
	return sqlitestore.Open(SQLitePath(cfg), &sqlitestore.Options{Logger: cfg.Logger})
}

// checkSQLitePath refuses a "sqlite:PATH" DatabaseURL whose directory does
// not exist, rather than creating it: the store keeps its files together
// in that directory (PATH, PATH-jobs.db and the silo tenants' tenants/),
// and a mistyped path would otherwise start an empty platform somewhere
// unexpected without a word.
func checkSQLitePath(cfg *Config) error {
	p, ok := strings.CutPrefix(cfg.DatabaseURL, "sqlite:")
	if !ok {
		return nil
	}
	if p == "" || strings.HasSuffix(p, "/") {
		return fmt.Errorf("DatabaseURL (--database, BULKHEAD_DATABASE_URL): sqlite:PATH must name a file, got %q", cfg.DatabaseURL)
	}
	dir := filepath.Dir(p)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("DatabaseURL (--database, BULKHEAD_DATABASE_URL): the directory %s of %s does not exist; create it (the store keeps its files there) or correct the path", dir, cfg.DatabaseURL)
	case err != nil:
		return fmt.Errorf("DatabaseURL (--database, BULKHEAD_DATABASE_URL): %w", err)
	case !fi.IsDir():
		return fmt.Errorf("DatabaseURL (--database, BULKHEAD_DATABASE_URL): %s is not a directory", dir)
	}
	return nil
}

// connectTimeout bounds each new connection to PostgreSQL unless the URL
// sets connect_timeout: a server that does not answer is then an error
// (503, and a count against the database's breaker) within it, never a
// request held until its own deadline.
const connectTimeout = "2"

// withConnectTimeout returns the PostgreSQL URL u with connect_timeout set
// to connectTimeout seconds if it sets none.
func withConnectTimeout(u string) string {
	pu, err := url.Parse(u)
	if err != nil || (pu.Scheme != "postgres" && pu.Scheme != "postgresql") {
		return u // a keyword/value string, or an error for pgx to report
	}
	q := pu.Query()
	if q.Get("connect_timeout") != "" {
		return u
	}
	q.Set("connect_timeout", connectTimeout)
	pu.RawQuery = q.Encode()
	return pu.String()
}

// tenantSlug reads the slug of the tenant with ID id.
func tenantSlug(ctx context.Context, st store.Store, id string) (string, error) {
	tid, err := tenant.ParseID(id)
	if err != nil {
		return "", err
	}
	var t *store.Tenant
	err = st.ReadPlatform(ctx, func(tx store.PlatformTx) (err error) {
		t, err = tx.GetTenant(ctx, tid)
		return err
	})
	if err != nil {
		return "", err
	}
	return string(t.Slug), nil
}

// storeName names the database for the log: SQLite's file, or
// PostgreSQL's host:port/database, without user or password.
func (a *App) storeName() string {
	if !strings.HasPrefix(a.cfg.DatabaseURL, "postgres") {
		return "sqlite:" + SQLitePath(&a.cfg)
	}
	u, err := url.Parse(a.cfg.DatabaseURL)
	if err != nil || u.Host == "" {
		return "postgres" // a keyword/value string: not parsed here
	}
	return "postgres:" + u.Host + u.Path
}

// redisName says for the log whether Redis is on: "off", or its host
// (without user or password).
func (a *App) redisName() string {
	if a.cfg.RedisURL == "" {
		return "off"
	}
	u, err := url.Parse(a.cfg.RedisURL)
	if err != nil {
		return "on"
	}
	return u.Host
}

// redactURL returns u without its password (and without a user who has
// none): fit for the log.
func redactURL(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return "(unparsable URL)"
	}
	if pu.User != nil {
		if name := pu.User.Username(); name != "" {
			pu.User = url.User(name)
		} else {
			pu.User = nil
		}
	}
	return pu.String()
}

// SQLitePath returns the main SQLite database file cfg names: the path of
// a "sqlite:PATH" DatabaseURL, else bulkhead.db in DataDir (defaulted as
// New defaults it). It is meaningless for PostgreSQL.
func SQLitePath(cfg *Config) string {
	if p, ok := strings.CutPrefix(cfg.DatabaseURL, "sqlite:"); ok {
		return p
	}
	return filepath.Join(cmp.Or(cfg.DataDir, "./bulkhead-data"), "bulkhead.db")
}

// backupLockKey is the PostgreSQL advisory lock that the nodes of one
// platform take around a scheduled backup, so that one of them takes it.
const backupLockKey int64 = 0x62686261636b7570 // "bhbackup"

// backupScheduler builds the scheduler of Config.BackupEvery. Each backup
// is signed with the audit key, whose public half verifies it.
func (a *App) backupScheduler(keys *keyring.Keyring, metrics *observe.Metrics) *backup.Scheduler {
	cfg := &a.cfg
	s := &backup.Scheduler{
		Source:  &backup.Source{AuditKey: keys.AuditKey},
		Dest:    cfg.BackupDir,
		Every:   cfg.BackupEvery,
		Keep:    cmp.Or(cfg.BackupKeep, 7),
		Verify:  backup.VerifyOptions{TrustedKey: keys.AuditKey.Public().(ed25519.PublicKey), Logger: a.log},
		Metrics: metrics.Backups(),
		Logger:  a.log,
	}
	if strings.HasPrefix(cfg.DatabaseURL, "postgres") {
		s.Source.PostgresURL = cfg.BackupPostgresURL
		s.Verify.PostgresURL, s.Verify.AppURL = cfg.BackupPostgresURL, cfg.DatabaseURL
		// Every node runs the schedule; the lock and the destination's
		// newest backup make one of them take each interval's backup.
		s.LockFunc = func(ctx context.Context) (func(), bool, error) {
			return pgstore.TryLock(ctx, cfg.BackupPostgresURL, backupLockKey)
		}
	} else {
		s.Source.SQLitePath, s.Source.SQLiteJobsPath = SQLitePath(cfg), jobsPath(cfg)
	}
	return s
}

// openFeed starts the change feed that carries cache invalidations between
// nodes: Redis pub/sub when Redis is configured, PostgreSQL LISTEN/NOTIFY on
// PostgreSQL, in process on SQLite. A feed that cannot start leaves the node
// on its own: its caches then trust nothing older than a second.
func (a *App) openFeed() changefeed.Feed {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var feed changefeed.Feed
	var err error
	switch {
	case a.redis != nil:
		a.feedName = "redis"
		feed, err = changefeed.NewRedis(ctx, a.redis, a.log)
	case strings.HasPrefix(a.cfg.DatabaseURL, "postgres"):
		a.feedName = "postgres"
		feed, err = changefeed.NewPostgres(ctx, a.cfg.DatabaseURL, a.log)
	default:
		a.feedName = "local"
		return changefeed.NewLocal()
	}
	if err != nil {
		a.log.Warn("change feed not started: this node applies other nodes' changes within 1s only by rereading", "err", err)
		a.feedName = "unlinked"
		return changefeed.NewUnlinked()
	}
	return feed
}

// admission builds per-tenant admission control: rate limits (shared
// through Redis when configured), in-flight caps and the fair scheduler.
func (a *App) admission(metrics *observe.Metrics) (httpapi.Admission, error) {
	local := ratelimit.NewLocal()
	var lim ratelimit.Limiter = local
	sweep := local.Sweep
	if a.redis != nil {
		r, err := ratelimit.NewRedis(ratelimit.RedisConfig{Client: a.redis, Logger: a.log, Breakers: metrics.Breakers})
		if err != nil {
			return httpapi.Admission{}, err
		}
		metrics.Registry.MustRegister(r)
		a.limiter = r
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := a.redis.Ping(ctx).Err(); err != nil {
			r.Probe(ctx) // opens the breaker: /readyz says "degraded"
			a.log.Warn("Redis is unreachable: rate limits are enforced per node until it returns",
				"redis", redactURL(a.cfg.RedisURL), "err", err)
		}
		lim, sweep = r, r.Sweep
	}
	a.sweepers = append(a.sweepers, sweep)
	return httpapi.Admission{Limiter: lim, Inflight: &ratelimit.Inflight{}, Scheduler: a.sched}, nil
}

// breakerOpened reports a tenant whose breaker the scheduler opened.
func (a *App) breakerOpened(tid tenant.ID) {
	if a.core != nil {
		a.core.BreakerOpenFunc()(tid)
	}
}

// openJobs opens the job runner for the store cfg names: River in a SQLite
// file of its own beside the store's (never the store's file, whose single
// writer it would contend with), or in schema bulkhead_jobs of the store's
// PostgreSQL database, migrated as the owner role when ProvisionURL is set.
func openJobs(cfg *Config, st store.Store, sched *fairq.Scheduler) (*jobs.Runner, error) {
	jc := jobs.Config{Store: st, Scheduler: sched, Workers: cfg.JobWorkers, PerTenant: cfg.JobsPerTenant, Logger: cfg.Logger}
	if strings.HasPrefix(cfg.DatabaseURL, "postgres") {
		jc.DatabaseURL, jc.MigrateURL = cfg.DatabaseURL, cfg.ProvisionURL
	} else {
		jc.DatabaseURL = "sqlite:" + jobsPath(cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := jobs.Open(ctx, jc)
	if err != nil {
		return nil, fmt.Errorf("open the job queue: %w", err)
	}
	return r, nil
}

// SQLiteJobsPath returns the job queue's SQLite file beside the store
// SQLitePath names; see jobsPath.
func SQLiteJobsPath(cfg *Config) string {
	c := *cfg
	c.DataDir = cmp.Or(c.DataDir, "./bulkhead-data")
	return jobsPath(&c)
}

// jobsPath is River's SQLite file: jobs.db in DataDir beside the default
// bulkhead.db, or PATH-jobs.db beside a store of "sqlite:PATH".
func jobsPath(cfg *Config) string {
	if p, ok := strings.CutPrefix(cfg.DatabaseURL, "sqlite:"); ok {
		return strings.TrimSuffix(p, ".db") + "-jobs.db"
	}
	return filepath.Join(cfg.DataDir, "jobs.db")
}

// StartJobs starts working background jobs on this node; Serve calls it.
// A command that waits for a job it enqueued (bulkhead keys rotate) calls
// it too. Calling it again does nothing.
func (a *App) StartJobs(ctx context.Context) error {
	var err error
	a.startJobs.Do(func() { err = a.jobs.Start(ctx) })
	return err
}

// openSecurityEvents opens the sink of Config.SecurityEvents, if any, and
// exports its counters. Close flushes it, waiting up to ShutdownTimeout.
func (a *App) openSecurityEvents(metrics *observe.Metrics) (secevent.Publisher, error) {
	opts := secevent.Options{Logger: a.log}
	if strings.HasPrefix(a.cfg.SecurityEvents, "https://") {
		hosts := breaker.NewHosts(observe.BreakerSecurityEvents, breaker.Settings{Timeout: 5 * time.Second, Report: metrics.Breakers, Logger: a.log})
		opts.Client = &http.Client{Transport: hosts.Transport(nil)}
	}
	q, closeSink, err := secevent.Open(a.cfg.SecurityEvents, opts)
	if err != nil {
		return nil, fmt.Errorf("SecurityEvents: %w", err)
	}
	if q == nil {
		return secevent.Discard{}, nil
	}
	metrics.WatchSecurityEvents(func() (published, dropped, failed uint64) {
		s := q.Stats()
		return s.Published, s.Dropped, s.Failed
	})
	a.closers = append(a.closers, closeSink, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
		defer cancel()
		return q.Close(ctx)
	})
	return q, nil
}

// Handler returns the HTTP API with the web console at /ui, for serving
// them on a listener of your own.
func (a *App) Handler() http.Handler { return a.root }

// Core returns the operations behind the API. It is for bulkhead's own
// command line and is not a stable API.
func (a *App) Core() *core.Core { return a.core }

// Run serves the API on cfg.Addr until ctx is cancelled, then stops
// accepting connections and waits up to ShutdownTimeout for in-flight
// requests. It does not close the App.
//
// Run binds cfg.Addr after New has opened the database and written the
// data directory. To fail on an address already in use before anything is
// written, as bulkhead serve does, call Listen first, then New, then Serve.
func (a *App) Run(ctx context.Context) error {
	ln, err := Listen(a.cfg)
	if err != nil {
		return err
	}
	return a.Serve(ctx, ln)
}

// Listen binds the TCP address cfg names (Addr, defaulted as New defaults
// it), for Serve. It touches nothing on disk, so a server can bind before
// New creates its data directory, operator token and database; its error
// names the address and the setting.
func Listen(cfg Config) (net.Listener, error) {
	addr := cmp.Or(cfg.Addr, "127.0.0.1:8080")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s (--addr, BULKHEAD_ADDR): %w", addr, err)
	}
	return ln, nil
}

// Serve is Run on a listener of the caller's; it closes ln.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	if a.certs != nil {
		ln = tls.NewListener(ln, a.certs.tlsConfig())
	}
	srv := &http.Server{
		Handler:           a.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	stopSweeping := every(time.Second, func() {
		for _, sweep := range a.sweepers {
			sweep()
		}
	})
	defer stopSweeping()
	pctx, stopProbing := context.WithCancel(ctx)
	probing := make(chan struct{})
	go func() { defer close(probing); a.db.Probe(pctx, time.Second, a.log) }()
	defer func() { stopProbing(); <-probing }()
	if a.limiter != nil {
		watching := make(chan struct{})
		go func() { defer close(watching); a.limiter.Watch(pctx, time.Second) }()
		defer func() { stopProbing(); <-watching }()
	}
	// Export archives expire; uploads of finished restores are left over.
	stopExpiring := every(time.Hour, func() {
		if n, err := a.core.SweepExports(ctx); err != nil {
			a.log.Warn("expired exports not swept", "err", err)
		} else if n > 0 {
			a.log.Info("expired exports swept", "deleted", n)
		}
	})
	defer stopExpiring()
	// Token signing keys are re-read so that a rotation made through another
	// node applies here too.
	stopReloading := every(a.cfg.KeyReloadInterval, func() {
		if err := a.core.ReloadSigningKeys(); err != nil {
			a.log.Error("token signing keys not reloaded; keeping the current ones", "err", err)
		}
	})
	defer stopReloading()
	if err := a.StartJobs(ctx); err != nil {
		return fmt.Errorf("start background jobs: %w", err)
	}
	// Each node adds the requests and job time it counted to the tenants'
	// hourly usage, and purges the deleted tenants whose purge job is
	// overdue (or every due one, without a job queue).
	stopMinutely := every(time.Minute, func() {
		if err := a.core.FlushUsage(ctx); err != nil {
			a.log.Warn("usage counts not flushed; retrying at the next flush", "err", err)
		}
		if err := a.core.SweepPurges(ctx); err != nil {
			a.log.Warn("tenant purges not swept", "err", err)
		}
	})
	defer stopMinutely()
	if err := a.core.ResumePurges(ctx); err != nil {
		a.log.Warn("purges of deleting tenants not enqueued; the sweeper runs them when overdue", "err", err)
	}
	if a.backups != nil {
		bctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); a.backups.Run(bctx) }()
		defer func() { cancel(); <-done }()
	}
	// Each tenant with retention settings gets a retention job hourly.
	stopRetention := every(core.RetentionInterval, func() {
		if err := a.core.EnqueueRetention(ctx); err != nil {
			a.log.Warn("retention jobs not all enqueued; the next round tries again", "err", err)
		}
	})
	defer stopRetention()
	if err := a.core.ResumeIndexBuilds(ctx); err != nil {
		a.log.Warn("index builds left by an earlier run not resumed", "err", err)
	}
	if err := a.core.ResumeRotations(ctx); err != nil {
		a.log.Warn("key rotations left by an earlier run not resumed", "err", err)
	}
	a.warnConfig()
	scheme := "http"
	if a.certs != nil {
		scheme = "https"
	}
	a.log.Info("serving", "addr", ln.Addr().String(), "tls", a.certs != nil, "data_dir", a.cfg.DataDir, "change_feed", a.feedName,
		"store", a.storeName(), "redis", a.redisName(), "console", scheme+"://"+ln.Addr().String()+"/ui")
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.log.Info("shutting down: draining in-flight requests", "timeout_ms", float64(a.cfg.ShutdownTimeout)/float64(time.Millisecond))
	sctx, cancel := context.WithTimeout(context.Background(), a.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// warnConfig logs, as the server starts, what its configuration leaves
// unable to work.
func (a *App) warnConfig() {
	if pg, ok := a.db.Unwrap().(*pgstore.Store); ok && !pg.CanProvisionSilos() {
		a.log.Warn("silo tenants cannot be created or deleted: PostgreSQL is used without the owner role's URL; " +
			"set --provision-url or BULKHEAD_PROVISION_URL (Config.ProvisionURL) to provision them")
	}
}

// every runs fn every interval until the returned func is called.
func every(interval time.Duration, fn func()) (stop func()) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fn()
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// Close closes the database after the transactions in progress finish, and
// the Redis client if there is one; with tracing on, it exports the spans
// still buffered first.
func (a *App) Close() error {
	var errs []error
	for i := len(a.closers) - 1; i >= 0; i-- {
		errs = append(errs, a.closers[i]())
	}
	return errors.Join(errs...)
}

// makeDataDir creates the data directory with mode 0700, logging it, or
// takes the group and other permissions off an existing one (made by hand,
// or by a version that did not check): it holds the keys, the operator
// token and, with SQLite, every tenant's data.
func makeDataDir(dir string, log *slog.Logger) error {
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create data directory (--data, BULKHEAD_DATA): %w", err)
		}
		// A warning, so that one-off commands (which log only warnings)
		// say it too: a mistyped --data starts an empty platform.
		log.Warn("created the data directory: nothing was there, so a new platform starts in it", "path", dir)
	}
	if runtime.GOOS == "windows" { // no such permissions
		return nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if was := fi.Mode().Perm(); was&0o077 != 0 {
		if err := os.Chmod(dir, was&^0o077); err != nil {
			return fmt.Errorf("data directory: %w", err)
		}
		log.Info("took group and other permissions off the data directory",
			"path", dir, "was", was.String(), "now", (was &^ 0o077).String())
	}
	return nil
}

// loadAdminToken reads DataDir/admin-token, creating it on first start.
func loadAdminToken(dir string, log *slog.Logger) (string, error) {
	path := filepath.Join(dir, "admin-token")
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read operator token: %w", err)
	}
	var secret [32]byte
	rand.Read(secret[:])
	token := "bho_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(secret[:]))
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return loadAdminToken(dir, log)
	}
	if err != nil {
		return "", fmt.Errorf("create operator token: %w", err)
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("write operator token: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write operator token: %w", err)
	}
	log.Info("generated the operator token", "path", path)
	return token, nil
}
