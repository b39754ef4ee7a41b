package gitops_test

import (
	"context"
	"testing"

	"github.com/voicegate/voicegate/internal/gitops"
	"github.com/voicegate/voicegate/internal/gitops/gitopstest"
	"github.com/voicegate/voicegate/internal/postgres"
	"github.com/voicegate/voicegate/internal/postgres/pgtest"
	"github.com/voicegate/voicegate/internal/sqlite"
)

// stores open a fresh store of each kind (PostgreSQL: a schema of the
// test's own; under CI=true an unreachable server fails the test).
func stores() []struct {
	name string
	open func(t *testing.T) gitops.Store
} {
	return []struct {
		name string
		open func(t *testing.T) gitops.Store
	}{
		{"sqlite", func(t *testing.T) gitops.Store {
			db, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}},
		{"postgres", func(t *testing.T) gitops.Store {
			db, err := postgres.Open(context.Background(), pgtest.BaseURL(), postgres.Options{Schema: pgtest.Schema(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}},
	}
}

func TestStores(t *testing.T) {
	for _, s := range stores() {
		t.Run(s.name, func(t *testing.T) { gitopstest.Run(t, s.open) })
	}
}
