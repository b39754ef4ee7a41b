package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The real binary: usage mistakes exit 2 with a message, and load is only
// ever sent to this machine.
func TestBinaryRefusesMistakesAndRemoteTargets(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "voicegate-bench")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no arguments given"},
		{[]string{"--url", "http://192.0.2.1:3100/webhook/vapi", "--secret", "k3J9xQ2mV7pL5nR8wT4z"}, "is not a loopback address"},
		{[]string{"flood"}, "voicegate-bench flood needs --url"},
		{[]string{"--url", "http://127.0.0.1:3100", "--mix", "twilio"}, "--mix twilio needs --config FILE"},
		{[]string{"--url", "http://127.0.0.1:3100/twilio/voice", "--mix", "twilio", "--config", "x.yaml"}, "must be the server's address"},
		{[]string{"--url", "http://127.0.0.1:3100/webhook/vapi", "--secret", "k3J9xQ2mV7pL5nR8wT4z", "--twilio-number", "+15550001111"}, "--twilio-number is for --mix twilio"},
		{[]string{"bare", "--listen", "127.0.0.1:0"}, "voicegate-bench bare needs --secret"},
		{[]string{"--url", "http://127.0.0.1:3100/webhook/vapi", "--secret", "k3J9xQ2mV7pL5nR8wT4z", "--target", "http://192.0.2.1:3101"}, "is not a loopback address"},
		{[]string{"--url", "http://127.0.0.1:3100/webhook/vapi", "--secret", "k3J9xQ2mV7pL5nR8wT4z", "--target", "http://127.0.0.1:3101/other"}, "its path must be --url's"},
		{[]string{"--url", "http://127.0.0.1:3100/webhook/vapi", "--secret", "k3J9xQ2mV7pL5nR8wT4z", "--target", "127.0.0.1:3101"}, "want http://HOST:PORT"},
		{[]string{"--url", "http://127.0.0.1:3100/webhook/vapi", "--secret", "k3J9xQ2mV7pL5nR8wT4z", "--server-pid", "1", "--server-pid", "2"}, "2 --server-pid for 1 replicas"},
		{[]string{"--url", "http://127.0.0.1:3100/webhook/vapi", "--secret", "k3J9xQ2mV7pL5nR8wT4z", "--server-pid", "x"}, "want a process id"},
	} {
		cmd := exec.Command(bin, tc.args...)
		cmd.Env = append(os.Environ(), "VOICEGATE_SECRET=")
		out, err := cmd.CombinedOutput()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), tc.want) {
			t.Errorf("voicegate-bench %v: %v\n%s\nwant exit 2 mentioning %q", tc.args, err, out, tc.want)
		}
	}
}
