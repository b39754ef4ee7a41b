package redisstate_test

import (
	"context"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/redisstate"
	"github.com/voicegate/voicegate/internal/redisstate/redistest"
	"github.com/voicegate/voicegate/internal/replay"
	"github.com/voicegate/voicegate/internal/replay/replaytest"
	"github.com/voicegate/voicegate/internal/session"
	"github.com/voicegate/voicegate/internal/session/trackertest"
	"github.com/voicegate/voicegate/internal/state"
)

func config(prefix string, url string) state.Config {
	c := state.DefaultConfig()
	c.Driver, c.RedisURL, c.KeyPrefix = state.DriverRedis, url, prefix
	c.Timeout = confval.Duration(time.Second)
	c.Lease = confval.Duration(3 * time.Second)
	return c
}

// conn opens a replica's connection to the test's Redis under prefix.
func conn(t *testing.T, prefix string, mut ...func(*state.Config)) *redisstate.Conn {
	t.Helper()
	c := config(prefix, redistest.URL())
	for _, m := range mut {
		m(&c)
	}
	cn, err := redisstate.Open(c, redisstate.Options{ProbeInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cn.Close() })
	return cn
}

func TestGuardContract(t *testing.T) {
	replaytest.Run(t, func(t *testing.T, c replaytest.Config) replay.Guard {
		return redisstate.NewGuard(conn(t, redistest.Prefix(t)), c.Window, c.Grace, 1000)
	})
}

func TestTrackerContract(t *testing.T) {
	trackertest.Run(t, func(t *testing.T, capacity int) session.Tracker {
		return redisstate.NewTracker(conn(t, redistest.Prefix(t)), time.Hour, capacity, time.Now)
	})
}

var ctx = context.Background()
