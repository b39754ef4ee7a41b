package app

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/records"
	"github.com/voicegate/voicegate/internal/server"
)

const testSecret = "k3J9xQ2mV7pL5nR8wT4zAb7Cd"

func load(t *testing.T, dir, extra string) *config.Config {
	t.Helper()
	c, err := config.Parse([]byte(fmt.Sprintf("data_dir: %s\nvapi:\n  auth:\n    - mode: hmac\n      secrets: [%s]\n%s", dir, testSecret, extra)), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Run's background work must not read the configuration a reload replaces
// (a data race under -race before).
func TestRunAndReloadDoNotRace(t *testing.T) {
	dir := t.TempDir()
	a, err := New(context.Background(), load(t, dir, ""), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.Run(ctx, Listeners{}); close(done) }()
	for i := 0; i < 5; i++ {
		if _, err := a.Reload(load(t, dir, "")); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-done
}

// A reload keeps the running restart-only settings; a file valid on its own
// whose reloadable settings do not fit them (here a Vapi deadline beyond the
// running write timeout, and a tolerance beyond the running replay window)
// was applied, leaving the process on a configuration serve refuses.
func TestReloadRefusesInvalidCombination(t *testing.T) {
	dir := t.TempDir()
	a, err := New(context.Background(), load(t, dir, ""), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	before := a.Config
	next := load(t, dir, "  server_timeout: 50s\n  replay:\n    window: 30m\nserver:\n  write_timeout: 60s\n")
	next.Vapi.Auth[0].Tolerance = config.Duration(30 * time.Minute)
	if err := next.Check(config.Options{}); err != nil {
		t.Fatalf("the new file should be valid on its own: %v", err)
	}
	_, err = a.Reload(next)
	if err == nil || !strings.Contains(err.Error(), "server.write_timeout") || !strings.Contains(err.Error(), "vapi.replay.window") {
		t.Fatalf("reload of a combination serve would refuse: err = %v", err)
	}
	if a.Config != before {
		t.Fatal("a refused reload changed the running configuration")
	}
	running := *a.Config
	if err := running.Check(config.Options{}); err != nil {
		t.Fatalf("the running configuration is one serve would refuse:\n%v", err)
	}
}

// TestRunOwnsListenersAndBackground: Run serves both listeners and returns,
// with nil, only once both have stopped and the background work with them.
func TestRunOwnsListenersAndBackground(t *testing.T) {
	dir := t.TempDir()
	cfg := load(t, dir, "")
	cfg.Listen = "127.0.0.1:0"
	a, err := New(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	pub, err := server.Listen(cfg.Listen, cfg.Server, cfg.TLS, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	adm, err := server.ListenAdmin("127.0.0.1:0", nil, a.Metrics.Handler(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, Listeners{Public: pub, Admin: adm}) }()
	for _, u := range []string{"http://" + pub.Addr().String() + "/healthz", "http://" + adm.Addr().String() + "/metrics"} {
		var resp *http.Response
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if resp, err = http.Get(u); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", u, resp, err)
		}
		resp.Body.Close()
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	for _, u := range []string{"http://" + pub.Addr().String() + "/healthz", "http://" + adm.Addr().String() + "/metrics"} {
		if _, err := http.Get(u); err == nil {
			t.Errorf("%s still served after Run returned", u)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	// Every goroutine Run started has stopped (give the runtime's own a moment).
	for deadline := time.Now().Add(2 * time.Second); runtime.NumGoroutine() > before && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Errorf("%d goroutines after Run returned, %d before it started", n, before)
	}
}

// TestRetentionRunsInTheBackground: with a retention period set, Run
// deletes the records past it when it starts (and then every
// purge_interval), erases the calls left with none, and audits it.
func TestRetentionRunsInTheBackground(t *testing.T) {
	dir := t.TempDir()
	cfg := load(t, dir, "records:\n  retention:\n    tool_call: 7d\n  purge_interval: 1h\n")
	if cfg.Records.Retention.ToolCall.D() != 7*24*time.Hour {
		t.Fatalf("retention %v", cfg.Records.Retention.ToolCall)
	}
	var mu sync.Mutex
	clock := time.Now()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	a, err := New(context.Background(), cfg, Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ctx := context.Background()
	if err := a.Records.ToolCall(ctx, records.Call{ID: "old", Caller: "+14155550123"}, records.ToolCall{ToolCallID: "t1", Tool: "x"}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	clock = clock.Add(8 * 24 * time.Hour)
	mu.Unlock()
	if err := a.Records.ToolCall(ctx, records.Call{ID: "new"}, records.ToolCall{ToolCallID: "t1", Tool: "x"}); err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx, Listeners{}) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		recs, err := a.Records.Store().CallRecords(ctx, "old")
		if err == nil && len(recs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the expired record is still there: %d %v", len(recs), err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if recs, _ := a.Records.Store().CallRecords(ctx, "new"); len(recs) != 1 {
		t.Fatalf("a record within its retention was deleted: %d left", len(recs))
	}
	entries, err := a.Audit.Entries(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range entries {
		found = found || (e.Event == "records.retention" && strings.Contains(e.Detail, "tool_call=1 secrets_forgotten=0"))
	}
	if !found {
		t.Fatalf("no retention entry in the audit log: %+v", entries)
	}
}
