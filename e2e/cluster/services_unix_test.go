//go:build unix

package cluster_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// need ends the test when a binary it needs is missing: a skip on a
// developer's machine, a failure under CI=true.
func need(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s: %v (CI=true: install the Debian packages redis-server and postgresql)", what, err)
	}
	t.Skipf("%s: %v (install the Debian packages redis-server and postgresql to run it)", what, err)
}

// freePort returns a loopback port nobody listened on a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// redisServer is a private redis-server for this test: its own port and
// directory, an append-only file fsynced on every write, so that a
// restart keeps its data as a managed Redis with persistence would.
type redisServer struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
}

func startRedis(t *testing.T) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	need(t, "redis-server", err)
	r := &redisServer{t: t, bin: bin, dir: t.TempDir(), port: freePort(t)}
	r.start()
	t.Cleanup(func() {
		if r.cmd != nil {
			r.cmd.Process.Kill()
			<-r.done
		}
	})
	return r
}

func (r *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(r.port) }

func (r *redisServer) start() {
	r.t.Helper()
	r.cmd = exec.Command(r.bin, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no",
		"--logfile", filepath.Join(r.dir, "redis.log"))
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("redis-server: %v", err)
	}
	done := make(chan struct{})
	r.done = done
	go func(c *exec.Cmd) { c.Wait(); close(done) }(r.cmd)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if out, err := r.do("PING"); err == nil && out == "+PONG" {
			return
		}
		select {
		case <-done:
			r.t.Fatalf("redis-server exited at start:\n%s", tail(filepath.Join(r.dir, "redis.log")))
		default:
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("redis-server did not answer PING in 20 s:\n%s", tail(filepath.Join(r.dir, "redis.log")))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// do sends one inline command straight to the server (not through the
// proxy) and returns the first line of its answer.
func (r *redisServer) do(cmd string) (string, error) {
	c, err := net.DialTimeout("tcp", r.addr(), 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c, "%s\r\n", cmd); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// restart shuts Redis down (SHUTDOWN: the append-only file is flushed)
// and starts it again on the same port and directory.
func (r *redisServer) restart() {
	r.t.Helper()
	r.do("SHUTDOWN")
	select {
	case <-r.done:
	case <-time.After(20 * time.Second):
		r.t.Fatal("redis-server did not exit 20 s after SHUTDOWN")
	}
	r.start()
}

// dbsize is the number of keys Redis holds.
func (r *redisServer) dbsize() (int, error) {
	out, err := r.do("DBSIZE")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimPrefix(out, ":"))
}

// pgServer is a private PostgreSQL cluster made with initdb for this test,
// run with pg_ctl on its own port, its socket in its own directory.
type pgServer struct {
	t      *testing.T
	bin    string // the directory of initdb and pg_ctl
	dir    string // owned by the server's user
	data   string
	port   int
	asUser string // run as this user (PostgreSQL refuses root); "" : as we are
}

func startPostgres(t *testing.T) *pgServer {
	t.Helper()
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(bins) == 0 {
		if p, err := exec.LookPath("pg_ctl"); err == nil {
			bins = []string{p}
		}
	}
	if len(bins) == 0 {
		need(t, "PostgreSQL's pg_ctl and initdb", fmt.Errorf("not in /usr/lib/postgresql/*/bin or PATH"))
	}
	sort.Slice(bins, func(i, j int) bool { return pgVersion(bins[i]) > pgVersion(bins[j]) })
	s := &pgServer{t: t, bin: filepath.Dir(bins[0]), port: freePort(t)}
	_, err := os.Stat(filepath.Join(s.bin, "initdb"))
	need(t, "initdb", err)
	// The directory is not under t.TempDir (mode 0700, root's): the
	// server's user must be able to reach it.
	dir, err := os.MkdirTemp("", "voicegate-cluster-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s.dir, s.data = dir, filepath.Join(dir, "data")
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		need(t, "the postgres user (PostgreSQL refuses to run as root)", err)
		_, err = exec.LookPath("runuser")
		need(t, "runuser", err)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		s.asUser = "postgres"
	}
	if out, err := s.run("initdb", "-D", s.data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	opts := fmt.Sprintf("-p %d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s -c fsync=off -c max_connections=200", s.port, dir)
	if out, err := s.run("pg_ctl", "-D", s.data, "-o", opts, "-l", filepath.Join(dir, "pg.log"), "-w", "-t", "60", "start"); err != nil {
		t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, tail(filepath.Join(dir, "pg.log")))
	}
	t.Cleanup(func() { s.run("pg_ctl", "-D", s.data, "-m", "immediate", "-w", "stop") })
	return s
}

func pgVersion(path string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(path))))
	return v
}

func (s *pgServer) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// run runs one of PostgreSQL's programs, as the server's user.
func (s *pgServer) run(prog string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	path := filepath.Join(s.bin, prog)
	var cmd *exec.Cmd
	if s.asUser != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", s.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	cmd.Dir = s.dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// restart is pg_ctl restart -m fast: sessions ended, data kept.
func (s *pgServer) restart() {
	s.t.Helper()
	if out, err := s.run("pg_ctl", "-D", s.data, "-m", "fast", "-w", "-t", "60", "-l", filepath.Join(s.dir, "pg.log"), "restart"); err != nil {
		s.t.Fatalf("pg_ctl restart: %v\n%s\n%s", err, out, tail(filepath.Join(s.dir, "pg.log")))
	}
}

// tail is the end of a log file, for a failure message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}
