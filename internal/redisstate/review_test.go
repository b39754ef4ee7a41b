package redisstate_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voicegate/voicegate/internal/redisstate"
	"github.com/voicegate/voicegate/internal/redisstate/redistest"
	"github.com/voicegate/voicegate/internal/replay"
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

// A call's control URL is a capability (whoever holds it controls the
// live call): sealed in Redis like answers, whether the change is written
// at once or behind a request's answer, and read back by another replica.
func TestControlURLIsSealed(t *testing.T) {
	p := redistest.Prefix(t)
	secret := []byte("the records keyring's lookup key")
	sealed := func() *redisstate.Conn {
		cn := conn(t, p)
		if err := cn.SealWith(secret); err != nil {
			t.Fatal(err)
		}
		return cn
	}
	ca, cb := sealed(), sealed()
	a, b := redisstate.NewTracker(ca, time.Hour, 100, time.Now), redisstate.NewTracker(cb, time.Hour, 100, time.Now)
	ga := redisstate.NewGuard(ca, time.Minute, time.Second, 100, a)
	const secretURL = "https://control.example/calls/c-cu/control-token-s3cr3t"
	set := func(u string) func(*session.State) { return func(s *session.State) { s.ControlURL = u } }
	read := func(tr *redisstate.Tracker, id string) string {
		var got string
		tr.Update(ctx, id, func(s *session.State) { got = s.ControlURL })
		return got
	}
	raw := func(id string) string { return ca.Client().HGet(ctx, p+"c:"+id, "cu").Val() }

	// Written at once (a request without a claim, or with side effects).
	if _, err := a.Observe(ctx, "c-now", "", ""); err != nil {
		t.Fatal(err)
	}
	if !a.Update(ctx, "c-now", set(secretURL)) {
		t.Fatal("update of a live call refused")
	}
	if v := raw("c-now"); v == "" || strings.Contains(v, "control-token") {
		t.Fatalf("the control URL in Redis: %q, want it sealed", v)
	}
	if got := read(b, "c-now"); got != secretURL {
		t.Fatalf("another replica reads %q", got)
	}

	// Written behind a request's answer (no side effects).
	sctx := replay.WithSubject(ctx, replay.Subject{CallID: "c-behind", Observe: true})
	_, _, tk, err := ga.BeginAt(sctx, replay.KeyOf([]byte("transcript")), time.Now(), time.Time{})
	if err != nil || tk.Local {
		t.Fatalf("claim: local=%v err=%v", tk.Local, err)
	}
	if !a.Update(replay.WithTicket(sctx, tk), "c-behind", set(secretURL)) {
		t.Fatal("batched update of a live call refused")
	}
	ga.Finish(tk, replay.Response{Status: 200}, true)
	deadline := time.Now().Add(10 * time.Second)
	for raw("c-behind") == "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if v := raw("c-behind"); v == "" || strings.Contains(v, "control-token") {
		t.Fatalf("the control URL written behind: %q, want it sealed", v)
	}
	if got := read(b, "c-behind"); got != secretURL {
		t.Fatalf("another replica reads %q", got)
	}
	if last, _ := b.End(ctx, "c-behind"); last.ControlURL != secretURL {
		t.Fatalf("the state at the end holds %q", last.ControlURL)
	}
}
