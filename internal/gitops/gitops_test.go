package gitops_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/gitops"
	"github.com/voicegate/voicegate/internal/tools"
	"github.com/voicegate/voicegate/internal/vapiapi"
	"github.com/voicegate/voicegate/internal/vapiapi/vapitest"
)

// These tests run plan and apply against vapitest, which stands in for
// Vapi's API (an external service).

const gw = "https://gw.example.com/webhook/vapi"

// fakeCreds is voicegate's managed webhook credential: created in the
// stand-in on the first apply that needs it.
type fakeCreds struct {
	mu      sync.Mutex
	s       *vapitest.Server
	id      string
	creates int
}

func (f *fakeCreds) CredentialID(_ context.Context, create bool) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.id == "" && create {
		f.creates++
		f.id = f.s.Put(vapiapi.Credential, vapiapi.Resource{"provider": "webhook", "name": "voicegate-webhook-whs_1",
			"authenticationPlan": vapiapi.HMACPlan("0123456789abcdef0123456789abcdef")}).ID()
	}
	return f.id, nil
}

type env struct {
	t     *testing.T
	vapi  *vapitest.Server
	api   *vapiapi.Client
	store gitops.Store
	root  string // the gitops repository
	dir   string // its org folder: root/resources/acme
	creds *fakeCreds
	out   bytes.Buffer
}

func newEnv(t *testing.T, store gitops.Store) *env {
	t.Helper()
	s := vapitest.New(t)
	c := vapiapi.Config{BaseURL: s.URL, Key: vapiapi.Key(s.Key)}
	c.Complete()
	api, err := vapiapi.New(c, vapiapi.Options{Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }})
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	e := &env{t: t, vapi: s, api: api, store: store, root: root, dir: filepath.Join(root, "resources", "acme"), creds: &fakeCreds{s: s}}
	os.MkdirAll(e.dir, 0o755)
	return e
}

func (e *env) write(rel, content string) {
	e.t.Helper()
	p := filepath.Join(e.dir, rel)
	os.MkdirAll(filepath.Dir(p), 0o755)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) remove(rel string) {
	if err := os.Remove(filepath.Join(e.dir, rel)); err != nil {
		e.t.Fatal(err)
	}
}

func voicegate() gitops.Voicegate {
	return gitops.Voicegate{URL: gw, ServerTimeout: 20 * time.Second, BargeIn: true, Tools: []tools.Config{
		{Name: "lookup_order", Description: "Look up an order by its number.", Timeout: confval.Duration(4 * time.Second),
			Schema: map[string]any{"type": "object", "properties": map[string]any{"order": map[string]any{"type": "string"}}, "required": []any{"order"}}},
		{Name: "get_balance", Timeout: confval.Duration(30 * time.Second), Async: true},
	}}
}

func (e *env) options(mod ...func(*gitops.Options)) gitops.Options {
	e.out.Reset()
	o := gitops.Options{Dir: e.dir, API: e.api, Store: e.store, Credentials: e.creds, Voicegate: voicegate(), Out: &e.out}
	for _, m := range mod {
		m(&o)
	}
	return o
}

func (e *env) plan(mod ...func(*gitops.Options)) (gitops.Summary, error) {
	return gitops.Plan(e.t.Context(), e.options(mod...))
}

func (e *env) apply(mod ...func(*gitops.Options)) (gitops.Summary, error) {
	return gitops.Apply(e.t.Context(), e.options(mod...))
}

func (e *env) mustApply(mod ...func(*gitops.Options)) gitops.Summary {
	e.t.Helper()
	s, err := e.apply(mod...)
	if err != nil {
		e.t.Fatalf("apply: %v\n%s", err, e.out.String())
	}
	return s
}

// only returns the one resource of a kind with this name.
func (e *env) only(kind vapiapi.Kind, name string) vapiapi.Resource {
	e.t.Helper()
	var found vapiapi.Resource
	for _, r := range e.vapi.All(kind) {
		if r.Name() == name || kind == vapiapi.Tool && r.String("function.name") == name {
			if found != nil {
				e.t.Fatalf("two %s named %s", kind, name)
			}
			found = r
		}
	}
	if found == nil {
		e.t.Fatalf("no %s named %s", kind, name)
	}
	return found
}

func prune(o *gitops.Options)     { o.Prune = true }
func overwrite(o *gitops.Options) { o.Overwrite = true }

