package bargein

import (
	"strings"
	"testing"
)

// TestConfigValidate: each problem names its field; an action phrase must
// be an interruption phrase of some language (or it would never run).
func TestConfigValidate(t *testing.T) {
	base := func() Config { return DefaultConfig() }
	for name, c := range map[string]struct {
		mut  func(*Config)
		want string // "" : valid
	}{
		"defaults":                {func(*Config) {}, ""},
		"unknown timeline":        {func(c *Config) { c.Timeline = "some" }, "timeline: "},
		"negative min_words":      {func(c *Config) { c.MinWords = -1 }, "min_words: "},
		"empty phrase":            {func(c *Config) { c.Fillers = []string{"..."} }, "fillers[0]: "},
		"bad language code":       {func(c *Config) { c.Languages = map[string]Lists{"German": {}} }, "languages.German: "},
		"unknown assistant lang":  {func(c *Config) { c.Assistants = map[string]string{"a1": "fr"} }, "assistants.a1: "},
		"unknown trigger":         {func(c *Config) { c.Actions = []Action{{On: "always", Do: DoMute}} }, "actions[0].on: "},
		"unknown action":          {func(c *Config) { c.Actions = []Action{{On: OnInterrupt, Do: "hang-up"}} }, "actions[0].do: "},
		"say without content":     {func(c *Config) { c.Actions = []Action{{On: OnInterrupt, Do: DoSay}} }, "actions[0].content: "},
		"mute with content":       {func(c *Config) { c.Actions = []Action{{On: OnInterrupt, Do: DoMute, Content: "x"}} }, "actions[0].content: "},
		"role on say":             {func(c *Config) { c.Actions = []Action{{On: OnInterrupt, Do: DoSay, Content: "x", Role: "system"}} }, "actions[0].role: "},
		"phrases on final":        {func(c *Config) { c.Actions = []Action{{On: OnFinal, Do: DoUnmute, Phrases: []string{"wait"}}} }, "actions[0].phrases: "},
		"misspelt phrase":         {func(c *Config) { c.Actions = []Action{{On: OnInterrupt, Do: DoMute, Phrases: []string{"wiat"}}} }, "actions[0].phrases[0]: "},
		"a backchannel as phrase": {func(c *Config) { c.Actions = []Action{{On: OnInterrupt, Do: DoMute, Phrases: []string{"uh-huh"}}} }, "actions[0].phrases[0]: "},
		"phrase normalised": {func(c *Config) {
			c.Actions = []Action{{On: OnInterrupt, Do: DoMute, Phrases: []string{"That’s WRONG!"}}}
		}, ""},
		"a language's phrase": {func(c *Config) {
			c.Languages = map[string]Lists{"de": {Interruptions: []string{"moment"}}}
			c.Actions = []Action{{On: OnInterrupt, Do: DoMute, Phrases: []string{"moment"}}}
		}, ""},
		"too many interruptions": {func(c *Config) {
			for i := range MaxInterruptions + 1 {
				c.Interruptions = append(c.Interruptions, strings.Repeat("x", i+1))
			}
		}, "interruptions: "},
	} {
		cfg := base()
		c.mut(&cfg)
		probs := strings.Join(cfg.Validate(), "\n")
		if (c.want == "") != (probs == "") || (c.want != "" && !strings.Contains(probs, c.want)) {
			t.Errorf("%s: problems %q, want %q", name, probs, c.want)
		}
	}
}
