package redisstate_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/netproxy"
	"github.com/voicegate/voicegate/internal/redisstate"
	"github.com/voicegate/voicegate/internal/redisstate/redistest"
	"github.com/voicegate/voicegate/internal/replay"
	"github.com/voicegate/voicegate/internal/session"
	"github.com/voicegate/voicegate/internal/state"
	"github.com/voicegate/voicegate/internal/vapi"
)

var t0 = time.Now()

// Two replicas: a duplicate reaching the second while the first handles
// the original waits for the original's answer.
func TestDuplicateOnAnotherReplicaWaitsForTheAnswer(t *testing.T) {
	p := redistest.Prefix(t)
	a := redisstate.NewGuard(conn(t, p), time.Minute, time.Second, 100, nil)
	b := redisstate.NewGuard(conn(t, p), time.Minute, time.Second, 100, nil)
	k := replay.KeyOf([]byte("tool call"))
	_, replayed, tk, err := a.BeginAt(ctx, k, t0, time.Time{})
	if err != nil || replayed {
		t.Fatalf("original: replayed=%v err=%v", replayed, err)
	}
	got := make(chan replay.Response, 1)
	go func() {
		r, replayed, _, err := b.BeginAt(ctx, k, t0, time.Time{})
		if err != nil || !replayed {
			t.Errorf("duplicate: replayed=%v err=%v", replayed, err)
		}
		got <- r
	}()
	time.Sleep(30 * time.Millisecond)
	a.Finish(tk, replay.Response{Status: 200, Body: []byte(`{"results":[1]}`), Type: "tool-calls"}, true)
	if r := <-got; r.Status != 200 || string(r.Body) != `{"results":[1]}` {
		t.Fatalf("the duplicate got %+v", r)
	}
}

// A replica that dies mid-request (its lease is no longer renewed) stops
// owning it when the lease ends: a retry on another replica is handled,
// once.
func TestLeaseOfADeadReplicaEnds(t *testing.T) {
	p := redistest.Prefix(t)
	short := func(c *state.Config) { c.Lease = 600 * 1e6; c.Timeout = 100 * 1e6 }
	dying := conn(t, p, short)
	a := redisstate.NewGuard(dying, time.Minute, time.Second, 100, nil)
	b := redisstate.NewGuard(conn(t, p, short), time.Minute, time.Second, 100, nil)
	k := replay.KeyOf([]byte("in flight when killed"))
	if _, _, _, err := a.BeginAt(ctx, k, t0, time.Time{}); err != nil {
		t.Fatal(err)
	}
	dying.Close() // killed: no Finish, no renewal
	start := time.Now()
	_, replayed, tk, err := b.BeginAt(ctx, k, t0, time.Time{})
	if err != nil || replayed || tk == (replay.Ticket{}) {
		t.Fatalf("retry after the owner died: replayed=%v err=%v", replayed, err)
	}
	if waited := time.Since(start); waited < 300*time.Millisecond {
		t.Fatalf("taken over after %s, before the lease could end", waited)
	}
	b.Finish(tk, replay.Response{Status: 200}, true)
	// Exactly once: a third try is a replay.
	if _, replayed, _, _ := b.BeginAt(ctx, k, t0, time.Time{}); !replayed {
		t.Fatal("the retry's answer was not kept")
	}
}

// A live owner renews its lease: a slow request is never taken over.
func TestLeaseIsRenewedWhileWorking(t *testing.T) {
	p := redistest.Prefix(t)
	short := func(c *state.Config) { c.Lease = 600 * 1e6; c.Timeout = 100 * 1e6 }
	a := redisstate.NewGuard(conn(t, p, short), time.Minute, time.Second, 100, nil)
	b := redisstate.NewGuard(conn(t, p, short), time.Minute, time.Second, 100, nil)
	k := replay.KeyOf([]byte("slow tool"))
	_, _, tk, _ := a.BeginAt(ctx, k, t0, time.Time{})
	done := make(chan replay.Response, 1)
	go func() {
		r, replayed, tk2, err := b.BeginAt(ctx, k, t0, time.Time{})
		if !replayed {
			b.Finish(tk2, replay.Response{}, false)
			t.Errorf("taken over while its owner was still working (err=%v)", err)
		}
		done <- r
	}()
	time.Sleep(2 * time.Second) // more than three leases
	a.Finish(tk, replay.Response{Status: 201}, true)
	if r := <-done; r.Status != 201 {
		t.Fatalf("the duplicate got %+v", r)
	}
}

