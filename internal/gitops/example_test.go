package gitops_test

import (
	"path/filepath"
	"testing"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/gitops"
	"github.com/voicegate/voicegate/internal/vapiapi"
	"github.com/voicegate/voicegate/internal/vapiapi/vapitest"
)

// TestExampleOrg: the README's example (examples/vapi) is valid with its
// configuration, applies against vapitest (standing in for Vapi's API),
// and applies again with no mutating request.
func TestExampleOrg(t *testing.T) {
	s := vapitest.New(t)
	cfg, err := config.LoadVapiOps(filepath.Join("..", "..", "examples", "vapi", "voicegate.yaml"), config.Options{
		Getenv: func(k string) string { return map[string]string{"VAPI_API_KEY": s.Key}[k] }})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Vapi.API.BaseURL = s.URL
	api, err := vapiapi.New(cfg.Vapi.API, vapiapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir() // a copy: the state file is written beside resources/
	copyTree(t, filepath.Join("..", "..", "examples", "vapi", "resources"), filepath.Join(dir, "resources"))
	o := gitops.Options{Dir: filepath.Join(dir, "resources", "acme"), API: api, Store: stores()[0].open(t), ToolsFromConfig: true,
		Credentials: &fakeCreds{s: s},
		Voicegate: gitops.Voicegate{URL: vapiapi.WebhookURL(cfg.Vapi.PublicURL, cfg.Vapi.Path), ServerTimeout: cfg.Vapi.ServerTimeout.D(),
			Tools: cfg.Tools, BargeIn: cfg.Bargein.Enabled}}
	if sum, err := gitops.Apply(t.Context(), o); err != nil || sum.Created != 4 {
		t.Fatalf("%+v %v", sum, err)
	}
	s.ResetCounts()
	if _, err := gitops.Apply(t.Context(), o); err != nil || s.Mutations() != 0 {
		t.Fatalf("again: %v, %d mutations", err, s.Mutations())
	}
}
