package app

import (
	"context"
	"log/slog"
	"time"

	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/sqlite"
)

// openStore is the one place the call store's driver is chosen: the
// embedded SQLite store in data_dir today (PostgreSQL joins here, passing
// the calls.Store suite in internal/calls/storetest). db is the SQLite store
// itself, for its background checkpoints and metrics.
func openStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (calls.Store, *sqlite.DB, error) {
	start := time.Now()
	db, err := sqlite.Open(ctx, cfg.DataDir, cfg.Storage.SQLite())
	if err != nil {
		return nil, nil, err
	}
	log.Info("database open", logkey.Driver, "sqlite", logkey.Dir, cfg.DataDir,
		logkey.IntegrityCheck, db.QuickCheckDuration().Round(time.Millisecond).String(),
		logkey.Took, time.Since(start).Round(time.Millisecond).String())
	return db, db, nil
}
