package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReview12VapiSignBearerPrintsSecret: for a bearer or secret entry
// of vapi.auth, "voicegate vapi sign" prints the credential itself
// (Authorization: Bearer <token>, X-Vapi-Secret: <secret>) on stdout — a
// secret resolved from the environment ends up in a terminal, a CI log or
// a ticket. The HMAC path is careful never to print a secret; these
// modes should be masked (or refused without an explicit --reveal).
func TestReview12VapiSignBearerPrintsSecret(t *testing.T) {
	dir := t.TempDir()
	const secret = "tok-9b1f3c77e0a24d5e8f6a1c2b3d4e5f60"
	for _, mode := range []string{"bearer", "secret"} {
		cfg := filepath.Join(dir, mode+".yaml")
		os.WriteFile(cfg, []byte("vapi:\n  auth:\n    - mode: "+mode+"\n      secrets: [\"${VAPI_TOKEN}\"]\n"), 0o600)
		body := filepath.Join(dir, "body.json")
		os.WriteFile(body, []byte(`{"message":{"type":"tool-calls"}}`), 0o600)
		env := func(k string) string { return map[string]string{"VAPI_TOKEN": secret}[k] }
		out, errOut, code := runCLI(t, env, "vapi", "sign", "--config", cfg, "--body-file", body)
		if strings.Contains(out+errOut, secret) {
			t.Errorf("%s: vapi sign printed the secret (exit %d): %s", mode, code, out)
		}
	}
}
