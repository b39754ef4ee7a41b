package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/demoapi"
	_ "modernc.org/sqlite"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "voicegate-e2e")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "voicegate")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// lockedBuffer is the child's stdout: written by exec's copier while the
// test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

type proc struct {
	cmd    *exec.Cmd
	stdout *lockedBuffer
	addr   string
	logs   chan string
	done   chan error
}

// start runs the real binary and waits for its "listening" log line.
func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{cmd: cmd, stdout: &lockedBuffer{}, logs: make(chan string, 1000), done: make(chan error, 1)}
	cmd.Stdout = p.stdout
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			select {
			case p.logs <- line:
			default:
			}
			var l struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "listening" {
				addrc <- l.Addr
			}
		}
		p.done <- cmd.Wait()
	}()
	select {
	case p.addr = <-addrc:
	case err := <-p.done:
		t.Fatalf("voicegate exited before listening: %v\n%s", err, drain(p.logs))
	case <-time.After(20 * time.Second):
		t.Fatal("voicegate did not start")
	}
	return p
}

func drain(c chan string) string {
	var b strings.Builder
	for {
		select {
		case l := <-c:
			b.WriteString(l + "\n")
		default:
			return b.String()
		}
	}
}

func (p *proc) stop(t *testing.T) string {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit after SIGTERM")
	}
	return drain(p.logs)
}

func run(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestEndToEnd starts the real binary on :0 with a real internal HTTP API for
// its tool, plays simulate's full call and security scenarios against it, and
// checks what was persisted, then drains on SIGTERM.
func TestEndToEnd(t *testing.T) {
	var hits atomic.Int32
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.Header.Get("Authorization") != "Bearer internal-token" {
			http.Error(w, "no", http.StatusForbidden)
			return
		}
		demoapi.Handler().ServeHTTP(w, r)
	}))
	defer api.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "voicegate.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
listen: 127.0.0.1:0
data_dir: %s/data
vapi:
  max_body_bytes: 65536
  public_url: https://voice.example.test/webhook/vapi
  auth:
    - mode: hmac
      secrets: ["${E2E_SECRET}"]
  assistant_request:
    default: {assistant_id: asst-e2e}
tools:
  - name: getAppointment
    url: %s/appointments
    headers: {Authorization: {env: E2E_API_TOKEN}}
    schema: {type: object, required: [date], properties: {date: {type: string}}}
