//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package bench

import "time"

// selfCPU is not measured on this platform (the generator's own cost is
// then reported as zero).
func selfCPU() time.Duration { return 0 }

func selfCPUTimes() (user, sys time.Duration) { return 0, 0 }
