package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/audit"
	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/erasure"
	"github.com/voicegate/voicegate/internal/health"
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

// newHealth returns the dependency monitor with the store's check: the
// store answers and its writes are not failing (calls.MonitoredStore.Ready).
// SQLite is this replica's own (down: not ready); PostgreSQL is shared by
// the replicas (down: degraded, see internal/health and docs/replicas.md).
// The gauge voicegate_dependency_up follows each probe.
func (a *App) newHealth(cfg *config.Config) *health.Monitor {
	m := health.New(health.Options{Log: a.log.With(logkey.Component, "health"), Now: a.now,
		Observe: func(name string, up bool) {
			v := 0.0
			if up {
				v = 1
			}
			a.Metrics.DependencyUp.WithLabelValues(name).Set(v)
		}})
	c := health.Check{Name: health.SQLite, Probe: a.Store.Ready, Reason: func(err error) string {
		if errors.Is(err, calls.ErrWritesFailing) {
			return "writes failing"
		}
		return "unreachable"
	}}
	if cfg.Storage.Driver == storage.DriverPostgres {
		c.Name, c.Shared = health.Postgres, true
	}
	m.Register(c) // the first check of a new monitor: it cannot fail
	if a.redis != nil {
		// Shared: while it is down, side-effecting messages are refused
		// one by one (503 + Retry-After), the rest answered from this
		// replica's memory.
		m.Register(health.Check{Name: health.Redis, Shared: true, Probe: a.redis.Ping})
	}
	return m
}

