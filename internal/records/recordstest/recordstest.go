// Package recordstest is the contract every records.Store must meet, as one
// test suite: SQLite and PostgreSQL both run it.
package recordstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/records"
)

// Run runs the suite; open returns a new, empty store for each subtest.
func Run(t *testing.T, open func(t *testing.T) records.Store) {
	ctx := context.Background()
	t0 := time.UnixMilli(1_795_000_000_000).UTC()
	rec := func(call string, kind records.Kind, dedup string, at time.Time) records.Sealed {
		return records.Sealed{ID: records.NewID(), CallID: call, Kind: kind, DedupKey: dedup, CreatedAt: at,
			Key: envelope.Wrapped{KeyID: "k1", Sealed: []byte("wrapped-" + call)}, Payload: []byte("payload-" + dedup)}
	}
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	t.Run("PutGetRoundTrip", func(t *testing.T) {
		s := open(t)
		r := rec("c1", records.KindEndOfCall, "eocr", t0)
		r.CallerHash, r.Redacted = "h1", []byte(`{"n":"[PHONE]"}`)
		stored, err := s.PutRecord(ctx, r)
		must(t, err)
		got, err := s.GetRecord(ctx, r.ID)
		must(t, err)
		if !stored || got.ID != r.ID || got.CallID != "c1" || got.Kind != r.Kind || got.DedupKey != "eocr" || !got.CreatedAt.Equal(t0) ||
			got.Key.KeyID != "k1" || !bytes.Equal(got.Key.Sealed, r.Key.Sealed) || !bytes.Equal(got.Payload, r.Payload) ||
			got.CallerHash != "h1" || string(got.Redacted) != string(r.Redacted) {
			t.Fatalf("round trip: %+v", got)
		}
		plain := rec("c1", records.KindToolCall, "t1", t0)
		_, err = s.PutRecord(ctx, plain)
		must(t, err)
		if got, err := s.GetRecord(ctx, plain.ID); err != nil || got.CallerHash != "" || got.Redacted != nil {
			t.Fatalf("a record without caller or redacted copy: %+v %v", got, err)
		}
		if _, err := s.GetRecord(ctx, "nope"); !errors.Is(err, records.ErrNotFound) {
			t.Fatalf("unknown id: %v", err)
		}
	})

	t.Run("DuplicateStoredOnce", func(t *testing.T) {
		s := open(t)
		first, err := s.PutRecord(ctx, rec("c1", records.KindEndOfCall, "eocr", t0))
		must(t, err)
		again, err := s.PutRecord(ctx, rec("c1", records.KindEndOfCall, "eocr", t0.Add(time.Second)))
		must(t, err)
		other, err := s.PutRecord(ctx, rec("c1", records.KindToolCall, "eocr", t0))
		must(t, err)
		if !first || again || !other {
			t.Fatalf("stored: first %v, duplicate %v, another kind %v", first, again, other)
		}
		list, err := s.CallRecords(ctx, "c1")
		must(t, err)
		if len(list) != 2 {
			t.Fatalf("%d records, want 2", len(list))
		}
	})

	t.Run("ConcurrentDuplicatesStoredOnce", func(t *testing.T) {
		s := open(t)
		var stored atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if ok, err := s.PutRecord(ctx, rec("c1", records.KindEndOfCall, "eocr", t0)); err == nil && ok {
					stored.Add(1)
				}
			})
		}
		wg.Wait()
		if n := stored.Load(); n != 1 {
			t.Fatalf("%d of 8 concurrent duplicates stored, want 1", n)
		}
	})

	t.Run("CallRecordsOldestFirstAndIsolated", func(t *testing.T) {
		s := open(t)
		for i := range 3 {
			_, err := s.PutRecord(ctx, rec("c1", records.KindToolCall, fmt.Sprint("t", i), t0.Add(time.Duration(2-i)*time.Second)))
			must(t, err)
		}
		_, err := s.PutRecord(ctx, rec("c2", records.KindToolCall, "t0", t0))
		must(t, err)
		list, err := s.CallRecords(ctx, "c1")
		must(t, err)
		if len(list) != 3 || list[0].DedupKey != "t2" || list[2].DedupKey != "t0" {
			t.Fatalf("order: %v", list)
		}
		none, err := s.CallRecords(ctx, "unknown")
		must(t, err)
		if none == nil || len(none) != 0 {
			t.Fatalf("an unknown call: %v", none)
		}
	})

	t.Run("KeyUsageUnderKeyRekey", func(t *testing.T) {
		s := open(t)
		var under []records.Sealed
		for i := range 5 {
			r := rec(fmt.Sprint("c", i), records.KindToolCall, "t", t0)
			if i == 4 {
				r.Key.KeyID = "k2"
			}
			_, err := s.PutRecord(ctx, r)
			must(t, err)
			if i < 4 {
				under = append(under, r)
			}
		}
		_, err := s.ShredCall(ctx, "c3")
		must(t, err)
		usage, err := s.KeyUsage(ctx)
		must(t, err)
		if usage["k1"] != 3 || usage["k2"] != 1 || len(usage) != 2 {
			t.Fatalf("usage %v, want k1:3 k2:1 (a shredded record uses no key)", usage)
		}
		// Batches by id, resumable from the last id done.
		first, err := s.UnderKey(ctx, "k1", "", 2)
		must(t, err)
		rest, err := s.UnderKey(ctx, "k1", first[len(first)-1].ID, 10)
		must(t, err)
		if len(first) != 2 || len(rest) != 1 || first[0].ID >= first[1].ID || first[1].ID >= rest[0].ID {
			t.Fatalf("batches %d + %d, or not in id order", len(first), len(rest))
		}
		next := envelope.Wrapped{KeyID: "k2", Sealed: []byte("rewrapped")}
		ok, err := s.Rekey(ctx, first[0].ID, first[0].Key, next)
		must(t, err)
		again, err := s.Rekey(ctx, first[0].ID, first[0].Key, next)
		must(t, err)
		if !ok || again {
			t.Fatalf("rekey %v, again %v: want true then false", ok, again)
		}
		got, err := s.GetRecord(ctx, first[0].ID)
		must(t, err)
		if got.Key.KeyID != "k2" || string(got.Key.Sealed) != "rewrapped" || !bytes.Equal(got.Payload, first[0].Payload) {
			t.Fatalf("rekeyed record: %+v", got)
		}
		// A shredded record is never given a key back.
		shredded := under[3]
		if ok, err := s.Rekey(ctx, shredded.ID, shredded.Key, next); err != nil || ok {
			t.Fatalf("rekey of a shredded record: %v %v", ok, err)
		}
	})

	t.Run("ShredDestroysTheKeysOfOneCall", func(t *testing.T) {
		s := open(t)
		a := rec("c1", records.KindEndOfCall, "eocr", t0)
		a.CallerHash, a.Redacted = "h1", []byte(`{"x":1}`)
		b := rec("c1", records.KindToolCall, "t1", t0)
		c := rec("c2", records.KindToolCall, "t1", t0)
		for _, r := range []records.Sealed{a, b, c} {
			_, err := s.PutRecord(ctx, r)
			must(t, err)
		}
		n, err := s.ShredCall(ctx, "c1")
		must(t, err)
		if n != 2 {
			t.Fatalf("shredded %d, want 2", n)
		}
		for _, id := range []string{a.ID, b.ID} {
			got, err := s.GetRecord(ctx, id)
			must(t, err)
			if got.Key.KeyID != "" || len(got.Key.Sealed) != 0 || got.Redacted != nil || got.CallerHash != "" {
				t.Fatalf("a shredded record keeps its key, redacted copy or caller: %+v", got)
			}
		}
		if got, _ := s.GetRecord(ctx, c.ID); len(got.Key.Sealed) == 0 {
			t.Fatal("another call's key was shredded")
		}
		if n, err := s.ShredCall(ctx, "c1"); err != nil || n != 0 {
			t.Fatalf("shredding again: %d %v", n, err)
		}
	})

	t.Run("CallerCalls", func(t *testing.T) {
		s := open(t)
		for i, r := range []records.Sealed{rec("c1", records.KindEndOfCall, "eocr", t0), rec("c1", records.KindToolCall, "t1", t0),
			rec("c2", records.KindToolCall, "t1", t0), rec("c3", records.KindToolCall, "t1", t0), rec("c4", records.KindToolCall, "t1", t0)} {
			r.CallerHash = []string{"h1", "h1", "h1", "h2", ""}[i]
			_, err := s.PutRecord(ctx, r)
			must(t, err)
		}
		got, err := s.CallerCalls(ctx, "h1")
		must(t, err)
		if fmt.Sprint(sorted(got)) != "[c1 c2]" {
			t.Fatalf("calls of h1: %v, want [c1 c2] once each", got)
		}
		if got, err := s.CallerCalls(ctx, ""); err != nil || len(got) != 0 {
			t.Fatalf("the empty hash finds %v %v", got, err)
		}
		_, err = s.ShredCall(ctx, "c2")
		must(t, err)
		if got, _ := s.CallerCalls(ctx, "h1"); fmt.Sprint(got) != "[c1]" {
			t.Fatalf("a shredded call still found by its caller: %v", got)
		}
	})

	t.Run("DeleteBeforeByKindAndAge", func(t *testing.T) {
		s := open(t)
		old1 := rec("c1", records.KindToolCall, "t1", t0)
		old2 := rec("c2", records.KindToolCall, "t1", t0.Add(time.Minute))
		young := rec("c1", records.KindToolCall, "t2", t0.Add(time.Hour))
		eoc := rec("c1", records.KindEndOfCall, "eocr", t0)
		for _, r := range []records.Sealed{old1, old2, young, eoc} {
			_, err := s.PutRecord(ctx, r)
			must(t, err)
		}
		got, err := s.DeleteBefore(ctx, records.KindToolCall, t0.Add(30*time.Minute), 1)
		must(t, err)
		if fmt.Sprint(got) != "[c1]" {
			t.Fatalf("first batch of 1: %v, want the oldest record's call [c1]", got)
		}
		got, err = s.DeleteBefore(ctx, records.KindToolCall, t0.Add(30*time.Minute), 10)
		must(t, err)
		if fmt.Sprint(got) != "[c2]" {
			t.Fatalf("second batch: %v, want [c2]", got)
		}
		if got, err := s.DeleteBefore(ctx, records.KindToolCall, t0.Add(30*time.Minute), 10); err != nil || got == nil || len(got) != 0 {
			t.Fatalf("nothing left to delete: %#v %v", got, err)
		}
		for _, r := range []records.Sealed{old1, old2} {
			if _, err := s.GetRecord(ctx, r.ID); !errors.Is(err, records.ErrNotFound) {
				t.Fatalf("an expired record is still there: %v", err)
			}
		}
		for _, r := range []records.Sealed{young, eoc} {
			if _, err := s.GetRecord(ctx, r.ID); err != nil {
				t.Fatalf("a record younger, or of another kind, was deleted: %v", err)
			}
		}
	})
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}
