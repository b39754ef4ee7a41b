package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigCheckRedactsToolURLSecrets: config check output lands in CI
// logs, so a secret in a tool URL's query must not be printed. Nothing is
// contacted: config check only reads the file.
func TestConfigCheckRedactsToolURLSecrets(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "voicegate.yaml")
	const yaml = `
listen: 127.0.0.1:0
vapi:
  auth:
    - mode: hmac
      secrets: ["${VG_TEST_SECRET}"]
tools:
  - name: getAppointment
    url: http://127.0.0.1:9/appointments?tenant=acme&apikey=SECRETKEY123
    method: GET
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	getenv := func(k string) string {
		if k == "VG_TEST_SECRET" {
			return "k3J9xQ2mV7pL5nR8wT4z"
		}
		return ""
	}
	var stdout, stderr bytes.Buffer
	if err := runConfigCheck([]string{"--config", path}, getenv, &stdout, &stderr); err != nil {
		t.Fatalf("config check: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	out := stdout.String() + stderr.String()
	if strings.Contains(out, "SECRETKEY123") || strings.Contains(out, "k3J9xQ2mV7pL5nR8wT4z") {
		t.Errorf("config check prints a secret:\n%s", out)
	}
	if !strings.Contains(out, "tool getAppointment: GET http://127.0.0.1:9/appointments?tenant=acme&apikey=REDACTED,") {
		t.Errorf("the tool line must still show the URL, with the secret redacted:\n%s", out)
	}
	// The credential in the URL is also a warning, and the cost of the
	// capacities is shown.
	if !strings.Contains(out, "! tools[0].url: the URL seems to carry a credential") || !strings.Contains(out, "memory at capacity: replay cache 100000 entries ~25 MiB") {
		t.Errorf("warnings or memory summary missing:\n%s", out)
	}
}

// TestConfigCheckRedactsURLsInProblems: a rejected tool URL is quoted back
// in the problem list; its secret must not be.
func TestConfigCheckRedactsURLsInProblems(t *testing.T) {
	path := filepath.Join(t.TempDir(), "voicegate.yaml")
	const yaml = `
vapi:
  auth:
    - mode: hmac
      secrets: ["k3J9xQ2mV7pL5nR8wT4z"]
tools:
  - name: getAppointment
    url: ftp://127.0.0.1:9/appointments?apikey=SECRETKEY123
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	err := runConfigCheck([]string{"--config", path}, func(string) string { return "" }, &stdout, &stderr)
	out := stdout.String() + stderr.String()
	if err == nil || !strings.Contains(out, "tools[0].url") {
		t.Fatalf("want the tool URL rejected, got %v:\n%s", err, out)
	}
	if strings.Contains(out, "SECRETKEY123") || strings.Contains(err.Error(), "SECRETKEY123") {
		t.Errorf("config check prints a secret:\n%s", out)
	}
}

// TestConfigCheckSummary: the summary names what an operator wires up
// next — the URL to give Vapi, where data lives, the admin listener.
func TestConfigCheckSummary(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ extra, want string }{
		{"  public_url: https://voice.example.com/webhook/vapi\nadmin:\n  listen: 127.0.0.1:9090\n", "server URL for Vapi: https://voice.example.com/webhook/vapi (vapi.public_url)\n  data_dir /srv/vg; calls stored in sqlite in data_dir\n  admin http://127.0.0.1:9090/metrics"},
		{"", "server URL for Vapi: http://127.0.0.1:3000/webhook/vapi (set vapi.public_url to the address Vapi reaches)\n  data_dir /srv/vg; calls stored in sqlite in data_dir\n  admin off"},
	} {
		path := filepath.Join(dir, "voicegate.yaml")
		doc := "data_dir: /srv/vg\nvapi:\n  auth:\n    - mode: hmac\n      secrets: [k3J9xQ2mV7pL5nR8wT4z]\n" + c.extra
		os.WriteFile(path, []byte(doc), 0o600)
		var stdout, stderr bytes.Buffer
		if err := runConfigCheck([]string{"--config", path}, func(string) string { return "" }, &stdout, &stderr); err != nil {
			t.Fatalf("%v\n%s", err, stdout.String())
		}
		if !strings.Contains(stdout.String(), c.want) {
			t.Errorf("summary lacks %q:\n%s", c.want, stdout.String())
		}
	}
}
