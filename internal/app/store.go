package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/metrics"
	"github.com/voicegate/voicegate/internal/postgres"
	"github.com/voicegate/voicegate/internal/records"
	"github.com/voicegate/voicegate/internal/redact"
	"github.com/voicegate/voicegate/internal/sqlite"
	"github.com/voicegate/voicegate/internal/storage"
)

// driver is a store as opened here: what every store is (calls.Store), and
// what this one needs beyond it.
type driver struct {
	calls.Store
	// records keeps the protected records, in the same database.
	records records.Store
	// observe registers the store's own metrics (nil: none).
	observe func(*metrics.Metrics)
	// maintain runs the store's background work until ctx ends, passing
	// each error to onErr (nil: none).
	maintain func(ctx context.Context, onErr func(error))
}

// openStore is the one place the call store's driver is chosen and
// everything specific to it is set up: the embedded SQLite store in
// data_dir, or PostgreSQL (both pass the calls.Store suite in
// internal/calls/storetest).
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (driver, error) {
	start := time.Now()
	if cfg.Storage.Driver == storage.DriverPostgres {
		db, err := postgres.Open(ctx, cfg.Storage.PostgresURL, postgres.Options{})
		if err != nil {
			return driver{}, err
		}
		log.Info("database open", logkey.Driver, storage.DriverPostgres, logkey.URL, redact.URL(cfg.Storage.PostgresURL),
			logkey.Took, time.Since(start).Round(time.Millisecond).String())
		return driver{Store: db, records: db}, nil
	}
	db, err := sqlite.Open(ctx, cfg.DataDir, cfg.Storage.SQLite())
	if err != nil {
		return driver{}, err
	}
	log.Info("database open", logkey.Driver, "sqlite", logkey.Dir, cfg.DataDir,
		logkey.IntegrityCheck, db.QuickCheckDuration().Round(time.Millisecond).String(),
		logkey.Took, time.Since(start).Round(time.Millisecond).String())
	every := cfg.Storage.CheckpointInterval.D()
	return driver{
		Store:   db,
		records: db,
		observe: func(m *metrics.Metrics) {
			m.ObserveWAL(func() float64 { return float64(db.WALSize()) },
				func() float64 { return float64(db.CheckpointStats().Restarts) },
				func() float64 { return float64(db.CheckpointStats().RestartsBusy) })
		},
		maintain: func(ctx context.Context, onErr func(error)) { db.RunCheckpoints(ctx, every, onErr) },
	}, nil
}
