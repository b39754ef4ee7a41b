package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/vapiapi"
	"github.com/voicegate/voicegate/internal/vapiapi/vapitest"
)

// TestSecretRotation: the real binary with a managed webhook secret, and
// a stand-in for Vapi's API (Vapi is an external service; the stand-in
// keeps resources in memory and signs webhooks with whatever credential
// an assistant references, as Vapi does). A first rotation gives Vapi the
// secret; then, while a stream of webhooks signed by "Vapi" keeps
// arriving, a second rotation is killed (SIGKILL) halfway — Vapi failing
// to create the credential — and resumed: not one request fails its
// signature check, and after the grace period a request signed with the
// old secret is refused.
func TestSecretRotation(t *testing.T) {
	vapi := vapitest.New(t)
	const publicURL = "https://gw.example.com"
	managedAsst := vapi.Put(vapiapi.Assistant, vapiapi.Resource{"name": "Support", "server": map[string]any{"url": publicURL + "/webhook/vapi", "timeoutSeconds": 20},
		"model": map[string]any{"provider": "openai", "model": "gpt-4o", "temperature": 0.3}}).ID()
	number := vapi.Put(vapiapi.PhoneNumber, vapiapi.Resource{"provider": "twilio", "number": "+15550001111", "server": map[string]any{"url": publicURL + "/webhook/vapi"}}).ID()
	// Not this voicegate's: never repointed.
	other := vapi.Put(vapiapi.Assistant, vapiapi.Resource{"name": "Elsewhere", "server": map[string]any{"url": "https://other.example.com/hook"}}).ID()

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "voicegate.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
server: {shutdown_delay: 0s}
vapi:
  public_url: %s
  auth: [{managed: true}]
  api: {base_url: %s, key: "${VAPI_API_KEY}", retries: 2}
`, filepath.Join(dir, "data"), publicURL, vapi.URL)), 0o600)
	env := []string{"VAPI_API_KEY=" + vapi.Key}
	p := start(t, env, "serve", "--config", cfgPath)
	url := "http://" + p.addr + "/webhook/vapi"

	// The first rotation hands Vapi a secret (the one serve created is
	// voicegate's alone until then).
	if out, err := run(t, env, "secrets", "rotate", "--grace", "1s", "--config", cfgPath); err != nil || !strings.Contains(out, "switched") {
		t.Fatalf("first rotation: %v\n%s", err, out)
	}
	time.Sleep(1100 * time.Millisecond) // its grace period: the next rotation finishes it first
	asst, _ := vapi.Get(vapiapi.Assistant, managedAsst)
	firstCred := asst.String("server.credentialId")
	if firstCred == "" {
		t.Fatalf("the assistant was not pointed at a credential: %v", asst)
	}
	if v, _ := asst.Lookup("model.temperature"); fmt.Sprint(v) != "0.3" {
		t.Fatalf("a dashboard setting was lost: %v", asst)
	}
	if n, _ := vapi.Get(vapiapi.PhoneNumber, number); n.String("server.credentialId") != firstCred {
		t.Fatalf("the phone number was not pointed at it: %v", n)
	}
	if o, _ := vapi.Get(vapiapi.Assistant, other); o.String("server.credentialId") != "" {
		t.Fatalf("an assistant of another server was changed: %v", o)
	}
	// An assistant elsewhere keeps the first credential: what it signs
	// stands for a request signed with the old secret.
	vapi.Set(vapiapi.Assistant, other, "server.credentialId", firstCred)

	// The stream: "Vapi" signs each webhook with the credential the
	// assistant references at that moment.
	var sent, failed atomic.Int64
	var failures sync.Map
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		client := &http.Client{Timeout: 10 * time.Second}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if i > 20000 {
				return
			}
			body := []byte(fmt.Sprintf(`{"message":{"type":"speech-update","status":"started","role":"user","timestamp":%d,"call":{"id":"rot-%d"}}}`, time.Now().UnixMilli(), i))
			h, err := vapi.Sign(managedAsst, body, time.Now())
			if err != nil {
				failures.Store(i, err.Error())
				failed.Add(1)
				continue
			}
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.Header = h
			resp, err := client.Do(req)
			sent.Add(1)
			if err != nil {
				failures.Store(i, err.Error())
				failed.Add(1)
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				failures.Store(i, resp.Status)
				failed.Add(1)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	defer func() { close(stop); wg.Wait() }()
	// Signed now with the old secret, sent after the grace period (its
	// timestamp still inside the tolerance).
	lateBody := []byte(fmt.Sprintf(`{"message":{"type":"speech-update","status":"started","role":"user","timestamp":%d,"call":{"id":"late"}}}`, time.Now().UnixMilli()))
	lateHeader, err := vapi.Sign(other, lateBody, time.Now().Add(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}

	// The second rotation, killed while Vapi fails to create the
	// credential (the client waiting out Retry-After).
	vapi.Inject(vapitest.Fault{Method: http.MethodPost, Kind: vapiapi.Credential, Status: 503, RetryAfter: "2", Times: 2})
	cmd := exec.Command(binary, "secrets", "rotate", "--grace", "4s", "--config", cfgPath)
	cmd.Env = append(os.Environ(), env...)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	var seen strings.Builder
	for sc.Scan() {
		seen.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "loaded") {
			break
		}
	}
	time.Sleep(300 * time.Millisecond) // inside the credential step
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	if !strings.Contains(seen.String(), "loaded") {
		t.Fatalf("the rotation did not reach the credential step:\n%s", seen.String())
	}
	out, err := run(t, env, "secrets", "status", "--config", cfgPath)
	if err != nil || !strings.Contains(out, `at step "loaded"; rotate --resume will create the Vapi credential`) {
		t.Fatalf("status after the kill: %v\n%s", err, out)
	}
	time.Sleep(time.Second) // requests keep arriving, signed with the old secret
	out, err = run(t, env, "secrets", "rotate", "--resume", "--wait", "--config", cfgPath)
	if err != nil || !strings.Contains(out, "switched") || !strings.Contains(out, "retired") {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	asst, _ = vapi.Get(vapiapi.Assistant, managedAsst)
	if c := asst.String("server.credentialId"); c == firstCred || c == "" {
		t.Fatalf("the assistant still references %v", c)
	}
	if _, ok := vapi.Get(vapiapi.Credential, firstCred); ok {
		t.Fatal("the old credential was not deleted")
	}
	creds := vapi.All(vapiapi.Credential)
	if len(creds) != 1 {
		t.Fatalf("%d credentials in Vapi, want 1 (a resumed step created a second?)", len(creds))
	}
	// Within a poll, the running server refuses the old secret.
	time.Sleep(3 * time.Second)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(lateBody))
	req.Header = lateHeader
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Fatalf("a request signed with the retired secret: %d", resp.StatusCode)
	}
	close(stop)
	wg.Wait()
	stop = make(chan struct{})
	if n := sent.Load(); n < 100 {
		t.Fatalf("only %d requests sent", n)
	}
	if n := failed.Load(); n != 0 {
		var first []string
		failures.Range(func(k, v any) bool { first = append(first, fmt.Sprint(k, ": ", v)); return len(first) < 5 })
		t.Fatalf("%d of %d requests failed during the rotations: %v", n, sent.Load(), first)
	}
	logs := p.stop(t)
	if strings.Contains(logs, vapi.Key) {
		t.Fatal("the Vapi API key reached the log")
	}
	out, _ = run(t, env, "audit", "list", "--data-dir", filepath.Join(dir, "data"))
	for _, ev := range []string{"secrets.rotate.added", "secrets.rotate.loaded", "secrets.rotate.credential", "secrets.rotate.switched", "secrets.rotate.retired"} {
		if strings.Count(out, ev) != 2 {
			t.Errorf("%s audited %d times, want 2 (two rotations):\n%s", ev, strings.Count(out, ev), out)
		}
	}
	t.Logf("%d signed requests during two rotations, none refused", sent.Load())
}
