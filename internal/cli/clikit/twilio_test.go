package clikit

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "voicegate.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestLoadTwilio: only the twilio section (and server) is read — the Vapi
// secret's and the tool token's variables need not be set; the first
// token not past its not_after signs; the first number in sort order is
// called unless one is given; opening hours are compiled.
func TestLoadTwilio(t *testing.T) {
	path := writeConfig(t, `vapi:
  auth:
    - mode: hmac
      secrets: ["${VAPI_SECRET_NOT_SET}"]
tools:
  - name: t
    url: http://127.0.0.1:9/x
    headers: {Authorization: {env: TOOL_TOKEN_NOT_SET}}
twilio:
  voice_path: /tv
  status_path: /ts
  public_base_url: https://voice.example.com
  auth_tokens:
    - value: 3e9a1c7f5b2d8e4a6c0f9b1d3e5a7c2f
      not_after: 2026-01-01T00:00:00Z
    - ${TW_TOKEN}
  numbers:
    "+15550002222": {say: two}
    "+15550001111": {say: one, hours: {time_zone: UTC, open: ["daily 00:00-24:00"]}, closed_message: closed}
`)
	getenv := func(k string) string { return map[string]string{"TW_TOKEN": "b7d2e9a4c1f8e3b6a5d0c9f2e7b4a1d8"}[k] }
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	tw, err := LoadTwilio(path, "", getenv, now)
	if err != nil {
		t.Fatal(err)
	}
	if tw.Token != "b7d2e9a4c1f8e3b6a5d0c9f2e7b4a1d8" || tw.Number != "+15550001111" || tw.Config.VoicePath != "/tv" || tw.Config.PublicBaseURL != "https://voice.example.com" {
		t.Fatalf("%+v", tw)
	}
	if !tw.Config.Numbers["+15550001111"].Hours.OpenAt(now) {
		t.Fatal("hours not compiled")
	}
	// Before the old token's not_after, it is the first one active.
	if tw, err = LoadTwilio(path, "+15559999999", getenv, time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)); err != nil || tw.Token != "3e9a1c7f5b2d8e4a6c0f9b1d3e5a7c2f" || tw.Number != "+15559999999" {
		t.Fatalf("%+v %v", tw, err)
	}
	// The twilio section's own variables are needed.
	if _, err := LoadTwilio(path, "", func(string) string { return "" }, now); err == nil || !strings.Contains(err.Error(), "TW_TOKEN") {
		t.Fatalf("an unset token variable: %v", err)
	}
}

func TestLoadTwilioRefusals(t *testing.T) {
	for _, c := range []struct {
		name, body, want string
		usage            bool
	}{
		{"no section", "vapi: {path: /webhook/vapi}\n", "has no twilio section", false},
		{"no numbers", "twilio: {voice_path: /tv, status_path: /ts, public_base_url: https://v.example.com, auth_tokens: [9c4e1a7f3b8d2e6a5c0f4b9d1e7a3c8f]}\n", "give --twilio-number", true},
		{"public URL from a proxy", "server: {trusted_proxies: [10.0.0.1]}\ntwilio: {voice_path: /tv, status_path: /ts, auth_tokens: [9c4e1a7f3b8d2e6a5c0f4b9d1e7a3c8f], numbers: {\"+15550001111\": {say: hi}}}\n",
			"public_base_url is not set", false},
		{"invalid section", "twilio: {voice_path: tv, status_path: /ts, public_base_url: https://v.example.com, auth_tokens: [9c4e1a7f3b8d2e6a5c0f4b9d1e7a3c8f]}\n", "voice_path", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadTwilio(writeConfig(t, c.body), "", func(string) string { return "" }, time.Now())
			var ue *UsageError
			if err == nil || !strings.Contains(err.Error(), c.want) || errors.As(err, &ue) != c.usage {
				t.Fatalf("%v, want %q (usage error: %v)", err, c.want, c.usage)
			}
		})
	}
}
