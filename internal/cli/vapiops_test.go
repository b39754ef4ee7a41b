package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/secrets"
	"github.com/voicegate/voicegate/internal/sqlite"
	"github.com/voicegate/voicegate/internal/vapiapi"
	"github.com/voicegate/voicegate/internal/vapiapi/vapitest"
)

// TestVapiPlanApply runs voicegate vapi plan|apply against vapitest, which
// stands in for Vapi's API (an external service): plan changes nothing
// and exits 0, apply creates, a second apply sends no mutating request, a
// conflict exits 1; the key is never printed; a tool's header variables
// need not be set.
func TestVapiPlanApply(t *testing.T) {
	s := vapitest.New(t)
	dir := t.TempDir()
	org := filepath.Join(dir, "resources", "acme")
	write := func(rel, content string) {
		p := filepath.Join(org, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg := filepath.Join(dir, "voicegate.yaml")
	os.WriteFile(cfg, []byte(`data_dir: `+filepath.Join(dir, "data")+`
vapi:
  public_url: https://gw.example.com
  auth:
    - mode: hmac
      secrets: ["${UNSET_HMAC_SECRET}"]
  api:
    base_url: `+s.URL+`
    key: ${VAPI_API_KEY}
tools:
  - name: lookup_order
    description: Look up an order by its number.
    url: http://127.0.0.1:9/orders
    timeout: 4s
    headers:
      Authorization: {env: UNSET_TOOL_TOKEN}
    schema: {type: object, properties: {order: {type: string}}}
`), 0o600)
	write("assistants/support.md", `---
name: Support
firstMessage: Hello, how can I help?
model: {provider: openai, model: gpt-4o, toolIds: [lookup_order]}
serverMessages: [tool-calls, end-of-call-report, status-update, speech-update, transcript]
server:
  url: https://gw.example.com/webhook/vapi
  timeoutSeconds: 20
  backoffPlan: {type: exponential, maxRetries: 3, baseDelaySeconds: 1}
---
You are the support assistant of Example Corp.
`)
	env := func(k string) string { return map[string]string{"VAPI_API_KEY": s.Key}[k] }
	var printed strings.Builder
	run := func(args ...string) (string, string, int) {
		out, errOut, code := runCLI(t, env, args...)
		printed.WriteString(out + errOut)
		return out, errOut, code
	}
	plan := []string{"vapi", "plan", "-f", org, "--config", cfg, "--tools-from-config"}
	apply := []string{"vapi", "apply", "-f", org, "--config", cfg, "--tools-from-config"}

	out, errOut, code := run(plan...)
	if code != 0 || !strings.Contains(out, "+ assistant support: create") || !strings.Contains(out, "+ tool lookup_order [from voicegate's tools config]: create") ||
		!strings.Contains(out, "Plan: 2 to create") || s.Mutations() != 0 {
		t.Fatalf("plan: %d\n%s\n%s", code, out, errOut)
	}
	if out, _, code := run(append(apply, "--dry-run")...); code != 0 || !strings.Contains(out, "dry run: nothing was changed") || s.Mutations() != 0 {
		t.Fatalf("--dry-run: %d %s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); !os.IsNotExist(err) {
		t.Fatalf("a plan created the data directory: %v", err)
	}
	out, errOut, code = run(apply...)
	if code != 0 || !strings.Contains(out, "Apply: 2 created, 0 updated, 0 deleted.") {
		t.Fatalf("apply: %d\n%s\n%s", code, out, errOut)
	}
	as := s.All(vapiapi.Assistant)
	if len(as) != 1 || len(s.All(vapiapi.Tool)) != 1 {
		t.Fatalf("resources: %v", as)
	}
	s.ResetCounts()
	if out, errOut, code := run(apply...); code != 0 || s.Mutations() != 0 {
		t.Fatalf("second apply: %d, %d mutations\n%s\n%s", code, s.Mutations(), out, errOut)
	}
	// A conflict: exit 1, nothing changed.
	s.Set(vapiapi.Assistant, as[0].ID(), "firstMessage", "Dashboard")
	write("assistants/support.md", strings.Replace(mustRead(t, filepath.Join(org, "assistants/support.md")), "Hello, how can I help?", "Files", 1))
	if out, _, code := run(plan...); code != 0 || !strings.Contains(out, "CONFLICT") {
		t.Fatalf("plan with a conflict: %d %s", code, out)
	}
	s.ResetCounts()
	if _, errOut, code := run(apply...); code != 1 || !strings.Contains(errOut, "apply refused: 1 field(s) changed both in Vapi and in the files") || s.Mutations() != 0 {
		t.Fatalf("apply with a conflict: %d %s", code, errOut)
	}
	if _, _, code := run(append(apply, "--overwrite")...); code != 0 {
		t.Fatal("--overwrite")
	}
	// Errors.
	for _, args := range [][]string{{"vapi", "plan", "--config", cfg}, {"vapi", "plan", "-f", org}, append(plan, "--overwrite"), {"vapi", "apply", "-f", org, "--config", cfg, "extra"}} {
		if _, _, code := run(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	bad := func(k string) string { return map[string]string{"VAPI_API_KEY": "wrong-key-0123456789"}[k] }
	if _, errOut, code := runCLI(t, bad, plan...); code != 1 || !strings.Contains(errOut, "401 Unauthorized: Invalid Key") || strings.Contains(errOut, "wrong-key-0123456789") {
		t.Fatalf("a wrong key: %d %s", code, errOut)
	}
	if _, errOut, code := runCLI(t, nil, plan...); code != 1 || !strings.Contains(errOut, "VAPI_API_KEY is not set") {
		t.Fatalf("no key: %d %s", code, errOut)
	}
	if strings.Contains(printed.String(), s.Key) {
		t.Fatal("the key was printed")
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestVapiWebhooksWiring: a rotation gets Vapi's API from vapi.api and
// this voicegate's URL from vapi.public_url and vapi.path.
func TestVapiWebhooksWiring(t *testing.T) {
	cfg := config.Default()
	if v, err := vapiWebhooks(&opened{cfg: cfg}); v != nil || err != nil {
		t.Fatalf("no key: %v %v", v, err)
	}
	cfg.Vapi.API.Key = "sk-0123456789"
	if _, err := vapiWebhooks(&opened{cfg: cfg}); err == nil || !strings.Contains(err.Error(), "vapi.public_url is not set") {
		t.Fatalf("no public_url: %v", err)
	}
	cfg.Vapi.PublicURL = "https://gw.example.com"
	v, err := vapiWebhooks(&opened{cfg: cfg})
	if w, ok := v.(*vapiapi.Webhooks); err != nil || !ok || w.URL != "https://gw.example.com/webhook/vapi" {
		t.Fatalf("%#v %v", v, err)
	}
}

// TestVapiApplyManagedCredential: with a managed vapi.auth entry, the
// first apply creates the managed secret (and the keyring: serve need not
// have run) and a Vapi credential holding it, and points the assistant
// served by this voicegate at it; a plan before that says nothing exists
// yet and changes nothing; a second apply sends no mutating request; what
// "Vapi" then signs verifies with the secret voicegate keeps. vapitest
// stands in for Vapi's API (an external service).
func TestVapiApplyManagedCredential(t *testing.T) {
	s := vapitest.New(t)
	dir := t.TempDir()
	org := filepath.Join(dir, "acme")
	os.MkdirAll(filepath.Join(org, "assistants"), 0o755)
	os.WriteFile(filepath.Join(org, "assistants", "support.yml"), []byte(`name: Support
model: {provider: openai, model: gpt-4o}
serverMessages: [tool-calls, end-of-call-report, status-update, speech-update, transcript]
server: {url: https://gw.example.com/webhook/vapi, timeoutSeconds: 20, backoffPlan: {type: fixed, maxRetries: 2, baseDelaySeconds: 1}}
`), 0o644)
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "voicegate.yaml")
	os.WriteFile(cfg, []byte("data_dir: "+data+"\nvapi:\n  public_url: https://gw.example.com\n  auth: [{managed: true}]\n  api:\n    base_url: "+s.URL+"\n    key: ${VAPI_API_KEY}\n"), 0o600)
	env := func(k string) string { return map[string]string{"VAPI_API_KEY": s.Key}[k] }
	if out, errOut, code := runCLI(t, env, "vapi", "plan", "-f", org, "--config", cfg); code != 0 || s.Mutations() != 0 {
		t.Fatalf("plan: %d\n%s\n%s", code, out, errOut)
	}
	out, errOut, code := runCLI(t, env, "vapi", "apply", "-f", org, "--config", cfg)
	if code != 0 {
		t.Fatalf("apply: %d\n%s\n%s", code, out, errOut)
	}
	as := s.All(vapiapi.Assistant)
	creds := s.All(vapiapi.Credential)
	if len(as) != 1 || len(creds) != 1 || as[0].String("server.credentialId") != creds[0].ID() {
		t.Fatalf("assistant %v, credentials %v", as, creds)
	}
	if st, err := os.Stat(filepath.Join(data, "keyring.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("keyring: %v", err)
	}
	s.ResetCounts()
	if out, errOut, code := runCLI(t, env, "vapi", "apply", "-f", org, "--config", cfg); code != 0 || s.Mutations() != 0 {
		t.Fatalf("second apply: %d, %d mutations\n%s\n%s", code, s.Mutations(), out, errOut)
	}
	// Every apply is audited; one at a time per org.
	if out, _, _ := runCLI(t, env, "audit", "list", "--data-dir", data); strings.Count(out, "vapi.apply") != 2 || !strings.Contains(out, "1 created, 0 updated, 0 deleted") {
		t.Fatalf("audit:\n%s", out)
	}
	db, err := sqlite.Open(context.Background(), data, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	db.TakeLease(context.Background(), "vapi.apply:acme", "someone", time.Now(), time.Now().Add(time.Minute))
	db.Close()
	if _, errOut, code := runCLI(t, env, "vapi", "apply", "-f", org, "--config", cfg); code != 1 || !strings.Contains(errOut, "another voicegate vapi apply of org acme is running") {
		t.Fatalf("a concurrent apply: %d %s", code, errOut)
	}
	// The credential holds the secret voicegate verifies with.
	c, err := config.LoadSecrets(cfg, config.Options{Getenv: env})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"message":{"type":"status-update","status":"ringing"}}`)
	h, err := s.Sign(as[0].ID(), body, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	status, _, _ := runCLI(t, env, "secrets", "status", "--config", cfg)
	if !strings.Contains(status, "generation 1") || !strings.Contains(status, creds[0].ID()) {
		t.Fatalf("status:\n%s", status)
	}
	o, err := openData(context.Background(), cfg, "", "test", env, config.LoadSecrets, false)
	if err != nil {
		t.Fatal(err)
	}
	defer o.close()
	all, err := secrets.New(secrets.Deps{Store: o.store.(secrets.Store), Keys: o.keys}).Secrets(context.Background())
	if err != nil || len(all) != 1 {
		t.Fatal(all, err)
	}
	src := &auth.SecretSource{}
	src.Set([]confval.Secret{{Value: all[0].Value}}, 1)
	chain, err := auth.New([]auth.Config{c.Vapi.Auth[0]}, src)
	if err != nil {
		t.Fatal(err)
	}
	if err := chain.Verify(&auth.Request{Method: "POST", Header: h, Body: body}, time.Now()); err != nil {
		t.Fatalf("what Vapi signs does not verify: %v", err)
	}
}
