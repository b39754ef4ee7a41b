package redisstate_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voicegate/voicegate/internal/redisstate"
	"github.com/voicegate/voicegate/internal/redisstate/redistest"
	"github.com/voicegate/voicegate/internal/session"
	"github.com/voicegate/voicegate/internal/state"
)

// A sweep with more silent calls than its time budget can expire stops
// there (the rest go at the next sweep): running out of its own budget is
// not Redis being unreachable, which would refuse every tool call on this
// replica until the probe finds it back.
func TestSweepOutOfBudgetIsNotRedisDown(t *testing.T) {
	p := redistest.Prefix(t)
	cn := conn(t, p, func(c *state.Config) { c.Timeout = 100 * 1e6 }) // a budget of 10 timeouts: 1 s
	tr := redisstate.NewTracker(cn, time.Minute, 100_000, time.Now)
	// 2,000 calls silent since the epoch; each expiry is a round trip and
	// OnExpire takes 1 ms: at least 2 s of work for a 1 s budget.
	const n = 2000
	zs := make([]redis.Z, n)
	for i := range zs {
		zs[i] = redis.Z{Score: 0, Member: "silent-" + strconv.Itoa(i)}
	}
	if err := cn.Client().ZAdd(ctx, p+"live", zs...).Err(); err != nil {
		t.Fatal(err)
	}
	tr.OnExpire = func(string, session.State) { time.Sleep(time.Millisecond) }
	expired := tr.Sweep()
	if expired == 0 || expired >= n {
		t.Fatalf("expired %d of %d in one sweep, want some but not all (the budget ends first)", expired, n)
	}
	if !cn.Up() {
		t.Fatal("a sweep that ran out of its own time budget marked Redis down")
	}
}
