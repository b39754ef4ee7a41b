package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestSimulateTwilio plays simulate's Twilio scenarios against the real
// binary from its config file: the call and its callbacks are answered and
// stored once, every tampered request refused. simulate reads only the
// twilio section, so the Vapi secret's variable need not be set where it
// runs; the scenarios that store a call need --effects.
func TestSimulateTwilio(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "voicegate.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
vapi:
  auth:
    - mode: hmac
      secrets: ["${VG_SECRET}"]
twilio:
  voice_path: /twilio/voice
  status_path: /twilio/status
  public_base_url: https://voice.example.test
  auth_tokens:
    - value: ${TWILIO_OLD_TOKEN}
      not_after: 2020-01-01T00:00:00Z
    - ${TWILIO_AUTH_TOKEN}
  numbers:
    "+15550002222":
      stream: {url: "wss://media.example.test/twilio"}
    "+15550001111":
      sip: {uri: "sip:assistant@example.sip.vapi.ai"}
`, filepath.Join(dir, "data"))), 0o600)
	tokens := []string{"TWILIO_AUTH_TOKEN=5f1c8e3a9d7b2f4e6a0c8d1b3f5e7a9c", "TWILIO_OLD_TOKEN=a2d8f4c6e0b9a7d3f1c5e8b2a6d4f0c7"}
	p := start(t, append([]string{"VG_SECRET=k3J9xQ2mV7pL5nR8wT4zAb7Cd"}, tokens...), "serve", "--config", cfg)
	defer p.stop(t)
	base := "http://" + p.addr

	// The first number in sort order is called; the expired token is not
	// used to sign.
	out, err := run(t, tokens, "simulate", "--url", base, "--config", cfg, "--scenario", "twilio", "--effects")
	if err != nil || !strings.Contains(out, "13 of 13 steps answered as expected") || !strings.Contains(out, "answered <Dial><Sip>sip:assistant@example.sip.vapi.ai") ||
		!strings.Contains(out, "signed for https://voice.example.test") {
		t.Fatalf("simulate --scenario twilio: %v\n%s\n%s", err, out, drain(p.logs))
	}
	out, err = run(t, tokens, "simulate", "--url", base, "--config", cfg, "--scenario", "twilio-call", "--effects", "--twilio-number", "+15550002222")
	if err != nil || !strings.Contains(out, "answered <Connect><Stream> wss://media.example.test/twilio") {
		t.Fatalf("simulate --twilio-number: %v\n%s", err, out)
	}
	list, err := run(t, nil, "calls", "list", "--data-dir", filepath.Join(dir, "data"))
	if err != nil || strings.Count(list, "twilio:inbound") != 2 || strings.Count(list, "completed") != 2 {
		t.Fatalf("stored calls: %v\n%s", err, list)
	}
	// With another token, simulate fails loudly (exit 1).
	out, err = run(t, []string{"TWILIO_AUTH_TOKEN=e4b8a2d6f0c9e7b3a1d5f8c2e6b0a4d9", "TWILIO_OLD_TOKEN=a2d8f4c6e0b9a7d3f1c5e8b2a6d4f0c7"}, "simulate", "--url", base, "--config", cfg, "--scenario", "twilio-security")
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(out, "FAIL") {
		t.Fatalf("a wrong token must fail: %v\n%s", err, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--scenario", "twilio-call"}, "add --effects"},
		{[]string{"--scenario", "twilio", "--effects", "--config", ""}, "needs --config FILE"},
		{[]string{"--scenario", "twilio-security", "--url", base + "/twilio/voice"}, "the server's address without /twilio/voice"},
		{[]string{"--twilio-number", "+15550001111"}, "--twilio-number is for the twilio scenarios"},
	} {
		args := append([]string{"simulate", "--url", base, "--config", cfg}, c.args...)
		out, err := run(t, tokens, args...)
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(out, c.want) {
			t.Errorf("%v: %v\n%s\nwant exit 2 mentioning %q", c.args, err, out, c.want)
		}
	}
}
