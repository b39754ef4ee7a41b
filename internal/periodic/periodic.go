// Package periodic provides the waits voicegate's background work shares:
// run a function at a fixed interval until a context ends, and sleep
// unless a context ends first.
package periodic

import (
	"context"
	"time"
)

// Run calls f every interval until ctx ends. The first call comes one
// interval after Run starts.
func Run(ctx context.Context, every time.Duration, f func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// Sleep waits d, or until ctx ends (its error).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
