//go:build unix

package cli

import "syscall"

// privateFiles makes every file the process creates from now on (the
// database, its write-ahead log and journal) readable by its owner only.
func privateFiles() { syscall.Umask(0o077) }