`, dir, api.URL)), 0o600)
	env := []string{"E2E_SECRET=e2e-Rk7Wm2Qz9Xp4Lt8Vn3Bh6", "E2E_API_TOKEN=Bearer internal-token"}

	out, err := run(t, env, "config", "check", "--config", cfgPath)
	if err != nil || !strings.Contains(out, "OK") || strings.Contains(out, "e2e-Rk7Wm2Qz9Xp4Lt8Vn3Bh6") {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	p := start(t, env, "serve", "--config", cfgPath)
	url := "http://" + p.addr + "/webhook/vapi"
	// The smoke test after a rollout: a dry run needs only the credential
	// it signs with (not the tool's token), checks the tool's arguments
	// against its schema, and leaves no trace.
	signOnly := []string{"E2E_SECRET=e2e-Rk7Wm2Qz9Xp4Lt8Vn3Bh6"}
	out, err = run(t, signOnly, "simulate", "--url", url, "--config", cfgPath, "--scenario", "all", "--tool", "getAppointment", "--args", `{"date":"2026-12-01"}`)
	if err != nil || !strings.Contains(out, "dry run; result Dry run: getAppointment was not called") || !strings.Contains(out, "answered with assistantId") {
		t.Fatalf("dry-run simulate: %v\n%s", err, out)
	}
	if out, err := run(t, signOnly, "simulate", "--url", url, "--config", cfgPath, "--tool", "getAppointment", "--args", `{"day":"monday"}`); err == nil || !strings.Contains(out, "Invalid arguments for getAppointment") {
		t.Fatalf("dry run with arguments the schema refuses must fail: %v\n%s", err, out)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("a dry run called the internal API %d times", n)
	}
	out, err = run(t, env, "simulate", "--url", url, "--config", cfgPath, "--scenario", "all", "--tool", "getAppointment", "--args", `{"date":"2026-12-01"}`, "--effects")
	if err != nil {
		t.Fatalf("simulate: %v\n%s", err, out)
	}
	for _, want := range []string{"answered with assistantId", "result {", "answered from the replay cache", "oversized body", "stale timestamp"} {
		if !strings.Contains(out, want) {
			t.Errorf("simulate output lacks %q:\n%s", want, out)
		}
	}
	if hits.Load() != 1 {
		t.Errorf("internal API hit %d times, want 1", hits.Load())
	}
	// A wrong secret makes simulate fail loudly.
	if out, err := run(t, nil, "simulate", "--url", url, "--secret", "not-the-secret-0123456789"); err == nil || !strings.Contains(out, "FAIL") {
		t.Errorf("simulate with a wrong secret must fail:\n%s", out)
	}
	logs := p.stop(t)
	if !strings.Contains(logs, `"msg":"draining"`) || !strings.Contains(logs, `"msg":"stopped"`) || strings.Contains(logs, "e2e-Rk7Wm2Qz9Xp4Lt8Vn3Bh6") {
		t.Errorf("shutdown logs:\n%s", logs)
	}
	// The start-up line names the URL Vapi calls, not the listener's.
	if !strings.Contains(logs, `"msg":"listening"`) || !strings.Contains(logs, `"url":"https://voice.example.test/webhook/vapi"`) {
		t.Errorf("start-up line lacks the public URL:\n%s", logs)
	}
	// One line when the call starts, with the routed assistant, and one
	// when it ends; the dry runs log neither.
	if strings.Count(logs, `"msg":"call started"`) != 2 || !strings.Contains(logs, `"assistant":"asst-e2e","rule":"default"`) || strings.Count(logs, `"msg":"call ended"`) != 1 {
		t.Errorf("call lines:\n%s", logs)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "data", "voicegate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ended, reason string
	var cost float64
	var rows int
	// The real run stores its call and the security scenario's signed
	// request; the two dry runs before it must have stored nothing.
	if err := db.QueryRow(`SELECT count(*) FROM calls`).Scan(&rows); err != nil || rows != 2 {
		t.Fatalf("%d calls stored (%v), want 2: the dry runs must store nothing", rows, err)
	}
	if err := db.QueryRow(`SELECT status, ended_reason, cost FROM calls WHERE ended_at IS NOT NULL`).Scan(&ended, &reason, &cost); err != nil {
		t.Fatal(err)
	}
	if ended != "ended" || reason != "customer-ended-call" || cost != 0.042 {
		t.Fatalf("persisted call: %s %s %v", ended, reason, cost)
	}
}

// TestDevMode is the README's first command: serve --dev needs no config,
// prints how to sign, and a simulated call against it succeeds.
func TestDevMode(t *testing.T) {
	dir := t.TempDir()
	p := start(t, nil, "serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir", dir)
	re := regexp.MustCompile(`simulate --url (\S+) --secret ([0-9a-f]{64})( .*)?\n`)
	m := re.FindStringSubmatch(p.stdout.String())
	for deadline := time.Now().Add(5 * time.Second); m == nil && time.Now().Before(deadline); m = re.FindStringSubmatch(p.stdout.String()) {
		time.Sleep(10 * time.Millisecond)
	}
	if m == nil {
		t.Fatalf("dev output lacks the simulate line:\n%s", p.stdout.String())
	}
	// The printed line, as printed: a real call with the demo tool.
	args := append([]string{"simulate", "--url", m[1], "--secret", m[2], "--scenario", "all"}, strings.Fields(m[3])...)
	out, err := run(t, nil, args...)
	if err != nil || !strings.Contains(out, "24 of 24 steps answered as expected") || !strings.Contains(out, "result {") {
		t.Fatalf("simulate against --dev: %v\n%s", err, out)
	}
	p.stop(t)
	fi, err := os.Stat(filepath.Join(dir, "dev-webhook-secret"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("dev secret file: %v %v", fi.Mode(), err)
	}
}

// TestDevModeIPv6Loopback: --dev accepts the IPv6 loopback.
func TestDevModeIPv6Loopback(t *testing.T) {
	p := start(t, nil, "serve", "--dev", "--listen", "[::1]:0", "--data-dir", t.TempDir())
	if !strings.HasPrefix(p.addr, "[::1]:") {
		t.Fatalf("listening on %s", p.addr)
	}
	p.stop(t)
}

// TestTLSDeployment runs the binary with TLS from certificate files and
// smoke-tests it with simulate trusting only the deployment's CA.
func TestTLSDeployment(t *testing.T) {
	dir := t.TempDir()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "voicegate-e2e"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cfgPath := filepath.Join(dir, "voicegate.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
listen: 127.0.0.1:0
data_dir: %s/data
tls: {cert_file: %s, key_file: %s, min_version: "1.3"}
vapi:
  auth: [{mode: bearer, secrets: ["${E2E_TOKEN}"]}]
  assistant_request: {default: {assistant_id: asst-tls}}
`, dir, certPath, keyPath)), 0o600)
	env := []string{"E2E_TOKEN=e2e-bearer-Vm4Qx8Kz2Rn7Tp3W"}
	p := start(t, env, "serve", "--config", cfgPath)
	url := "https://" + p.addr + "/webhook/vapi"
	out, err := run(t, env, "simulate", "--url", url, "--config", cfgPath, "--ca-file", certPath, "--scenario", "security")
	if err != nil || !strings.Contains(out, "answered from the replay cache") {
		t.Fatalf("simulate over TLS: %v\n%s", err, out)
	}
	// Without the CA the certificate is not trusted: nothing is sent in clear or accepted blindly.
	out, err = run(t, env, "simulate", "--url", url, "--config", cfgPath)
	if err == nil || !strings.Contains(out, "certificate") {
		t.Fatalf("simulate without the CA must fail on the certificate: %v\n%s", err, out)
	}
	p.stop(t)
}