const supportMD = `---
name: Support
firstMessage: Hello, how can I help?
model:
  provider: openai
  model: gpt-4o
  toolIds: [lookup_order]
artifactPlan:
  structuredOutputIds: [outcome]
serverMessages: [tool-calls, end-of-call-report, status-update, speech-update, transcript]
server:
  url: https://gw.example.com/webhook/vapi
  timeoutSeconds: 20
  backoffPlan: {type: exponential, maxRetries: 3, baseDelaySeconds: 1}
---
You are the support assistant of Example Corp.
`

const lookupYML = `type: function
function:
  name: lookup_order
  description: Look up an order by its number.
  parameters: {type: object, properties: {order: {type: string}}, required: [order]}
server:
  url: https://gw.example.com/webhook/vapi
  timeoutSeconds: 20
`

// writeOrg writes an org with one of each kind, referencing each other.
func (e *env) writeOrg() {
	e.write("assistants/support.md", supportMD)
	e.write("tools/lookup_order.yml", lookupYML)
	e.write("tools/handoff.yml", "type: handoff\ndestinations:\n  - type: assistant\n    assistantId: \"support ## the support line\"\n")
	e.write("structuredOutputs/outcome.yml", "name: outcome\nschema: {type: string, enum: [solved, escalated]}\nassistant_ids: [support]\n")
	e.write("squads/front.yml", "name: Front\nmembers:\n  - assistantId: support\n")
	e.write("phoneNumbers/main.yml", "provider: twilio\nnumber: \"+15550001111\"\ntwilioAccountSid: AC00000000000000000000000000000000\nsquadId: front\n")
}

