// Package storetest is the contract every calls.Store must meet, as one
// test suite: the SQLite store runs it today, and a second store (PostgreSQL)
// must pass the same suite before it is wired in.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

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

	t.Run("EventsInTimeOrderPerCall", func(t *testing.T) {
		s := fresh(t)
		must(t, s.CreateCall(ctx, calls.Record{ID: "c1", CreatedAt: t0}))
		long := strings.Repeat("é", calls.MaxEventDetail) // longer than the bound, in bytes
		for _, e := range []calls.Event{
			{At: t0.Add(2 * time.Second), Kind: "control", Detail: "mute-assistant ok"},
			{At: t0.Add(time.Second), Kind: "bargein", Detail: "interrupt: interruption phrase: wait"},
			{At: t0.Add(3 * time.Second), Kind: "bargein", Detail: long},
		} {
			must(t, s.AddEvents(ctx, []calls.CallEvent{{CallID: "c1", Event: e}}))
		}
		must(t, s.AddEvents(ctx, []calls.CallEvent{{CallID: "c2", Event: calls.Event{At: t0, Kind: "bargein", Detail: "other call"}}, {CallID: "c2", Event: calls.Event{At: t0.Add(time.Millisecond), Kind: "bargein", Detail: "second"}}}))
		evs, err := s.Events(ctx, "c1")
		must(t, err)
		if len(evs) != 3 || evs[0].Kind != "bargein" || evs[0].Detail != "interrupt: interruption phrase: wait" || !evs[0].At.Equal(t0.Add(time.Second)) || evs[1].Kind != "control" {
			t.Fatalf("events %+v", evs)
		}
		if d := evs[2].Detail; len(d) > calls.MaxEventDetail || !utf8.ValidString(d) || len(d) < calls.MaxEventDetail-2 {
			t.Fatalf("a long detail is kept as %d bytes (valid UTF-8 %v), want cut to %d", len(d), utf8.ValidString(d), calls.MaxEventDetail)
		}
		if evs, err := s.Events(ctx, "c2"); err != nil || len(evs) != 2 || evs[1].Detail != "second" {
			t.Fatalf("a batch: %+v %v", evs, err)
		}
		if evs, err := s.Events(ctx, "unknown"); err != nil || len(evs) != 0 {
			t.Fatalf("events of an unknown call: %v %v", evs, err)
		}
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if err := s.AddEvents(cctx, []calls.CallEvent{{CallID: "c1", Event: calls.Event{At: t0, Kind: "x"}}}); !errors.Is(err, context.Canceled) {
			t.Fatalf("AddEvents under a cancelled context: %v", err)
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
		cost, dur := 0.25, 73.5
		must(t, s.EndCall(ctx, "c1", calls.End{Reason: "hangup", Cost: &cost, Duration: &dur, At: t0}))
		must(t, s.EndCall(ctx, "c1", calls.End{}))
		if r, _, err := s.Call(ctx, "c1"); err != nil || r.Cost == nil || *r.Cost != 0.25 || r.Duration == nil || *r.Duration != 73.5 || r.EndedReason != "hangup" || !r.EndedAt.Equal(t0) {
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

	// ids returns the ids of list, in order.
	ids := func(list []calls.Record) string {
		var out []string
		for _, r := range list {
			out = append(out, r.ID)
		}
		return fmt.Sprint(out)
	}
	// seed creates n calls "c000", "c001", … one second apart, the first
	// at t0.
	seed := func(t *testing.T, s calls.Store, n int) {
		t.Helper()
		for i := range n {
			must(t, s.CreateCall(ctx, calls.Record{ID: fmt.Sprintf("c%03d", i), Status: "queued", CreatedAt: t0.Add(time.Duration(i) * time.Second)}))
		}
	}

	t.Run("ListEmptyStore", func(t *testing.T) {
		s := fresh(t)
		for _, f := range []calls.ListFilter{{}, {Limit: 5, Status: "ended"}, {Before: t0}} {
			list, err := s.List(ctx, f)
			if err != nil || list == nil || len(list) != 0 {
				t.Fatalf("List(%+v) on an empty store: %#v %v, want an empty slice and no error", f, list, err)
			}
		}
	})

	t.Run("ListNewestFirstWithTheRecords", func(t *testing.T) {
		s := fresh(t)
		// Created out of order, two at the same instant (then by id,
		// descending too).
		must(t, s.CreateCall(ctx, calls.Record{ID: "mid", OrgID: "o", Type: "inboundPhoneCall", PhoneNumberID: "pn", AssistantID: "a", Status: "ringing", CreatedAt: t0.Add(time.Minute)}))
		must(t, s.CreateCall(ctx, calls.Record{ID: "old", CreatedAt: t0}))
		must(t, s.CreateCall(ctx, calls.Record{ID: "new-a", CreatedAt: t0.Add(time.Hour)}))
		must(t, s.CreateCall(ctx, calls.Record{ID: "new-b", CreatedAt: t0.Add(time.Hour)}))
		cost, dur := 0.5, 60.0
		must(t, s.RecordStatus(ctx, "mid", calls.StatusChange{Status: "in-progress", At: t0.Add(time.Minute + time.Second)}))
		must(t, s.EndCall(ctx, "mid", calls.End{Reason: "hangup", Cost: &cost, Duration: &dur, At: t0.Add(2 * time.Minute)}))
		list, err := s.List(ctx, calls.ListFilter{})
		must(t, err)
		if got := ids(list); got != "[new-b new-a mid old]" {
			t.Fatalf("List order %s, want newest first, then by id descending", got)
		}
		// Each listed record is the record Call returns.
		for _, r := range list {
			want, _, err := s.Call(ctx, r.ID)
			must(t, err)
			if !sameRecord(r, want) {
				t.Fatalf("List gave %+v, Call gives %+v", r, want)
			}
		}
		if m := list[2]; m.Status != "ended" || m.EndedReason != "hangup" || m.Cost == nil || *m.Cost != 0.5 || m.Duration == nil || *m.Duration != 60 ||
			!m.EndedAt.Equal(t0.Add(2*time.Minute)) || !m.CreatedAt.Equal(t0.Add(time.Minute)) || m.AssistantID != "a" || m.PhoneNumberID != "pn" || m.Type != "inboundPhoneCall" {
			t.Fatalf("listed record %+v", m)
		}
	})

	t.Run("ListLimit", func(t *testing.T) {
		s := fresh(t)
		seed(t, s, calls.MaxListLimit+1)
		for _, tc := range []struct{ limit, want int }{
			{2, 2}, {0, calls.DefaultListLimit}, {-1, calls.DefaultListLimit},
			{calls.MaxListLimit, calls.MaxListLimit}, {calls.MaxListLimit + 1, calls.MaxListLimit}, {1 << 30, calls.MaxListLimit},
		} {
			list, err := s.List(ctx, calls.ListFilter{Limit: tc.limit})
			must(t, err)
			if len(list) != tc.want {
				t.Fatalf("Limit %d: %d calls, want %d", tc.limit, len(list), tc.want)
			}
			if first := fmt.Sprintf("c%03d", calls.MaxListLimit); list[0].ID != first {
				t.Fatalf("Limit %d: first call %s, want the newest (%s)", tc.limit, list[0].ID, first)
			}
		}
	})

	t.Run("ListPagesWithBefore", func(t *testing.T) {
		s := fresh(t)
		seed(t, s, 5)
		// Three more created at the same instant as c002: a page boundary
		// falls among them.
		for _, id := range []string{"c002a", "c002b", "c002c"} {
			must(t, s.CreateCall(ctx, calls.Record{ID: id, CreatedAt: t0.Add(2 * time.Second)}))
		}
		all, err := s.List(ctx, calls.ListFilter{})
		must(t, err)
		if got := ids(all); got != "[c004 c003 c002c c002b c002a c002 c001 c000]" {
			t.Fatalf("List %s", got)
		}
		var paged []calls.Record
		f := calls.ListFilter{Limit: 3}
		for page := 0; ; page++ {
			if page > len(all) {
				t.Fatalf("paging does not end: %s", ids(paged))
			}
			list, err := s.List(ctx, f)
			must(t, err)
			if len(list) == 0 {
				break
			}
			paged = append(paged, list...)
			last := list[len(list)-1]
			f.Before, f.BeforeID = last.CreatedAt, last.ID
		}
		if ids(paged) != ids(all) {
			t.Fatalf("pages of 3 gave %s, want %s", ids(paged), ids(all))
		}
		// Before alone: strictly created before it.
		list, err := s.List(ctx, calls.ListFilter{Before: t0.Add(2 * time.Second)})
		must(t, err)
		if got := ids(list); got != "[c001 c000]" {
			t.Fatalf("Before c002's time: %s, want [c001 c000]", got)
		}
		list, err = s.List(ctx, calls.ListFilter{Before: t0.Add(2*time.Second + time.Microsecond)})
		must(t, err)
		if got := ids(list); got != "[c002c c002b c002a c002 c001 c000]" {
			t.Fatalf("Before just after c002's time: %s", got)
		}
		list, err = s.List(ctx, calls.ListFilter{Before: t0})
		must(t, err)
		if len(list) != 0 {
			t.Fatalf("Before the first call: %s, want none", ids(list))
		}
	})

	t.Run("ListFiltersByCurrentStatus", func(t *testing.T) {
		s := fresh(t)
		seed(t, s, 4)
		must(t, s.RecordStatus(ctx, "c001", calls.StatusChange{Status: "in-progress", At: t0.Add(time.Minute)}))
		must(t, s.RecordStatus(ctx, "c002", calls.StatusChange{Status: "in-progress", At: t0.Add(time.Minute)}))
		must(t, s.EndCall(ctx, "c002", calls.End{Reason: "hangup", At: t0.Add(2 * time.Minute)}))
		// A late status never reopens c002, so it stays "ended".
		must(t, s.RecordStatus(ctx, "c002", calls.StatusChange{Status: "in-progress", At: t0.Add(3 * time.Minute)}))
		for status, want := range map[string]string{
			"queued": "[c003 c000]", "in-progress": "[c001]", "ended": "[c002]", "ringing": "[]",
		} {
			list, err := s.List(ctx, calls.ListFilter{Status: status})
			must(t, err)
			if got := ids(list); got != want {
				t.Fatalf("Status %q: %s, want %s", status, got, want)
			}
		}
		list, err := s.List(ctx, calls.ListFilter{Status: "queued", Limit: 1, Before: t0.Add(3 * time.Second), BeforeID: "c003"})
		must(t, err)
		if got := ids(list); got != "[c000]" {
			t.Fatalf("status, limit and before together: %s, want [c000]", got)
		}
	})

	t.Run("CancelledContextFailsTheRead", func(t *testing.T) {
		s := fresh(t)
		seed(t, s, 2)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.List(cctx, calls.ListFilter{}); !errors.Is(err, context.Canceled) {
			t.Fatalf("List under a cancelled context: %v, want an error wrapping context.Canceled", err)
		}
		if _, _, err := s.Call(cctx, "c000"); !errors.Is(err, context.Canceled) {
			t.Fatalf("Call under a cancelled context: %v, want an error wrapping context.Canceled", err)
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

// sameRecord reports whether a and b hold the same call, times compared as
// instants.
func sameRecord(a, b calls.Record) bool {
	eqf := func(x, y *float64) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.ID == b.ID && a.OrgID == b.OrgID && a.Type == b.Type && a.PhoneNumberID == b.PhoneNumberID &&
		a.AssistantID == b.AssistantID && a.Status == b.Status && a.EndedReason == b.EndedReason &&
		eqf(a.Cost, b.Cost) && eqf(a.Duration, b.Duration) &&
		a.CreatedAt.Equal(b.CreatedAt) && a.UpdatedAt.Equal(b.UpdatedAt) && a.EndedAt.Equal(b.EndedAt)
}
