// Package app wires voicegate's components together from a validated
// configuration. serve, the end-to-end tests and the benchmarks all build the
// same stack through it.
package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voicegate/voicegate/internal/actions"
	"github.com/voicegate/voicegate/internal/asynctools"
	"github.com/voicegate/voicegate/internal/audit"
	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/bargein"
	"github.com/voicegate/voicegate/internal/callcontrol"
	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/delivery"
	"github.com/voicegate/voicegate/internal/demoapi"
	"github.com/voicegate/voicegate/internal/dispatch"
	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/erasure"
	"github.com/voicegate/voicegate/internal/gateway"
	"github.com/voicegate/voicegate/internal/health"
	"github.com/voicegate/voicegate/internal/knowledge"
	"github.com/voicegate/voicegate/internal/knowledge/library"
	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/metrics"
	"github.com/voicegate/voicegate/internal/periodic"
	"github.com/voicegate/voicegate/internal/predial"
	"github.com/voicegate/voicegate/internal/records"
	"github.com/voicegate/voicegate/internal/redisstate"
	"github.com/voicegate/voicegate/internal/replay"
	"github.com/voicegate/voicegate/internal/secrets"
	"github.com/voicegate/voicegate/internal/server"
	"github.com/voicegate/voicegate/internal/session"
	"github.com/voicegate/voicegate/internal/tools"
	"github.com/voicegate/voicegate/internal/tracing"
	"github.com/voicegate/voicegate/internal/twilio"
	"github.com/voicegate/voicegate/internal/webhook"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// App is a wired voicegate.
type App struct {
	Config  *config.Config
	Gateway *gateway.Gateway
	// Sessions and Replay are this process's memory: the state itself
	// with state.driver memory, the fallback while Redis is unreachable
	// with redis. Tracker and Guard are what requests use.
	Sessions *session.Table
	Replay   *replay.Cache
	Tracker  session.Tracker
	Guard    replay.Guard
	// redis and redisTracker are set with state.driver redis.
	redis        *redisstate.Conn
	redisTracker *redisstate.Tracker
	// memo keeps tool results for the redelivery of an unanswered call.
	memo dispatch.ResultMemo
	// replicas is how many replicas Redis counts (state.driver redis).
	replicas atomic.Int64
	Store    *calls.MonitoredStore
	Metrics  *metrics.Metrics
	Tools    *tools.Router
	// Records seals and keeps the protected call records (nil when the
	// store given in Options keeps none).
	Records *records.Writer
	// Audit is the tamper-evident audit log (nil when the store given in
	// Options keeps none).
	Audit    *audit.Log
	store    driver // the opened store's extras; zero when Options.Store replaced it
	vapi     *dispatch.Source
	twilio   twilio.Sources // zero when the twilio section is off
	log      *slog.Logger
	level    *slog.LevelVar
	now      func() time.Time
	reloadMu sync.Mutex
	// Restart-only intervals, read by Run (Config is replaced by Reload).
	sweepEvery, certReloadEvery time.Duration
	// retention and purgeEvery are records.retention and purge_interval,
	// restart-only, read by Run.
	retention  map[records.Kind]time.Duration
	purgeEvery time.Duration
	// handlerWait bounds how long Run waits, after the listener closed,
	// for webhook handlers still running (each is bounded by Vapi's
	// deadline, which a reload may raise up to the write timeout).
	handlerWait time.Duration
	// runs is held while Run runs: Close waits for it.
	runs sync.WaitGroup
	// erasure keeps the per-call secrets the records are bound to.
	erasure erasure.Secrets
	// Control sends Live Call Control messages; Actions runs the barge-in
	// actions with it.
	Control *callcontrol.Client
	Actions *actions.Runner
	// Events writes the calls' timeline events (group commit).
	Events *calls.EventWriter
	// Queue runs the async tools' jobs (nil: no tool is async).
	Queue *asynctools.Queue
	// router is the current tool router, for the queue's jobs.
	router atomic.Pointer[tools.Router]
	keys   *envelope.Local
	// Secrets are the managed webhook secrets (nil: no vapi.auth entry is
	// managed); secretSource is what managed verifiers read, loaded by
	// the watcher; process names this process to the other servers.
	Secrets      *secrets.Manager
	secretSource auth.SecretSource
	secretsPrint string
	process      string
	// vapiRotation is the Vapi API a rotation uses (nil: vapi.api not
	// configured).
	vapiRotation secrets.Vapi
	// Library is the knowledge bases' document store (nil: the store keeps
	// no documents, or there are no records' keys).
	Library *library.Library
	// attempts counts campaign pre-dial attempts across reloads: in the
	// database with the records' keyring, else in memory.
	attempts predial.Counter
	// rules are the barge-in actions build compiled, used once a build
	// is committed.
	rules *actions.Rules
	// Health watches the dependencies (the store; Redis when shared
	// state is on) for readiness and voicegate_dependency_up: register
	// more checks before Run.
	Health *health.Monitor
	// Tracing exports the spans (nil: tracing off); Close flushes it.
	Tracing *tracing.Provider
}

