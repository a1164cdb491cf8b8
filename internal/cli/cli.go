// Package cli is bulkhead's command line: it reads flags and the
// environment, builds a bulkhead.Config and runs the command. It is the only
// package that reads either.
package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/bulkheadhq/bulkhead"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/jobs"
	"github.com/bulkheadhq/bulkhead/internal/observe"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/pgstore"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Main runs the command line with args (without the program name) and
// returns the process exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	return mainWith(args, os.Stdin, stdout, stderr)
}

// mainWith is Main with the standard input given: user create may read a
// password from it.
func mainWith(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o := &options{stdin: stdin, stdout: stdout, stderr: stderr, tenantKey: os.Getenv(tenantKeyEnv)}
	cmd := o.root()
	cmd.SetArgs(args)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if ran, err := cmd.ExecuteContextC(ctx); err != nil {
		if o.log.parsedFormat == observe.LogJSON && (o.log.format != "" || ran.Name() == "serve") {
			// The last line of a JSON stream is JSON too: serve's, or any
			// command's asked for JSON. Other commands end with a plain
			// line for the person or script that ran them.
			observe.NewFormattedLogger(stderr, observe.LogJSON, slog.LevelError).Error("bulkhead: "+err.Error(), "err", err.Error())
		} else {
			fmt.Fprintln(stderr, "bulkhead:", err)
		}
		return 1
	}
	return 0
}

// options are the flags every command shares.
type options struct {
	addr, data, database string
	provisionURL, redis  string
	defaultPlan          string
	securityEvents       string
	containment          string
	publicURL            string
	oidcPrivate          bool
	trustedProxies       string
	tlsCert, tlsKey      string
	jobWorkers           int
	jobsPerTenant        int
	kms                  kmsOptions
	deletionGrace        string // serve's --deletion-grace (offboard.go)
	blobURL              string // serve's --blob-url
	metricsTenants       string // serve's --metrics-tenants (metrics.go)
	backup               backupOptions
	tenantKey            string // BULKHEAD_TENANT_KEY (operator.go)
	stdin                io.Reader
	stdout, stderr       io.Writer
	log                  logOptions // --log-format, --log-level (log.go)
}

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	o := &options{stdin: stdin, stdout: stdout, stderr: stderr, tenantKey: os.Getenv(tenantKeyEnv)}
	return o.root()
}

