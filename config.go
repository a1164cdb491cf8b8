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
	switch c.KMS {
	case "", "local":
	case "vault":
		if c.VaultAddr == "" || c.VaultToken == "" {
			return fmt.Errorf("KMS vault needs VaultAddr and VaultToken")
		}
	default:
		return fmt.Errorf("KMS must be \"local\" or \"vault\", got %q", c.KMS)
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		return fmt.Errorf("AdminToken must be at least 16 characters")
	}
	return nil
}
