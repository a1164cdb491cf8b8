package bulkhead

import (
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Config configures an App. Its zero value means "all defaults": an
// embedded SQLite database in ./bulkhead-data, served on 127.0.0.1:8080.
type Config struct {
	// Addr is the address Run listens on. Defaults to "127.0.0.1:8080".
	Addr string
	// DataDir holds the embedded database, silo tenants' databases, the
	// platform keys and the generated operator token. Defaults to
	// "./bulkhead-data".
	DataDir string
	// DatabaseURL selects the database. Empty (the default) means the
	// embedded SQLite database in DataDir; "sqlite:PATH" names another file;
	// "postgres://…" connects to PostgreSQL as the application role (see
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
	// MaxBodyBytes limits request bodies. Defaults to 1 MiB.
	MaxBodyBytes int64
	// ShutdownTimeout bounds how long Run waits for in-flight requests
	// after its context is cancelled. Defaults to 30s.
	ShutdownTimeout time.Duration
	// TLSCertFile and TLSKeyFile, if set, are the PEM files of the
	// certificate (with its chain) and private key Run serves HTTPS with;
	// both or neither must be set. (*App).Reload, which the command line
	// calls on SIGHUP, reads them again. Defaults to none: plain HTTP, for
	// loopback or behind a proxy that terminates TLS.
	TLSCertFile, TLSKeyFile string
	// KeyReloadInterval is how often a running server re-reads the token
	// signing keys of DataDir/keys, so that a rotation made on any node
	// applies everywhere without a restart. Defaults to 10s.
	KeyReloadInterval time.Duration
	// Logger receives JSON logs. Defaults to a JSON logger on stderr at
	// info level.
	Logger *slog.Logger
}

func (c *Config) validate() error {
	if c.MaxBodyBytes < 0 {
		return fmt.Errorf("MaxBodyBytes must be >= 0, got %d", c.MaxBodyBytes)
	}
	if c.ShutdownTimeout < 0 {
		return fmt.Errorf("ShutdownTimeout must be >= 0, got %s", c.ShutdownTimeout)
	}
	switch scheme, _, _ := strings.Cut(c.DatabaseURL, ":"); scheme {
	case "", "sqlite", "postgres", "postgresql":
	default:
		return fmt.Errorf("DatabaseURL: unsupported database %q (use sqlite:PATH or postgres://…)", scheme)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return fmt.Errorf("TLSCertFile and TLSKeyFile must be set together")
	}
	if c.KeyReloadInterval < 0 {
		return fmt.Errorf("KeyReloadInterval must be >= 0, got %s", c.KeyReloadInterval)
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		return fmt.Errorf("AdminToken must be at least 16 characters")
	}
	return nil
}
