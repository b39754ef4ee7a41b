//go:build unix

package cluster_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// replica is one `voicegate serve` process on a fixed loopback port; it
// can be killed, drained and started again on the same port. Each start
// is a new incarnation (gen).
type replica struct {
	dataDir string // its own data_dir
	t       *testing.T
	i       int
	port    int
	cfg     string
	env     []string

	startErr error    // of the first start, when made on another goroutine
	logFile  *os.File // every incarnation's log, when VOICEGATE_CLUSTER_LOGS names a directory

	mu       sync.Mutex
	gen      int
	cmd      *exec.Cmd
	done     chan struct{}     // closed when the incarnation's process has exited and its logs are read
	killed   map[int]time.Time // when each incarnation killed with SIGKILL was
	logs     []string          // the last lines of every incarnation's log
	errLines int               // error-level lines, every incarnation
}

func (r *replica) addr() string { return fmt.Sprintf("127.0.0.1:%d", r.port) }

// start runs a new incarnation and waits for its "listening" line.
func (r *replica) start() {
	r.t.Helper()
	if err := r.startE(); err != nil {
		r.t.Fatal(err)
	}
}

// startE is start returning its error (for another goroutine than the
// test's).
func (r *replica) startE() error {
	cmd := exec.Command(binary, "serve", "--config", r.cfg)
	cmd.Env = append(os.Environ(), r.env...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("replica %d: %w", r.i, err)
	}
	listening := make(chan struct{})
	done := make(chan struct{})
	r.mu.Lock()
	r.gen++
	gen := r.gen
	r.cmd, r.done = cmd, done
	r.mu.Unlock()
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := false
		for sc.Scan() {
			line := sc.Text()
			var l struct{ Level, Msg string }
			json.Unmarshal([]byte(line), &l)
			r.mu.Lock()
			if r.logFile != nil {
				fmt.Fprintf(r.logFile, "[%d.%d] %s\n", r.i, gen, line)
			}
			r.logs = append(r.logs, fmt.Sprintf("[%d.%d] %s", r.i, gen, line))
			if len(r.logs) > 400 {
				r.logs = r.logs[len(r.logs)-300:]
			}
			if l.Level == "ERROR" {
				r.errLines++
			}
			r.mu.Unlock()
			if l.Msg == "listening" && !once {
				once = true
				close(listening)
			}
		}
		cmd.Wait()
	}()
	select {
	case <-listening:
		return nil
	case <-done:
		return fmt.Errorf("replica %d exited before listening:\n%s", r.i, r.tail(40))
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		<-done
		return fmt.Errorf("replica %d not listening 60 s after start:\n%s", r.i, r.tail(40))
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (r *replica) kill() {
	r.t.Helper()
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	cmd.Process.Kill()
	r.mu.Lock()
	if r.killed == nil {
		r.killed = map[int]time.Time{}
	}
	r.killed[r.gen] = time.Now()
	r.mu.Unlock()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		r.t.Fatalf("replica %d still running 30 s after SIGKILL", r.i)
	}
}

// drain sends SIGTERM and waits for a clean exit (shutdown delay, then
// in-flight requests finished).
func (r *replica) drain() {
	r.t.Helper()
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		r.t.Fatalf("replica %d still running 60 s after SIGTERM:\n%s", r.i, r.tail(40))
	}
	if !cmd.ProcessState.Success() {
		r.t.Errorf("replica %d exited with %v after SIGTERM:\n%s", r.i, cmd.ProcessState, r.tail(40))
	}
}

// stop ends the replica at the end of the test (SIGKILL: nothing is
// checked any more) and waits for it.
func (r *replica) stop() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// incarnation is the current generation.
func (r *replica) incarnation() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.gen
}

// killedIn reports whether incarnation gen was killed after since: a
// request sent to it at since was in flight when it died.
func (r *replica) killedIn(gen int, since time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.killed[gen]
	return ok && !at.Before(since)
}

// deadBefore reports whether incarnation gen had been killed or had
// exited before since: a request sent to it then never reached it.
func (r *replica) deadBefore(gen int, since time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, ok := r.killed[gen]
	return gen < r.gen || (ok && at.Before(since))
}

func (r *replica) tail(n int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := r.logs
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// runBinary runs a voicegate command to its end (at most a minute).
func runBinary(env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}