// TestApplyIdempotent: the first apply creates everything with the
// references resolved (those to a resource created later set once it
// exists); a second apply sends no mutating request and plans nothing.
func TestApplyIdempotent(t *testing.T) {
	for _, st := range stores() {
		t.Run(st.name, func(t *testing.T) {
			e := newEnv(t, st.open(t))
			e.writeOrg()
			sum, err := e.plan()
			if err != nil {
				t.Fatalf("%v\n%s", err, e.out.String())
			}
			if sum.Create != 6 || e.vapi.Mutations() != 0 {
				t.Fatalf("plan: %+v, %d mutations\n%s", sum, e.vapi.Mutations(), e.out.String())
			}
			plan := e.out.String()
			for _, want := range []string{"+ assistant support: create", "    model.toolIds: [\"(tools/lookup_order: its id once apply creates it)\"]",
				"    server.credentialId: (voicegate's webhook credential: created by apply)", "Plan: 6 to create, 0 to update, 0 to delete, 0 unchanged."} {
				if !strings.Contains(plan, want) {
					t.Fatalf("plan lacks %q:\n%s", want, plan)
				}
			}
			sum = e.mustApply()
			if sum.Created != 6 || e.creds.creates != 1 {
				t.Fatalf("apply: %+v, credential created %d times\n%s", sum, e.creds.creates, e.out.String())
			}
			tool, as, so := e.only(vapiapi.Tool, "lookup_order"), e.only(vapiapi.Assistant, "Support"), e.only(vapiapi.StructuredOutput, "outcome")
			squad, number := e.only(vapiapi.Squad, "Front"), e.vapi.All(vapiapi.PhoneNumber)[0]
			handoff := e.vapi.All(vapiapi.Tool)
			checks := map[string][2]any{
				"assistant model.toolIds":      {as.String("model.toolIds"), ""},
				"assistant credential":         {as.String("server.credentialId"), e.creds.id},
				"assistant marker":             {as.String("metadata.managedBy") + " " + as.String("metadata.voicegateId"), "voicegate acme/assistants/support"},
				"assistant system prompt":      {as["model"].(map[string]any)["messages"].([]any)[0].(map[string]any)["content"], "You are the support assistant of Example Corp."},
				"tool credential":              {tool.String("server.credentialId"), e.creds.id},
				"squad member":                 {squad["members"].([]any)[0].(map[string]any)["assistantId"], as.ID()},
				"phone number squad":           {number.String("squadId"), squad.ID()},
				"structured output assistants": {toJSON(so["assistantIds"]), toJSON([]any{as.ID()})},
				"assistant structured outputs": {toJSON(as["artifactPlan"].(map[string]any)["structuredOutputIds"]), toJSON([]any{so.ID()})},
			}
			checks["assistant model.toolIds"] = [2]any{toJSON(as["model"].(map[string]any)["toolIds"]), toJSON([]any{tool.ID()})}
			for name, c := range checks {
				if c[0] != c[1] {
					t.Errorf("%s: %v, want %v", name, c[0], c[1])
				}
			}
			var handoffDest any
			for _, h := range handoff {
				if h["type"] == "handoff" {
					handoffDest = h["destinations"].([]any)[0].(map[string]any)["assistantId"]
				}
			}
			if handoffDest != as.ID() {
				t.Errorf("handoff destination %v, want %s", handoffDest, as.ID())
			}

			e.vapi.ResetCounts()
			sum = e.mustApply()
			if n := e.vapi.Mutations(); n != 0 || sum.Created+sum.Updated+sum.Deleted != 0 {
				t.Fatalf("second apply: %d mutating requests, %+v\n%s", n, sum, e.out.String())
			}
			if sum, _ := e.plan(); sum.Unchanged != 6 || sum.Create+sum.Update+sum.Delete+sum.Conflict != 0 {
				t.Fatalf("plan after apply: %+v\n%s", sum, e.out.String())
			}
			if !strings.Contains(e.out.String(), "= assistant support ("+as.ID()+"): no changes") {
				t.Fatalf("plan:\n%s", e.out.String())
			}
		})
	}
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestDashboardFieldsKept: what the dashboard set — a field the files do
// not have, inside an object the files change (model.temperature beside
// model.model), or unknown to voicegate — survives an apply of a change
// elsewhere; a dashboard change to a field the files have is kept too.
func TestDashboardFieldsKept(t *testing.T) {
	e := newEnv(t, stores()[0].open(t))
	e.writeOrg()
	e.mustApply()
	as := e.only(vapiapi.Assistant, "Support")
	e.vapi.Set(vapiapi.Assistant, as.ID(), "model.temperature", json.Number("0.9"))
	e.vapi.Set(vapiapi.Assistant, as.ID(), "aNewVapiSetting", map[string]any{"enabled": true, "level": json.Number("3")})
	e.vapi.Set(vapiapi.Assistant, as.ID(), "server.staticIpAddressesEnabled", true)
	e.vapi.Set(vapiapi.Assistant, as.ID(), "firstMessage", "Hi from the dashboard")
	// The files change model.model (inside model) and the prompt.
	e.write("assistants/support.md", strings.Replace(strings.Replace(supportMD, "model: gpt-4o", "model: gpt-4.1", 1), "Example Corp.", "Example Corp. Be brief.", 1))
	sum, err := e.plan()
	if err != nil || sum.Update != 1 || sum.Conflict != 0 {
		t.Fatalf("%+v %v\n%s", sum, err, e.out.String())
	}
	for _, want := range []string{`    model.model: "gpt-4o" -> "gpt-4.1"`, `    firstMessage: "Hi from the dashboard" kept (changed in Vapi since the last apply; the files still say "Hello, how can I help?")`} {
		if !strings.Contains(e.out.String(), want) {
			t.Fatalf("plan lacks %q:\n%s", want, e.out.String())
		}
	}
	if strings.Contains(e.out.String(), "temperature") || strings.Contains(e.out.String(), "aNewVapiSetting") {
		t.Fatalf("the plan shows fields the files do not have:\n%s", e.out.String())
	}
	e.vapi.ResetCounts()
	e.mustApply()
	if n := e.vapi.Mutations(); n != 1 {
		t.Fatalf("%d mutating requests, want 1 PATCH", n)
	}
	got, _ := e.vapi.Get(vapiapi.Assistant, as.ID())
	for path, want := range map[string]any{
		"model.temperature": json.Number("0.9"), "model.model": "gpt-4.1", "aNewVapiSetting.level": json.Number("3"),
		"server.staticIpAddressesEnabled": true, "firstMessage": "Hi from the dashboard", "server.credentialId": e.creds.id,
	} {
		if v, _ := got.Lookup(path); !vapiapi.Equal(v, want) {
			t.Errorf("%s = %v, want %v", path, v, want)
		}
	}
	if c := got["model"].(map[string]any)["messages"].([]any)[0].(map[string]any)["content"]; c != "You are the support assistant of Example Corp. Be brief." {
		t.Errorf("prompt %v", c)
	}
	e.vapi.ResetCounts()
	e.mustApply()
	if n := e.vapi.Mutations(); n != 0 {
		t.Fatalf("again: %d mutating requests", n)
	}
}

// TestUnmanagedUntouched: resources voicegate does not manage are never
// changed or deleted, even with --prune; a file named like one is refused
// rather than creating a duplicate.
func TestUnmanagedUntouched(t *testing.T) {
	e := newEnv(t, stores()[0].open(t))
	legacy := e.vapi.Put(vapiapi.Assistant, vapiapi.Resource{"name": "Legacy", "firstMessage": "old", "server": map[string]any{"url": gw}})
	other := e.vapi.Put(vapiapi.Tool, vapiapi.Resource{"type": "function", "function": map[string]any{"name": "someone_elses"}})
	e.writeOrg()
	e.mustApply(prune)
	e.remove("squads/front.yml")
	e.write("phoneNumbers/main.yml", "provider: twilio\nnumber: \"+15550001111\"\ntwilioAccountSid: AC00000000000000000000000000000000\nassistantId: support\n")
	e.mustApply(prune)
	for _, r := range e.vapi.Requests() {
		if strings.Contains(r.Path, legacy.ID()) || strings.Contains(r.Path, other.ID()) {
			t.Fatalf("an unmanaged resource was asked for: %+v", r)
		}
	}
	if got, _ := e.vapi.Get(vapiapi.Assistant, legacy.ID()); !vapiapi.Equal(got, legacy) {
		t.Fatalf("legacy changed: %v", got)
	}
	if _, ok := e.vapi.Get(vapiapi.Tool, other.ID()); !ok {
		t.Fatal("the other tool was deleted")
	}
	// A file named like an unmanaged assistant: refused, nothing sent.
	e.write("assistants/legacy.yml", "name: Legacy\n")
	e.vapi.ResetCounts()
	_, err := e.apply()
	if err == nil || !strings.Contains(err.Error(), `assistant "Legacy" exists in Vapi (`+legacy.ID()+`) but voicegate does not manage it`) || e.vapi.Mutations() != 0 {
		t.Fatalf("err %v, %d mutations", err, e.vapi.Mutations())
	}
}

// TestConflicts: a field changed in the files and in Vapi is shown by
// plan (exit 0), refused by apply — naming the resource, the field and
// both values, nothing changed — and applied with --overwrite.
func TestConflicts(t *testing.T) {
	e := newEnv(t, stores()[0].open(t))
	e.writeOrg()
	e.mustApply()
	as := e.only(vapiapi.Assistant, "Support")
	e.vapi.Set(vapiapi.Assistant, as.ID(), "firstMessage", "Dashboard hello")
	e.vapi.Set(vapiapi.Assistant, as.ID(), "model.provider", "anthropic")
	e.write("assistants/support.md", strings.Replace(supportMD, "Hello, how can I help?", "Files hello", 1))
	sum, err := e.plan()
	if err != nil || sum.Conflict != 1 {
		t.Fatalf("plan: %+v %v", sum, err)
	}
	if want := `    firstMessage: CONFLICT: the files say "Files hello", Vapi says "Dashboard hello" (last applied: "Hello, how can I help?")`; !strings.Contains(e.out.String(), want) {
		t.Fatalf("plan lacks %q:\n%s", want, e.out.String())
	}
	e.vapi.ResetCounts()
	_, err = e.apply()
	var ce *gitops.ConflictError
	if !errors.As(err, &ce) || len(ce.Conflicts) != 1 || e.vapi.Mutations() != 0 ||
		ce.Conflicts[0] != `assistant support: firstMessage: the files say "Files hello", Vapi says "Dashboard hello" (last applied: "Hello, how can I help?")` {
		t.Fatalf("apply: %v, %d mutations", err, e.vapi.Mutations())
	}
	e.mustApply(overwrite)
	got, _ := e.vapi.Get(vapiapi.Assistant, as.ID())
	if got["firstMessage"] != "Files hello" || got.String("model.provider") != "anthropic" {
		t.Fatalf("after --overwrite: firstMessage %v, model.provider %v (a dashboard-only change is kept)", got["firstMessage"], got.String("model.provider"))
	}
	e.vapi.ResetCounts()
	e.mustApply()
	if e.vapi.Mutations() != 0 {
		t.Fatal("not idempotent after --overwrite")
	}
}

// TestPrune: a resource whose file is gone is kept (and said so) unless
// --prune; with it, deleted, and forgotten by the store and the state
// file.
func TestPrune(t *testing.T) {
	for _, st := range stores() {
		t.Run(st.name, func(t *testing.T) {
			e := newEnv(t, st.open(t))
			os.WriteFile(filepath.Join(e.root, ".vapi-state.acme.json"), []byte("{}\n"), 0o644)
			e.writeOrg()
			e.mustApply()
			squad := e.only(vapiapi.Squad, "Front")
			e.remove("squads/front.yml")
			e.write("phoneNumbers/main.yml", "provider: twilio\nnumber: \"+15550001111\"\ntwilioAccountSid: AC00000000000000000000000000000000\nassistantId: support\n")
			sum, err := e.plan()
			if err != nil || sum.Orphans != 1 || sum.Delete != 0 || !strings.Contains(e.out.String(), "  squad front ("+squad.ID()+"): its file is gone: kept (apply --prune deletes it)") {
				t.Fatalf("%+v %v\n%s", sum, err, e.out.String())
			}
			e.mustApply()
			if _, ok := e.vapi.Get(vapiapi.Squad, squad.ID()); !ok {
				t.Fatal("deleted without --prune")
			}
			if sum, _ := e.plan(prune); sum.Delete != 1 || !strings.Contains(e.out.String(), "- squad front ("+squad.ID()+"): delete") {
				t.Fatalf("plan --prune: %+v\n%s", sum, e.out.String())
			}
			if sum := e.mustApply(prune); sum.Deleted != 1 {
				t.Fatalf("%+v", sum)
			}
			if _, ok := e.vapi.Get(vapiapi.Squad, squad.ID()); ok {
				t.Fatal("not deleted")
			}
			entries, _ := e.store.VapiResources(t.Context(), "acme")
			for _, en := range entries {
				if en.Kind == "squads" {
					t.Fatalf("the store keeps %+v", en)
				}
			}
			b, _ := os.ReadFile(filepath.Join(e.root, ".vapi-state.acme.json"))
			if strings.Contains(string(b), squad.ID()) || !strings.Contains(string(b), `"squads": {}`) {
				t.Fatalf("state file:\n%s", b)
			}
			e.vapi.ResetCounts()
			if e.mustApply(prune); e.vapi.Mutations() != 0 {
				t.Fatal("prune again sent requests")
			}
		})
	}
}

// TestStateFile: an org kept with VapiAI/gitops: its state file binds the
// files to existing resources (which voicegate then manages) and names
// credentials; apply writes the ids back as gitops writes them, keeping
// the sections voicegate does not manage.
func TestStateFile(t *testing.T) {
	e := newEnv(t, stores()[0].open(t))
	existing := e.vapi.Put(vapiapi.Assistant, vapiapi.Resource{"name": "Support", "firstMessage": "from gitops", "voice": map[string]any{"provider": "11labs", "voiceId": "x"}})
	cred := e.vapi.Put(vapiapi.Credential, vapiapi.Resource{"provider": "webhook", "name": "Billing Server Credential", "authenticationPlan": map[string]any{"type": "bearer", "token": "tok-0123456789"}})
	state := `{
  "assistants": {
    "support": {
      "uuid": "` + existing.ID() + `"
    }
  },
  "credentials": {
    "billing-cred": "` + cred.ID() + `"
  },
  "personalities": {
    "calm": {
      "uuid": "5e4c0000-0000-4000-8000-000000000009"
    }
  },
  "tools": {}
}
`
	statePath := filepath.Join(e.root, ".vapi-state.acme.json")
	os.WriteFile(statePath, []byte(state), 0o600)
	e.write("assistants/support.md", supportMD)
	e.write("tools/lookup_order.yml", lookupYML)
	e.write("tools/billing.yml", "type: function\nfunction: {name: billing}\nserver: {url: \"https://billing.internal.example.com/vapi\", credentialId: billing-cred}\n")
	e.write("structuredOutputs/outcome.yml", "name: outcome\nschema: {type: string}\n")
	sum, err := e.plan()
	if err != nil || sum.Update != 1 || sum.Create != 3 || !strings.Contains(e.out.String(), "state file: "+statePath) {
		t.Fatalf("%+v %v\n%s", sum, err, e.out.String())
	}
	e.mustApply()
	got, _ := e.vapi.Get(vapiapi.Assistant, existing.ID())
	if got["firstMessage"] != "Hello, how can I help?" || got.String("voice.voiceId") != "x" || len(e.vapi.All(vapiapi.Assistant)) != 1 {
		t.Fatalf("the bound assistant: %v", got)
	}
	if e.only(vapiapi.Tool, "billing").String("server.credentialId") != cred.ID() {
		t.Fatal("credential name not resolved")
	}
	b, _ := os.ReadFile(statePath)
	tool := e.only(vapiapi.Tool, "lookup_order")
	for _, want := range []string{`"calm": {` + "\n" + `      "uuid": "5e4c0000-0000-4000-8000-000000000009"`, `"billing-cred": "` + cred.ID() + `"`,
		`"lookup_order": {` + "\n" + `      "uuid": "` + tool.ID() + `"`, `"support": {` + "\n" + `      "uuid": "` + existing.ID() + `"`} {
		if !strings.Contains(string(b), want) {
			t.Fatalf("state file lacks %q:\n%s", want, b)
		}
	}
	if !strings.HasSuffix(string(b), "}\n") || strings.Index(string(b), `"assistants"`) > strings.Index(string(b), `"credentials"`) {
		t.Fatalf("not written as gitops writes it:\n%s", b)
	}
	if st, _ := os.Stat(statePath); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	// Also in the store: without the state file the next apply still
	// knows every resource.
	os.Rename(statePath, statePath+".away")
	e.vapi.ResetCounts()
	e.mustApply()
	if e.vapi.Mutations() != 0 {
		t.Fatalf("the store does not know the ids:\n%s", e.out.String())
	}
	os.Rename(statePath+".away", statePath)
	// Rebound by gitops: the state file wins, and what voicegate applied
	// to the old resource is not a base for the new one.
	again := e.vapi.Put(vapiapi.Assistant, vapiapi.Resource{"name": "Support", "firstMessage": "rebound"})
	os.WriteFile(statePath, []byte(strings.Replace(string(b), existing.ID(), again.ID(), 1)), 0o600)
	if _, err := e.plan(); err != nil || !strings.Contains(e.out.String(), "the state file binds it to "+again.ID()) || !strings.Contains(e.out.String(), `firstMessage: "rebound" -> "Hello, how can I help?"`) {
		t.Fatalf("%v\n%s", err, e.out.String())
	}
}

// TestRejections: the files' problems are reported, all at once and
// before any request to Vapi.
func TestRejections(t *testing.T) {
	srv := func(extra string) string {
		return "server:\n  url: https://gw.example.com/webhook/vapi\n  timeoutSeconds: 20\n  backoffPlan: {type: fixed, maxRetries: 2, baseDelaySeconds: 1}\n" + extra
	}
	msgs := "serverMessages: [tool-calls, end-of-call-report, status-update, speech-update, transcript]\n"
	for _, tc := range []struct {
		name, file, content, want string
	}{
		{"http server", "assistants/a.yml", "name: A\nserver: {url: \"http://gw.example.com/hook\"}\n", `server.url: "http://gw.example.com/hook" is not an https URL`},
		{"nested http server", "assistants/a.yml", "name: A\nvoice: {server: {url: \"http://x.example.com\"}}\n", "voice.server.url:"},
		{"timeout not above a tool's", "assistants/a.yml", "name: A\n" + msgs + strings.Replace(srv(""), "timeoutSeconds: 20", "timeoutSeconds: 4", 1), "server.timeoutSeconds: 4s is shorter than vapi.server_timeout"},
		{"timeout out of range", "assistants/a.yml", "name: A\nserver: {url: \"https://x.example.com\", timeoutSeconds: 900}\n", "server.timeoutSeconds: must be a number of seconds from 1 to 300"},
		{"no backoffPlan", "assistants/a.yml", "name: A\n" + msgs + "server: {url: \"" + gw + "\", timeoutSeconds: 20}\n", "server.backoffPlan: required"},
		{"backoffPlan without retries", "phoneNumbers/p.yml", "provider: vapi\nserver: {url: \"" + gw + "\", backoffPlan: {type: fixed, maxRetries: 0}}\n", "server.backoffPlan.maxRetries: must be from 1 to 10"},
		{"no serverMessages", "assistants/a.yml", "name: A\n" + srv(""), "serverMessages: required"},
		{"no transcript with barge-in", "assistants/a.yml", "name: A\nserverMessages: [tool-calls, end-of-call-report, status-update, speech-update]\n" + srv(""), "serverMessages: misses transcript, which voicegate needs (speech-update and transcript: barge-in is on)"},
		{"unknown tool reference", "assistants/a.yml", "name: A\nmodel: {toolIds: [nope]}\n", `references: tool "nope" is neither a file (tools/nope.yml) nor a resource voicegate knows`},
		{"unknown squad member", "squads/s.yml", "name: S\nmembers: [{assistantId: ghost}]\n", `assistant "ghost"`},
		{"a tool voicegate does not serve", "tools/t.yml", "type: function\nfunction: {name: other}\n" + srv(""), `function.name: "other" is not one of voicegate's tools (get_balance, lookup_order)`},
		{"a tool timeout", "tools/t.yml", "type: function\nfunction: {name: lookup_order}\nserver: {url: \"" + gw + "\", timeoutSeconds: 3}\n", "server.timeoutSeconds: 3s is not above the tool's timeout in voicegate (4s)"},
		{"bad function name", "tools/t.yml", "type: function\nfunction: {name: \"has space\"}\n", "function.name:"},
		{"no tool type", "tools/t.yml", "function: {name: x}\n", "type: required"},
		{"assistant without a name", "assistants/a.yml", "firstMessage: hi\n", "name: required"},
		{"squad without members", "squads/s.yml", "name: S\n", "members: required"},
		{"structured output without schema", "structuredOutputs/o.yml", "name: o\n", "schema: required"},
		{"phone number without provider", "phoneNumbers/p.yml", "number: \"+15550001111\"\n", "provider: required"},
		{"an id in a file", "assistants/a.yml", "name: A\nid: 3f2c0000-0000-4000-8000-000000000001\n", "id: assigned by Vapi"},
		{"a TypeScript file", "assistants/a.ts", "export default {}", "TypeScript resources are not read"},
		{"two files, one id", "assistants/b.md", "---\nname: B\n---\n", "both are assistant \"b\""},
		{"a bad id", "assistants/a b.yml", "name: A\n", "is not a resource id"},
		{"no front matter", "assistants/a.md", "Just a prompt", "no front matter"},
		{"not YAML", "tools/t.yml", "type: [function\n", "not YAML"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, stores()[0].open(t))
			e.write("assistants/b.yml", "name: B\n")
			e.write(tc.file, tc.content)
			_, err := e.plan()
			var pe *gitops.ProblemsError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if n := len(e.vapi.Requests()); n != 0 {
				t.Fatalf("%d requests to Vapi before the files were valid", n)
			}
		})
	}
	t.Run("UnknownCredentialName", func(t *testing.T) {
		e := newEnv(t, stores()[0].open(t))
		e.write("tools/t.yml", "type: function\nfunction: {name: t}\nserver: {url: \"https://x.example.com\", credentialId: nope}\n")
		if _, err := e.plan(); err == nil || !strings.Contains(err.Error(), `credential "nope": Vapi has no credential of that name`) || e.vapi.Mutations() != 0 {
			t.Fatalf("err %v", err)
		}
	})
}