// damagedDataDir returns a data directory whose database file is not a
// database (a disk error, a bad restore).
func damagedDataDir(t *testing.T) string {
	dir := t.TempDir()
	junk := bytes.Repeat([]byte("not a database, a torn restore "), 512)
	if err := os.WriteFile(filepath.Join(dir, "voicegate.db"), junk, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestStartupRefusals(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(body), 0o600)
		return p
	}
	cases := []struct {
		name string
		args []string
		want string
		code int
	}{
		{"no credential", []string{"serve", "--config", write("none.yaml", "listen: 127.0.0.1:0\n")}, "no credential configured", 1},
		{"bad config", []string{"config", "check", "--config", write("bad.yaml", "listen: x\nvapi: {path: nope}\nfoo: 1\n")}, "problem(s)", 1},
		{"missing file", []string{"serve", "--config", filepath.Join(dir, "absent.yaml")}, "no such file", 1},
		{"no mode", []string{"serve"}, "exactly one of --config FILE or --dev", 2},
		{"dev on public address", []string{"serve", "--dev", "--listen", "0.0.0.0:0"}, "loopback only", 2},
		{"dev on a public IPv6 address", []string{"serve", "--dev", "--listen", "[::]:0"}, "loopback only", 2},
		{"unknown command", []string{"frobnicate"}, "unknown command", 2},
		{"simulate without secret", []string{"simulate", "--url", "http://127.0.0.1:1/x"}, "needs --secret", 2},
		{"simulate args without tool", []string{"simulate", "--url", "http://127.0.0.1:1/x", "--secret", "0123456789abcdef0123", "--args", `{"a":1}`}, "--args needs --tool", 2},
		{"simulate args not an object", []string{"simulate", "--url", "http://127.0.0.1:1/x", "--secret", "0123456789abcdef0123", "--tool", "t", "--args", `[1]`}, "must be a JSON object", 2},
		{"placeholder secret", []string{"serve", "--config", write("weak.yaml", "listen: 127.0.0.1:0\nvapi: {auth: [{mode: bearer, secrets: [bearer-token-000000000000]}]}\n")},
			"vapi.auth[0].secrets[0]: secret refused: it is a published example value", 1},
		{"dangerous settings", []string{"serve", "--config", write("danger.yaml", "listen: 127.0.0.1:0\nserver: {read_header_timeout: 10m, max_header_bytes: 100000000}\nvapi:\n  replay: {window: 1ms, capacity: 2000000000}\n  auth: [{mode: hmac, tolerance: 8760h, secrets: [k3J9xQ2mV7pL5nR8wT4z]}]\n")},
			"6 problems", 1},
		{"damaged database", []string{"serve", "--config", write("damaged.yaml", "listen: 127.0.0.1:0\ndata_dir: "+damagedDataDir(t)+"\nvapi: {auth: [{mode: hmac, secrets: [k3J9xQ2mV7pL5nR8wT4z]}]}\n")},
			"is not a SQLite database", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(t, nil, tc.args...)
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %v, output:\n%s\nwant code %d mentioning %q", err, out, tc.code, tc.want)
			}
		})
	}
	// An unreachable server makes simulate fail with a clear message.
	out, err := run(t, nil, "simulate", "--url", "http://127.0.0.1:1/webhook/vapi", "--secret", "0123456789abcdef0123", "--timeout", "2s")
	if err == nil || !strings.Contains(out, "connection refused") {
		t.Fatalf("unreachable: %v\n%s", err, out)
	}
}

