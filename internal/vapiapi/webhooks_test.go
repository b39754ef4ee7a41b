package vapiapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/secrets"
	"github.com/voicegate/voicegate/internal/vapiapi"
	"github.com/voicegate/voicegate/internal/vapiapi/vapitest"
)

// Webhooks is what a rotation does in Vapi.
var _ secrets.Vapi = (*vapiapi.Webhooks)(nil)

// TestWebhooks: the credential is created once and found by name after;
// only the resources whose server.url is this voicegate are repointed,
// and nothing else in them changes (vapitest stands in for Vapi).
func TestWebhooks(t *testing.T) {
	ctx := context.Background()
	s := vapitest.New(t)
	c, _ := newClient(t, s, nil)
	const url = "https://gw.example.com/webhook/vapi"
	w := &vapiapi.Webhooks{API: c, URL: url}
	id, err := w.EnsureCredential(ctx, "voicegate-webhook-whs_1", "0123456789abcdef0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	again, err := w.EnsureCredential(ctx, "voicegate-webhook-whs_1", "ignored")
	if err != nil || again != id || len(s.All(vapiapi.Credential)) != 1 {
		t.Fatalf("second ensure: %s %v", again, err)
	}
	mine := s.Put(vapiapi.Assistant, vapiapi.Resource{"name": "mine", "model": map[string]any{"temperature": 0.3},
		"server": map[string]any{"url": "https://GW.example.com:443/webhook/vapi", "timeoutSeconds": 20}})
	theirs := s.Put(vapiapi.Assistant, vapiapi.Resource{"name": "theirs", "server": map[string]any{"url": "https://other.example.com/hook"}})
	number := s.Put(vapiapi.PhoneNumber, vapiapi.Resource{"provider": "twilio", "number": "+15550001111", "server": map[string]any{"url": url}})
	tool := s.Put(vapiapi.Tool, vapiapi.Resource{"type": "function", "function": map[string]any{"name": "f"}, "server": map[string]any{"url": url}})
	n, err := w.Repoint(ctx, id)
	if err != nil || n != 3 {
		t.Fatalf("repoint: %d %v", n, err)
	}
	for _, r := range []struct {
		k  vapiapi.Kind
		id string
	}{{vapiapi.Assistant, mine.ID()}, {vapiapi.PhoneNumber, number.ID()}, {vapiapi.Tool, tool.ID()}} {
		got, _ := s.Get(r.k, r.id)
		if got.String("server.credentialId") != id {
			t.Errorf("%s not repointed: %v", r.k, got)
		}
	}
	m, _ := s.Get(vapiapi.Assistant, mine.ID())
	if v, _ := m.Lookup("model.temperature"); v == nil || v.(interface{ String() string }).String() != "0.3" {
		t.Errorf("model.temperature lost: %v", m)
	}
	if v, _ := m.Lookup("server.timeoutSeconds"); v == nil {
		t.Errorf("server.timeoutSeconds lost: %v", m)
	}
	if o, _ := s.Get(vapiapi.Assistant, theirs.ID()); o.String("server.credentialId") != "" {
		t.Errorf("an assistant that does not call voicegate was changed: %v", o)
	}
	s.ResetCounts()
	if n, err := w.Repoint(ctx, id); err != nil || n != 3 || s.Mutations() != 0 {
		t.Fatalf("repoint again: %d %v, %d mutations", n, err, s.Mutations())
	}
	if err := w.DeleteCredential(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := w.DeleteCredential(ctx, id); err != nil {
		t.Fatalf("gone already: %v", err)
	}
}

// TestRepointNested: Vapi also calls voicegate through servers nested in
// a resource — an assistant's inline tools (model.tools[].server, Vapi's
// documented way to define tools) and a squad's member overrides. Left on
// the old credential, their webhooks are refused once the grace period
// ends and retire deletes that credential (vapitest stands in for Vapi).
func TestRepointNested(t *testing.T) {
	ctx := context.Background()
	s := vapitest.New(t)
	c, _ := newClient(t, s, nil)
	const url = "https://gw.example.com/webhook/vapi"
	w := &vapiapi.Webhooks{API: c, URL: url}
	inline := s.Put(vapiapi.Assistant, vapiapi.Resource{"name": "inline", "model": map[string]any{"provider": "openai", "model": "gpt-4o",
		"tools": []any{map[string]any{"type": "function", "function": map[string]any{"name": "f"}, "server": map[string]any{"url": url, "credentialId": "cred_old"}}}}})
	squad := s.Put(vapiapi.Squad, vapiapi.Resource{"name": "sq", "members": []any{map[string]any{"assistantId": "a1",
		"assistantOverrides": map[string]any{"server": map[string]any{"url": url, "credentialId": "cred_old"}}}}})
	n, err := w.Repoint(ctx, "cred_new")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := s.Get(vapiapi.Assistant, inline.ID())
	tools, _ := a.Lookup("model.tools")
	if tl, ok := tools.([]any); !ok || len(tl) != 1 || vapiapi.Resource(tl[0].(map[string]any)).String("server.credentialId") != "cred_new" {
		t.Errorf("inline tool not repointed: %v", a)
	}
	if a.String("model.model") != "gpt-4o" {
		t.Errorf("model lost: %v", a)
	}
	q, _ := s.Get(vapiapi.Squad, squad.ID())
	members, _ := q.Lookup("members")
	if ml, ok := members.([]any); !ok || len(ml) != 1 || vapiapi.Resource(ml[0].(map[string]any)).String("assistantOverrides.server.credentialId") != "cred_new" {
		t.Errorf("squad member override not repointed: %v", q)
	}
	if n != 2 {
		t.Errorf("repointed %d, want 2", n)
	}
}

// TestEnsureCredentialErrorHidesSecret: an error answer that echoes the
// request (a validation message quoting the plan) must not carry the
// webhook secret into the error, which the rotation stores in its state,
// status prints and serve logs. The server here stands in for Vapi.
func TestEnsureCredentialErrorHidesSecret(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`[]`))
			return
		}
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]any{"statusCode": 400, "error": "Bad Request", "message": []string{"authenticationPlan invalid: " + string(b)}})
	}))
	defer srv.Close()
	c, err := vapiapi.New(config(srv.URL, "k3J9xQ2mV7pL5nR8wT4zAb7Cd"), vapiapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := &vapiapi.Webhooks{API: c, URL: "https://gw.example.com/webhook/vapi"}
	const secret = "0123456789abcdef0123456789abcdef"
	_, err = w.EnsureCredential(context.Background(), "voicegate-webhook-whs_1", secret)
	if err == nil {
		t.Fatal("no error")
	}
	if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), secret[:20]) {
		t.Fatalf("the secret is in the error: %v", err)
	}
}
