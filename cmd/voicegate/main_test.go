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
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

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

type proc struct {
	cmd    *exec.Cmd
	stdout *bytes.Buffer
	addr   string
	logs   chan string
	done   chan error
}

// start runs the real binary and waits for its "listening" log line.
func start(t *testing.T, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), env...)
	p := &proc{cmd: cmd, stdout: &bytes.Buffer{}, logs: make(chan string, 1000), done: make(chan error, 1)}
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
	env := []string{"E2E_SECRET=e2e-secret-0123456789abcdef", "E2E_API_TOKEN=Bearer internal-token"}

	out, err := run(t, env, "config", "check", "--config", cfgPath)
	if err != nil || !strings.Contains(out, "OK") || strings.Contains(out, "e2e-secret") {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	p := start(t, env, "serve", "--config", cfgPath)
	url := "http://" + p.addr + "/webhook/vapi"
	out, err = run(t, env, "simulate", "--url", url, "--config", cfgPath, "--scenario", "all")
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
	if !strings.Contains(logs, `"msg":"draining"`) || !strings.Contains(logs, `"msg":"stopped"`) || strings.Contains(logs, "e2e-secret") {
		t.Errorf("shutdown logs:\n%s", logs)
	}
	db, err := sql.Open("sqlite", filepath.Join(dir, "data", "voicegate.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ended, reason string
	var cost float64
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
	time.Sleep(50 * time.Millisecond)
	m := regexp.MustCompile(`simulate --url (\S+) --secret ([0-9a-f]{64})`).FindStringSubmatch(p.stdout.String())
	if m == nil {
		t.Fatalf("dev output lacks the simulate line:\n%s", p.stdout.String())
	}
	out, err := run(t, nil, "simulate", "--url", m[1], "--secret", m[2], "--scenario", "all")
	if err != nil || !strings.Contains(out, "24 of 24 steps answered as expected") {
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
	env := []string{"E2E_TOKEN=e2e-bearer-token-0123456789"}
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
