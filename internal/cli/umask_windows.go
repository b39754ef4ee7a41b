//go:build windows

package cli

// privateFiles does nothing on Windows, which has no umask: files there
// inherit the ACL of the data directory, which the operator restricts.
func privateFiles() {}
