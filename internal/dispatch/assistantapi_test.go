package dispatch

import (
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
)

func TestValidRouterAnswer(t *testing.T) {
	for in, want := range map[string]string{
		`{"assistantId":"asst-vip","assistantOverrides":{"variableValues":{"tier":"gold"}},"extra":1}`: `{"assistantId":"asst-vip","assistantOverrides":{"variableValues":{"tier":"gold"}}}`,
		`{"squad":{"members":[]}}`:                        `{"squad":{"members":[]}}`,
		`{"workflowId":"wf-1"}`:                           `{"workflowId":"wf-1"}`,
		`{"destination":{"type":"number","number":"+1"}}`: `{"destination":{"type":"number","number":"+1"}}`,
		`{"error":"We are closed."}`:                      `{"error":"We are closed."}`,
		`{"assistantId":"a","squadId":"s"}`:               "",
		`{"assistant":"x"}`:                               "",
		`{}`:                                              "",
		`[]`:                                              "",
		`{"assistantId":"a","assistantOverrides":[1]}`: "",
	} {
		got, _, err := validRouterAnswer([]byte(in))
		if (want == "") != (err != nil) || string(got) != want {
			t.Errorf("%s: %s %v, want %s", in, got, err, want)
		}
	}
}

func TestRouterConfigValidate(t *testing.T) {
	base := DefaultAssistantRequestConfig()
	for name, c := range map[string]struct {
		r    AssistantAPIConfig
		want string
	}{
		"ok":           {AssistantAPIConfig{URL: "http://10.0.0.5/route"}, ""},
		"bad url":      {AssistantAPIConfig{URL: "route"}, "router.url: "},
		"slow":         {AssistantAPIConfig{URL: "http://10.0.0.5/route", Timeout: confval.Duration(6 * time.Second)}, "router.timeout: "},
		"async router": {AssistantAPIConfig{URL: "http://10.0.0.5/route", Async: true}, "router.async: "},
	} {
		cfg := base
		r := c.r
		cfg.Router = &r
		got := strings.Join(cfg.Validate(), "\n")
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q", name, got, c.want)
		}
	}
}
