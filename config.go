package bulkhead

import (
	"fmt"
	"log/slog"
	"net/netip"
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
	// TrustedProxies are the peers (such as a load balancer's addresses)
	// whose X-Forwarded-For header names the client: login limits and
	// security events go by that client's address. From any other peer
	// the header is ignored, since any client can write one. Defaults to
	// none: the peer is the client.
	TrustedProxies []netip.Prefix
	// ShutdownTimeout bounds how long Run waits for in-flight requests
	// after its context is cancelled. Defaults to 30s.
	ShutdownTimeout time.Duration
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
	for _, p := range c.TrustedProxies {
		if !p.IsValid() {
			return fmt.Errorf("TrustedProxies: %v is not a valid prefix", p)
		}
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		return fmt.Errorf("AdminToken must be at least 16 characters")
	}
	return nil
}
