package config

import (
	"strings"
	"testing"
)

// TestParseClientNeedsOnlyTheCredential: a client of the deployment reads
// the credential; ${ENV} elsewhere (a tool's token) need not be set, and
// problems elsewhere are not its business — but the credential's are.
func TestParseClientNeedsOnlyTheCredential(t *testing.T) {
	doc := `
listen: ${LISTEN}
vapi:
  max_body_bytes: 4096
  auth:
    - mode: hmac
      secrets: ["${VG_SECRET}", "${VG_NEXT_SECRET}"]
    - mode: bearer
      secrets: ["${VG_BEARER}"]
  replay:
    window: ${WINDOW}
tools:
  - name: t
    url: ${API_URL}
    headers: {Authorization: {env: API_TOKEN}}
`
	env := map[string]string{"VG_SECRET": "k3J9xQ2mV7pL5nR8wT4z"}
	cfg, err := ParseClient([]byte(doc), Options{Getenv: func(k string) string { return env[k] }})
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Vapi.Auth) != 1 || cfg.Vapi.Auth[0].Secrets[0].Value != env["VG_SECRET"] || cfg.Vapi.Auth[0].SignatureHeader != "x-signature" || cfg.Vapi.MaxBodyBytes != 4096 {
		t.Fatalf("credential not read and completed: %+v", cfg.Vapi)
	}
	_, err = ParseClient([]byte(doc), Options{})
	if err == nil || !strings.Contains(err.Error(), "VG_SECRET") || strings.Contains(err.Error(), "API_URL") {
		t.Fatalf("an unset credential must be the one problem: %v", err)
	}
	if _, err := ParseClient([]byte("tools: []\n"), Options{}); err == nil || !strings.Contains(err.Error(), "vapi.auth") {
		t.Fatalf("no credential: %v", err)
	}
}

// TestLoadKnowledgeChecksBaseNames: voicegate kb stores documents under
// the base's name; a name serve refuses must be refused by kb too (else
// documents go under a base that can never answer, and the operator
// renames it away from them).
func TestLoadKnowledgeChecksBaseNames(t *testing.T) {
	dir := t.TempDir()
	for name, wantErr := range map[string]bool{"handbook": false, "Handbook": true, `"bad name"`: true, `"a\0b"`: true} {
		doc := "data_dir: " + dir + "\nvapi:\n  knowledge_base:\n    bases:\n      " + name + ": {}\n"
		_, err := LoadKnowledge("c.yaml", Options{ReadFile: func(string) ([]byte, error) { return []byte(doc), nil }})
		if (err != nil) != wantErr || (err != nil && !strings.Contains(err.Error(), "bases.")) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