// Options are the injectable parts.
type Options struct {
	Log *slog.Logger
	Now func() time.Time
	// Store replaces the SQLite store in DataDir (tests of failure paths).
	Store calls.Store
	// Dev mounts the demo internal API at demoapi.Path (serve --dev).
	Dev bool
	// Level, if set, is the logger's level: a reload applies log.level to it.
	Level *slog.LevelVar
	// Version is the spans' service.version.
	Version string
	// SpanProcessor, if set, receives the spans instead of the
	// tracing.endpoint exporter, tracing on (tests).
	SpanProcessor sdktrace.SpanProcessor
}

// WriteFailureWindow is how long after a failed write /readyz keeps failing
// when no write has succeeded since (calls.Monitored).
const WriteFailureWindow = 15 * time.Second

// New builds the stack. The caller closes the store (App.Close).
func New(ctx context.Context, cfg *config.Config, o Options) (*App, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	a := &App{Config: cfg, log: o.Log, level: o.Level, now: o.Now,
		sweepEvery:      cfg.Sessions.SweepInterval.D(),
		retention:       cfg.Records.Retention.Periods(),
		purgeEvery:      cfg.Records.PurgeInterval.D(),
		handlerWait:     cfg.Server.WriteTimeout.D(),
		certReloadEvery: cfg.TLS.ReloadInterval.D()}
	store := o.Store
	if store == nil {
		var err error
		if a.store, err = openStore(ctx, cfg, o.Log); err != nil {
			return nil, err
		}
		store = a.store.Store
	}
	// Readiness fails while writes fail (a full disk, a lock held by
	// another process), not only when the store stops answering.
	a.Store = calls.Monitored(store, o.Now, WriteFailureWindow)
	ok := false
	defer func() {
		if !ok {
			a.Store.Close()
		}
	}()
	// Protected records live in the same database, sealed with the keyring.
	rs := a.store.records
	if rs == nil {
		rs, _ = store.(records.Store) // a store given by the caller, if it keeps records
	}
	var err error
	if a.Tracing, err = tracing.Open(cfg.Tracing, tracing.Options{Replica: cfg.Replica, Version: o.Version, Log: o.Log, Processor: o.SpanProcessor}); err != nil {
		return nil, err
	}
	defer func() {
		if !ok {
			a.Tracing.Close()
		}
	}()
	if rs != nil {
		var kr *envelope.Local
		var err error
		if cfg.Records.KeyringEnv != "" {
			kr, err = envelope.LoadEnv(cfg.Records.KeyringEnv, cfg.Records.KeyringJSON, rand.Reader)
		} else {
			kr, err = envelope.LoadFile(cfg.Records.KeyringPath(cfg.DataDir), rand.Reader, o.Now)
		}
		if err != nil {
			return nil, err
		}
		a.keys = kr
		if err := checkSharedKeyring(ctx, cfg, rs, kr); err != nil {
			return nil, err
		}
		// Per-call secrets, outside the records: a purge destroys them
		// (store.go: erasure.db, or PostgreSQL's shared by the replicas).
		if a.erasure, err = openErasure(ctx, cfg, store, rs, o.Log); err != nil {
			return nil, err
		}
		defer func() {
			if !ok {
				a.erasure.Close()
			}
		}()
		a.Records = records.NewWriter(records.Deps{Store: a.traced(rs), Keys: kr, Secrets: a.erasure, LookupKey: kr.LookupKey(),
			Redaction: cfg.Records.Redaction, Random: rand.Reader, Now: o.Now})
		if ls, ok := rs.(library.Store); ok {
			a.Library = library.New(library.Deps{Store: ls, Keys: kr, LookupKey: kr.LookupKey(), Erasure: a.erasure, Random: rand.Reader, Now: o.Now})
		}
		// Pre-dial attempts in the database, under the keyring's lookup
		// key: a restart keeps the day's counts, replicas share them.
		if as, ok := store.(predial.AttemptStore); ok {
			a.attempts = predial.NewStored(as)
		}
	}
	if as, ok := rs.(audit.Store); ok {
		var err error
		if a.Audit, err = openAudit(ctx, as, cfg.DataDir, a.keys, o.Now); err != nil {
			return nil, err
		}
	}
	if managed(cfg) {
		if err := a.openSecrets(ctx, cfg, store); err != nil {
			return nil, err
		}
	}
	if err := a.openState(cfg, o); err != nil {
		return nil, err
	}
	defer func() {
		if !ok && a.redis != nil {
			a.redis.Close()
		}
	}()
	a.Metrics = metrics.New(a.sessionCount, func() float64 { return float64(a.Replay.Len()) },
		func() float64 { return float64(a.Replay.EarlyEvictions()) }, metrics.WithReplica(cfg.Replica))
	a.observeState(o)
	if a.store.observe != nil {
		a.store.observe(a.Metrics)
	}
	a.Health = a.newHealth(cfg)
	if a.Control, err = callcontrol.New(cfg.CallControl, callcontrol.Deps{Log: o.Log.With(logkey.Component, "call_control"), Now: o.Now,
		Observe: func(typ, outcome string, _ int, _ time.Duration) {
			a.Metrics.ControlMessages.WithLabelValues(typ, outcome).Inc()
		}}); err != nil {
		return nil, err
	}
	a.Events = calls.NewEventWriter(a.Store, func(err error, n int) {
		a.Metrics.StoreErrors.WithLabelValues("add_event").Add(float64(n))
		a.log.Error("persist call events", logkey.Count, n, logkey.Err, err)
	})
	defer func() {
		if !ok {
			a.Events.Close()
		}
	}()
	a.Actions = actions.New(actions.Deps{Sender: a.Control, Events: a.Events, Metrics: a.Metrics, Log: o.Log.With(logkey.Component, "bargein"), Now: o.Now})
	defer func() {
		if !ok {
			a.Actions.Close()
		}
	}()
	if err := a.openQueue(ctx, cfg); err != nil {
		return nil, err
	}
	defer func() {
		if !ok && a.Queue != nil {
			a.Queue.Close()
		}
	}()
	ep, router, err := a.build(cfg)
	if err != nil {
		return nil, err
	}
	a.Actions.Use(a.rules)
	a.Tools = router
	a.router.Store(router)
	if a.Queue != nil {
		if err := a.Queue.Start(ctx); err != nil {
			return nil, err
		}
	}
	a.vapi = dispatch.NewSource(cfg.Vapi.Path, ep)
	sources := []webhook.Source{a.vapi}
	if cfg.Twilio.Enabled() {
		if a.twilio, err = twilio.NewSources(cfg.Twilio, a.twilioDeps(cfg)); err != nil {
			return nil, err
		}
		sources = append(sources, a.twilio.List()...)
	}
	var routes map[string]http.Handler
	if o.Dev {
		routes = map[string]http.Handler{"POST " + demoapi.Path: demoapi.Handler()}
	}
	a.Gateway = gateway.New(gateway.Config{BodyMemoryBytes: cfg.Server.BodyMemoryBytes, ReadTimeout: cfg.Server.ReadTimeout.D(),
		PublicMetricsToken: cfg.Admin.PublicMetricsToken, TrustedProxies: cfg.Server.Proxies(), Limits: cfg.Limits},
		gateway.Deps{Sources: sources, Replay: a.Guard, Store: a.Store, Metrics: a.Metrics, Log: o.Log, Now: o.Now, Routes: routes, Audit: a.AuditEvent, Health: a.Health, Tracing: a.Tracing})
	a.shareLimits(cfg)
	a.Metrics.ObserveReady(func() float64 {
		if ok, _ := a.Gateway.Ready(context.Background()); ok {
			return 1
		}
		return 0
	})
	ok = true
	return a, nil
}

