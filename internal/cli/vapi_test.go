package cli

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVapiSignVerify: sign prints the headers an entry expects; verify
// accepts them, refuses a changed body (exit 1), and names the reading a
// sender used when it is a common one (here the widely copied
// "x-vapi-signature: sha256=<hex of the body>" against the default plan).
func TestVapiSignVerify(t *testing.T) {
	dir := t.TempDir()
	const secret = "3f9c1a7be2d84f06a5c1e9b7d2f48a60"
	cfg := filepath.Join(dir, "voicegate.yaml")
	os.WriteFile(cfg, []byte("vapi:\n  auth:\n    - mode: hmac\n      secrets: [\"${SIGNING_SECRET}\"]\ntools:\n  - name: x\n    url: ${UNSET_TOOL_URL}\n"), 0o600)
	body := filepath.Join(dir, "body.json")
	os.WriteFile(body, []byte(`{"message":{"type":"tool-calls"}}`), 0o600)
	env := func(k string) string { return map[string]string{"SIGNING_SECRET": secret}[k] }
	out, errOut, code := runCLI(t, env, "vapi", "sign", "--config", cfg, "--body-file", body)
	if code != 0 {
		t.Fatalf("sign: %d %s %s", code, out, errOut)
	}
	var args []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		args = append(args, "--header", l)
	}
	if len(args) != 4 {
		t.Fatalf("sign printed %q, want a signature and a timestamp header", out)
	}
	verify := append([]string{"vapi", "verify", "--config", cfg, "--body-file", body}, args...)
	if out, errOut, code := runCLI(t, env, verify...); code != 0 || !strings.Contains(out, "vapi.auth[0] (hmac): verifies") {
		t.Fatalf("verify: %d %s %s", code, out, errOut)
	}
	os.WriteFile(body, []byte(`{"message":{"type":"tool-calls"}} `), 0o600)
	out, _, code = runCLI(t, env, verify...)
	if code != 1 || !strings.Contains(out, "does not verify: mismatch") || !strings.Contains(out, "no common reading matches") || !strings.Contains(out, "<the 34-byte body>") {
		t.Fatalf("a changed body: %d %s", code, out)
	}
	// The preset form, sent to the default plan: named.
	b, _ := os.ReadFile(body)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(b)
	// Keep the signed timestamp header; replace the signature.
	preset := []string{"vapi", "verify", "--config", cfg, "--body-file", body}
	for i := 1; i < len(args); i += 2 {
		name, value, _ := strings.Cut(args[i], ": ")
		if len(value) == 64 { // the hex signature
			value = "sha256=" + hex.EncodeToString(m.Sum(nil))
		}
		preset = append(preset, "--header", name+": "+value)
	}
	out, _, code = runCLI(t, env, preset...)
	if code != 1 || !strings.Contains(out, `the signature received matches sha256 over "<the 34-byte body>", hex, secret 0, prefix "sha256="`) {
		t.Fatalf("the preset's form: %d %s", code, out)
	}
	if strings.Contains(out, secret) {
		t.Fatal("the secret was printed")
	}
	for _, a := range [][]string{{"vapi"}, {"vapi", "verify", "--config", cfg}, {"vapi", "nope"}} {
		if _, _, code := runCLI(t, env, a...); code != 2 {
			t.Errorf("%v: exit %d, want 2", a, code)
		}
	}
}
