// Package periodic provides the one loop voicegate's background work shares:
// run a function at a fixed interval until a context ends.
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
