package cli

import (
	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/demoapi"
	"github.com/voicegate/voicegate/internal/dispatch"
)

// devConfig returns the configuration of serve --dev: loopback only,
// HMAC-SHA256 with the given secret, and the built-in demo tool served by
// voicegate itself (demoapi, at demoapi.Path). Like any built configuration,
// it is completed and validated by Check.
func devConfig(secret, listen, dataDir string) *config.Config {
	c := config.Default()
	c.Listen = listen
	c.DataDir = dataDir
	c.Server.ShutdownDelay = 0 // no load balancer in front of a laptop
	c.Vapi.Auth = []auth.Config{{Mode: auth.ModeHMAC, Secrets: []confval.Secret{{Value: secret}}}}
	c.Tools = []config.ToolConfig{{Name: "getAppointment", URL: "http://" + listen + demoapi.Path}}
	c.Vapi.AssistantRequest.Default = &dispatch.AssistantAnswer{Assistant: map[string]any{
		"firstMessage": "Hello, this is the voicegate demo assistant. How can I help?",
		"model": map[string]any{"provider": "openai", "model": "gpt-4o", "messages": []any{
			map[string]any{"role": "system", "content": "You book appointments. Use getAppointment to look one up."},
		}},
	}}
	return c
}