// A call's events reach different replicas: one session.
func TestSessionsAreShared(t *testing.T) {
	p := redistest.Prefix(t)
	a := redisstate.NewTracker(conn(t, p), time.Hour, 100, time.Now)
	b := redisstate.NewTracker(conn(t, p), time.Hour, 100, time.Now)
	if first, err := a.Observe(ctx, "call-1", "", "ringing"); !first || err != nil {
		t.Fatalf("first sight on a: %v %v", first, err)
	}
	if first, err := b.Observe(ctx, "call-1", "in-progress", ""); first || err != nil {
		t.Fatalf("second event on b is a first sight: %v %v", first, err)
	}
	b.Speech(ctx, "call-1", "assistant", true, 3)
	a.ToolCall(ctx, "call-1", "ok")
	b.Update(ctx, "call-1", func(s *session.State) { s.Bargein.Decided = true; s.ControlURL = "https://x/control" })
	last, live := a.End(ctx, "call-1")
	if !live || last.Status != "in-progress" || !last.AssistantSpeaking || last.Turn != 3 || last.ToolCalls["ok"] != 1 ||
		!last.Bargein.Decided || last.ControlURL != "https://x/control" || last.Events != 2 {
		t.Fatalf("state as ended on a: live=%v %+v", live, last)
	}
	if _, err := b.Observe(ctx, "call-1", "", ""); !errors.Is(err, session.ErrEnded) {
		t.Fatalf("a late event on b: %v, want ErrEnded", err)
	}
}

