package redisstate_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
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

// entryKey and leaseKey are where a guard under prefix p keeps request k.
func entryKey(p string, k replay.Key) string { return p + "r:" + string(k[:]) }
func leaseKey(p string, k replay.Key) string { return p + "l:" + string(k[:]) }

// A request of a call claimed before the call ended on another replica
// does not bring it back when its changes are written behind: no hash
// without expiry, the call not live again.
func TestWriteBehindDoesNotReviveAnEndedCall(t *testing.T) {
	p := redistest.Prefix(t)
	ca := conn(t, p)
	a, b := redisstate.NewTracker(ca, time.Hour, 100, time.Now), redisstate.NewTracker(conn(t, p), time.Hour, 100, time.Now)
	ga := redisstate.NewGuard(ca, time.Minute, time.Second, 100, a)
	if _, err := a.Observe(ctx, "c-end", "", ""); err != nil {
		t.Fatal(err)
	}
	k := replay.KeyOf([]byte("speech-update before the end"))
	sctx := replay.WithSubject(ctx, replay.Subject{CallID: "c-end", Observe: true})
	_, _, tk, err := ga.BeginAt(sctx, k, time.Now(), time.Time{})
	if err != nil || tk.Local {
		t.Fatalf("claim: local=%v err=%v", tk.Local, err)
	}
	if !a.Speech(replay.WithTicket(sctx, tk), "c-end", "user", true, 2) {
		t.Fatal("speech of a live call refused")
	}
	if _, live := b.End(ctx, "c-end"); !live {
		t.Fatal("the call was not live when it ended")
	}
	ga.Finish(tk, replay.Response{Status: 200}, true)
	deadline := time.Now().Add(10 * time.Second)
	for ca.Client().HGet(ctx, entryKey(p, k), "s").Val() != "d" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if s := ca.Client().HGet(ctx, entryKey(p, k), "s").Val(); s != "d" {
		t.Fatalf("the answer was not written behind (state %q)", s)
	}
	if n := ca.Client().Exists(ctx, p+"c:c-end").Val(); n != 0 || b.Live("c-end") {
		t.Fatalf("the ended call came back: hash exists=%d live=%v", n, b.Live("c-end"))
	}
}

// A slow owner whose lease ended (another replica took the request over)
// and whose handler then failed does not release the new owner's claim: a
// third delivery waits for the new owner's answer instead of acting too.
func TestOldOwnerForgetKeepsTheNewOwnersClaim(t *testing.T) {
	p := redistest.Prefix(t)
	a := redisstate.NewGuard(conn(t, p), time.Minute, time.Second, 100, nil)
	b := redisstate.NewGuard(conn(t, p), time.Minute, time.Second, 100, nil)
	c := redisstate.NewGuard(conn(t, p), time.Minute, time.Second, 100, nil)
	k := replay.KeyOf([]byte("tool call, slow owner"))
	_, _, old, err := a.BeginAt(ctx, k, t0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// a stalls past its lease (simulated: the lease ends now).
	conn(t, p).Client().Del(ctx, leaseKey(p, k))
	_, replayed, taken, err := b.BeginAt(ctx, k, t0, time.Time{})
	if err != nil || replayed || taken == (replay.Ticket{}) {
		t.Fatalf("take-over: replayed=%v err=%v", replayed, err)
	}
	a.Finish(old, replay.Response{}, false) // the old owner's handler failed
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, replayed, third, err := c.BeginAt(wctx, k, t0, time.Time{}); err == nil {
		c.Finish(third, replay.Response{}, false)
		t.Fatalf("a third delivery was let through (replayed=%v) while the new owner still handles it", replayed)
	}
	b.Finish(taken, replay.Response{Status: 200, Body: []byte("b's answer")}, true)
	if r, replayed, _, err := c.BeginAt(ctx, k, t0, time.Time{}); err != nil || !replayed || string(r.Body) != "b's answer" {
		t.Fatalf("after the new owner answered: replayed=%v err=%v %q", replayed, err, r.Body)
	}
}

// Finish changes only a pending entry: an answer arriving after the entry
// expired does not recreate it (a key without expiry), and an owner
// finishing after another one answered does not replace that answer.
func TestFinishChangesOnlyAPendingEntry(t *testing.T) {
	p := redistest.Prefix(t)
	a := redisstate.NewGuard(conn(t, p), time.Minute, time.Second, 100, nil)
	b := redisstate.NewGuard(conn(t, p), time.Minute, time.Second, 100, nil)
	rdb := conn(t, p).Client()
	sctx := replay.WithSubject(ctx, replay.Subject{SideEffects: true}) // stored before Finish returns

	k := replay.KeyOf([]byte("expired while handled"))
	_, _, tk, err := a.BeginAt(sctx, k, t0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	rdb.Del(ctx, entryKey(p, k)) // its window ended
	a.Finish(tk, replay.Response{Status: 200, Body: []byte("late")}, true)
	if n := rdb.Exists(ctx, entryKey(p, k)).Val(); n != 0 {
		t.Fatalf("a late answer recreated the expired entry (ttl %v)", rdb.PTTL(ctx, entryKey(p, k)).Val())
	}

	k = replay.KeyOf([]byte("answered by the new owner first"))
	_, _, old, _ := a.BeginAt(sctx, k, t0, time.Time{})
	rdb.Del(ctx, leaseKey(p, k))
	_, _, taken, err := b.BeginAt(sctx, k, t0, time.Time{})
	if err != nil || taken == (replay.Ticket{}) {
		t.Fatalf("take-over: %v", err)
	}
	b.Finish(taken, replay.Response{Status: 200, Body: []byte("first")}, true)
	a.Finish(old, replay.Response{Status: 200, Body: []byte("second")}, true)
	if r, replayed, _, err := b.BeginAt(ctx, k, t0, time.Time{}); err != nil || !replayed || string(r.Body) != "first" {
		t.Fatalf("replay: replayed=%v err=%v %q, want the first answer", replayed, err, r.Body)
	}
}

// Replicas count each other on Redis's clock: one whose clock is ahead
// (no NTP, a paused VM) does not count the others out, which would make
// it enforce the whole of every rate limit alone.
func TestCountReplicasWithClocksApart(t *testing.T) {
	p := redistest.Prefix(t)
	ahead, err := redisstate.Open(config(p, redistest.URL()), redisstate.Options{Now: func() time.Time { return time.Now().Add(10 * time.Second) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ahead.Close() })
	var mu sync.Mutex
	seen := 0
	ahead.CountReplicas("ahead", 50*time.Millisecond, func(n int) { mu.Lock(); seen = n; mu.Unlock() })
	conn(t, p).CountReplicas("on-time", 50*time.Millisecond, func(int) {})
	n := 0
	for deadline := time.Now().Add(5 * time.Second); n != 2 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n = seen
		mu.Unlock()
	}
	if n != 2 {
		t.Fatalf("the replica whose clock is 10 s ahead counts %d replicas, want 2", n)
	}
}
