// Package predialtest is the contract every predial.Counter passes: the
// in-memory one and the stores' (SQLite, PostgreSQL).
package predialtest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/voicegate/voicegate/internal/predial"
)

// Run checks the counter open returns (a fresh one per call): at most max
// per number and day, days and numbers apart, never past max under
// concurrent takes.
func Run(t *testing.T, open func(t *testing.T) predial.Counter) {
	ctx := context.Background()
	t.Run("MaxPerNumberAndDay", func(t *testing.T) {
		c := open(t)
		for i := range 3 {
			if ok, err := c.Take(ctx, "h1", "2026-12-02", 3); !ok || err != nil {
				t.Fatalf("take %d: %v %v", i, ok, err)
			}
		}
		if ok, err := c.Take(ctx, "h1", "2026-12-02", 3); ok || err != nil {
			t.Fatalf("fourth take: %v %v", ok, err)
		}
		if ok, _ := c.Take(ctx, "h2", "2026-12-02", 3); !ok {
			t.Fatal("another number refused")
		}
		if ok, _ := c.Take(ctx, "h1", "2026-12-03", 3); !ok {
			t.Fatal("the next day refused")
		}
		// A larger max (a reload) allows more the same day.
		if ok, _ := c.Take(ctx, "h1", "2026-12-03", 1); ok {
			t.Fatal("past a lower max")
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		c := open(t)
		var granted atomic.Int32
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := range 40 {
			wg.Go(func() {
				ok, err := c.Take(ctx, "hc", "2026-12-02", 5)
				if err != nil {
					errs <- fmt.Errorf("take %d: %w", i, err)
				}
				if ok {
					granted.Add(1)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n := granted.Load(); n != 5 {
			t.Fatalf("%d attempts granted, max 5", n)
		}
	})
}
