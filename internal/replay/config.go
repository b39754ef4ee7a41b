package replay

import (
	"fmt"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
)

// Config is the replay cache's configuration (the "vapi.replay" section).
// The rule that ties it to the credentials (a window at least as long as
// any signed-timestamp tolerance) is the configuration's.
type Config struct {
	// Window is how long a request is remembered after first sight (and
	// at least as long as its signature verifies).
	Window confval.Duration `yaml:"window"`
	// Capacity bounds the requests remembered at once.
	Capacity int `yaml:"capacity"`
}

const (
	// EntryBytes is the measured cost of one entry (map entry, ring slot
	// and record; TestMemoryPerEntry).
	EntryBytes = 265
	// MaxCapacity bounds Capacity (about 1.2 GiB).
	MaxCapacity = 5_000_000
)

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Window: confval.Duration(5 * time.Minute), Capacity: 100_000}
}

// Validate returns the section's problems and warnings, each starting with
// its field ("window: ...").
func (c Config) Validate() (probs, warns []string) {
	if c.Window.D() < time.Second {
		probs = append(probs, fmt.Sprintf("window: must be at least 1s, got %s", c.Window.D()))
	}
	if c.Capacity <= 0 || c.Capacity > MaxCapacity {
		probs = append(probs, fmt.Sprintf("capacity: must be between 1 and %d, got %d (each entry costs about %d bytes: %s)",
			MaxCapacity, c.Capacity, EntryBytes, confval.MiB(int64(c.Capacity)*EntryBytes)))
	} else if m := int64(c.Capacity) * EntryBytes; m > 512<<20 {
		warns = append(warns, fmt.Sprintf("capacity: %d entries can take %s of memory", c.Capacity, confval.MiB(m)))
	}
	return probs, warns
}
