package health_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/health"
)

// fake is a probe the test switches.
type fake struct{ err atomic.Pointer[error] }

func (f *fake) set(err error) {
	if err == nil {
		f.err.Store(nil)
		return
	}
	f.err.Store(&err)
}

func (f *fake) probe(context.Context) error {
	if p := f.err.Load(); p != nil {
		return *p
	}
	return nil
}

// clock is a fake clock the test steps.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestReadinessRule(t *testing.T) {
	down := errors.New("connection refused")
	for _, tc := range []struct {
		name            string
		localDown       bool
		sharedDown      bool
		wantReady       bool
		wantStatus      string
		wantDown        string
		wantSharedState bool
	}{
		{name: "all up", wantReady: true, wantStatus: health.StatusReady, wantDown: "", wantSharedState: true},
		{name: "shared down degrades", sharedDown: true, wantReady: true, wantStatus: health.StatusDegraded, wantDown: "redis"},
		{name: "local down fails", localDown: true, wantReady: false, wantStatus: health.StatusNotReady, wantDown: "sqlite", wantSharedState: true},
		{name: "both down fails", localDown: true, sharedDown: true, wantReady: false, wantStatus: health.StatusNotReady, wantDown: "redis,sqlite"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var local, shared fake
			if tc.localDown {
				local.set(down)
			}
			if tc.sharedDown {
				shared.set(down)
			}
			gauge := map[string]bool{}
			m := health.New(health.Options{Observe: func(name string, up bool) { gauge[name] = up }})
			for _, c := range []health.Check{
				{Name: "sqlite", Probe: local.probe},
				{Name: "redis", Shared: true, Probe: shared.probe},
			} {
				if err := m.Register(c); err != nil {
					t.Fatal(err)
				}
			}
			m.ProbeNow(context.Background())
			r := m.Ready()
			if r.Ready != tc.wantReady || r.Status != tc.wantStatus || strings.Join(r.Down, ",") != tc.wantDown {
				t.Fatalf("got ready=%v status=%q down=%v; want %v %q %q", r.Ready, r.Status, r.Down, tc.wantReady, tc.wantStatus, tc.wantDown)
			}
			if len(r.Dependencies) != 2 || r.Dependencies[1].Name != "redis" || !r.Dependencies[1].Shared || r.Dependencies[1].Up != tc.wantSharedState {
				t.Fatalf("dependencies %+v", r.Dependencies)
			}
			if gauge["sqlite"] == tc.localDown || gauge["redis"] == tc.sharedDown {
				t.Fatalf("observed %v", gauge)
			}
		})
	}
}

func TestRegisterRefusals(t *testing.T) {
	ok := func(context.Context) error { return nil }
	m := health.New(health.Options{})
	if err := m.Register(health.Check{Name: "postgres", Shared: true, Probe: ok}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		c    health.Check
	}{
		{"empty name", health.Check{Probe: ok}},
		{"nil probe", health.Check{Name: "redis"}},
		{"duplicate", health.Check{Name: "postgres", Probe: ok}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := m.Register(tc.c); err == nil {
				t.Fatal("registered")
			}
		})
	}
	m.Start(context.Background())
	defer m.Close()
	if err := m.Register(health.Check{Name: "redis", Probe: ok}); !errors.Is(err, health.ErrStarted) {
		t.Fatalf("after Start: %v", err)
	}
}

// TestLogsOncePerMinuteAndOnRecovery steps a fake clock: the first failed
// probe logs, more within the minute do not, one a minute later does, and
// the recovery logs once.
func TestLogsOncePerMinuteAndOnRecovery(t *testing.T) {
	var logs syncBuf
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	var f fake
	m := health.New(health.Options{Log: slog.New(slog.NewTextHandler(&logs, nil)), Now: clk.now})
	if err := m.Register(health.Check{Name: "postgres", Shared: true, Probe: f.probe}); err != nil {
		t.Fatal(err)
	}
	count := func(s string) int { return strings.Count(logs.String(), s) }
	m.ProbeNow(t.Context())
	if count("dependency") != 0 {
		t.Fatalf("logged while up: %s", logs.String())
	}
	f.set(errors.New("connection refused"))
	for range 6 { // 50 s of probes every 10 s
		m.ProbeNow(t.Context())
		clk.add(10 * time.Second)
	}
	if n := count(`msg="dependency down"`); n != 1 {
		t.Fatalf("%d down lines within a minute, want 1:\n%s", n, logs.String())
	}
	clk.add(10 * time.Second)
	m.ProbeNow(t.Context())
	if n := count(`msg="dependency down"`); n != 2 {
		t.Fatalf("%d down lines after a minute, want 2:\n%s", n, logs.String())
	}
	if s, _ := m.State("postgres"); s.Up || !strings.Contains(s.Error, "refused") || s.Reason != "unreachable" {
		t.Fatalf("state %+v", s)
	}
	f.set(nil)
	m.ProbeNow(t.Context())
	m.ProbeNow(t.Context())
	if n := count(`msg="dependency recovered"`); n != 1 || !strings.Contains(logs.String(), "dependency=postgres") {
		t.Fatalf("%d recovery lines, want 1:\n%s", n, logs.String())
	}
	if r := m.Ready(); r.Status != health.StatusReady {
		t.Fatalf("after recovery %+v", r)
	}
}

// TestStartProbesAndCloseWaits: Start has the first verdict before it
// returns; the loop's probes stop with Close (a probe blocked on its
// context is released).
func TestStartProbesAndCloseWaits(t *testing.T) {
	var calls atomic.Int64
	blocked := make(chan struct{})
	var once sync.Once
	m := health.New(health.Options{Interval: time.Millisecond, Timeout: time.Hour})
	m.Register(health.Check{Name: "sqlite", Probe: func(ctx context.Context) error {
		if calls.Add(1) == 1 {
			return errors.New("disk full")
		}
		once.Do(func() { close(blocked) })
		<-ctx.Done() // a hung dependency: only cancellation ends it
		return ctx.Err()
	}})
	m.Start(context.Background())
	if r := m.Ready(); r.Ready || r.Status != health.StatusNotReady {
		t.Fatalf("after Start: %+v", r)
	}
	<-blocked
	m.Close() // must return: the probe's context is cancelled
	if r := m.Ready(); r.Ready {
		t.Fatalf("a cancelled probe changed the state: %+v", r)
	}
	m.Close()
}
