package endpointing

import (
	"encoding/json"
	"math"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestReview12NaNIsRefused: YAML's .nan passes the 0..15 range checks
// (every comparison with NaN is false); the answer then cannot be encoded
// (json: unsupported value: NaN) and every call.endpointing.request is a
// 500 instead of {"timeoutSeconds": n}.
func TestReview12NaNIsRefused(t *testing.T) {
	c := DefaultConfig()
	if err := yaml.Unmarshal([]byte("default_seconds: .nan\nrules: [{after: number, seconds: .nan}]\n"), &c); err != nil {
		t.Fatal(err)
	}
	if !math.IsNaN(c.DefaultSeconds) {
		t.Fatalf("yaml gave %v", c.DefaultSeconds)
	}
	if probs := c.Validate(); len(probs) < 2 {
		t.Fatalf("NaN seconds accepted: %q", probs)
	}
}

// TestReview12AssistantWithoutDefault: an assistants entry that sets
// rules only gets default_seconds 0 (the YAML zero value; the section is
// decoded over DefaultConfig but map entries are not), so every turn of
// that assistant that matches no rule is answered {"timeoutSeconds": 0}:
// the assistant barges in at once. Either inherit the section default or
// refuse the entry.
func TestReview12AssistantWithoutDefault(t *testing.T) {
	c := DefaultConfig()
	if err := yaml.Unmarshal([]byte("assistants:\n  asst-1:\n    rules: [{after: number, seconds: 4}]\n"), &c); err != nil {
		t.Fatal(err)
	}
	ch, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	conv, _ := json.Marshal([]map[string]any{{"role": "assistant", "content": "How can I help you today?"}})
	secs, rule := ch.Choose("asst-1", conv)
	if probs := c.Validate(); len(probs) == 0 && secs == 0 {
		t.Fatalf("assistant without default_seconds answered %gs (%s) and the configuration was accepted", secs, rule)
	}
}
