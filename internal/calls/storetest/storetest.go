// Package storetest is the contract every calls.Store must meet, as one
// test suite: the SQLite store runs it today, and a second store (PostgreSQL)
// must pass the same suite before it is wired in.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/calls"
)

// Run runs the suite. open returns a new, empty store for each subtest; the
// suite closes it.
func Run(t *testing.T, open func(t *testing.T) calls.Store) {
	t0 := time.UnixMilli(1_795_000_000_000).UTC()
	ctx := context.Background()
	fresh := func(t *testing.T) calls.Store {
		s := open(t)
		t.Cleanup(func() { s.Close() })
		return s
	}
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	t.Run("CreateIsIdempotent", func(t *testing.T) {
		s := fresh(t)
		must(t, s.CreateCall(ctx, calls.Record{ID: "c1", OrgID: "o", Type: "inboundPhoneCall", PhoneNumberID: "pn", AssistantID: "a", Status: "ringing", CreatedAt: t0}))
		must(t, s.CreateCall(ctx, calls.Record{ID: "c1", OrgID: "other", Status: "queued", CreatedAt: t0.Add(time.Hour)}))
		r, _, err := s.Call(ctx, "c1")
		must(t, err)
		if r.ID != "c1" || r.OrgID != "o" || r.Type != "inboundPhoneCall" || r.PhoneNumberID != "pn" || r.AssistantID != "a" || r.Status != "ringing" || !r.CreatedAt.Equal(t0) {
			t.Fatalf("a second create changed the record: %+v", r)
		}
	})

	t.Run("LifecycleAndHistory", func(t *testing.T) {
		s := fresh(t)
		must(t, s.CreateCall(ctx, calls.Record{ID: "c1", Status: "ringing", CreatedAt: t0}))
		must(t, s.RecordStatus(ctx, "c1", calls.StatusChange{Status: "ringing", At: t0}))
		must(t, s.RecordStatus(ctx, "c1", calls.StatusChange{Status: "in-progress", At: t0.Add(time.Second)}))
		r, hist, err := s.Call(ctx, "c1")
		must(t, err)
		if r.Status != "in-progress" || !r.EndedAt.IsZero() || len(hist) != 2 {
			t.Fatalf("live call: %+v, history %+v", r, hist)
		}
		cost, dur := 0.5, 60.0
		must(t, s.EndCall(ctx, "c1", calls.End{Reason: "hangup", Cost: &cost, Duration: &dur, At: t0.Add(time.Minute)}))
		r, _, err = s.Call(ctx, "c1")
		must(t, err)
		if r.Status != "ended" || r.EndedReason != "hangup" || r.Cost == nil || *r.Cost != 0.5 || r.Duration == nil || *r.Duration != 60 || !r.EndedAt.Equal(t0.Add(time.Minute)) {
			t.Fatalf("ended call: %+v", r)
		}
	})

	t.Run("HistoryIsInTimeOrder", func(t *testing.T) {
		s := fresh(t)
		must(t, s.CreateCall(ctx, calls.Record{ID: "c1", CreatedAt: t0}))
		for _, c := range []calls.StatusChange{{Status: "in-progress", At: t0.Add(2 * time.Second)}, {Status: "ringing", At: t0}, {Status: "queued", At: t0.Add(-time.Second)}} {
			must(t, s.RecordStatus(ctx, "c1", c))
		}
		_, hist, err := s.Call(ctx, "c1")
		must(t, err)
		var seq []string
		for _, h := range hist {
			seq = append(seq, h.Status)
		}
		if fmt.Sprint(seq) != "[queued ringing in-progress]" {
			t.Fatalf("history %v, want by time", seq)
		}
	})

	t.Run("LateStatusNeverReopens", func(t *testing.T) {
		s := fresh(t)
		must(t, s.CreateCall(ctx, calls.Record{ID: "c1", CreatedAt: t0}))
		must(t, s.EndCall(ctx, "c1", calls.End{Reason: "hangup", At: t0.Add(time.Minute)}))
		must(t, s.RecordStatus(ctx, "c1", calls.StatusChange{Status: "in-progress", At: t0.Add(2 * time.Minute)}))
		r, hist, err := s.Call(ctx, "c1")
		if err != nil || r.Status != "ended" || r.EndedAt.IsZero() {
			t.Fatalf("a late status reopened the call: %+v %v", r, err)
		}
		if len(hist) != 1 || hist[0].Status != "in-progress" {
			t.Fatalf("the late status is not in the history: %+v", hist)
		}
	})

	t.Run("StatusOfAnUnseenCallCreatesIt", func(t *testing.T) {
		// A call the tracker could not hold (at capacity) is never created
		// first: its status updates must still be stored.
		s := fresh(t)
		must(t, s.RecordStatus(ctx, "unseen", calls.StatusChange{Status: "in-progress", At: t0}))
		if r, hist, err := s.Call(ctx, "unseen"); err != nil || r.Status != "in-progress" || len(hist) != 1 {
			t.Fatalf("%+v %+v %v", r, hist, err)
		}
	})

	t.Run("SecondReportKeepsKnownData", func(t *testing.T) {
		s := fresh(t)
		cost := 0.25
		must(t, s.EndCall(ctx, "c1", calls.End{Reason: "hangup", Cost: &cost, At: t0}))
		must(t, s.EndCall(ctx, "c1", calls.End{}))
		if r, _, err := s.Call(ctx, "c1"); err != nil || r.Cost == nil || *r.Cost != 0.25 || r.EndedReason != "hangup" || !r.EndedAt.Equal(t0) {
			t.Fatalf("a second, emptier report erased data: %+v %v", r, err)
		}
	})

	t.Run("EndWithoutCreate", func(t *testing.T) {
		s := fresh(t)
		must(t, s.EndCall(ctx, "only-report", calls.End{Reason: "x", At: t0}))
		if r, _, err := s.Call(ctx, "only-report"); err != nil || r.Status != "ended" || r.EndedAt.IsZero() {
			t.Fatalf("%+v %v", r, err)
		}
	})

	t.Run("UnknownCallIsErrNotFound", func(t *testing.T) {
		s := fresh(t)
		if _, _, err := s.Call(ctx, "nope"); !errors.Is(err, calls.ErrNotFound) {
			t.Fatalf("want ErrNotFound, got %v", err)
		}
	})

	t.Run("CancelledContextFailsTheWrite", func(t *testing.T) {
		s := fresh(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		for name, err := range map[string]error{
			"CreateCall":   s.CreateCall(cctx, calls.Record{ID: "c1", CreatedAt: t0}),
			"RecordStatus": s.RecordStatus(cctx, "c1", calls.StatusChange{Status: "ringing", At: t0}),
			"EndCall":      s.EndCall(cctx, "c1", calls.End{Reason: "x", At: t0}),
		} {
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("%s under a cancelled context: %v, want an error wrapping context.Canceled", name, err)
			}
		}
		if _, _, err := s.Call(ctx, "c1"); !errors.Is(err, calls.ErrNotFound) {
			t.Fatalf("a write that failed was stored: %v", err)
		}
	})

	t.Run("ConcurrentWriters", func(t *testing.T) {
		s := fresh(t)
		const writers, each = 8, 25
		var wg sync.WaitGroup
		errs := make(chan error, writers)
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					id := fmt.Sprintf("w%d-%d", w, i)
					for _, err := range []error{
						s.CreateCall(ctx, calls.Record{ID: id, CreatedAt: t0}),
						s.RecordStatus(ctx, id, calls.StatusChange{Status: "in-progress", At: t0.Add(time.Second)}),
						s.EndCall(ctx, id, calls.End{Reason: "hangup", At: t0.Add(time.Minute)}),
					} {
						if err != nil {
							errs <- err
							return
						}
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for w := range writers {
			for i := range each {
				if r, hist, err := s.Call(ctx, fmt.Sprintf("w%d-%d", w, i)); err != nil || r.Status != "ended" || len(hist) != 1 {
					t.Fatalf("call w%d-%d: %+v %v %v", w, i, r, hist, err)
				}
			}
		}
	})

	t.Run("PingAndClose", func(t *testing.T) {
		s := open(t)
		must(t, s.Ping(ctx))
		must(t, s.Close())
		if err := s.Ping(ctx); err == nil {
			t.Fatal("Ping on a closed store must fail")
		}
	})
}
