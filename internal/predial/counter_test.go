package predial_test

import (
	"context"
	"testing"

	"github.com/voicegate/voicegate/internal/postgres"
	"github.com/voicegate/voicegate/internal/postgres/pgtest"
	"github.com/voicegate/voicegate/internal/predial"
	"github.com/voicegate/voicegate/internal/predial/predialtest"
	"github.com/voicegate/voicegate/internal/sqlite"
)

// TestCounters: the in-memory count and the stores' pass one contract.
func TestCounters(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		predialtest.Run(t, func(*testing.T) predial.Counter { return &predial.Attempts{} })
	})
	t.Run("sqlite", func(t *testing.T) {
		predialtest.Run(t, func(t *testing.T) predial.Counter {
			db, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return predial.NewStored(db)
		})
	})
	t.Run("postgres", func(t *testing.T) {
		predialtest.Run(t, func(t *testing.T) predial.Counter {
			db, err := postgres.Open(context.Background(), pgtest.BaseURL(), postgres.Options{Schema: pgtest.Schema(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return predial.NewStored(db)
		})
	})
}

// TestStoredForgetsOldDays: the days before today are deleted when the
// day changes; today's count stays.
func TestStoredForgetsOldDays(t *testing.T) {
	ctx := context.Background()
	db, err := sqlite.Open(ctx, t.TempDir(), sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := predial.NewStored(db)
	c.Take(ctx, "h", "2026-12-01", 1)
	c.Take(ctx, "h", "2026-12-02", 1)
	// Straight to the store: the first day's count is gone.
	if ok, _ := db.TakeAttempt(ctx, "h", "2026-12-01", 1); !ok {
		t.Fatal("yesterday's count kept")
	}
	if ok, _ := db.TakeAttempt(ctx, "h", "2026-12-02", 1); ok {
		t.Fatal("today's count lost")
	}
}
