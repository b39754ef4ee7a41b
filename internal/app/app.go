// Package app wires voicegate's components together from a validated
// configuration. serve, the end-to-end tests and the benchmarks all build the
// same stack through it.
package app

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/dispatch"
	"github.com/voicegate/voicegate/internal/gateway"
	"github.com/voicegate/voicegate/internal/metrics"
	"github.com/voicegate/voicegate/internal/replay"
	"github.com/voicegate/voicegate/internal/session"
	"github.com/voicegate/voicegate/internal/sqlite"
	"github.com/voicegate/voicegate/internal/tools"
)

// App is a wired voicegate.
type App struct {
	Config   *config.Config
	Gateway  *gateway.Gateway
	Sessions *session.Table
	Replay   *replay.Cache
	Store    calls.Store
	Metrics  *metrics.Metrics
	Tools    *tools.Router
	log      *slog.Logger
}

// Options are the injectable parts.
type Options struct {
	Log *slog.Logger
	Now func() time.Time
	// Store replaces the SQLite store in DataDir (tests of failure paths).
	Store calls.Store
	// DevTool is mounted at config.DevToolPath when set.
	DevTool http.Handler
}

// New builds the stack. The caller closes the store (App.Close).
func New(ctx context.Context, cfg *config.Config, o Options) (*App, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	a := &App{Config: cfg, Store: o.Store, log: o.Log}
	if a.Store == nil {
		db, err := sqlite.Open(ctx, cfg.DataDir)
		if err != nil {
			return nil, err
		}
		a.Store = db
	}
	ok := false
	defer func() {
		if !ok {
			a.Store.Close()
		}
	}()
	a.Sessions = session.New(cfg.Sessions.TTL.D(), cfg.Sessions.Capacity, o.Now)
	a.Replay = replay.New(cfg.Vapi.Replay.Window.D(), cfg.Vapi.Replay.Capacity, o.Now)
	a.Metrics = metrics.New(func() float64 { return float64(a.Sessions.Len()) }, func() float64 { return float64(a.Replay.Len()) },
		func() float64 { return float64(a.Replay.EarlyEvictions()) })
	a.Sessions.OnExpire = func(*session.Session) { a.Metrics.SessionsExpired.Inc() }
	verifier, err := auth.New(cfg.Vapi.Auth)
	if err != nil {
		return nil, err
	}
	a.Tools, err = tools.New(cfg.Tools, o.Log.With("component", "tools"), func(tool string, out tools.Outcome, d time.Duration) {
		a.Metrics.ObserveTool(tool, string(out), d)
	})
	if err != nil {
		return nil, err
	}
	disp, err := dispatch.New(cfg, dispatch.Deps{Sessions: a.Sessions, Store: a.Store, Tools: a.Tools, Log: o.Log, Metrics: a.Metrics, Now: o.Now})
	if err != nil {
		return nil, err
	}
	a.Gateway = gateway.New(cfg, gateway.Deps{Verifier: verifier, Replay: a.Replay, Dispatcher: disp, Store: a.Store,
		Metrics: a.Metrics, Log: o.Log, Now: o.Now, DevTool: o.DevTool})
	ok = true
	return a, nil
}

// checkpointer is a store that copies its log into the database in the
// background (the SQLite store).
type checkpointer interface {
	RunCheckpoints(ctx context.Context, every time.Duration, onErr func(error))
}

// Run runs background work (the session sweeper, database checkpoints)
// until ctx ends.
func (a *App) Run(ctx context.Context) {
	if c, ok := a.Store.(checkpointer); ok {
		go c.RunCheckpoints(ctx, time.Second, func(err error) {
			a.Metrics.StoreErrors.WithLabelValues("checkpoint").Inc()
			a.log.Error("database checkpoint", "err", err)
		})
	}
	a.Sessions.Run(ctx, a.Config.Sessions.SweepInterval.D())
}

// Close releases the store.
func (a *App) Close() error { return a.Store.Close() }
