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
	// ErasurePostgresURL, optional with driver postgres, puts the per-call
	// secrets of crypto-erasure in a database of their own (default: the
	// store's database). PostgreSQL's backups and archived WAL keep a
	// deleted secret until they expire, so an erasure is final only once
	// the backups older than it are gone: a database with short backup
	// retention here makes that soon, while the records' database keeps
	// its own (see docs/replicas.md). Never printed unredacted.
	ErasurePostgresURL string `yaml:"erasure_postgres_url"`
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
		if c.ErasurePostgresURL != "" {
			probs = append(probs, "erasure_postgres_url: set, but driver is sqlite (whose secrets are erasure.db in data_dir): set driver: postgres to use it")
		}
	case DriverPostgres:
		if c.PostgresURL == "" {
			probs = append(probs, "postgres_url: required by driver postgres (postgres://user@host:5432/database?sslmode=verify-full)")
		} else if p := postgresURLProblem(c.PostgresURL); p != "" {
			probs = append(probs, "postgres_url: "+p)
		}
		if c.ErasurePostgresURL != "" {
			if p := postgresURLProblem(c.ErasurePostgresURL); p != "" {
				probs = append(probs, "erasure_postgres_url: "+p)
			}
		}
	default:
		probs = append(probs, fmt.Sprintf("driver: %q is not sqlite or postgres", c.Driver))
	}
	return probs
}

// postgresURLProblem says what is wrong with a postgres:// URL ("" when
// nothing). A string that is not a URL is never echoed: it may hold a
// password in clear.
func postgresURLProblem(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Scheme == "" || u.Host == "":
		return "is not a postgres://user@host:port/database URL (key=value connection strings are not accepted)"
	case u.Scheme != "postgres" && u.Scheme != "postgresql":
		return fmt.Sprintf("%s is not a postgres://user@host:port/database URL", redact.URL(s))
	}
	return ""
}