// Redis unreachable: the guard answers from this replica's memory and
// says so; when Redis is back it is used again, without a restart.
func TestRedisDownDegradesAndRecovers(t *testing.T) {
	p := redistest.Prefix(t)
	px, err := netproxy.New("127.0.0.1:6379")
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	var changes []bool
	var mu sync.Mutex
	c := config(p, "redis://"+px.Addr()+"/0")
	c.Timeout = 100 * 1e6
	c.Lease = 600 * 1e6
	cn, err := redisstate.Open(c, redisstate.Options{ProbeInterval: 20 * time.Millisecond, OnChange: func(up bool) {
		mu.Lock()
		changes = append(changes, up)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer cn.Close()
	g := redisstate.NewGuard(cn, time.Minute, time.Second, 100, nil)
	tr := redisstate.NewTracker(cn, time.Hour, 100, time.Now)
	_, _, tk, err := g.BeginAt(ctx, replay.KeyOf([]byte("before")), t0, time.Time{})
	if err != nil || tk.Local {
		t.Fatalf("with Redis up: local=%v err=%v", tk.Local, err)
	}
	g.Finish(tk, replay.Response{Status: 200}, true)

	px.Cut()
	_, _, tk, err = g.BeginAt(ctx, replay.KeyOf([]byte("during")), t0, time.Time{})
	if err != nil || !tk.Local {
		t.Fatalf("with Redis cut: local=%v err=%v, want a local ticket", tk.Local, err)
	}
	g.Finish(tk, replay.Response{Status: 200}, true)
	if cn.Up() {
		t.Fatal("Redis still believed up")
	}
	if first, err := tr.Observe(ctx, "c1", "", ""); !first || err != nil {
		t.Fatalf("a session while Redis is down: %v %v", first, err)
	}
	px.Restore()
	deadline := time.Now().Add(10 * time.Second)
	for !cn.Up() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !cn.Up() {
		t.Fatal("Redis not believed up again 10 s after it came back")
	}
	_, _, tk, err = g.BeginAt(ctx, replay.KeyOf([]byte("after")), t0, time.Time{})
	if err != nil || tk.Local {
		t.Fatalf("after recovery: local=%v err=%v", tk.Local, err)
	}
	g.Finish(tk, replay.Response{}, false)
	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 2 || changes[0] || !changes[1] {
		t.Fatalf("OnChange calls %v, want [false true]", changes)
	}
}

// An answer with side effects that could not be stored (Redis cut while
// the tool ran) is stored when Redis answers again: a duplicate on another
// replica then gets it instead of acting again.
func TestUnstoredAnswerIsStoredOnRecovery(t *testing.T) {
	p := redistest.Prefix(t)
	px, err := netproxy.New("127.0.0.1:6379")
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	c := config(p, "redis://"+px.Addr()+"/0")
	c.Timeout, c.Lease = 100*1e6, 600*1e6
	cn, err := redisstate.Open(c, redisstate.Options{ProbeInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer cn.Close()
	a := redisstate.NewGuard(cn, time.Minute, time.Second, 100, nil)
	b := redisstate.NewGuard(conn(t, p), time.Minute, time.Second, 100, nil)
	k := replay.KeyOf([]byte("tool call during the cut"))
	sctx := replay.WithSubject(ctx, replay.Subject{CallID: "c1", SideEffects: true})
	_, _, tk, err := a.BeginAt(sctx, k, t0, time.Time{})
	if err != nil || tk.Local {
		t.Fatalf("claim: local=%v err=%v", tk.Local, err)
	}
	px.Cut()
	a.Finish(tk, replay.Response{Status: 200, Body: []byte(`{"results":["done"]}`)}, true)
	a.Finish(tk, replay.Response{}, false) // the gateway's deferred release: ignored
	px.Restore()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	r, replayed, tk2, err := b.BeginAt(cctx, k, t0, time.Time{})
	if err != nil || !replayed || string(r.Body) != `{"results":["done"]}` {
		b.Finish(tk2, replay.Response{}, false)
		t.Fatalf("duplicate after recovery: replayed=%v err=%v %q (want the stored answer)", replayed, err, r.Body)
	}
}

// A tool result kept by one replica is recalled by another, with the
// fields Vapi never sees; results the internal API never answered are not
// kept.
func TestMemoIsShared(t *testing.T) {
	p := redistest.Prefix(t)
	a, b := redisstate.NewMemo(conn(t, p), time.Minute), redisstate.NewMemo(conn(t, p), time.Minute)
	err := a.Keep(ctx, "c1", []vapi.ToolResult{
		{ToolCallID: "t1", Name: "book", Result: `{"ok":true}`, Outcome: "ok", Status: 200, Duration: 3 * time.Millisecond},
		{ToolCallID: "t2", Name: "book", Error: "timeout", Outcome: "timeout"},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := b.Recall(ctx, "c1", []string{"t1", "t2", "t3"})
	if err != nil || len(got) != 1 {
		t.Fatalf("recall: %v %v", got, err)
	}
	if r := got["t1"]; r.Result != `{"ok":true}` || r.Outcome != "ok" || r.Status != 200 || r.Duration != 3*time.Millisecond || r.Name != "book" {
		t.Fatalf("recalled %+v", r)
	}
	if got, _ := b.Recall(ctx, "other-call", []string{"t1"}); len(got) != 0 {
		t.Fatalf("another call's results: %v", got)
	}
}

// Replicas count each other; one that stops is counted out at once.
func TestCountReplicas(t *testing.T) {
	p := redistest.Prefix(t)
	type counts struct {
		mu sync.Mutex
		n  int
	}
	watch := func(cn *redisstate.Conn, name string) *counts {
		c := &counts{}
		cn.CountReplicas(name, 50*time.Millisecond, func(n int) { c.mu.Lock(); c.n = n; c.mu.Unlock() })
		return c
	}
	wait := func(c *counts, want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			c.mu.Lock()
			n := c.n
			c.mu.Unlock()
			if n == want {
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatalf("count never reached %d", want)
	}
	a := watch(conn(t, p), "a")
	cb := conn(t, p)
	watch(cb, "b")
	watch(conn(t, p), "c")
	wait(a, 3)
	cb.Close()
	wait(a, 2)
}

// Two requests of one call handled at once on two replicas, each changing
// the barge-in state behind its answer: neither change is lost (the second
// finds the call changed since its claim and applies its change again on
// the current state).
func TestConcurrentRequestsOfACallLoseNoChange(t *testing.T) {
	p := redistest.Prefix(t)
	ca, cb := conn(t, p), conn(t, p)
	ta, tb := redisstate.NewTracker(ca, time.Hour, 100, time.Now), redisstate.NewTracker(cb, time.Hour, 100, time.Now)
	ga, gb := redisstate.NewGuard(ca, time.Minute, time.Second, 100, ta), redisstate.NewGuard(cb, time.Minute, time.Second, 100, tb)
	if _, err := ta.Observe(ctx, "c", "", "in-progress"); err != nil {
		t.Fatal(err)
	}
	subj := replay.WithSubject(ctx, replay.Subject{CallID: "c", Observe: true})
	_, _, ka, err := ga.BeginAt(subj, replay.KeyOf([]byte("language-change")), t0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	_, _, kb, err := gb.BeginAt(subj, replay.KeyOf([]byte("transcript")), t0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if !ta.Update(replay.WithTicket(ctx, ka), "c", func(s *session.State) { s.Bargein.Language = "de" }) ||
		!tb.Update(replay.WithTicket(ctx, kb), "c", func(s *session.State) { s.Bargein.Decided = true; s.Interruptions++ }) {
		t.Fatal("the call is live")
	}
	ga.Finish(ka, replay.Response{Status: 200}, true)
	gb.Finish(kb, replay.Response{Status: 200}, true)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var st session.State
		ok := ta.Update(ctx, "c", func(s *session.State) { st = *s })
		if ok && st.Bargein.Language == "de" && st.Bargein.Decided && st.Interruptions == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after both requests: %+v interruptions %d (a change was lost)", st.Bargein, st.Interruptions)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A request with side effects updates its call from the state its claim
// read (one round trip); if another request changed the call since, the
// update reads it again and loses nothing.
func TestUpdateFromTheClaimSeesChangesMadeSince(t *testing.T) {
	p := redistest.Prefix(t)
	ca, cb := conn(t, p), conn(t, p)
	ta, tb := redisstate.NewTracker(ca, time.Hour, 100, time.Now), redisstate.NewTracker(cb, time.Hour, 100, time.Now)
	ga := redisstate.NewGuard(ca, time.Minute, time.Second, 100, ta)
	subj := replay.WithSubject(ctx, replay.Subject{CallID: "c", Observe: true, SideEffects: true})
	_, _, k, err := ga.BeginAt(subj, replay.KeyOf([]byte("tool-calls")), t0, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	rctx := replay.WithTicket(ctx, k)
	inc := func(s *session.State) {
		if s.InFlight == nil {
			s.InFlight = map[string]int{}
		}
		s.InFlight["book"]++
	}
	if !ta.Update(rctx, "c", inc) {
		t.Fatal("update from the claim")
	}
	tb.Update(ctx, "c", inc) // another replica, meanwhile
	if !ta.Update(rctx, "c", inc) {
		t.Fatal("update after a change made since the claim")
	}
	var st session.State
	ta.Update(ctx, "c", func(s *session.State) { st = *s })
	if st.InFlight["book"] != 3 {
		t.Fatalf("in flight %d after three increments, want 3 (an update was lost)", st.InFlight["book"])
	}
	ga.Finish(k, replay.Response{Status: 200}, true)
}
