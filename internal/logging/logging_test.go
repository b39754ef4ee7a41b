package logging

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	if c := DefaultConfig(); !c.RedactPII || c.Level != "info" {
		t.Fatalf("DefaultConfig() = %+v, want info with redaction on", c)
	}
	cases := []struct {
		name       string
		c          Config
		prob, warn string // empty: none
	}{
		{"default", DefaultConfig(), "", ""},
		{"debug", Config{Level: "debug", RedactPII: true}, "", ""},
		{"bad level", Config{Level: "verbose", RedactPII: true}, `level: "verbose" is not one of`, ""},
		{"redaction off", Config{Level: "info"}, "", "redact_pii: off: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			probs, warns := tc.c.Validate()
			check := func(what string, got []string, want string) {
				if want == "" && len(got) != 0 || want != "" && (len(got) != 1 || !strings.HasPrefix(got[0], want)) {
					t.Errorf("%s %q, want %q", what, got, want)
				}
			}
			check("problems", probs, tc.prob)
			check("warnings", warns, tc.warn)
		})
	}
}
