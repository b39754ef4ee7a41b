package session

import (
	"fmt"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
)

// Config is the session table's configuration (the "sessions" section).
type Config struct {
	// TTL is how long a silent call is kept.
	TTL confval.Duration `yaml:"ttl"`
	// Capacity bounds the live calls tracked at once.
	Capacity int `yaml:"capacity"`
	// SweepInterval is how often expired sessions are removed.
	SweepInterval confval.Duration `yaml:"sweep_interval"`
}

const (
	// EntryBytes is what one live call costs, at most (TestMemoryPerSession
	// measures it).
	EntryBytes = 400
	// MaxCapacity bounds Capacity (about 800 MiB).
	MaxCapacity = 2_000_000
)

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{TTL: confval.Duration(2 * time.Hour), Capacity: 200_000, SweepInterval: confval.Duration(30 * time.Second)}
}

// Validate returns the section's problems and warnings, each starting with
// its field ("capacity: ...").
func (c Config) Validate() (probs, warns []string) {
	if c.TTL.D() <= 0 {
		probs = append(probs, "ttl: must be positive")
	}
	if c.Capacity <= 0 || c.Capacity > MaxCapacity {
		probs = append(probs, fmt.Sprintf("capacity: must be between 1 and %d, got %d (each live call costs about %d bytes: %s)",
			MaxCapacity, c.Capacity, EntryBytes, confval.MiB(int64(c.Capacity)*EntryBytes)))
	} else if m := int64(c.Capacity) * EntryBytes; m > 512<<20 {
		warns = append(warns, fmt.Sprintf("capacity: %d live calls can take %s of memory", c.Capacity, confval.MiB(m)))
	}
	if c.SweepInterval.D() <= 0 {
		probs = append(probs, "sweep_interval: must be positive")
	}
	return probs, warns
}