// TestReloadAndShutdownDelay: SIGHUP swaps the configuration without a
// restart (a rotated secret works at once), an invalid new configuration
// keeps the running one and says why, settings that need a restart are
// reported; SIGTERM fails readiness first and keeps serving for the
// shutdown delay before the listener closes.
func TestReloadAndShutdownDelay(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "voicegate.yaml")
	write := func(secretEnv, extra string) {
		os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
listen: 127.0.0.1:0
data_dir: %s/data
server: {shutdown_delay: 4s}
log: {level: info}
vapi:
  auth: [{mode: hmac, secrets: ["${%s}"]}]
  assistant_request: {default: {assistant_id: asst-reload}}
%s`, dir, secretEnv, extra)), 0o600)
	}
	env := []string{"OLD_SECRET=old-Hq4Zr8Km2Wx7Pn3L", "NEW_SECRET=new-Tv6Qx9Lm3Rk8Zp2W"}
	write("OLD_SECRET", "")
	p := start(t, env, "serve", "--config", cfgPath)
	url := "http://" + p.addr + "/webhook/vapi"
	simulate := func(secret string) error {
		_, err := run(t, nil, "simulate", "--url", url, "--secret", secret, "--scenario", "security")
		return err
	}
	if err := simulate("old-Hq4Zr8Km2Wx7Pn3L"); err != nil {
		t.Fatalf("before reload: %v", err)
	}
	waitLog := func(msg string) string {
		t.Helper()
		deadline := time.After(10 * time.Second)
		for {
			select {
			case l := <-p.logs:
				if strings.Contains(l, msg) {
					return l
				}
			case <-deadline:
				t.Fatalf("no log line %q", msg)
			}
		}
	}
	// Rotate: the new secret replaces the old one, and settings that need
	// a restart (data_dir; log.redact_pii, since the logger is built at
	// start-up) are reported and keep their running values.
	write("NEW_SECRET", "")
	next := strings.Replace(mustRead(t, cfgPath), "/data", "/other-data", 1)
	next = strings.Replace(next, "log: {level: info}", "log: {level: info, redact_pii: false}", 1)
	os.WriteFile(cfgPath, []byte(next), 0o600)
	p.cmd.Process.Signal(syscall.SIGHUP)
	if l := waitLog("need a restart"); !strings.Contains(l, "data_dir") || !strings.Contains(l, "log.redact_pii") {
		t.Fatalf("restart-only settings not reported: %s", l)
	}
	waitLog("configuration reloaded")
	if err := simulate("new-Tv6Qx9Lm3Rk8Zp2W"); err != nil {
		t.Fatalf("the rotated secret must work after SIGHUP: %v", err)
	}
	if err := simulate("old-Hq4Zr8Km2Wx7Pn3L"); err == nil {
		t.Fatal("the removed secret still works after SIGHUP")
	}
	// An invalid configuration is refused; the running one stays.
	write("NEW_SECRET", "tools: [{name: bad, url: ftp://x}]\n")
	p.cmd.Process.Signal(syscall.SIGHUP)
	if l := waitLog("configuration reload refused"); !strings.Contains(l, "tools[0].url") {
		t.Fatalf("refusal does not say why: %s", l)
	}
	if err := simulate("new-Tv6Qx9Lm3Rk8Zp2W"); err != nil {
		t.Fatalf("after a refused reload the running configuration must still answer: %v", err)
	}
	// SIGTERM: /readyz fails while requests are still served, then exit 0.
	p.cmd.Process.Signal(syscall.SIGTERM)
	waitLog("readiness failing")
	resp, err := http.Get("http://" + p.addr + "/readyz")
	if err != nil {
		t.Fatalf("the listener must stay open during the shutdown delay: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("readyz during the shutdown delay: %d, want 503", resp.StatusCode)
	}
	if err := simulate("new-Tv6Qx9Lm3Rk8Zp2W"); err != nil {
		t.Fatalf("requests must still be served during the shutdown delay: %v", err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no exit after the shutdown delay")
	}
}

func mustRead(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// vapiSender posts messages to a running voicegate signed as Vapi signs
// them with an HMAC credential (the config's `mode: hmac` entry with
// secret).
type vapiSender struct {
	t      *testing.T
	p      *proc
	url    string
	signer *auth.Signer
	mu     sync.Mutex
	lastMS int64
	// hide, when set, masks secrets in the logs printed on a failure.
	hide func(string) string
}

func newVapiSender(t *testing.T, p *proc, secret string) *vapiSender {
	t.Helper()
	a := auth.Config{Mode: auth.ModeHMAC, Secrets: []confval.Secret{{Value: secret}}}
	a.Complete()
	signer, err := auth.NewSigner(a, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &vapiSender{t: t, p: p, url: "http://" + p.addr + "/webhook/vapi", signer: signer}
}

// timestamp is a message timestamp in milliseconds, later than the last
// one it returned: two messages are never the same bytes, which the
// replay cache would answer without handling.
func (s *vapiSender) timestamp() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastMS = max(time.Now().UnixMilli(), s.lastMS+1)
	return s.lastMS
}

// post sends body signed now and returns the status and the answer.
func (s *vapiSender) post(body []byte) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	s.signer.Sign(req.Header, http.MethodPost, s.url, body, time.Now())
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Do(req)
	if err != nil {
		logs := drain(s.p.logs)
		if s.hide != nil {
			logs = s.hide(logs)
		}
		s.t.Fatalf("post: %v\n%s", err, logs)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(out)
}

// auditEntry is one line of voicegate audit list.
type auditEntry struct{ event, subject, detail string }

// auditList reads the audit log of dataDir with the audit list command
// (while serve runs), the entries of event only, in order.
func auditList(t *testing.T, dataDir, event string) (entries []auditEntry, out string) {
	t.Helper()
	out, err := run(t, nil, "audit", "list", "--data-dir", dataDir, "--limit", "10000")
	if err != nil {
		t.Fatalf("audit list: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "SEQ ") {
		t.Fatalf("audit list output:\n%s", out)
	}
	// Columns are aligned with spaces; each starts where its header does.
	h := lines[0]
	cols := []int{strings.Index(h, "EVENT"), strings.Index(h, "SUBJECT"), strings.Index(h, "DETAIL"), strings.Index(h, "ACTOR")}
	for _, l := range lines[1:] {
		if len(l) < cols[3] {
			t.Fatalf("audit list line %q", l)
		}
		e := auditEntry{strings.TrimSpace(l[cols[0]:cols[1]]), strings.TrimSpace(l[cols[1]:cols[2]]), strings.TrimSpace(l[cols[2]:cols[3]])}
		if e.event == event {
			entries = append(entries, e)
		}
	}
	return entries, out
}