// TestToolsFromConfig: voicegate's tools become Vapi tools (name,
// description, schema, this voicegate as their server, async false);
// assistants reference them by name; applying again changes nothing.
func TestToolsFromConfig(t *testing.T) {
	e := newEnv(t, stores()[0].open(t))
	e.write("assistants/support.md", strings.Replace(supportMD, "artifactPlan:\n  structuredOutputIds: [outcome]\n", "", 1))
	gen := func(o *gitops.Options) { o.ToolsFromConfig = true }
	e.mustApply(gen)
	tool := e.only(vapiapi.Tool, "lookup_order")
	want := `{"async":false,"function":{"description":"Look up an order by its number.","name":"lookup_order","parameters":{"properties":{"order":{"type":"string"}},"required":["order"],"type":"object"}},"server":{"credentialId":"` + e.creds.id + `","timeoutSeconds":20,"url":"` + gw + `"},"type":"function"}`
	if b, _ := vapiapi.Marshal(tool.WithoutServerFields()); string(b) != want {
		t.Fatalf("tool\n got %s\nwant %s", b, want)
	}
	if e.only(vapiapi.Tool, "get_balance")["async"] != false {
		t.Fatal("an async voicegate tool is async: false in Vapi")
	}
	e.vapi.ResetCounts()
	e.mustApply(gen)
	if e.vapi.Mutations() != 0 {
		t.Fatal("not idempotent")
	}
	e.write("tools/lookup_order.yml", lookupYML)
	if _, err := e.plan(gen); err == nil || !strings.Contains(err.Error(), "also generated from voicegate's tools config") {
		t.Fatalf("a file and a generated tool: %v", err)
	}
}

