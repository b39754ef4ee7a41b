package auth

import (
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
)

// The auth component validates its own entries, with field-relative paths
// that the configuration qualifies ("vapi.auth[0].tolerance").
func TestConfigValidate(t *testing.T) {
	now := time.Unix(1_795_000_000, 0)
	for _, tc := range []struct {
		name string
		c    Config
		want string
	}{
		{"unknown mode", Config{Mode: "magic"}, `mode: "magic" is not one of hmac, bearer, secret`},
		{"no secret", Config{Mode: ModeBearer}, "secrets: at least one secret is required"},
		{"short secret", Config{Mode: ModeBearer, Secrets: []confval.Secret{{Value: "short"}}}, "secrets[0]: secret is 5 bytes"},
		{"long tolerance", Config{Mode: ModeHMAC, Secrets: []confval.Secret{{Value: "k3J9xQ2mV7pL5nR8wT4z"}}, Tolerance: confval.Duration(2 * time.Hour)}, "tolerance: 2h0m0s is longer than 1h0m0s"},
		{"retired", Config{Mode: ModeBearer, Secrets: []confval.Secret{{Value: "k3J9xQ2mV7pL5nR8wT4z", NotAfter: now.Add(-time.Minute)}}}, "secrets: every secret is past its not_after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.c
			c.Complete()
			probs, _ := c.Validate(now)
			if !strings.Contains(strings.Join(probs, "\n"), tc.want) {
				t.Fatalf("problems %q, want one containing %q", probs, tc.want)
			}
		})
	}
	c := Config{Mode: ModeBearer, Secrets: []confval.Secret{{Value: "k3J9xQ2mV7pL5nR8wT4z"}}}
	c.Complete()
	probs, warns := c.Validate(now)
	if len(probs) != 0 || len(warns) != 1 || !strings.HasPrefix(warns[0], ": a static bearer token never expires") {
		t.Fatalf("a valid static token: problems %q, warnings %q", probs, warns)
	}
}

// TestManagedPlanFixed: voicegate creates the managed entry's Vapi
// credential with Vapi's HMAC plan defaults (vapiapi.HMACPlan: sha256,
// x-signature, x-timestamp, "{timestamp}.{body}", hex); a managed entry
// that verifies anything else refuses every webhook Vapi signs with it.
func TestManagedPlanFixed(t *testing.T) {
	now := time.Unix(1_795_000_000, 0)
	empty := ""
	other := "x-ts"
	for name, c := range map[string]Config{
		"algorithm":        {Managed: true, Algorithm: "sha512"},
		"signature_header": {Managed: true, SignatureHeader: "x-vapi-signature"},
		"timestamp_header": {Managed: true, TimestampHeader: &other},
		"no timestamp":     {Managed: true, TimestampHeader: &empty, PayloadFormat: "{body}"},
		"payload_format":   {Managed: true, PayloadFormat: "{timestamp}:{body}"},
		"encoding":         {Managed: true, Encoding: "base64"},
	} {
		t.Run(name, func(t *testing.T) {
			c.Complete()
			if probs, _ := c.Validate(now); len(probs) == 0 {
				t.Fatalf("a managed entry whose plan differs from the credential's was accepted: %+v", c)
			}
		})
	}
	c := Config{Managed: true}
	c.Complete()
	if probs, _ := c.Validate(now); len(probs) != 0 {
		t.Fatalf("the plain managed entry: %q", probs)
	}
}
