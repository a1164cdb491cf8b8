package bulkhead

import (
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/contain"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/observe"
)

// Config configures an App. Its zero value means "all defaults": an
// embedded SQLite database in ./bulkhead-data, served on 127.0.0.1:8080.
type Config struct {
	// Addr is the address Run listens on. Defaults to "127.0.0.1:8080".
	Addr string
	// DataDir holds the platform keys (keys/), the generated operator
	// token, export archives (blobs/) and, unless DatabaseURL names another
	// database, the embedded database with its job queue and silo tenants'
	// files (tenants/). Defaults to "./bulkhead-data", created (mode 0700)
	// if missing.
	DataDir string
	// DatabaseURL selects the database. Empty (the default) means the
	// embedded SQLite database in DataDir; "sqlite:PATH" names another file,
	// beside which the store keeps its job queue (PATH-jobs.db, PATH without
	// its .db) and silo tenants' files (tenants/), in a directory that must
	// exist (New refuses to create it); "postgres://…" connects to PostgreSQL as the application role (see
	// the README for the one-time role setup and bulkhead migrate).
	DatabaseURL string
	// ProvisionURL connects to PostgreSQL as the owner role, for creating
	// and deleting silo tenants' schemas and roles, which the application
	// role cannot do. Without it, PostgreSQL deployments serve pooled
	// tenants and existing silo tenants but cannot create or delete silo
	// tenants. Unused with SQLite.
	ProvisionURL string
	// RedisURL, if set, keeps rate-limit state in Redis so that several
	// nodes share each tenant's limits. When Redis is unreachable each node
	// decides locally. Defaults to none: limits are per node.
	RedisURL string
	// AdminToken is the platform operator's bearer token. When empty, a
	// token is generated on first start and kept in DataDir/admin-token
	// (mode 0600).
	AdminToken string
	// KMS selects the key management service that holds each tenant's
	// key-encryption key, which wraps the tenant's data keys: "local" (the
	// default: key files in DataDir/keys, wrapped by the platform KEK) or
	// "vault" (HashiCorp Vault Transit; see VaultAddr). See docs/keys.md.
	KMS string
	// KEK is the platform key-encryption key of the local KMS: the base64
	// of 32 bytes, or several such keys separated by commas, oldest first.
	// When empty, the key is kept in DataDir/keys/kek.key (mode 0600),
	// created on first start unless wrapped keys already exist.
	KEK string
	// VaultAddr is Vault's address, for KMS "vault".
	VaultAddr string
	// VaultToken authenticates to Vault, for KMS "vault".
	VaultToken string
	// VaultMount is the Transit engine's mount path. Defaults to "transit".
	VaultMount string
	// MaxBodyBytes limits request bodies. Defaults to 1 MiB.
	MaxBodyBytes int64
	// PublicURL is the API's external base URL, such as
	// https://api.example.com, under which the redirect URIs of federated
	// (OpenID Connect) logins lie. Defaults to the scheme and Host of each
	// request; set it behind a proxy that terminates TLS. An https:// URL
	// also marks the web console's session cookie Secure.
	PublicURL string
	// OIDCAllowPrivateNetworks lets tenants' OpenID providers be on
	// loopback, private or link-local addresses (a Keycloak on localhost
	// in development). Defaults to false: a tenant admin cannot make the
	// server connect into its own networks.
	OIDCAllowPrivateNetworks bool
	// TrustedProxies are the peers (such as a load balancer's addresses)
	// whose X-Forwarded-For header names the client: login limits and
	// security events go by that client's address. From any other peer
	// the header is ignored, since any client can write one. Defaults to
	// none: the peer is the client.
	TrustedProxies []netip.Prefix
	// ShutdownTimeout bounds how long Run waits for in-flight requests
	// after its context is cancelled. Defaults to 30s.
	ShutdownTimeout time.Duration
	// TLSCertFile and TLSKeyFile, if set, are the PEM files of the
	// certificate (with its chain) and private key Run serves HTTPS with;
	// both or neither must be set. (*App).Reload, which the command line
	// calls on SIGHUP, reads them again. Defaults to none: plain HTTP, for
	// loopback or behind a proxy that terminates TLS.
	TLSCertFile, TLSKeyFile string
	// DeletionGrace is how long a tenant deleted without a grace period
	// of its own (DELETE /v1/tenants/{tenant} without ?grace=) stays
	// deleting — suspended, its admins still able to export — before its
	// keys are shredded and its data purged (docs/offboarding.md).
	// Defaults to 30 days; a negative value means none: such deletions
	// purge at once. At most 366 days.
	DeletionGrace time.Duration
	// KeyReloadInterval is how often a running server re-reads the token
	// signing keys of DataDir/keys, so that a rotation made on any node
	// applies everywhere without a restart. Defaults to 10s.
	KeyReloadInterval time.Duration
	// BlobURL is the bucket that keeps tenants' export archives and
	// uploaded restore archives, as a gocloud.dev/blob URL: file:///dir, or
	// s3://bucket?region=…[&endpoint=…&use_path_style=true] for S3 and
	// S3-compatible stores (credentials from the AWS environment).
	// Defaults to the directory DataDir/blobs.
	BlobURL string
	// DefaultPlan is the plan of a tenant created without one, through the
	// API or the command line. It must name an existing plan: New refuses
	// one that does not. Defaults to "free" (10 requests/s per tenant, 5
	// per credential; see the README's admission control).
	DefaultPlan string
	// JobWorkers is how many background jobs (exports, key rotations,
	// index builds…) run at once on this node. Defaults to 6.
	JobWorkers int
	// JobsPerTenant is how many of one tenant's background jobs run at
	// once on this node, so that one tenant's backlog never holds every
	// worker. Defaults to 2.
	JobsPerTenant int
	// MetricsTenants is how many tenants keep a tenant label of their own
	// on bulkhead_tenant_requests_total: the busiest by requests in the
	// health window, recomputed every 10 seconds; every other tenant's
	// requests count under tenant="other" (docs/health.md). Defaults to 50;
	// a negative value counts every tenant under "other". At most
	// MaxMetricsTenants.
	MetricsTenants int
	// Logger receives JSON logs. Defaults to a JSON logger on stderr at
	// info level.
	Logger *slog.Logger
	// SecurityEvents is where security events go, as JSON lines in
	// Elastic Common Schema (docs/security-events.md): "stdout",
	// "file:PATH" (appended, mode 0600) or an "https://…" URL that
	// receives batches by POST. Defaults to none.
	SecurityEvents string
	// Containment sets the rules of automatic containment in the compact
	// syntax of docs/security-events.md, such as
	// "probes=20/1m,logins=10/15m,lock=15m,addresses=10/1h", or "off".
	// Defaults to all rules on with those values.
	Containment string

	// BackupEvery, if set, makes Run take a backup of the whole platform at
	// this interval, verify it right after and keep the newest BackupKeep
	// in BackupDir; see docs/backups.md. Defaults to 0: no scheduled
	// backups.
	BackupEvery time.Duration
	// BackupKeep is how many scheduled backups BackupDir keeps. Defaults
	// to 7.
	BackupKeep int
	// BackupDir is where scheduled backups go: a local directory, or a
	// bucket URL such as file:///srv/backups or
	// s3://bucket?endpoint=…&region=…. Backups are staged in the system's
	// temporary directory, uploaded, then downloaded again to be verified.
	// Required with BackupEvery.
	BackupDir string
	// BackupPostgresURL connects to the store's PostgreSQL database as a
	// superuser: pg_dump runs with it (row-level security is forced on
	// every tenant table, so neither the application nor the owner role
	// can dump them), and verification restores into a scratch database
	// it creates and drops on the same server. Required with BackupEvery
	// on PostgreSQL; unused with SQLite.
	BackupPostgresURL string
}

