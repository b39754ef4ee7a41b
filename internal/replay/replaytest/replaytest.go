// Package replaytest is the contract every replay.Guard must meet, as one
// test suite: the in-memory Cache runs it today, and a Guard shared by
// replicas must pass the same suite before it is wired in. Time is passed to
// BeginAt, so the suite needs no clock.
package replaytest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/replay"
)

// Config is what the suite asks of a new Guard.
type Config struct {
	Window   time.Duration
	Capacity int
	// Grace is how long an expired entry must still answer lookups as of
	// an instant before its expiry (replay.Cache.SetGrace).
	Grace time.Duration
}

// Run runs the suite; open returns a new, empty Guard for each subtest.
func Run(t *testing.T, open func(t *testing.T, c Config) replay.Guard) {
	t0 := time.Unix(1_795_000_000, 0)
	ctx := context.Background()
	key := func(s string) replay.Key { return replay.KeyOf([]byte(s)) }
	cfg := Config{Window: time.Minute, Capacity: 100, Grace: 15 * time.Second}

	t.Run("AnsweredFromRememberedAnswer", func(t *testing.T) {
		g := open(t, cfg)
		_, replayed, tk, err := g.BeginAt(ctx, key("body"), t0, time.Time{})
		if err != nil || replayed {
			t.Fatalf("first sight: replay=%v err=%v", replayed, err)
		}
		g.Finish(tk, replay.Response{Status: 200, Body: []byte(`{"results":[]}`), ContentType: "application/vnd.test+json", CallID: "c1", Type: "tool-calls"}, true)
		r, replayed, _, err := g.BeginAt(ctx, key("body"), t0.Add(time.Second), time.Time{})
		if err != nil || !replayed || r.Status != 200 || string(r.Body) != `{"results":[]}` || r.ContentType != "application/vnd.test+json" || r.CallID != "c1" || r.Type != "tool-calls" {
			t.Fatalf("replay: %+v replay=%v err=%v", r, replayed, err)
		}
		if _, replayed, tk, _ := g.BeginAt(ctx, key("other"), t0.Add(time.Second), time.Time{}); replayed {
			t.Fatal("a different body is not a replay")
		} else {
			g.Finish(tk, replay.Response{}, true)
		}
	})

	t.Run("CapacityBoundsMemory", func(t *testing.T) {
		g := open(t, Config{Window: time.Hour, Capacity: 10})
		if b, ok := g.(interface{ BoundedByStore() bool }); ok && b.BoundedByStore() {
			t.Skip("a shared guard's memory is its store's (entries expire with their window; Redis's maxmemory bounds the rest)")
		}
		for i := range 50 {
			_, _, tk, _ := g.BeginAt(ctx, key(fmt.Sprint("k", i)), t0, time.Time{})
			g.Finish(tk, replay.Response{Status: 200}, true)
		}
		// The oldest were forgotten to stay within capacity; the newest kept.
		if _, replayed, tk, _ := g.BeginAt(ctx, key("k0"), t0, time.Time{}); replayed {
			t.Fatal("50 entries kept in a guard of capacity 10")
		} else {
			g.Finish(tk, replay.Response{}, true)
		}
		if _, replayed, _, _ := g.BeginAt(ctx, key("k49"), t0, time.Time{}); !replayed {
			t.Fatal("the newest entry was not kept")
		}
	})

	t.Run("ForgottenAfterWindow", func(t *testing.T) {
		g := open(t, Config{Window: time.Minute, Capacity: 100})
		_, _, tk, _ := g.BeginAt(ctx, key("body"), t0, time.Time{})
		g.Finish(tk, replay.Response{Status: 200}, true)
		if _, replayed, tk, _ := g.BeginAt(ctx, key("body"), t0.Add(time.Minute), time.Time{}); replayed {
			t.Fatal("an entry past its window still answered")
		} else {
			g.Finish(tk, replay.Response{}, true)
		}
	})

	t.Run("LivesAsLongAsTheCredential", func(t *testing.T) {
		g := open(t, Config{Window: 20 * time.Second, Capacity: 100})
		validUntil := t0.Add(38 * time.Second) // signed 18 s ahead, tolerance 20 s
		_, _, tk, _ := g.BeginAt(ctx, key("ahead"), t0, validUntil)
		g.Finish(tk, replay.Response{Status: 200}, true)
		if _, replayed, tk, _ := g.BeginAt(ctx, key("ahead"), t0.Add(22*time.Second), validUntil); !replayed {
			g.Finish(tk, replay.Response{}, true)
			t.Fatal("a replay whose signature still verifies was let through after the window")
		}
		if _, replayed, tk, _ := g.BeginAt(ctx, key("ahead"), t0.Add(39*time.Second), validUntil); replayed {
			t.Fatal("kept after the credential expired")
		} else {
			g.Finish(tk, replay.Response{}, true)
		}
	})

	t.Run("EarlierLookupWithinGrace", func(t *testing.T) {
		g := open(t, Config{Window: time.Second, Capacity: 100, Grace: 15 * time.Second})
		_, _, tk, _ := g.BeginAt(ctx, key("slow"), t0, time.Time{})
		g.Finish(tk, replay.Response{Status: 200, Body: []byte("first")}, true)
		// Other traffic after the entry's expiry...
		_, _, other, _ := g.BeginAt(ctx, key("other"), t0.Add(3*time.Second), time.Time{})
		g.Finish(other, replay.Response{Status: 200}, true)
		// ...then a request whose credential was checked inside the window.
		if r, replayed, tk, _ := g.BeginAt(ctx, key("slow"), t0.Add(900*time.Millisecond), time.Time{}); !replayed || string(r.Body) != "first" {
			g.Finish(tk, replay.Response{}, true)
			t.Fatalf("a lookup as of an instant inside the window missed the entry: replay=%v %q", replayed, r.Body)
		}
	})

	t.Run("ConcurrentReplaysWaitForTheOriginal", func(t *testing.T) {
		g := open(t, cfg)
		_, _, tk, _ := g.BeginAt(ctx, key("x"), t0, time.Time{})
		var wg sync.WaitGroup
		got := make(chan replay.Response, 5)
		for range 5 {
			wg.Go(func() {
				if r, replayed, _, err := g.BeginAt(ctx, key("x"), t0, time.Time{}); err == nil && replayed {
					got <- r
				}
			})
		}
		time.Sleep(50 * time.Millisecond)
		g.Finish(tk, replay.Response{Status: 201}, true)
		wg.Wait()
		close(got)
		n := 0
		for r := range got {
			if r.Status == 201 {
				n++
			}
		}
		if n != 5 {
			t.Fatalf("%d of 5 concurrent replays got the original's answer", n)
		}
	})

	t.Run("WaitEndsWithTheContext", func(t *testing.T) {
		g := open(t, cfg)
		_, _, tk, _ := g.BeginAt(ctx, key("stuck"), t0, time.Time{})
		defer g.Finish(tk, replay.Response{}, false)
		cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		if _, _, _, err := g.BeginAt(cctx, key("stuck"), t0, time.Time{}); err == nil {
			t.Fatal("want the context's error while the original is stuck")
		}
	})

	t.Run("ForgottenAnswerIsHandledAgain", func(t *testing.T) {
		g := open(t, cfg)
		_, _, tk, _ := g.BeginAt(ctx, key("x"), t0, time.Time{})
		g.Finish(tk, replay.Response{Status: 503}, false)
		_, replayed, tk2, _ := g.BeginAt(ctx, key("x"), t0, time.Time{})
		if replayed {
			t.Fatal("a request that failed for a passing reason must be retryable")
		}
		g.Finish(tk2, replay.Response{Status: 200}, true)
		if r, replayed, _, _ := g.BeginAt(ctx, key("x"), t0, time.Time{}); !replayed || r.Status != 200 {
			t.Fatalf("the retry's answer was not remembered: %+v %v", r, replayed)
		}
	})

	t.Run("WaiterTakesOverAForgottenOriginal", func(t *testing.T) {
		g := open(t, cfg)
		_, _, tk, _ := g.BeginAt(ctx, key("z"), t0, time.Time{})
		type res struct {
			replayed bool
			tk       replay.Ticket
		}
		ch := make(chan res, 1)
		go func() {
			_, replayed, tk2, _ := g.BeginAt(ctx, key("z"), t0, time.Time{})
			ch <- res{replayed, tk2}
		}()
		time.Sleep(50 * time.Millisecond)
		g.Finish(tk, replay.Response{Status: 503}, false)
		r := <-ch
		if r.replayed || r.tk == (replay.Ticket{}) {
			t.Fatal("after the original was forgotten, the waiter must handle the request itself")
		}
		g.Finish(r.tk, replay.Response{Status: 200}, true)
	})

	t.Run("OnlyTheFirstFinishCounts", func(t *testing.T) {
		g := open(t, cfg)
		_, _, tk, _ := g.BeginAt(ctx, key("x"), t0, time.Time{})
		g.Finish(tk, replay.Response{Status: 200}, true)
		g.Finish(tk, replay.Response{}, false) // the deferred release
		if _, replayed, _, _ := g.BeginAt(ctx, key("x"), t0, time.Time{}); !replayed {
			t.Fatal("a second Finish undid the recorded answer")
		}
		g.Finish(replay.Ticket{}, replay.Response{}, true) // a replay's zero ticket: ignored
		// A ticket released without an answer (a panic) frees its key.
		func() {
			defer func() { recover() }()
			_, _, tk, _ := g.BeginAt(ctx, key("y"), t0, time.Time{})
			defer g.Finish(tk, replay.Response{}, false)
			panic("handler bug")
		}()
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if _, replayed, tk, err := g.BeginAt(cctx, key("y"), t0, time.Time{}); err != nil || replayed {
			t.Fatalf("after an abandoned ticket: replay=%v err=%v", replayed, err)
		} else {
			g.Finish(tk, replay.Response{}, true)
		}
	})
}
