package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestVapiAPISection: vapi.api decodes, gets its defaults, reads its key
// from the environment or a file, and reports its problems under its
// path without quoting the key.
func TestVapiAPISection(t *testing.T) {
	const okAuth = "vapi:\n  auth:\n    - mode: hmac\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n"
	c, err := Parse([]byte(okAuth), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if a := c.Vapi.API; a.BaseURL != "https://api.vapi.ai" || a.Timeout.D() != 10*time.Second || a.RetryCount() != 3 || a.Enabled() {
		t.Fatalf("defaults: %+v", a)
	}
	c, err = Parse([]byte(okAuth+"  api:\n    key: ${VAPI_API_KEY}\n    retries: 0\n"), Options{Getenv: env(map[string]string{"VAPI_API_KEY": "sk-test-0123456789"})})
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Vapi.API.Key) != "sk-test-0123456789" || c.Vapi.API.RetryCount() != 0 {
		t.Fatalf("key from the environment: %+v", c.Vapi.API)
	}
	keyFile := filepath.Join(t.TempDir(), "vapi-key")
	os.WriteFile(keyFile, []byte("sk-file-0123456789\n"), 0o600)
	c, err = Parse([]byte(okAuth+"  api:\n    key_file: "+keyFile+"\n"), Options{})
	if err != nil || string(c.Vapi.API.Key) != "sk-file-0123456789" {
		t.Fatalf("key file: %v %+v", err, c)
	}
	got := problems(t, okAuth+"  api:\n    base_url: http://api.vapi.ai\n    key: \"sk secret with spaces\"\n    timeout: 1ms\n", Options{})
	want := []string{"vapi.api.base_url: must be https", "vapi.api.key: contains a space", "vapi.api.timeout:"}
	if len(got) != len(want) {
		t.Fatalf("problems %q", got)
	}
	for i := range want {
		if !strings.HasPrefix(got[i], want[i]) || strings.Contains(got[i], "sk secret") {
			t.Fatalf("problem %q, want %q", got[i], want[i])
		}
	}
	if got := problems(t, okAuth+"  api:\n    key: ${VAPI_API_KEY}\n", Options{}); len(got) != 1 || !strings.Contains(got[0], "VAPI_API_KEY is not set") {
		t.Fatalf("unset variable: %q", got)
	}
}