// TestApplyRetriesAndResumes: a 429 during apply is waited out; a failure
// midway leaves what was applied recorded, and the next apply finishes
// without creating anything twice.
func TestApplyRetriesAndResumes(t *testing.T) {
	e := newEnv(t, stores()[0].open(t))
	e.writeOrg()
	e.vapi.Inject(vapitest.Fault{Method: "POST", Status: 429, RetryAfter: "1", Times: 2})
	e.vapi.Inject(vapitest.Fault{Method: "POST", Kind: vapiapi.Squad, Status: 400, Times: 1})
	if _, err := e.apply(); err == nil || !strings.Contains(err.Error(), "create squad front: vapi api: POST /squad: 400 Bad Request: injected failure") {
		t.Fatalf("err %v", err)
	}
	e.mustApply()
	if len(e.vapi.All(vapiapi.Assistant)) != 1 || len(e.vapi.All(vapiapi.Squad)) != 1 || len(e.vapi.All(vapiapi.Tool)) != 2 {
		t.Fatalf("duplicates:\n%s", e.out.String())
	}
	e.vapi.ResetCounts()
	if e.mustApply(); e.vapi.Mutations() != 0 {
		t.Fatal("not idempotent")
	}
}

// TestCredentialsNil: without the managed credential, server.credentialId
// is left as the files say, and the plan says so.
func TestCredentialsNil(t *testing.T) {
	e := newEnv(t, stores()[0].open(t))
	e.writeOrg()
	e.mustApply(func(o *gitops.Options) { o.Credentials = nil })
	if !strings.Contains(e.out.String(), "note: server.credentialId of what voicegate serves is left as the files say") {
		t.Fatalf("no note:\n%s", e.out.String())
	}
	if e.only(vapiapi.Assistant, "Support").String("server.credentialId") != "" {
		t.Fatal("a credential was set")
	}
}

