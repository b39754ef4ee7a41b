// Package health watches the dependencies a replica needs (its database,
// a shared Redis) and turns their state into readiness, a gauge per
// dependency and a few log lines.
//
// Register a Check per dependency before Start:
//
//	m := health.New(health.Options{Log: log, Observe: func(name string, up bool) {...}})
//	m.Register(health.Check{Name: "postgres", Shared: true, Probe: db.Ready})
//	m.Register(health.Check{Name: "redis", Shared: true, Probe: rdb.Ping})
//	m.Start(ctx) // probes each once, then every Interval, until Close
//	defer m.Close()
//	r := m.Ready() // what /readyz answers
//
// The readiness rule: a replica is not ready while a local dependency is
// down (Shared false: something only this replica has, such as its SQLite
// file — another replica can take its traffic). A shared dependency that
// is down (Shared true: a database or Redis every replica uses) leaves it
// ready but "degraded": every replica sees the same outage, and failing
// every readiness probe at once would take all of them out of the load
// balancer, so that nothing is answered — not even the messages that need
// no database. Those that do are refused one by one (503 with Retry-After,
// which the sender retries) by the code that needs the dependency, not by
// the load balancer.
//
// A dependency's state changes only by a probe: every Interval, and on
// Check (what /readyz calls, so that its answer is current; rounds that
// overlap are coalesced). Ready alone never probes. The first round runs
// in Start, before it returns.
//
// Logs: one line when a dependency goes down, one a minute while it stays
// down (LogEvery), one when it recovers; never the probe's error beyond
// its own message (probes must not put secrets in their errors).
package health

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/voicegate/voicegate/internal/logkey"
)

// Check is one dependency.
type Check struct {
	// Name names it in /readyz, the gauge's dependency label and the logs
	// ("postgres", "sqlite", "redis"): a short constant, never a URL.
	Name string
	// Shared is a dependency every replica uses (see the package comment:
	// it degrades readiness instead of failing it).
	Shared bool
	// Probe returns nil while the dependency works. It gets a context
	// bounded by Options.Timeout.
	Probe func(context.Context) error
	// Reason, if set, names a failed probe's error in /readyz with a short
	// constant ("writes failing", "unreachable"); the error itself only
	// goes to the log. Default: "unreachable".
	Reason func(error) string
}

// Options tune a Monitor; zero values take the defaults.
type Options struct {
	// Interval between probe rounds (default 5 s).
	Interval time.Duration
	// Timeout bounds each probe (default 2 s).
	Timeout time.Duration
	// LogEvery is how often a dependency still down is logged again
	// (default 1 min).
	LogEvery time.Duration
	// Log receives the lines (default: discard).
	Log *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Observe, if set, is called after every probe with its outcome (the
	// voicegate_dependency_up gauge).
	Observe func(name string, up bool)
}

// Dependency names (Check.Name) voicegate registers: the label values of
// voicegate_dependency_up.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
	Redis    = "redis"
)

// Names lists every dependency name voicegate registers.
var Names = []string{SQLite, Postgres, Redis}

// Defaults.
const (
	DefaultInterval = 5 * time.Second
	DefaultTimeout  = 2 * time.Second
	DefaultLogEvery = time.Minute
)

// Readiness statuses (Report.Status).
const (
	StatusReady    = "ready"
	StatusDegraded = "degraded"
	StatusNotReady = "not ready"
)

// State is one dependency's state as last probed.
type State struct {
	Name   string `json:"name"`
	Shared bool   `json:"shared"`
	Up     bool   `json:"up"`
	// Since is when it last changed state (or was first probed).
	Since time.Time `json:"since"`
	// Reason is Check.Reason of the last probe's error while down.
	Reason string `json:"reason,omitempty"`
	// Error is the last probe's error while down: for logs, never in
	// /readyz (it may name internal addresses).
	Error string `json:"-"`
}

// Report is the readiness verdict.
type Report struct {
	// Ready is false only while a local dependency is down.
	Ready bool
	// Status is StatusReady, StatusDegraded (ready, a shared dependency
	// down) or StatusNotReady.
	Status string
	// Down names the dependencies that are down, sorted.
	Down []string
	// Dependencies is every dependency's state, in registration order.
	Dependencies []State
}

// ErrStarted is Register after Start.
var ErrStarted = errors.New("health: register every check before Start")

// Monitor probes the registered dependencies. Safe for concurrent use.
type Monitor struct {
	o Options

	mu      sync.Mutex
	checks  []Check
	states  []State
	lastLog []time.Time
	started bool
	cancel  context.CancelFunc
	round   chan struct{} // closed when the running round ends; nil: none
	wg      sync.WaitGroup
}