// twilioDeps are the Twilio handlers' collaborators.
func (a *App) twilioDeps(cfg *config.Config) twilio.Deps {
	return twilio.Deps{Store: a.Store, Metrics: a.Metrics, Log: a.log.With(logkey.Component, "twilio"), Now: a.now, TrustedProxies: cfg.Server.Proxies()}
}

// build makes the parts of the stack a reload replaces: the Vapi endpoint
// (verifier, limits, dispatcher) and the tool router.
func (a *App) build(cfg *config.Config) (*webhook.Endpoint, *tools.Router, error) {
	verifier, err := auth.New(cfg.Vapi.Auth, &a.secretSource)
	if err != nil {
		return nil, nil, err
	}
	router, err := tools.New(cfg.Tools, a.log.With(logkey.Component, "tools"), func(tool string, out tools.Outcome, d time.Duration) {
		a.Metrics.ObserveTool(tool, string(out), d)
	})
	if err != nil {
		return nil, nil, err
	}
	v := cfg.Vapi
	var engine *bargein.Engine
	if cfg.Bargein.Enabled {
		engine = bargein.NewEngine(cfg.Bargein)
	}
	if a.rules, err = actions.Compile(cfg.Bargein.Actions); err != nil {
		return nil, nil, err
	}
	var runner tools.Runner = router
	if a.Queue != nil {
		holding := map[string]string{}
		for _, t := range cfg.Tools {
			if t.Async {
				holding[t.Name] = t.HoldingPhrase
			}
		}
		runner = &asynctools.Runner{Router: router, Queue: a.Queue, Holding: holding, Log: a.log.With(logkey.Component, "asynctools"),
			Observe: func(tool string, out tools.Outcome, d time.Duration) { a.Metrics.ObserveTool(tool, string(out), d) }}
	}
	pd, err := a.predialRules(cfg)
	if err != nil {
		return nil, nil, err
	}
	kb, err := knowledge.New(cfg.Vapi.KnowledgeBase, knowledge.Deps{Log: a.log.With(logkey.Component, "knowledge"), Library: a.Library, Now: a.now,
		ObserveTool: func(tool string, out tools.Outcome, d time.Duration) { a.Metrics.ObserveTool(tool, string(out), d) },
		Observe: func(source, outcome string, d time.Duration) {
			a.Metrics.KnowledgeSearches.WithLabelValues(source, outcome).Inc()
			a.Metrics.KnowledgeLatency.WithLabelValues(source).Observe(d.Seconds())
		}})
	if err != nil {
		return nil, nil, err
	}
	var phone dispatch.PhoneController
	if cfg.Vapi.PhoneCallControl.Enabled() {
		phone = twilio.NewREST(cfg.Vapi.PhoneCallControl, a.log.With(logkey.Component, "twilio-rest"))
	}
	var control dispatch.Controller
	if engine != nil && a.rules.Len() > 0 {
		control = a.Actions // observe only without actions
	}
	disp, err := dispatch.New(dispatch.Config{AssistantRequest: v.AssistantRequest, TransferDestination: v.TransferDestination,
		ServerTimeout: v.ServerTimeout.D(), DryRun: v.DryRun, Endpointing: v.Endpointing, Handoff: v.Handoff, LocalSideEffects: localSideEffects(cfg)}, dispatch.Deps{Sessions: a.Tracker, Store: a.tracedStore(), Records: a.Records, Tools: runner, Log: a.log, Metrics: a.Metrics, Now: a.now,
		Bargein: engine, Control: control, Events: a.Events, Audit: a.AuditEvent, Predial: pd, CallerHash: a.callerHash, Memo: a.memo, Phone: phone, Knowledge: kb,
		ObserveTool: func(tool string, out tools.Outcome, d time.Duration) { a.Metrics.ObserveTool(tool, string(out), d) }})
	if err != nil {
		return nil, nil, err
	}
	allow, err := v.AllowFrom.Build()
	if err != nil {
		return nil, nil, err
	}
	ep := dispatch.EndpointConfig{MaxBodyBytes: v.MaxBodyBytes, AllowFrom: allow, PublicURL: v.PublicURL, DeadlineWarnRatio: v.DeadlineWarnRatio}
	return dispatch.Endpoint(ep, verifier, disp), router, nil
}

