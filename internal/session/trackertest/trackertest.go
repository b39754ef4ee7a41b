// Package trackertest is the contract every session.Tracker must meet, as
// one test suite: the in-memory Table runs it today, and a tracker shared by
// replicas must pass the same suite before it is wired in.
package trackertest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/voicegate/voicegate/internal/session"
)

// Run runs the suite; open returns a new, empty tracker holding at most
// capacity live calls.
func Run(t *testing.T, open func(t *testing.T, capacity int) session.Tracker) {
	observe := func(t *testing.T, tr session.Tracker, id string) bool {
		t.Helper()
		first, err := tr.Observe(ctx, id, "", "")
		if err != nil {
			t.Fatalf("Observe(%q): %v", id, err)
		}
		return first
	}

	t.Run("FirstSightOnce", func(t *testing.T) {
		tr := open(t, 100)
		if !observe(t, tr, "a") || observe(t, tr, "a") {
			t.Fatal("first sight must be reported once")
		}
		if !tr.Seen(ctx, "a") || tr.Seen(ctx, "b") {
			t.Fatal("Seen")
		}
	})

	t.Run("ConcurrentFirstSightIsOne", func(t *testing.T) {
		tr := open(t, 100)
		var firsts atomic.Int32
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(func() {
				if first, err := tr.Observe(ctx, "same", "", "ringing"); err == nil && first {
					firsts.Add(1)
				}
			})
		}
		wg.Wait()
		if n := firsts.Load(); n != 1 {
			t.Fatalf("%d of 16 concurrent observers saw a first sight, want 1", n)
		}
	})

	t.Run("StatusFromUpdatesAndFirstSight", func(t *testing.T) {
		tr := open(t, 100)
		for _, o := range []struct{ status, initial string }{
			{"", "queued"},      // first sight: the call object's status
			{"in-progress", ""}, // an update sets it
			{"", "ringing"},     // a later call object's (older) status does not
			{"", ""},            // nor does an event without one
		} {
			if _, err := tr.Observe(ctx, "a", o.status, o.initial); err != nil {
				t.Fatal(err)
			}
		}
		if last, _ := tr.End(ctx, "a"); last.Status != "in-progress" {
			t.Fatalf("status %q, want in-progress", last.Status)
		}
		tr.Observe(ctx, "b", "", "queued")
		if last, _ := tr.End(ctx, "b"); last.Status != "queued" {
			t.Fatalf("first sight's status %q, want queued", last.Status)
		}
	})

	t.Run("EndReturnsTheLastStateOnce", func(t *testing.T) {
		tr := open(t, 100)
		if _, err := tr.Observe(ctx, "a", "in-progress", ""); err != nil {
			t.Fatal(err)
		}
		tr.Interrupted(ctx, "a")
		tr.ToolCall(ctx, "a", "ok")
		tr.ToolCall(ctx, "a", "ok")
		tr.ToolCall(ctx, "a", "http_error")
		last, live := tr.End(ctx, "a")
		if !live || last.Status != "in-progress" || last.Interruptions != 1 || last.Started.IsZero() ||
			last.ToolCalls["ok"] != 2 || last.ToolCalls["http_error"] != 1 || len(last.ToolCalls) != 2 {
			t.Fatalf("End of a live call: live=%v %+v", live, last)
		}
		if _, live := tr.End(ctx, "a"); live {
			t.Fatal("a second End must report the call was not live")
		}
		if _, live := tr.End(ctx, "never-seen"); live {
			t.Fatal("End of a call never seen must report it was not live")
		}
		if tr.ToolCall(ctx, "a", "ok") {
			t.Fatal("an ended call counts no tool calls")
		}
	})

	t.Run("CallContextEndsWithTheCall", func(t *testing.T) {
		tr := open(t, 100)
		if _, ok := tr.Context("a"); ok {
			t.Fatal("a call never seen has no context")
		}
		observe(t, tr, "a")
		observe(t, tr, "b")
		ca, ok := tr.Context("a")
		if !ok || ca.Err() != nil {
			t.Fatalf("a live call's context: ok=%v err=%v", ok, ca.Err())
		}
		cb, _ := tr.Context("b")
		tr.End(ctx, "a")
		tr.Forget(ctx, "b")
		for name, ctx := range map[string]context.Context{"ended": ca, "forgotten": cb} {
			select {
			case <-ctx.Done():
			default:
				t.Errorf("the %s call's context is not cancelled", name)
			}
		}
		if _, ok := tr.Context("a"); ok {
			t.Error("an ended call has no context")
		}
	})

	t.Run("ForgetMakesTheNextEventAFirstSight", func(t *testing.T) {
		tr := open(t, 100)
		observe(t, tr, "a")
		tr.Forget(ctx, "a")
		if !observe(t, tr, "a") {
			t.Fatal("after Forget the next event must be a first sight")
		}
	})

	t.Run("EndedCallsStayEnded", func(t *testing.T) {
		tr := open(t, 100)
		observe(t, tr, "a")
		tr.End(ctx, "a")
		tr.End(ctx, "never-seen") // an end-of-call report as the first event
		for _, id := range []string{"a", "never-seen"} {
			if !tr.Seen(ctx, id) {
				t.Errorf("%s: an ended call must be seen", id)
			}
			if _, err := tr.Observe(ctx, id, "in-progress", ""); !errors.Is(err, session.ErrEnded) {
				t.Errorf("%s: a late event must get ErrEnded, got %v", id, err)
			}
			if tr.Speech(ctx, id, "user", true, 1) || tr.Interrupted(ctx, id) {
				t.Errorf("%s: an ended call has no live state", id)
			}
		}
	})

	t.Run("CapacityRefusesOnlyNewCalls", func(t *testing.T) {
		tr := open(t, 2)
		observe(t, tr, "a")
		observe(t, tr, "b")
		if _, err := tr.Observe(ctx, "c", "", ""); !errors.Is(err, session.ErrFull) {
			t.Fatalf("a new call over capacity: %v, want ErrFull", err)
		}
		if _, err := tr.Observe(ctx, "a", "", ""); err != nil {
			t.Fatalf("a live call at capacity: %v", err)
		}
		tr.End(ctx, "a")
		if _, err := tr.Observe(ctx, "c", "", ""); err != nil {
			t.Fatalf("room after an end: %v", err)
		}
	})

	t.Run("LiveStateOnlyForLiveCalls", func(t *testing.T) {
		tr := open(t, 100)
		observe(t, tr, "a")
		if !tr.Speech(ctx, "a", "assistant", true, 1) || !tr.Interrupted(ctx, "a") {
			t.Fatal("a live call takes speech and interruption events")
		}
		if tr.Speech(ctx, "unknown", "user", true, 1) || tr.Interrupted(ctx, "unknown") {
			t.Fatal("an unknown call has no live state")
		}
	})

	t.Run("UpdateIsAtomicAndPerCall", func(t *testing.T) {
		tr := open(t, 100)
		if tr.Update(ctx, "unknown", func(*session.State) { t.Fatal("f ran for an unknown call") }) {
			t.Fatal("Update of an unknown call reported true")
		}
		observe(t, tr, "a")
		observe(t, tr, "b")
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 100 {
					tr.Update(ctx, "a", func(s *session.State) { s.Bargein.WindowStart++ })
					tr.Update(ctx, "b", func(s *session.State) { s.Bargein.WindowStart += 2 })
				}
			})
		}
		wg.Wait()
		tr.Update(ctx, "a", func(s *session.State) { s.ControlURL = "https://control.example/a" })
		la, _ := tr.End(ctx, "a")
		lb, _ := tr.End(ctx, "b")
		if la.Bargein.WindowStart != 800 || lb.Bargein.WindowStart != 1600 || la.ControlURL != "https://control.example/a" || lb.ControlURL != "" {
			t.Fatalf("after 800 updates of each call: a %+v %q, b %+v %q", la.Bargein, la.ControlURL, lb.Bargein, lb.ControlURL)
		}
		if tr.Update(ctx, "a", func(*session.State) { t.Fatal("f ran for an ended call") }) {
			t.Fatal("Update of an ended call reported true")
		}
	})

	t.Run("ManyCalls", func(t *testing.T) {
		tr := open(t, 10_000)
		for i := range 1000 {
			if !observe(t, tr, fmt.Sprint("call-", i)) {
				t.Fatalf("call-%d: not a first sight", i)
			}
		}
		for i := range 1000 {
			if !tr.Seen(ctx, fmt.Sprint("call-", i)) {
				t.Fatalf("call-%d forgotten", i)
			}
		}
	})
}

var ctx = context.Background()