// New returns a Monitor with no checks.
func New(o Options) *Monitor {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.LogEvery <= 0 {
		o.LogEvery = DefaultLogEvery
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Monitor{o: o}
}

// Register adds a check. It fails after Start, for an empty name or a nil
// probe, and for a name already registered.
func (m *Monitor) Register(c Check) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case m.started:
		return ErrStarted
	case c.Name == "" || c.Probe == nil:
		return errors.New("health: a check needs a name and a probe")
	}
	for _, x := range m.checks {
		if x.Name == c.Name {
			return fmt.Errorf("health: %q is registered twice", c.Name)
		}
	}
	m.checks = append(m.checks, c)
	// Up until probed: Start probes before it returns.
	m.states = append(m.states, State{Name: c.Name, Shared: c.Shared, Up: true, Since: m.o.Now()})
	m.lastLog = append(m.lastLog, time.Time{})
	return nil
}

// Start probes every dependency once, then again every Interval in a
// goroutine that Close stops (ctx ending stops it too). A second Start
// does nothing.
func (m *Monitor) Start(ctx context.Context) {
	m.mu.Lock()
	if m.started {
		m.mu.Unlock()
		return
	}
	m.started = true
	ctx, m.cancel = context.WithCancel(ctx)
	m.mu.Unlock()
	m.ProbeNow(ctx)
	m.wg.Go(func() {
		t := time.NewTicker(m.o.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				m.ProbeNow(ctx)
			}
		}
	})
}

// Close stops the probes and waits for them. It is safe to call more
// than once, and without Start.
func (m *Monitor) Close() error {
	m.mu.Lock()
	cancel := m.cancel
	m.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	m.wg.Wait()
	return nil
}

// ProbeNow runs one round of probes, one dependency after the other, and
// updates their states (Start's loop calls it; so does Check). A call
// while a round is running waits for that round instead of starting
// another, so that a readiness endpoint polled by many load balancers
// probes each dependency once at a time.
func (m *Monitor) ProbeNow(ctx context.Context) {
	m.mu.Lock()
	if ch := m.round; ch != nil {
		m.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		return
	}
	ch := make(chan struct{})
	m.round = ch
	checks := append([]Check(nil), m.checks...)
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.round = nil
		m.mu.Unlock()
		close(ch)
	}()
	for i, c := range checks {
		if ctx.Err() != nil {
			return // stopping: a cancelled probe says nothing
		}
		pctx, cancel := context.WithTimeout(ctx, m.o.Timeout)
		err := c.Probe(pctx)
		cancel()
		if err != nil && ctx.Err() != nil {
			return
		}
		m.record(i, c, err)
	}
}

// Check probes now (see ProbeNow) and returns the verdict: what /readyz
// answers, never older than the request.
func (m *Monitor) Check(ctx context.Context) Report {
	m.ProbeNow(ctx)
	return m.Ready()
}

// record stores a probe's outcome and logs a change.
func (m *Monitor) record(i int, c Check, err error) {
	now := m.o.Now()
	up := err == nil
	m.mu.Lock()
	s := &m.states[i]
	changed := s.Up != up
	var downFor time.Duration
	if changed {
		downFor = now.Sub(s.Since)
		s.Up, s.Since = up, now
	}
	s.Error, s.Reason = "", ""
	if err != nil {
		s.Error, s.Reason = err.Error(), "unreachable"
		if c.Reason != nil {
			s.Reason = c.Reason(err)
		}
	}
	logDown := !up && (changed || now.Sub(m.lastLog[i]) >= m.o.LogEvery)
	if logDown {
		m.lastLog[i] = now
	}
	since := s.Since
	m.mu.Unlock()

	if m.o.Observe != nil {
		m.o.Observe(c.Name, up)
	}
	switch {
	case logDown:
		m.o.Log.Error("dependency down", logkey.Dependency, c.Name, logkey.Shared, c.Shared,
			logkey.DurationS, now.Sub(since).Round(time.Second).Seconds(), logkey.Err, err)
	case changed && up:
		m.o.Log.Info("dependency recovered", logkey.Dependency, c.Name, logkey.Shared, c.Shared,
			logkey.DurationS, downFor.Round(time.Second).Seconds())
	}
}

// Ready returns the verdict from the last probes (it never probes).
func (m *Monitor) Ready() Report {
	m.mu.Lock()
	defer m.mu.Unlock()
	r := Report{Ready: true, Status: StatusReady, Dependencies: append([]State(nil), m.states...)}
	for _, s := range m.states {
		if s.Up {
			continue
		}
		r.Down = append(r.Down, s.Name)
		if s.Shared {
			if r.Ready {
				r.Status = StatusDegraded
			}
		} else {
			r.Ready, r.Status = false, StatusNotReady
		}
	}
	sort.Strings(r.Down)
	return r
}

// State returns the named dependency's state, and false if none is
// registered under that name.
func (m *Monitor) State(name string) (State, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.states {
		if s.Name == name {
			return s, true
		}
	}
	return State{}, false
}