// Reload applies a new, validated configuration without dropping a request:
// credentials, tools, assistant routing, transfer destination, Vapi limits
// and deadlines, and the log level are swapped atomically (requests in flight
// finish on the configuration they started with). Settings that need a
// restart keep their running values and are returned, one line each, so the
// caller can report them. On error nothing changes.
func (a *App) Reload(next *config.Config) (needRestart []string, err error) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	cur := a.Config
	merged := *next
	if asyncTools(cur.Tools) != asyncTools(next.Tools) {
		return nil, fmt.Errorf("the async tools (async, deadline, max_attempts) differ from the running ones: they change with a restart (queued calls depend on them)")
	}
	needRestart = restartOnly(cur, &merged)
	if merged.Vapi.MaxBodyBytes > merged.Server.BodyMemoryBytes {
		return nil, fmt.Errorf("vapi.max_body_bytes %d is larger than the running server.body_memory_bytes %d (a restart is needed to raise it)",
			merged.Vapi.MaxBodyBytes, merged.Server.BodyMemoryBytes)
	}
	if err := merged.CheckCombined(); err != nil {
		return nil, fmt.Errorf("the new configuration does not fit the settings that need a restart (%s), which keep their running values: %w",
			strings.Join(needRestart, ", "), err)
	}
	ep, router, err := a.build(&merged)
	if err != nil {
		return nil, err
	}
	var voice, status *webhook.Endpoint
	if a.twilio.Voice != nil {
		if voice, status, err = twilio.Endpoints(merged.Twilio, a.twilioDeps(&merged)); err != nil {
			router.CloseIdleConnections()
			return nil, err
		}
		a.twilio.Swap(voice, status)
	}
	a.vapi.Swap(ep)
	a.Actions.Use(a.rules)
	a.router.Store(router)
	old := a.Tools
	a.Tools, a.Config = router, &merged
	old.CloseIdleConnections() // calls in flight keep their connections
	if a.level != nil {
		a.level.Set(merged.Log.SlogLevel())
	}
	return needRestart, nil
}