// checkSharedKeyring refuses a keyring that lacks a key the shared
// database's records are wrapped under. With storage.driver postgres every
// replica writes records into one database, so every replica must hold
// the same keyring (records.keyring_env from one secret, or the same
// mounted keyring_file): a replica that created a keyring of its own in
// its data_dir would seal records no other replica can open, and could
// not open theirs. This catches it at start, before it writes anything,
// as soon as another replica has written a record. (The embedded store is
// this replica's alone: nothing to compare.)
func checkSharedKeyring(ctx context.Context, cfg *config.Config, rs records.Store, kr *envelope.Local) error {
	if cfg.Storage.Driver != storage.DriverPostgres {
		return nil
	}
	usage, err := rs.KeyUsage(ctx)
	if err != nil {
		return err
	}
	have := kr.IDs()
	var missing []string
	for id := range usage {
		if !slices.Contains(have, id) {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	slices.Sort(missing)
	where := "records.keyring_env " + cfg.Records.KeyringEnv
	if cfg.Records.KeyringEnv == "" {
		where = "the keyring file " + cfg.Records.KeyringPath(cfg.DataDir)
	}
	return fmt.Errorf("the PostgreSQL database holds records sealed under key(s) %s that %s lacks: with storage.driver postgres every replica needs the same keyring (records.keyring_env from one secret, or the same mounted keyring_file; see docs/replicas.md)",
		strings.Join(missing, ", "), where)
}

// openErasure opens the per-call secrets the records are bound to. With
// storage.driver postgres they are PostgreSQL's (the store's database, or
// storage.erasure_postgres_url), so that every replica opens every
// record and an erasure through one holds for all; a replica's erasure.db
// left from before is moved there first, then removed (a copy left behind
// would keep a later-erased call readable). Otherwise erasure.db in
// data_dir. Records beside a store that never held a secret were sealed
// with secrets kept elsewhere: refused, rather than replaced by new ones
// that would make every record unreadable.
//
// OpenErasure is the same for an operator command (store is the store it
// opened, *sqlite.DB or *postgres.DB).
func OpenErasure(ctx context.Context, cfg *config.Config, store any, rs records.Store, log *slog.Logger) (erasure.Secrets, error) {
	return openErasure(ctx, cfg, store, rs, log)
}

func openErasure(ctx context.Context, cfg *config.Config, store any, rs records.Store, log *slog.Logger) (erasure.Secrets, error) {
	db, ok := store.(*postgres.DB)
	if !ok {
		if !erasure.Exists(cfg.DataDir) {
			usage, err := rs.KeyUsage(ctx)
			if err != nil {
				return nil, err
			}
			if len(usage) > 0 {
				return nil, fmt.Errorf("records exist but %s is missing from %s: restore it from its backup (a new one would make every record unreadable)", erasure.FileName, cfg.DataDir)
			}
		}
		s, err := erasure.Open(ctx, cfg.DataDir)
		if err != nil {
			return nil, err // never a non-nil Secrets holding a nil store
		}
		return s, nil
	}
	var e *postgres.Erasure
	where := "the store's database"
	if u := cfg.Storage.ErasurePostgresURL; u != "" {
		var err error
		if e, err = postgres.OpenErasure(ctx, u, postgres.Options{}); err != nil {
			return nil, err
		}
		where = redact.URL(u)
		log.Info("erasure store open", logkey.Driver, storage.DriverPostgres, logkey.URL, where)
	} else {
		e = db.Erasure()
	}
	ok = false
	defer func() {
		if !ok {
			e.Close()
		}
	}()
	if erasure.Exists(cfg.DataDir) {
		if err := moveErasureDB(ctx, cfg.DataDir, e, log); err != nil {
			return nil, err
		}
	}
	empty, err := e.Empty(ctx)
	if err != nil {
		return nil, err
	}
	if empty {
		usage, err := rs.KeyUsage(ctx)
		if err != nil {
			return nil, err
		}
		if len(usage) > 0 {
			return nil, fmt.Errorf("records exist but the erasure store in %s holds no secret: their secrets are in another erasure store (storage.erasure_postgres_url changed, or a replica's %s not moved yet): point storage.erasure_postgres_url at it, or start a replica once with the data_dir holding that %s (a new store would make every record unreadable; see docs/replicas.md)",
				where, erasure.FileName, erasure.FileName)
		}
	}
	ok = true
	return e, nil
}

// moveErasureDB moves the secrets of erasure.db in dir (written before
// the replicas shared them) into e, then removes the file.
func moveErasureDB(ctx context.Context, dir string, e *postgres.Erasure, log *slog.Logger) error {
	old, err := erasure.Open(ctx, dir)
	if err != nil {
		return err
	}
	n := 0
	err = old.Export(ctx, func(r erasure.Row) error {
		n++
		return e.Restore(ctx, r.CallID, r.Secret, r.Erased, r.IdleSince)
	})
	old.Close()
	if err != nil {
		return fmt.Errorf("move %s into PostgreSQL: %w", erasure.FileName, err)
	}
	if err := erasure.Remove(dir); err != nil {
		return err
	}
	log.Info("erasure.db moved into PostgreSQL and removed", logkey.Dir, dir, logkey.Count, n)
	return nil
}

// openAudit returns the audit log. With a store the replicas share
// (PostgreSQL), one chain for the deployment: its MAC key derived from the
// records keyring (which every replica must hold), its head in the
// database; a replica whose keyring differs is refused here. Otherwise
// the chain of this data_dir (audit.key and the head file in it).
func openAudit(ctx context.Context, as audit.Store, dataDir string, kr *envelope.Local, now func() time.Time) (*audit.Log, error) {
	return OpenAudit(ctx, as, dataDir, kr, "serve", now)
}

// OpenAudit is openAudit for an operator command, its entries by actor.
func OpenAudit(ctx context.Context, as audit.Store, dataDir string, kr *envelope.Local, actor string, now func() time.Time) (*audit.Log, error) {
	if ss, ok := as.(audit.SharedStore); ok {
		if kr == nil {
			return nil, errors.New("audit: a shared audit log needs the records keyring")
		}
		return audit.NewShared(ctx, ss, audit.SharedKey(kr.LookupKey()), dataDir, actor, now)
	}
	return audit.New(as, dataDir, actor, now)
}
