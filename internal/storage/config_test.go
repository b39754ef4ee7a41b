package storage

import (
	"strings"
	"testing"
)

// TestValidate: each rejection names its key and never echoes a password.
func TestValidate(t *testing.T) {
	const pg = "postgres://vg@db.internal:5432/voicegate?sslmode=verify-full"
	for _, tc := range []struct {
		name string
		c    Config
		want string // "" valid
	}{
		{"sqlite", Config{Driver: DriverSQLite}, ""},
		{"postgres", Config{Driver: DriverPostgres, PostgresURL: pg}, ""},
		{"postgres with erasure database", Config{Driver: DriverPostgres, PostgresURL: pg, ErasurePostgresURL: "postgresql://vg@secrets.internal/erasure"}, ""},
		{"no postgres_url", Config{Driver: DriverPostgres}, "postgres_url: required"},
		{"erasure url not a url", Config{Driver: DriverPostgres, PostgresURL: pg, ErasurePostgresURL: "host=x password=hunter2"}, "erasure_postgres_url: is not a postgres://"},
		{"erasure url other scheme", Config{Driver: DriverPostgres, PostgresURL: pg, ErasurePostgresURL: "mysql://u:hunter2@h/db"}, "erasure_postgres_url: mysql://u:REDACTED@h/db is not"},
		{"erasure url with sqlite", Config{Driver: DriverSQLite, ErasurePostgresURL: pg}, "erasure_postgres_url: set, but driver is sqlite"},
		{"postgres_url with sqlite", Config{Driver: DriverSQLite, PostgresURL: pg}, "postgres_url: set, but driver is sqlite"},
		{"unknown driver", Config{Driver: "mysql"}, `driver: "mysql"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Driver, c.PostgresURL, c.ErasurePostgresURL = tc.c.Driver, tc.c.PostgresURL, tc.c.ErasurePostgresURL
			probs := strings.Join(c.Validate(), "; ")
			if tc.want == "" && probs != "" || tc.want != "" && !strings.Contains(probs, tc.want) {
				t.Fatalf("problems %q, want %q", probs, tc.want)
			}
			if strings.Contains(probs, "hunter2") {
				t.Fatalf("a password echoed: %q", probs)
			}
		})
	}
}