// restartOnly copies into next every setting that cannot change while
// running, and names those that differ from cur.
func restartOnly(cur, next *config.Config) []string {
	var diff []string
	keep := func(name string, c, n any, restore func()) {
		if !reflect.DeepEqual(c, n) {
			diff = append(diff, name)
			restore()
		}
	}
	keep("listen", cur.Listen, next.Listen, func() { next.Listen = cur.Listen })
	keep("data_dir", cur.DataDir, next.DataDir, func() { next.DataDir = cur.DataDir })
	keep("allow_insecure_http", cur.AllowInsecureHTTP, next.AllowInsecureHTTP, func() { next.AllowInsecureHTTP = cur.AllowInsecureHTTP })
	keep("tls", cur.TLS, next.TLS, func() { next.TLS = cur.TLS })
	keep("server", cur.Server, next.Server, func() { next.Server = cur.Server })
	keep("admin", cur.Admin, next.Admin, func() { next.Admin = cur.Admin })
	keep("vapi.path", cur.Vapi.Path, next.Vapi.Path, func() { next.Vapi.Path = cur.Vapi.Path })
	keep("vapi.replay", cur.Vapi.Replay, next.Vapi.Replay, func() { next.Vapi.Replay = cur.Vapi.Replay })
	keep("sessions", cur.Sessions, next.Sessions, func() { next.Sessions = cur.Sessions })
	keep("state", cur.State, next.State, func() { next.State = cur.State })
	keep("storage", cur.Storage, next.Storage, func() { next.Storage = cur.Storage })
	keep("records", cur.Records, next.Records, func() { next.Records = cur.Records })
	keep("limits", cur.Limits, next.Limits, func() { next.Limits = cur.Limits })
	keep("call_control", cur.CallControl, next.CallControl, func() { next.CallControl = cur.CallControl })
	// The Twilio routes are mounted at start: turning them on or off, or
	// moving them, needs a restart (their tokens, numbers and messages
	// reload).
	keep("twilio.voice_path", cur.Twilio.VoicePath, next.Twilio.VoicePath, func() { next.Twilio.VoicePath = cur.Twilio.VoicePath })
	keep("twilio.status_path", cur.Twilio.StatusPath, next.Twilio.StatusPath, func() { next.Twilio.StatusPath = cur.Twilio.StatusPath })
	// The logger was built at start-up with redaction on or off.
	keep("log.redact_pii", cur.Log.RedactPII, next.Log.RedactPII, func() { next.Log.RedactPII = cur.Log.RedactPII })
	// The logger, the metrics' label and the tracer provider were built
	// at start-up.
	keep("replica", cur.Replica, next.Replica, func() { next.Replica = cur.Replica })
	keep("tracing", cur.Tracing, next.Tracing, func() { next.Tracing = cur.Tracing })
	return diff
}

