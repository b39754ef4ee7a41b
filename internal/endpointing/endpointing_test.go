package endpointing

import (
	"encoding/json"
	"strings"
	"testing"
)

func conv(assistant string) json.RawMessage {
	b, _ := json.Marshal([]map[string]any{{"role": "system", "content": "You are a clinic assistant."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": assistant}})
	return b
}

// TestChooseByTheLastQuestion: the default rules, one row per class.
func TestChooseByTheLastQuestion(t *testing.T) {
	ch, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	for text, want := range map[string]string{
		"Could you tell me your date of birth?":           "after date_of_birth",
		"What is your phone number?":                      "after number",
		"Please read me the card number, digit by digit.": "after number",
		"What's your street address?":                     "after address",
		"Can you spell your last name for me?":            "after spelling",
		"Thanks. Is that correct?":                        "after yes_no",
		"Do you want the earliest slot?":                  "after yes_no",
		"How can I help you today?":                       "default",
		"":                                                "default",
	} {
		secs, rule := ch.Choose("any", conv(text))
		if rule != want {
			t.Errorf("%q: rule %q (%gs), want %q", text, rule, secs, want)
		}
	}
	// Content as parts, and the last assistant message wins.
	parts := json.RawMessage(`[{"role":"assistant","content":"Is that right?"},{"role":"user","content":"yes"},{"role":"assistant","content":[{"type":"text","text":"And your"},{"type":"text","text":"date of birth?"}]}]`)
	if secs, rule := ch.Choose("any", parts); rule != "after date_of_birth" || secs != 3 {
		t.Errorf("parts: %s %g", rule, secs)
	}
	for _, bad := range []string{`null`, `{"x":1}`, `[1,2]`, `not json`} {
		if secs, rule := ch.Choose("any", json.RawMessage(bad)); rule != "default" || secs != 1 {
			t.Errorf("%s: %s %g, want the default", bad, rule, secs)
		}
	}
}

// TestPerAssistantRules: an assistant's own default and rules replace the
// global ones, patterns are case-insensitive.
func TestPerAssistantRules(t *testing.T) {
	c := DefaultConfig()
	eight := 0.8
	c.Assistants = map[string]Assistant{"asst-pharmacy": {DefaultSeconds: &eight, Rules: []Rule{{Pattern: `prescription (id|number)`, Seconds: 5}}}}
	ch, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	if secs, rule := ch.Choose("asst-pharmacy", conv("What is your Prescription Number?")); secs != 5 || rule != "pattern" {
		t.Errorf("%g %s", secs, rule)
	}
	if secs, _ := ch.Choose("asst-pharmacy", conv("What is your phone number?")); secs != 0.8 {
		t.Errorf("the assistant's rules replace the global ones: %g", secs)
	}
	if secs, _ := ch.Choose("other", conv("What is your phone number?")); secs != 3 {
		t.Errorf("another assistant: %g", secs)
	}
}

func TestValidate(t *testing.T) {
	twenty := 20.0
	for name, c := range map[string]struct {
		cfg  Config
		want string
	}{
		"defaults":        {DefaultConfig(), ""},
		"default too big": {Config{DefaultSeconds: 16}, "default_seconds: "},
		"both":            {Config{Rules: []Rule{{After: AfterNumber, Pattern: "x"}}}, "rules[0].after: "},
		"neither":         {Config{Rules: []Rule{{Seconds: 1}}}, "rules[0].after: "},
		"unknown class":   {Config{Rules: []Rule{{After: "numbers"}}}, "rules[0].after: "},
		"bad pattern":     {Config{Rules: []Rule{{Pattern: "("}}}, "rules[0].pattern: "},
		"negative":        {Config{Rules: []Rule{{After: AfterYesNo, Seconds: -1}}}, "rules[0].seconds: "},
		"assistant":       {Config{Assistants: map[string]Assistant{"a": {DefaultSeconds: &twenty}}}, "assistants.a.default_seconds: "},
	} {
		got := strings.Join(c.cfg.Validate(), "\n")
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q", name, got, c.want)
		}
	}
}
