// Package logging provides the log section of the configuration: the
// level voicegate logs at, as a slog level.
package logging

import (
	"fmt"
	"log/slog"
)

// Config is the "log" section.
type Config struct {
	// Level is "debug", "info", "warn" or "error".
	Level string `yaml:"level"`
}

// DefaultConfig logs at info.
func DefaultConfig() Config { return Config{Level: "info"} }

// Validate returns the problem with the level, if any ("level: ...").
func (c Config) Validate() []string {
	switch c.Level {
	case "debug", "info", "warn", "error":
		return nil
	}
	return []string{fmt.Sprintf("level: %q is not one of debug, info, warn, error", c.Level)}
}

// SlogLevel is the level as slog's (info for an invalid one).
func (c Config) SlogLevel() slog.Level {
	switch c.Level {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}
