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
	// embedded SQLite database in DataDir; "sqlite:PATH" names another file.
	DatabaseURL string
	// AdminToken is the platform operator's bearer token. When empty, a
	// token is generated on first start and kept in DataDir/admin-token
	// (mode 0600).
	AdminToken string
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
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "sqlite:") {
		scheme, _, _ := strings.Cut(c.DatabaseURL, ":")
		return fmt.Errorf("DatabaseURL: unsupported database %q (this build supports the embedded SQLite database, or sqlite:PATH)", scheme)
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		return fmt.Errorf("AdminToken must be at least 16 characters")
	}
	return nil
}
