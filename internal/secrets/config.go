package secrets

import (
	"fmt"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
)

// RotationConfig is the "vapi.rotation" section: serve rotates the
// managed webhook secret on a schedule (off while Every is zero).
type RotationConfig struct {
	// Every is how old the newest secret may get before serve rotates it
	// (e.g. 90d).
	Every confval.Duration `yaml:"every"`
	// Grace is how long the old secret stays accepted after Vapi has
	// switched to the new one (default 24h).
	Grace confval.Duration `yaml:"grace"`
}

// DefaultGrace is the grace period of a rotation.
const DefaultGrace = 24 * time.Hour

// Complete fills the defaults.
func (c *RotationConfig) Complete() {
	if c.Grace == 0 {
		c.Grace = confval.Duration(DefaultGrace)
	}
}

// Validate returns the section's problems, each starting with its field.
func (c RotationConfig) Validate() []string {
	var probs []string
	if c.Every < 0 {
		probs = append(probs, "every: must not be negative")
	} else if c.Every > 0 && c.Every.D() < time.Hour {
		probs = append(probs, fmt.Sprintf("every: %s is shorter than an hour", c.Every.D()))
	}
	if c.Grace.D() < time.Minute {
		probs = append(probs, fmt.Sprintf("grace: %s is shorter than a minute: Vapi's calls in flight may still be signed with the old secret", c.Grace.D()))
	}
	if c.Every > 0 && c.Grace >= c.Every {
		probs = append(probs, fmt.Sprintf("grace: %s must be shorter than every (%s)", c.Grace.D(), c.Every.D()))
	}
	return probs
}