// root builds the command tree on o.
func (o *options) root() *cobra.Command {
	root := &cobra.Command{
		Use:   "bulkhead",
		Short: "A multi-tenant backend with isolation it can prove",
		Long: "bulkhead serves a multi-tenant backend (serve) and administers it: its database (migrate, backup),\n" +
			"tenants, plans, users, API keys, keys and audit chains. Administrative commands act on the\n" +
			"database directly, as the operator, and refuse a data directory without a database; serve and\n" +
			"migrate create one. Run bulkhead COMMAND --help for each command's flags.\n\n" +
			"Flags fall back on the environment variable named in their help. These are read from the\n" +
			"environment only, never from a flag (which other users could read in the process list):\n" +
			"  BULKHEAD_ADMIN_TOKEN  the operator's bearer token, at least 16 characters; default: generated\n" +
			"                        into <data>/admin-token (and bench's --token)\n" +
			"  BULKHEAD_KEK          the local KMS's platform KEK: base64 of 32 bytes, or a comma-separated\n" +
			"                        list, oldest first, to rotate; default: <data>/keys/kek.key, generated\n" +
			"  VAULT_TOKEN           Vault's token, for --kms vault\n" +
			"  " + tenantKeyEnv + "   an API key or access token of a tenant, with which the key and user\n" +
			"                        commands act instead of as the operator\n" +
			"  OTEL_*                OpenTelemetry's standard variables, read by serve's tracing exporter\n" +
			"                        (such as OTEL_EXPORTER_OTLP_ENDPOINT and OTEL_SERVICE_NAME)",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(o.stdout)
	root.SetErr(o.stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&o.data, "data", envOr("BULKHEAD_DATA", "./bulkhead-data"), "data directory (env BULKHEAD_DATA)")
	pf.StringVar(&o.database, "database", os.Getenv("BULKHEAD_DATABASE_URL"), "database URL: empty means the embedded SQLite database in --data; sqlite:PATH keeps PATH, its job queue and silo tenants' files (tenants/) in PATH's directory, which must exist; postgres://… (env BULKHEAD_DATABASE_URL)")
	pf.StringVar(&o.provisionURL, "provision-url", os.Getenv("BULKHEAD_PROVISION_URL"), "PostgreSQL URL of the owner role, for creating and deleting silo tenants (env BULKHEAD_PROVISION_URL)")
	pf.StringVar(&o.defaultPlan, "default-plan", os.Getenv("BULKHEAD_DEFAULT_PLAN"),
		"plan of a tenant created without one, through the API or tenant create; empty means free (env BULKHEAD_DEFAULT_PLAN)")
	o.kms.flags(pf)
	o.log.flags(pf)
	root.PersistentPreRunE = func(*cobra.Command, []string) error { return o.log.parse(o.stderr) }
	root.AddCommand(newServe(o), newMigrate(o), newTenant(o), newKey(o), newKeys(o), newAudit(o), newVersion(o), newBench(o), newBackup(o),
		newPlan(o), newUser(o), newHealthcheck(o)) // plans.go, users.go, healthcheck.go
	hideSecretDefaults(root) // help.go
	return root
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// config builds the bulkhead.Config for the shared flags. Commands other
// than serve log only warnings, so their output stays readable.
func (o *options) config(level slog.Level) bulkhead.Config {
	return bulkhead.Config{
		Addr:         o.addr,
		DataDir:      o.data,
		DatabaseURL:  o.database,
		ProvisionURL: o.provisionURL,
		RedisURL:     o.redis,
		DefaultPlan:  o.defaultPlan,
		// Security events, containment rules, TLS and the OIDC settings
		// are serve's flags.
		SecurityEvents:           o.securityEvents,
		Containment:              o.containment,
		PublicURL:                o.publicURL,
		OIDCAllowPrivateNetworks: o.oidcPrivate,
		TLSCertFile:              o.tlsCert,
		TLSKeyFile:               o.tlsKey,
		JobWorkers:               o.jobWorkers,
		JobsPerTenant:            o.jobsPerTenant,
		AdminToken:               os.Getenv("BULKHEAD_ADMIN_TOKEN"),
		KMS:                      o.kms.kind,
		KEK:                      os.Getenv("BULKHEAD_KEK"),
		VaultAddr:                o.kms.vaultAddr,
		VaultToken:               os.Getenv("VAULT_TOKEN"),
		VaultMount:               o.kms.vaultMount,
		Logger:                   o.log.logger(o.stderr, level),
	}
}

// withApp opens the App of an existing store for a one-off command and
// closes it afterwards.
func (o *options) withApp(fn func(app *bulkhead.App) error) error {
	if err := o.existingStore(); err != nil {
		return err
	}
	return o.openApp(fn)
}

// existingStore refuses an embedded SQLite database that does not exist:
// an administrative command would otherwise create an empty one, in
// ./bulkhead-data when the operator forgot to name the platform's
// database. Only serve and migrate create a store. On PostgreSQL it
// refuses a data directory without keys, where the command would make up
// a platform KEK and signing keys of its own beside the server's.
func (o *options) existingStore() error {
	var path, what string
	switch {
	case strings.HasPrefix(o.database, "postgres"):
		path, what = filepath.Join(o.data, "keys"), "there are no platform keys at %s (serve creates them)"
	case o.database == "" || strings.HasPrefix(o.database, "sqlite:"):
		path, what = bulkhead.SQLitePath(&bulkhead.Config{DataDir: o.data, DatabaseURL: o.database}), "there is no database at %s (serve and migrate create one)"
	default:
		return nil // a URL that Config's validation names
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		return nil // there, or an error that opening it reports
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	return fmt.Errorf(what+": name the platform's data directory with --data (env BULKHEAD_DATA) "+
		"and its PostgreSQL database with --database (env BULKHEAD_DATABASE_URL)", path)
}

// openApp opens the App, creating an embedded SQLite store that does not
// exist yet, and closes it afterwards.
func (o *options) openApp(fn func(app *bulkhead.App) error) error {
	app, err := bulkhead.New(o.config(slog.LevelWarn))
	if err != nil {
		return err
	}
	defer app.Close()
	return fn(app)
}

func (o *options) print(v any) error {
	enc := json.NewEncoder(o.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newServe(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the HTTP API until interrupted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg := o.config(slog.LevelInfo)
			proxies, err := ParseTrustedProxies(o.trustedProxies)
			if err != nil {
				return fmt.Errorf("--trusted-proxies: %w", err)
			}
			cfg.TrustedProxies = proxies
			if cfg.DeletionGrace, err = parseDeletionGrace(o.deletionGrace); err != nil {
				return fmt.Errorf("--deletion-grace: %w", err)
			}
			if err := o.backup.apply(&cfg); err != nil {
				return err
			}
			cfg.BlobURL = o.blobURL
			if err := applyMetricsTenants(&cfg, o.metricsTenants); err != nil {
				return err
			}
			// Bind first: an address in use fails before New writes the
			// operator token, the keys or the database.
			ln, err := bulkhead.Listen(cfg)
			if err != nil {
				return err
			}
			app, err := bulkhead.New(cfg)
			if err != nil {
				ln.Close()
				return err
			}
			defer app.Close()
			defer reloadOnHangup(app)()
			return app.Serve(cmd.Context(), ln)
		},
	}
	cmd.Flags().StringVar(&o.addr, "addr", envOr("BULKHEAD_ADDR", "127.0.0.1:8080"), "listen address (env BULKHEAD_ADDR)")
	cmd.Flags().StringVar(&o.redis, "redis", os.Getenv("BULKHEAD_REDIS_URL"), "Redis URL for rate limits shared by several nodes (env BULKHEAD_REDIS_URL)")
	cmd.Flags().StringVar(&o.securityEvents, "security-events", os.Getenv("BULKHEAD_SECURITY_EVENTS"),
		"where security events go as ECS JSON lines: stdout, file:PATH or an https:// URL (env BULKHEAD_SECURITY_EVENTS)")
	cmd.Flags().StringVar(&o.containment, "containment", os.Getenv("BULKHEAD_CONTAINMENT"),
		`automatic containment rules, e.g. "probes=20/1m,logins=10/15m,lock=15m,addresses=10/1h", or "off" (env BULKHEAD_CONTAINMENT)`)
	cmd.Flags().BoolVar(&o.oidcPrivate, "oidc-allow-private-networks", os.Getenv("BULKHEAD_OIDC_ALLOW_PRIVATE_NETWORKS") == "true",
		"let tenants' OpenID providers be on loopback or private addresses, for development (env BULKHEAD_OIDC_ALLOW_PRIVATE_NETWORKS=true)")
	cmd.Flags().StringVar(&o.publicURL, "public-url", os.Getenv("BULKHEAD_PUBLIC_URL"), "external base URL of the API, for OIDC redirect URIs (env BULKHEAD_PUBLIC_URL)")
	cmd.Flags().StringVar(&o.trustedProxies, "trusted-proxies", os.Getenv("BULKHEAD_TRUSTED_PROXIES"),
		"comma-separated addresses or CIDR prefixes of proxies whose X-Forwarded-For names the client (env BULKHEAD_TRUSTED_PROXIES)")
	cmd.Flags().StringVar(&o.tlsCert, "tls-cert", os.Getenv("BULKHEAD_TLS_CERT"), "PEM certificate (and chain) to serve HTTPS with; reloaded on SIGHUP (env BULKHEAD_TLS_CERT)")
	cmd.Flags().StringVar(&o.deletionGrace, "deletion-grace", defaultDeletionGrace(),
		"how long a deleted tenant stays deleting (suspended, its admins able to export) before its purge, when DELETE names no grace: 30d, 12h, 90m or 0 (env BULKHEAD_DELETION_GRACE)")
	o.backup.flags(cmd.Flags())
	cmd.Flags().StringVar(&o.blobURL, "blob-url", os.Getenv("BULKHEAD_BLOB_URL"),
		"where tenants' export archives and uploaded restore archives are kept: file:///dir or s3://bucket?region=…; default <data>/blobs. Nodes sharing a database must share it (env BULKHEAD_BLOB_URL)")
	cmd.Flags().StringVar(&o.tlsKey, "tls-key", os.Getenv("BULKHEAD_TLS_KEY"), "PEM private key of --tls-cert (env BULKHEAD_TLS_KEY)")
	cmd.Flags().IntVar(&o.jobWorkers, "job-workers", envInt("BULKHEAD_JOB_WORKERS"),
		"background jobs run at once on this node; 0 means the default of 6 (env BULKHEAD_JOB_WORKERS)")
	cmd.Flags().IntVar(&o.jobsPerTenant, "jobs-per-tenant", envInt("BULKHEAD_JOBS_PER_TENANT"),
		"background jobs of one tenant run at once on this node; 0 means the default of 2 (env BULKHEAD_JOBS_PER_TENANT)")
	metricsTenantsFlag(cmd.Flags(), &o.metricsTenants)
	return cmd
}

// envInt is the integer in environment variable name, or 0 if it holds
// none; a value that is no integer is -1, which Config's validation names.
func envInt(name string) int {
	v := os.Getenv(name)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return n
}

// ParseTrustedProxies parses a comma-separated list of CIDR prefixes and
// bare addresses (a single host) into prefixes. Empty means none.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("%q is not an address or CIDR prefix", f)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not an address or CIDR prefix", f)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func newMigrate(o *options) *cobra.Command {
	var ownerURL, appRole string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create or upgrade the database schema",
		Long: "For PostgreSQL, migrate connects as the owner role (--owner-url, else --provision-url) and\n" +
			"applies the embedded migrations, granting the application role exactly what it needs: the\n" +
			"user of --database, which the server connects as, unless --app-role names another. It is\n" +
			"idempotent. The embedded SQLite database migrates itself when it is opened; for it, migrate\n" +
			"just opens it.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !strings.HasPrefix(o.database, "postgres") {
				return o.openApp(func(*bulkhead.App) error {
					_, err := fmt.Fprintln(o.stdout, "the SQLite database is migrated")
					return err
				})
			}
			if ownerURL = cmp.Or(ownerURL, o.provisionURL); ownerURL == "" {
				return errors.New("give the owner role's URL with --owner-url (or --provision-url)")
			}
			if appRole = cmp.Or(appRole, userOf(o.database)); appRole == "" {
				return errors.New("give the application role as the user of --database, or with --app-role")
			}
			if err := pgstore.Migrate(cmd.Context(), ownerURL, appRole); err != nil {
				return err
			}
			if err := jobs.MigratePostgres(cmd.Context(), ownerURL, appRole); err != nil {
				return err
			}
			if _, err := fmt.Fprintln(o.stdout, "the PostgreSQL database is migrated"); err != nil {
				return err
			}
			if ok, err := pgstore.KeysLeakproof(cmd.Context(), ownerURL); err == nil && !ok {
				_, err = fmt.Fprint(o.stdout, "so that declared indexes serve filters (not only orders), a superuser runs once:\n"+pgstore.LeakproofSQL)
				return err
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&ownerURL, "owner-url", os.Getenv("BULKHEAD_OWNER_URL"), "PostgreSQL URL of the owner role (env BULKHEAD_OWNER_URL)")
	cmd.Flags().StringVar(&appRole, "app-role", "", "the application role to grant (default: the user of --database)")
	return cmd
}

// userOf returns the user named in a PostgreSQL URL, or "" if it names none
// or is no URL.
func userOf(databaseURL string) string {
	u, err := url.Parse(databaseURL)
	if err != nil || u.User == nil {
		return ""
	}
	return u.User.Username()
}

func newTenant(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "tenant", Short: "Manage tenants"}
	var p core.CreateTenantParams
	var isolation string
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a tenant",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p.Isolation = tenant.Isolation(isolation)
			if p.Name == "" {
				p.Name = string(p.Slug)
			}
			return o.asOperator(cmd, "", func(op *operator) error {
				t, err := op.ctl.CreateTenant(cmd.Context(), p, nil)
				if err != nil {
					return explain(err)
				}
				return o.print(t)
			})
		},
	}
	create.Flags().StringVar((*string)(&p.Slug), "slug", "", "the tenant's slug, ^[a-z][a-z0-9-]{1,62}$ (required)")
	create.Flags().StringVar(&p.Name, "name", "", "display name (defaults to the slug)")
	create.Flags().StringVar(&p.Plan, "plan", "", "plan (defaults to --default-plan, else free)")
	create.Flags().StringVar(&isolation, "isolation", "pooled", "pooled or silo")
	create.MarkFlagRequired("slug")

	var limit int
	list := &cobra.Command{
		Use:   "list",
		Short: "List tenants",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.asOperator(cmd, "", func(op *operator) error {
				var all []*core.Tenant
				cursor := ""
				for {
					page, err := op.ctl.ListTenants(cmd.Context(), cursor, limit)
					if err != nil {
						return explain(err)
					}
					all = append(all, page.Items...)
					if cursor = page.NextCursor; cursor == "" {
						return o.print(all)
					}
				}
			})
		},
	}
	list.Flags().IntVar(&limit, "page-size", 1000, "tenants fetched per query")

	setStatus := func(use string, status tenant.Status) *cobra.Command {
		return &cobra.Command{
			Use:   use + " SLUG",
			Short: map[tenant.Status]string{tenant.Active: "Resume", tenant.Suspended: "Suspend"}[status] + " a tenant",
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return o.asOperator(cmd, args[0], func(op *operator) error {
					view, err := op.ctl.UpdateTenant(cmd.Context(), op.sc, core.UpdateTenantParams{Status: &status})
					if err != nil {
						return explain(err)
					}
					return o.print(view)
				})
			},
		}
	}
	cmd.AddCommand(create, list, setStatus("suspend", tenant.Suspended), setStatus("resume", tenant.Active),
		newTenantDelete(o), newTenantUndelete(o), // offboard.go
		newTenantExport(o), newTenantRestore(o)) // tenant.go
	return cmd
}

