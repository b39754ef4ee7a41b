package session

import (
	"context"
	"runtime"

	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestLifecycleAndIsolation(t *testing.T) {
	now := time.Unix(1e9, 0)
	tb := New(time.Minute, 100, func() time.Time { return now })
	a, created, err := tb.Touch("call-a")
	if err != nil || !created {
		t.Fatalf("create: %v %v", created, err)
	}
	b, _, _ := tb.Touch("call-b")
	tb.Speech(ctx, "call-a", "assistant", true, 1)
	if b.State().AssistantSpeaking {
		t.Fatal("state leaked between calls")
	}
	again, created, _ := tb.Touch("call-a")
	if created || again != a {
		t.Fatal("second touch must return the same session")
	}
	if !tb.Remove("call-a") || tb.Remove("call-a") || tb.Len() != 1 {
		t.Fatalf("remove: len %d", tb.Len())
	}
	if _, ok := tb.Get("call-a"); ok {
		t.Fatal("removed session still found")
	}
}

func TestSweepExpiresOnlyIdleSessions(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1e9, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	tb := New(time.Minute, 100, clock)
	var expired []string
	tb.OnExpire = func(s *Session) { expired = append(expired, s.ID) }
	tb.Touch("idle")
	tb.Touch("busy")
	advance(40 * time.Second)
	tb.Touch("busy")
	advance(30 * time.Second)
	if n := tb.Sweep(); n != 1 || len(expired) != 1 || expired[0] != "idle" {
		t.Fatalf("swept %d %v, want only idle", n, expired)
	}
	if _, ok := tb.Get("busy"); !ok || tb.Len() != 1 {
		t.Fatal("active session was expired")
	}
}

func TestCapacity(t *testing.T) {
	tb := New(time.Minute, 2, time.Now)
	tb.Touch("a")
	tb.Touch("b")
	if _, _, err := tb.Touch("c"); !errors.Is(err, ErrFull) {
		t.Fatalf("want ErrFull, got %v", err)
	}
	if _, _, err := tb.Touch("a"); err != nil {
		t.Fatalf("existing call must still be found at capacity: %v", err)
	}
	tb.Remove("a")
	if _, _, err := tb.Touch("c"); err != nil {
		t.Fatalf("room after remove: %v", err)
	}
}

func TestConcurrentTouch(t *testing.T) {
	tb := New(time.Minute, 1<<20, time.Now)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				tb.Observe(ctx, fmt.Sprint("call-", i), "", "")
			}
		}()
	}
	wg.Wait()
	if tb.Len() != 1000 {
		t.Fatalf("len %d, want 1000", tb.Len())
	}
	s, _ := tb.Get("call-7")
	if n := s.State().Events; n != 8 {
		t.Fatalf("events %d, want 8", n)
	}
}

func TestEndedCallsStayEnded(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1e9, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	tb := New(time.Hour, 100, clock)
	tb.Touch("c")
	tb.End(ctx, "c")
	if _, _, err := tb.Touch("c"); !errors.Is(err, ErrEnded) {
		t.Fatalf("a late event must not revive an ended call, got %v", err)
	}
	if tb.Len() != 0 || !tb.Seen(ctx, "c") || tb.Seen(ctx, "other") {
		t.Fatalf("len %d seen %v", tb.Len(), tb.Seen(ctx, "c"))
	}
	tb.End(ctx, "never-tracked") // a call whose only event was its end
	if !tb.Seen(ctx, "never-tracked") {
		t.Fatal("an ended call must be remembered even if it was never tracked")
	}
	mu.Lock()
	now = now.Add(EndedMemory + time.Second)
	mu.Unlock()
	tb.Sweep()
	if tb.Seen(ctx, "c") {
		t.Fatal("ended calls must be forgotten after EndedMemory")
	}
	if _, created, err := tb.Touch("c"); err != nil || !created {
		t.Fatalf("after EndedMemory the id is new again: %v %v", created, err)
	}
}

// TestEndedMemoryBounded: the memory of ended calls was not bounded by
// sessions.capacity; 10,000 ended calls on a table of 128 must not keep
// 10,000 entries.
func TestEndedMemoryBounded(t *testing.T) {
	tb := New(time.Hour, 128, time.Now)
	for i := 0; i < 10_000; i++ {
		tb.End(ctx, fmt.Sprintf("call-%d", i))
	}
	if n := tb.EndedLen(); n > 128+shards {
		t.Fatalf("%d ended calls remembered with capacity 128", n)
	}
	if !tb.Seen(ctx, "call-9999") {
		t.Fatal("the most recent ended call must be remembered")
	}
}

// A session's context ends with the call: when it ends, expires or is
// forgotten, and not before.
func TestSessionContextEndsWithTheCall(t *testing.T) {
	now := time.Unix(1e9, 0)
	tb := New(time.Minute, 100, func() time.Time { return now })
	done := func(s *Session) bool {
		select {
		case <-s.Context().Done():
			return true
		default:
			return false
		}
	}
	ended, _, _ := tb.Touch("ended")
	forgotten, _, _ := tb.Touch("forgotten")
	idle, _, _ := tb.Touch("idle")
	if done(ended) || done(forgotten) || done(idle) {
		t.Fatal("a live call's context is done")
	}
	tb.End(ctx, "ended")
	tb.Forget(ctx, "forgotten")
	now = now.Add(2 * time.Minute)
	tb.Sweep()
	for name, s := range map[string]*Session{"ended": ended, "forgotten": forgotten, "expired": idle} {
		if !done(s) {
			t.Errorf("%s call: context not done", name)
		}
	}
}

// TestMemoryPerSession bounds what one live call costs, so that the
// capacity advice (EntryBytes, shown by config check) stays true.
func TestMemoryPerSession(t *testing.T) {
	const n = 100_000
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08x-0000-4000-8000-%012d", i, i) // a Vapi call id
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tb := New(time.Hour, n, time.Now)
	for _, id := range ids {
		if _, err := tb.Observe(ctx, id, "in-progress", ""); err != nil {
			t.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.0f bytes per live call", per)
	if per > EntryBytes || tb.Len() != n {
		t.Fatalf("%.0f bytes per live call (len %d), want at most EntryBytes = %d", per, tb.Len(), EntryBytes)
	}
	runtime.KeepAlive(tb)
}

// When the process stops (Run's context ends), live calls' contexts end
// too, so that work belonging to them stops.
func TestRunCancelsLiveSessionsAtShutdown(t *testing.T) {
	tb := New(time.Hour, 100, time.Now)
	s, _, _ := tb.Touch("live")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { tb.Run(ctx, time.Hour); close(done) }()
	cancel()
	<-done
	select {
	case <-s.Context().Done():
	default:
		t.Fatal("a live session's context is not done after Run stopped")
	}
}

var ctx = context.Background()
