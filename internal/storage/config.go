// Package storage provides the storage section of the configuration: which
// call store voicegate runs on — the embedded SQLite database in data_dir
// (the default), or a PostgreSQL database that several replicas can share —
// and each one's settings. The store itself is opened by the app, in one
// place (internal/app/store.go).
package storage

import (
	"fmt"
	"net/url"

	"github.com/voicegate/voicegate/internal/redact"
	"github.com/voicegate/voicegate/internal/sqlite"
)

// Drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Config is the "storage" section.
type Config struct {
	// Driver is "sqlite" (default) or "postgres".
	Driver string `yaml:"driver"`
	// PostgresURL is the database of the postgres driver,
	// postgres://user[:password]@host:port/database?sslmode=... (from the
	// environment: it may hold a password). Never printed unredacted.
	PostgresURL string `yaml:"postgres_url"`
	// The embedded store's settings (the sqlite driver).
	sqlite.Config `yaml:",inline"`
}

// DefaultConfig is the embedded SQLite store with its defaults.
func DefaultConfig() Config {
	return Config{Driver: DriverSQLite, Config: sqlite.DefaultConfig()}
}

// SQLite returns the embedded store's settings.
func (c Config) SQLite() sqlite.Config { return c.Config }

// Validate returns one problem per invalid field ("driver: ..."); none
// when valid.
func (c Config) Validate() []string {
	probs := c.Config.Validate()
	switch c.Driver {
	case DriverSQLite:
		if c.PostgresURL != "" {
			probs = append(probs, "postgres_url: set, but driver is sqlite: set driver: postgres to use it")
		}
	case DriverPostgres:
		u, err := url.Parse(c.PostgresURL)
		switch {
		case c.PostgresURL == "":
			probs = append(probs, "postgres_url: required by driver postgres (postgres://user@host:5432/database?sslmode=verify-full)")
		case err != nil || u.Scheme == "" || u.Host == "":
			// Not a URL (a key=value connection string, say): never echoed,
			// it may hold a password in clear.
			probs = append(probs, "postgres_url: is not a postgres://user@host:port/database URL (key=value connection strings are not accepted)")
		case u.Scheme != "postgres" && u.Scheme != "postgresql":
			probs = append(probs, fmt.Sprintf("postgres_url: %s is not a postgres://user@host:port/database URL", redact.URL(c.PostgresURL)))
		}
	default:
		probs = append(probs, fmt.Sprintf("driver: %q is not sqlite or postgres", c.Driver))
	}
	return probs
}
