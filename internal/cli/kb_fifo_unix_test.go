//go:build unix

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKBAddSkipsNonRegularFiles: a FIFO (or a device) named like a
// document in a directory added is reported, never read: opening a FIFO
// blocks until a writer comes, and kb add hung.
func TestKBAddSkipsNonRegularFiles(t *testing.T) {
	_, cfg := kbReviewSetup(t, "      handbook: {}")
	docs := t.TempDir()
	os.WriteFile(filepath.Join(docs, "a.md"), []byte("# A\n\nAlpha text.\n"), 0o600)
	if err := syscall.Mkfifo(filepath.Join(docs, "pipe.md"), 0o600); err != nil {
		t.Skip("no FIFO here:", err)
	}
	type result struct {
		out, errOut string
		code        int
	}
	done := make(chan result, 1)
	go func() {
		out, errOut, code := runCLI(t, nil, "kb", "add", "handbook", docs, "--config", cfg)
		done <- result{out, errOut, code}
	}()
	select {
	case r := <-done:
		if r.code != 1 || !strings.Contains(r.out, "added a.md") || !strings.Contains(r.errOut, "pipe.md") {
			t.Fatalf("%d %s %s", r.code, r.out, r.errOut)
		}
	case <-time.After(10 * time.Second):
		// Unblock the reader so that the test ends.
		if f, err := os.OpenFile(filepath.Join(docs, "pipe.md"), os.O_WRONLY, 0); err == nil {
			f.Close()
		}
		<-done
		t.Fatal("kb add hung on a FIFO")
	}
}