func newKey(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "Manage a tenant's API keys", Long: tenantCredentialHelp}
	var slug, role string
	var p core.CreateAPIKeyParams
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an API key for a tenant; the key is printed once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p.Role = tenant.Role(role)
			return o.inTenant(cmd, slug, func(sc *core.Scope) error {
				k, err := sc.CreateAPIKey(cmd.Context(), p)
				if err != nil {
					return explain(err)
				}
				return o.print(k)
			})
		},
	}
	create.Flags().StringVar(&slug, "tenant", "", "the tenant's slug (required)")
	create.Flags().StringVar(&p.Name, "name", "cli", "a name for the key")
	create.Flags().StringVar(&role, "role", "admin", "owner, admin, member or viewer")
	create.MarkFlagRequired("tenant")
	cmd.AddCommand(create, newKeyList(o), newKeyRevoke(o)) // keys.go
	return cmd
}

func newAudit(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Inspect audit chains"}
	var slug string
	var platform bool
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Verify a tenant's (or the platform's) audit chain directly in the database",
		Long: "Verify walks every entry of the chain and every signed checkpoint, reading the database\n" +
			"directly rather than trusting a running server. It exits with status 1 if the chain is broken.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (slug == "") == !platform {
				return errors.New("give exactly one of --tenant SLUG or --platform")
			}
			return o.asOperator(cmd, slug, func(op *operator) error {
				var v *core.AuditVerification
				var err error
				if platform {
					v, err = op.ctl.VerifyPlatformAudit(cmd.Context())
				} else {
					v, err = op.sc.VerifyAudit(cmd.Context())
				}
				if err != nil {
					return explain(err)
				}
				if err := o.print(v); err != nil {
					return err
				}
				if !v.OK {
					return fmt.Errorf("the audit chain is broken at entry %d: %s", v.BrokenAt, v.Reason)
				}
				return nil
			})
		},
	}
	verify.Flags().StringVar(&slug, "tenant", "", "the tenant's slug")
	verify.Flags().BoolVar(&platform, "platform", false, "verify the platform's chain instead")
	cmd.AddCommand(verify)
	return cmd
}

// explain turns the errors core returns into sentences for a terminal.
// Client errors (*problem.Details) already read as "code: detail".
func explain(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return errors.New("not found (check the tenant slug)")
	}
	return err
}
