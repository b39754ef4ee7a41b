//go:build linux

package bench

import (
	"syscall"
	"time"
)

// preciseSleep blocks the calling OS thread in nanosleep(2) for d.
//
// Go's timers are woken through the network poller, which waits in whole
// milliseconds, so time.Sleep(500µs) on an idle process takes about 1–2 ms.
// The generator's pacing and the stand-in API's "answers in 1 ms" need
// better than that; blocking one thread in the kernel is precise and burns
// no CPU (the runtime hands the thread's P to other goroutines meanwhile).
func preciseSleep(d time.Duration) {
	if d <= 0 {
		return
	}
	ts := syscall.NsecToTimespec(int64(d))
	for {
		var rem syscall.Timespec
		err := syscall.Nanosleep(&ts, &rem)
		if err != syscall.EINTR {
			return
		}
		ts = rem
	}
}