// Listeners are what Run serves: the public listener, and the admin one
// when configured (nil otherwise).
type Listeners struct {
	Public *server.Server
	Admin  *server.Admin
}

// Run serves the listeners and runs the background work (database
// checkpoints, the session sweeper, the authentication-failure log, the
// certificate watcher) until ctx ends. Then the public listener fails
// readiness and drains, the admin listener stops, and the background work
// stops after them (requests still draining can write). Run returns when
// every goroutine it started has stopped: the first listener error, which
// stops everything, or nil.
func (a *App) Run(ctx context.Context, l Listeners) error {
	a.runs.Add(1)
	defer a.runs.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bgCtx, stopBackground := context.WithCancel(context.Background())
	var background sync.WaitGroup
	if a.store.maintain != nil {
		background.Go(func() {
			a.store.maintain(bgCtx, func(err error) {
				a.Metrics.StoreErrors.WithLabelValues("checkpoint").Inc()
				a.log.Error("database checkpoint", logkey.Err, err)
			})
		})
	}
	background.Go(func() { a.Gateway.Run(bgCtx) })
	a.Health.Start(bgCtx) // probes until stopBackground; closed below
	if a.Secrets != nil {
		background.Go(func() { a.watchSecrets(bgCtx) })
		background.Go(func() { a.rotateSecrets(bgCtx) })
	}
	background.Go(func() { a.Sessions.Run(bgCtx, a.sweepEvery) })
	if a.redisTracker != nil {
		background.Go(func() { a.redisTracker.Run(bgCtx, a.sweepEvery) })
	}
	if a.Records != nil {
		// Retention, and forgetting the secrets of calls that never wrote a
		// record (prepared when they started), run even without periods.
		background.Go(func() {
			a.ExpireRecords(bgCtx, a.retention)
			periodic.Run(bgCtx, a.purgeEvery, func() { a.ExpireRecords(bgCtx, a.retention) })
		})
	}

	var (
		listeners sync.WaitGroup
		once      sync.Once
		first     error
	)
	fail := func(err error) {
		if err != nil {
			once.Do(func() { first = err; cancel() })
		}
	}
	if l.Admin != nil {
		listeners.Go(func() { fail(l.Admin.Serve(ctx)) })
	}
	if l.Public != nil {
		listeners.Go(func() { fail(l.Public.Serve(ctx, a.Gateway, a.certReloadEvery, a.Gateway.SetDraining)) })
	}
	if l.Public == nil && l.Admin == nil {
		<-ctx.Done() // background work only: it runs until ctx ends
	}
	listeners.Wait()
	// A drain that timed out closed the connections, but their handlers
	// may still be running (net/http does not wait for them): the store
	// and background work stay up until they finish.
	waitCtx, stopWaiting := context.WithTimeout(context.Background(), a.handlerWait)
	if err := a.Gateway.Wait(waitCtx); err != nil {
		a.log.Error("webhook handlers still running after the drain", logkey.Count, a.Gateway.InFlight())
	}
	stopWaiting()
	stopBackground()
	background.Wait()
	a.Health.Close()
	return first
}

// ExpireRecords deletes the records older than their kind's retention
// period (see records.Writer.Expire), audits what it deleted and logs it.
func (a *App) ExpireRecords(ctx context.Context, periods map[records.Kind]time.Duration) {
	res, err := a.Records.Expire(ctx, periods)
	n := 0
	for _, k := range res.Records {
		n += k
	}
	if n > 0 || res.Calls > 0 {
		a.AuditEvent("records.retention", "", res.String())
		a.log.Info("records past their retention deleted", logkey.Count, n, logkey.Calls, res.Calls)
	}
	if err != nil && ctx.Err() == nil {
		a.Metrics.StoreErrors.WithLabelValues("expire_records").Inc()
		a.log.Error("retention purge failed: it runs again at the next interval", logkey.Err, err)
	}
}

// AuditEvent appends an event to the audit log; a failure is logged (the
// event it would have recorded is not lost from the logs).
func (a *App) AuditEvent(event, subject, detail string) {
	if a.Audit == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Audit.Append(ctx, event, subject, detail); err != nil {
		a.log.Error("audit log append failed", logkey.Type, event, logkey.Err, err)
	}
}

