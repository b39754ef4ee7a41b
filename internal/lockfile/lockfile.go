// Package lockfile provides a portable, exclusive lock between processes:
// a file created with O_EXCL beside the file it guards (no flock, which
// Windows lacks), taken over when a process died holding it.
package lockfile

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// Lock takes path+".lock" (created exclusively: portable, no flock),
// waiting up to timeout; a lock older than stale is from a process that
// died and is taken over. It returns the unlock function.
func Lock(path string, timeout, stale time.Duration) (func(), error) {
	lock := path + ".lock"
	deadline := time.Now().Add(timeout)
	for {
		f, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err == nil {
			fmt.Fprintf(f, "%d\n", os.Getpid())
			f.Close()
			return func() { os.Remove(lock) }, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("lock %s: %w", lock, err)
		}
		if fi, err := os.Stat(lock); err == nil && time.Since(fi.ModTime()) > stale {
			os.Remove(lock)
			continue
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("lock %s: held by another process for %s (remove it if no voicegate command is running)", lock, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
