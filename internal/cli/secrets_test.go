package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/records/writertest"
)

// TestSecretsCommandRefusals: mistakes get a clear message and exit code;
// status before any secret says so, and never prints a secret.
func TestSecretsCommandRefusals(t *testing.T) {
	dir := t.TempDir()
	writertest.SQLite(t, dir, nil, "").DB.Close()
	write := func(body string) string {
		p := filepath.Join(t.TempDir(), "voicegate.yaml")
		os.WriteFile(p, []byte(fmt.Sprintf("data_dir: %s\n%s", dir, body)), 0o600)
		return p
	}
	managed := write("vapi:\n  auth: [{managed: true}, {mode: bearer, secrets: [\"${NOT_SET_ANYWHERE}\"]}]\n")
	plain := write("vapi:\n  auth: [{mode: hmac, secrets: [k3J9xQ2mV7pL5nR8wT4zAb7Cd]}]\n")
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"secrets"}, 2, "secrets needs status or rotate"},
		{[]string{"secrets", "nope"}, 2, "unknown secrets command"},
		{[]string{"secrets", "status"}, 2, "needs --config"},
		{[]string{"secrets", "status", "--wait", "--config", managed}, 2, "takes only --config"},
		{[]string{"secrets", "rotate", "--grace", "soon", "--config", managed}, 2, "a duration such as"},
		{[]string{"secrets", "rotate", "--resume", "--grace", "1h", "--config", managed}, 2, "not on --resume"},
		{[]string{"secrets", "status", "--config", plain}, 1, "no entry is managed"},
		// No Vapi API configured: the rotation stops before Vapi, both
		// secrets accepted, and says how to go on.
		{[]string{"secrets", "rotate", "--config", managed}, 1, "vapi.api is not configured"},
	} {
		out, errOut, code := runCLI(t, nil, c.args...)
		if code != c.code || !strings.Contains(errOut+out, c.want) {
			t.Errorf("%v: %d %s %s, want %d %q", c.args, code, out, errOut, c.code, c.want)
		}
	}
	out, _, code := runCLI(t, nil, "secrets", "status", "--config", managed)
	if code != 0 || !strings.Contains(out, "generation 1") || !strings.Contains(out, `at step "loaded"`) {
		t.Fatalf("status: %d\n%s", code, out)
	}
}

// TestRotateWaitsForServe: serve's scheduled rotation holds the rotation
// lease while it runs; a rotate run meanwhile must not run its own
// (two Starts add two secrets and overwrite each other's rotation; two
// Resumes create two Vapi credentials and may leave Vapi on the one
// voicegate does not record, which is then never deleted).
func TestRotateWaitsForServe(t *testing.T) {
	dir := t.TempDir()
	p := writertest.SQLite(t, dir, nil, "")
	now := time.Now()
	if ok, err := p.DB.TakeLease(context.Background(), "secrets.rotation", "serve:host:1:ab", now, now.Add(time.Hour)); err != nil || !ok {
		t.Fatal(ok, err)
	}
	p.DB.Close()
	defer func(w time.Duration) { leaseWait = w }(leaseWait)
	leaseWait = 2 * time.Second
	cfg := filepath.Join(t.TempDir(), "voicegate.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf("data_dir: %s\nvapi:\n  auth: [{managed: true}]\n", dir)), 0o600)
	out, errOut, code := runCLI(t, nil, "secrets", "rotate", "--config", cfg)
	if code == 0 || !strings.Contains(errOut, "another process is running the rotation") {
		t.Fatalf("rotate while serve rotates: %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out, "added") {
		t.Fatalf("a second rotation started:\n%s", out)
	}
}