// Close waits for Run to return (cancel its context first), then
// releases the store.
func (a *App) Close() error {
	a.runs.Wait()
	if a.Queue != nil {
		a.Queue.Close() // running jobs finish (bounded), the rest wait in the database
	}
	a.Actions.Close() // the queued control messages, before the store closes
	a.Control.Close()
	a.Events.Close()
	if a.erasure != nil {
		a.erasure.Close()
	}
	if a.redis != nil {
		a.redis.Close()
	}
	err := a.Store.Close()
	// Last: the spans of everything above are flushed (bounded by
	// tracing.timeout).
	if terr := a.Tracing.Close(); terr != nil {
		a.log.Warn("tracing: spans not flushed at shutdown", logkey.Err, terr)
	}
	return err
}

// asyncTools describes the async tools' queue settings, to tell whether a
// reload changes them.
func asyncTools(ts []tools.Config) string {
	var b strings.Builder
	for _, t := range ts {
		if t.Async {
			fmt.Fprintf(&b, "%s/%s/%d/%s;", t.Name, t.Deadline.D(), t.MaxAttempts, t.Timeout.D())
		}
	}
	return b.String()
}

// openQueue opens the durable queue of the async tools, when a tool is
// async: on jobs.db in data_dir, or on the PostgreSQL database of
// storage.driver postgres. Queued arguments and results are sealed with
// the records keyring.
func (a *App) openQueue(ctx context.Context, cfg *config.Config) error {
	if asyncTools(cfg.Tools) == "" {
		return nil
	}
	if a.keys == nil {
		return fmt.Errorf("async tools need the records keyring (this store keeps no records)")
	}
	deliverer := &delivery.Deliverer{Sender: a.Control, Calls: a.Store, Records: a.Records, Events: a.Events, Log: a.log.With(logkey.Component, "asynctools"), Now: a.now,
		Mode: func(tool string) string {
			for _, t := range a.currentConfig().Tools {
				if t.Name == tool {
					return t.Delivery
				}
			}
			return tools.DeliveryAddMessage
		}}
	q, err := asynctools.Open(ctx, asynctools.Backend{Driver: cfg.Storage.Driver, DataDir: cfg.DataDir, PostgresURL: cfg.Storage.PostgresURL},
		asynctools.Options{Tools: cfg.Tools, Executor: routerExecutor{a}, Deliverer: deliverer,
			Sealer:   asynctools.KeyringSealer{Keys: a.keys, Random: rand.Reader, Secrets: a.erasure},
			Observer: func(tool string, e asynctools.Event) { a.Metrics.AsyncJobs.WithLabelValues(tool, string(e)).Inc() },
			Logger:   a.log, Now: a.now})
	if err != nil {
		return fmt.Errorf("async tool queue: %w", err)
	}
	a.Queue = q
	return nil
}

// routerExecutor runs a queued call through the current tool router (a
// reload's URLs and headers apply to queued calls too).
type routerExecutor struct{ a *App }

func (e routerExecutor) Execute(ctx context.Context, j asynctools.Job, key string) (string, bool, error) {
	return asynctools.RouterExecutor{Router: e.a.router.Load()}.Execute(ctx, j, key)
}

// currentConfig is the configuration in force (a reload replaces it).
func (a *App) currentConfig() *config.Config {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	return a.Config
}

// predialRules builds the campaign pre-dial rules; numbers are hashed with
// the records' lookup key (or a key of this process when there is none).
func (a *App) predialRules(cfg *config.Config) (*predial.Rules, error) {
	key := make([]byte, 32)
	if a.keys != nil {
		key = a.keys.LookupKey()
	} else if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	if a.attempts == nil {
		a.attempts = &predial.Attempts{}
	}
	return predial.New(cfg.Vapi.Predial, key, os.ReadFile, a.now, a.attempts)
}

// callerHash names a number in the audit log by its keyed hash (empty
// without the records).
func (a *App) callerHash(number string) string {
	if a.Records == nil {
		return ""
	}
	return a.Records.CallerHash(number)
}

// tracedStore is the call store the dispatcher writes through: with
// tracing on, each write is a span of its request.
func (a *App) tracedStore() calls.Store {
	if a.Tracing == nil {
		return a.Store
	}
	return tracing.Store{Store: a.Store}
}

// traced is the records' store with tracing on (each record written is a
// span of its request), rs itself otherwise.
func (a *App) traced(rs records.Store) records.Store {
	if a.Tracing == nil {
		return rs
	}
	return tracing.Records{Store: rs}
}