func (c *Config) validate() error {
	if c.MaxBodyBytes < 0 {
		return fmt.Errorf("MaxBodyBytes must be >= 0, got %d", c.MaxBodyBytes)
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
			u.RawQuery != "" || u.Fragment != "" {
			return fmt.Errorf("PublicURL (--public-url, BULKHEAD_PUBLIC_URL) must be an http(s) base URL such as https://api.example.com, got %q", c.PublicURL)
		}
	}
	if c.ShutdownTimeout < 0 {
		return fmt.Errorf("ShutdownTimeout must be >= 0, got %s", c.ShutdownTimeout)
	}
	switch scheme, _, _ := strings.Cut(c.DatabaseURL, ":"); scheme {
	case "", "sqlite", "postgres", "postgresql":
	default:
		return fmt.Errorf("DatabaseURL (--database, BULKHEAD_DATABASE_URL): unsupported database %q (use sqlite:PATH or postgres://…)", scheme)
	}
	if _, err := contain.Parse(c.Containment); err != nil {
		return fmt.Errorf("containment rules (--containment, BULKHEAD_CONTAINMENT): %w", err)
	}
	switch ev := c.SecurityEvents; {
	case ev == "", ev == "stdout", strings.HasPrefix(ev, "file:") && len(ev) > len("file:"), strings.HasPrefix(ev, "https://"):
	default:
		return fmt.Errorf("security events (--security-events, BULKHEAD_SECURITY_EVENTS): use stdout, file:PATH or an https:// URL")
	}
	for _, p := range c.TrustedProxies {
		if !p.IsValid() {
			return fmt.Errorf("TrustedProxies (--trusted-proxies, BULKHEAD_TRUSTED_PROXIES): %v is not a valid prefix", p)
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return fmt.Errorf("TLSCertFile and TLSKeyFile (--tls-cert and --tls-key, BULKHEAD_TLS_CERT and BULKHEAD_TLS_KEY) must be set together")
	}
	if c.DeletionGrace > core.MaxDeletionGrace {
		return fmt.Errorf("DeletionGrace (--deletion-grace, BULKHEAD_DELETION_GRACE) must be at most 366 days, got %s", c.DeletionGrace)
	}
	if c.KeyReloadInterval < 0 {
		return fmt.Errorf("KeyReloadInterval must be >= 0, got %s", c.KeyReloadInterval)
	}
	switch c.KMS {
	case "", "local":
	case "vault":
		if c.VaultAddr == "" || c.VaultToken == "" {
			return fmt.Errorf("KMS vault (--kms vault) needs VaultAddr (--vault-addr, BULKHEAD_VAULT_ADDR or VAULT_ADDR) and VaultToken (VAULT_TOKEN)")
		}
	default:
		return fmt.Errorf("KMS (--kms, BULKHEAD_KMS) must be \"local\" or \"vault\", got %q", c.KMS)
	}
	if err := c.validateBackups(); err != nil {
		return err
	}
	if c.JobWorkers < 0 {
		return fmt.Errorf("JobWorkers (--job-workers, BULKHEAD_JOB_WORKERS) must be an integer >= 0, got %d", c.JobWorkers)
	}
	if c.JobsPerTenant < 0 {
		return fmt.Errorf("JobsPerTenant (--jobs-per-tenant, BULKHEAD_JOBS_PER_TENANT) must be an integer >= 0, got %d", c.JobsPerTenant)
	}
	if c.MetricsTenants > MaxMetricsTenants {
		return fmt.Errorf("MetricsTenants (--metrics-tenants, BULKHEAD_METRICS_TENANTS) must be at most %d, got %d", MaxMetricsTenants, c.MetricsTenants)
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		return fmt.Errorf("AdminToken (BULKHEAD_ADMIN_TOKEN) must be at least 16 characters")
	}
	return nil
}

// MaxMetricsTenants is the most tenants Config.MetricsTenants may give a
// label of their own: each costs five series.
const MaxMetricsTenants = 10_000

// metricsTenants is how many tenants keep their own label, from
// MetricsTenants.
func (c *Config) metricsTenants() int {
	switch {
	case c.MetricsTenants == 0:
		return observe.DefaultMetricsTenants
	case c.MetricsTenants < 0:
		return 0
	}
	return c.MetricsTenants
}

func (c *Config) validateBackups() error {
	switch {
	case c.BackupEvery < 0:
		return fmt.Errorf("BackupEvery (--backup-every, BULKHEAD_BACKUP_EVERY) must be >= 0, got %s", c.BackupEvery)
	case c.BackupKeep < 0:
		return fmt.Errorf("BackupKeep (--backup-keep, BULKHEAD_BACKUP_KEEP) must be >= 0, got %d", c.BackupKeep)
	case c.BackupEvery == 0:
		return nil
	case c.BackupEvery < time.Minute:
		return fmt.Errorf("BackupEvery (--backup-every, BULKHEAD_BACKUP_EVERY) must be at least 1m, got %s", c.BackupEvery)
	case c.BackupDir == "":
		return fmt.Errorf("BackupDir (--backup-dir, BULKHEAD_BACKUP_DIR) is required with BackupEvery")
	case strings.HasPrefix(c.DatabaseURL, "postgres") && c.BackupPostgresURL == "":
		return fmt.Errorf("BackupPostgresURL (--backup-postgres-url, BULKHEAD_BACKUP_POSTGRES_URL) is required with BackupEvery on PostgreSQL")
	}
	return nil
}