// TestRenamedFile: a file renamed is not taken for a new resource (which
// would duplicate the one voicegate manages); two ids bound to one Vapi
// resource are refused.
func TestRenamedFile(t *testing.T) {
	e := newEnv(t, stores()[0].open(t))
	statePath := filepath.Join(e.root, ".vapi-state.acme.json")
	os.WriteFile(statePath, []byte("{}\n"), 0o644)
	e.writeOrg()
	e.mustApply()
	as := e.only(vapiapi.Assistant, "Support")
	os.Rename(filepath.Join(e.dir, "assistants", "support.md"), filepath.Join(e.dir, "assistants", "helpdesk.md"))
	e.vapi.ResetCounts()
	_, err := e.apply()
	if err == nil || !strings.Contains(err.Error(), `assistant "Support" is `+as.ID()+` in Vapi, which voicegate manages as assistants/support, whose file is gone`) || e.vapi.Mutations() != 0 {
		t.Fatalf("err %v, %d mutations", err, e.vapi.Mutations())
	}
	b, _ := os.ReadFile(statePath)
	os.WriteFile(statePath, []byte(strings.Replace(string(b), `"support": {`, `"helpdesk": {"uuid": "`+as.ID()+`"}, "support": {`, 1)), 0o644)
	if _, err := e.plan(); err == nil || !strings.Contains(err.Error(), "are both bound to "+as.ID()) {
		t.Fatalf("two ids, one resource: %v", err)
	}
}

