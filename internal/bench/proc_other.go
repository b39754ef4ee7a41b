//go:build !linux

package bench

import (
	"errors"
	"time"
)

var errNoProc = errors.New("reading another process's CPU time and memory needs Linux's /proc")

func procCPU(pid int) (time.Duration, error) { return 0, errNoProc }

func procMem(pid int) (rss, peak int64, err error) { return 0, 0, errNoProc }
