// Package erasuretest is the contract every store of per-call secrets
// (erasure.Secrets) must meet, as one suite: the SQLite store of
// internal/erasure and PostgreSQL's (internal/postgres) run it.
package erasuretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/erasure"
	"github.com/voicegate/voicegate/internal/records"
)

// Run runs the suite; open returns a new, empty store for each subtest
// (closed by the suite).
func Run(t *testing.T, open func(t *testing.T) erasure.Secrets) {
	ctx := context.Background()
	mustOpen := func(t *testing.T) erasure.Secrets {
		t.Helper()
		s := open(t)
		t.Cleanup(func() { s.Close() })
		return s
	}
	// waitFor polls until call's secret exists: Prepare works in the
	// background. Bounded: 10 s at most.
	waitFor := func(t *testing.T, s erasure.Secrets, call string) []byte {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			b, err := s.Secret(ctx, call, false)
			if err == nil {
				return b
			}
			if !errors.Is(err, records.ErrSecretMissing) || time.Now().After(deadline) {
				t.Fatalf("the prepared secret of %s never appeared: %v", call, err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	t.Run("CreateAndRead", func(t *testing.T) {
		s := mustOpen(t)
		if _, err := s.Secret(ctx, "unknown", false); !errors.Is(err, records.ErrSecretMissing) || errors.Is(err, records.ErrCallErased) {
			t.Fatalf("an unknown call without create: %v, want ErrSecretMissing", err)
		}
		a, err := s.Secret(ctx, "c1", true)
		if err != nil || len(a) != 32 {
			t.Fatalf("create: %x %v", a, err)
		}
		for _, create := range []bool{true, false} {
			if b, err := s.Secret(ctx, "c1", create); err != nil || !bytes.Equal(a, b) {
				t.Fatalf("read again (create %v): %v, a different secret or an error", create, err)
			}
		}
		if b, err := s.Secret(ctx, "c2", true); err != nil || bytes.Equal(a, b) {
			t.Fatalf("a second call: %v, or the first call's secret", err)
		}
	})

	t.Run("EraseIsFinal", func(t *testing.T) {
		s := mustOpen(t)
		if _, err := s.Secret(ctx, "c1", true); err != nil {
			t.Fatal(err)
		}
		if had, err := s.Erase(ctx, "c1"); err != nil || !had {
			t.Fatalf("erase: %v %v, want true", had, err)
		}
		for _, create := range []bool{false, true} {
			if _, err := s.Secret(ctx, "c1", create); !errors.Is(err, records.ErrCallErased) {
				t.Fatalf("an erased call (create %v): %v, want ErrCallErased", create, err)
			}
		}
		if had, err := s.Erase(ctx, "c1"); err != nil || had {
			t.Fatalf("erase again: %v %v, want false", had, err)
		}
		// A call erased before it had a secret never gets one.
		if had, err := s.Erase(ctx, "never"); err != nil || had {
			t.Fatalf("erase of an unknown call: %v %v, want false", had, err)
		}
		if _, err := s.Secret(ctx, "never", true); !errors.Is(err, records.ErrCallErased) {
			t.Fatalf("a call erased before its first record: %v", err)
		}
		s.Prepare("never", time.Now())
		s.Prepare("marker", time.Now())
		waitFor(t, s, "marker") // one queue, in order: "never" was handled
		if _, err := s.Secret(ctx, "never", false); !errors.Is(err, records.ErrCallErased) {
			t.Fatalf("an erased call after Prepare: %v", err)
		}
	})

	// Calls starting at once: each one secret, the same however often it
	// is asked for at once; a call erased stays erased.
	t.Run("ConcurrentCreates", func(t *testing.T) {
		s := mustOpen(t)
		if _, err := s.Erase(ctx, "c-erased"); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		got := make([][]byte, 64)
		errs := make([]error, 64)
		for i := range 64 {
			wg.Go(func() {
				call := fmt.Sprint("c", i%32) // each call asked for twice at once
				if i == 63 {
					call = "c-erased"
				}
				got[i], errs[i] = s.Secret(ctx, call, true)
			})
		}
		wg.Wait()
		for i := range 63 {
			if errs[i] != nil || len(got[i]) != 32 {
				t.Fatalf("call %d: %v", i, errs[i])
			}
			if j := (i + 32) % 64; j < 63 && !bytes.Equal(got[i], got[j]) {
				t.Fatalf("call c%d got two secrets", i%32)
			}
		}
		if !errors.Is(errs[63], records.ErrCallErased) {
			t.Fatalf("an erased call got a secret: %v", errs[63])
		}
	})

	// A secret prepared when a call starts is the one its first record
	// gets; a second Prepare keeps it; the call is marked idle as of
	// PrepareGrace later (forgotten if it never writes a record).
	t.Run("Prepare", func(t *testing.T) {
		s := mustOpen(t)
		now := time.UnixMilli(1_795_000_000_000)
		s.Prepare("live", now)
		prepared := waitFor(t, s, "live")
		if again, err := s.Secret(ctx, "live", true); err != nil || !bytes.Equal(again, prepared) {
			t.Fatalf("the first record got another secret: %v", err)
		}
		s.Prepare("live", now.Add(time.Hour))
		s.Prepare("marker", now)
		waitFor(t, s, "marker")
		if again, _ := s.Secret(ctx, "live", false); !bytes.Equal(again, prepared) {
			t.Fatal("a second Prepare replaced the secret")
		}
		idleAt := now.Add(erasure.PrepareGrace)
		if ids, err := s.Idle(ctx, idleAt, 10); err != nil || len(ids) != 0 {
			t.Fatalf("idle before the grace: %v %v, want none", ids, err)
		}
		if ids, err := s.Idle(ctx, idleAt.Add(time.Millisecond), 10); err != nil || !slices.Equal(ids, []string{"live", "marker"}) {
			t.Fatalf("idle after the grace: %v %v, want [live marker]", ids, err)
		}
	})

	// Retention: idle marks in time order, bounded; Forget without a
	// tombstone (a later record gets a fresh secret), or only the mark.
	t.Run("IdleAndForget", func(t *testing.T) {
		s := mustOpen(t)
		t0 := time.UnixMilli(1_795_000_000_000)
		secrets := map[string][]byte{}
		for _, c := range []string{"a", "b", "c"} {
			b, err := s.Secret(ctx, c, true)
			if err != nil {
				t.Fatal(err)
			}
			secrets[c] = b
		}
		for i, c := range []string{"b", "a", "c"} {
			if err := s.MarkIdle(ctx, c, t0.Add(time.Duration(i)*time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		// A second mark keeps the first one's time.
		if err := s.MarkIdle(ctx, "b", t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			before time.Time
			limit  int
			want   []string
		}{
			{t0, 10, nil},
			{t0.Add(time.Millisecond), 10, []string{"b"}},
			{t0.Add(2 * time.Minute), 10, []string{"b", "a"}},
			{t0.Add(time.Hour), 2, []string{"b", "a"}},
			{t0.Add(time.Hour), 10, []string{"b", "a", "c"}},
		} {
			if ids, err := s.Idle(ctx, tc.before, tc.limit); err != nil || !slices.Equal(ids, tc.want) {
				t.Fatalf("idle before %v, limit %d: %v %v, want %v", tc.before.Sub(t0), tc.limit, ids, err, tc.want)
			}
		}
		if had, err := s.Forget(ctx, "b", true); err != nil || !had {
			t.Fatalf("forget b: %v %v", had, err)
		}
		if _, err := s.Secret(ctx, "b", false); !errors.Is(err, records.ErrSecretMissing) || errors.Is(err, records.ErrCallErased) {
			t.Fatalf("a forgotten call: %v, want ErrSecretMissing (no tombstone)", err)
		}
		if fresh, err := s.Secret(ctx, "b", true); err != nil || bytes.Equal(fresh, secrets["b"]) {
			t.Fatalf("a forgotten call's next record: %v, or its old secret", err)
		}
		if had, err := s.Forget(ctx, "a", false); err != nil || had {
			t.Fatalf("forget only a's mark: %v %v", had, err)
		}
		if kept, err := s.Secret(ctx, "a", false); err != nil || !bytes.Equal(kept, secrets["a"]) {
			t.Fatalf("a's secret after its mark went: %v", err)
		}
		if ids, err := s.Idle(ctx, t0.Add(time.Hour), 10); err != nil || !slices.Equal(ids, []string{"c"}) {
			t.Fatalf("idle after forgetting: %v %v, want [c]", ids, err)
		}
		if had, err := s.Forget(ctx, "unknown", true); err != nil || had {
			t.Fatalf("forget an unknown call: %v %v", had, err)
		}
	})

	t.Run("Closed", func(t *testing.T) {
		s := open(t)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Secret(ctx, "new", true); err == nil {
			t.Fatal("a closed store created a secret")
		}
		s.Prepare("new", time.Now()) // never blocks, never panics
	})
}