// TestRenameThroughTheStateFile: the hint followed — the entry renamed in
// the state file — the resource is the renamed file's, with what voicegate
// last applied to it (a dashboard change is still kept).
func TestRenameThroughTheStateFile(t *testing.T) {
	e := newEnv(t, stores()[0].open(t))
	statePath := filepath.Join(e.root, ".vapi-state.acme.json")
	os.WriteFile(statePath, []byte("{}\n"), 0o644)
	e.writeOrg()
	e.mustApply()
	as := e.only(vapiapi.Assistant, "Support")
	e.vapi.Set(vapiapi.Assistant, as.ID(), "firstMessage", "Dashboard hello")
	os.Rename(filepath.Join(e.dir, "assistants", "support.md"), filepath.Join(e.dir, "assistants", "helpdesk.md"))
	for _, f := range []string{"squads/front.yml", "structuredOutputs/outcome.yml", "tools/handoff.yml"} {
		b, _ := os.ReadFile(filepath.Join(e.dir, f))
		e.write(f, strings.ReplaceAll(string(b), "support", "helpdesk"))
	}
	b, _ := os.ReadFile(statePath)
	os.WriteFile(statePath, []byte(strings.Replace(string(b), `"support": {`, `"helpdesk": {`, 1)), 0o644)
	e.vapi.ResetCounts()
	e.mustApply()
	if !strings.Contains(e.out.String(), "assistant support ("+as.ID()+"): no longer in the state file: forgotten") {
		t.Fatalf("%s", e.out.String())
	}
	got, _ := e.vapi.Get(vapiapi.Assistant, as.ID())
	if got["firstMessage"] != "Dashboard hello" || got.String("metadata.voicegateId") != "acme/assistants/helpdesk" || len(e.vapi.All(vapiapi.Assistant)) != 1 {
		t.Fatalf("after the rename: %v\n%s", got, e.out.String())
	}
	entries, _ := e.store.VapiResources(t.Context(), "acme")
	for _, en := range entries {
		if en.LocalID == "support" {
			t.Fatal("the old id is still in the store")
		}
	}
	e.vapi.ResetCounts()
	if e.mustApply(); e.vapi.Mutations() != 0 {
		t.Fatalf("not idempotent:\n%s", e.out.String())
	}
}
