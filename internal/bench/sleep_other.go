//go:build !linux

package bench

import "time"

// preciseSleep sleeps for d. Without nanosleep(2) it is time.Sleep, whose
// resolution is coarser (about a millisecond): pacing and the stand-in
// API's delays are less precise on this platform; BENCHMARKS.md figures
// come from Linux.
func preciseSleep(d time.Duration) {
	if d > 0 {
		time.Sleep(d)
	}
}
