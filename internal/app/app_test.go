package app

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/config"
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
	go func() { a.Run(ctx); close(done) }()
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
