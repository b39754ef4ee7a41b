// Package logging provides the log section of the configuration — the
// level voicegate logs at, and whether personal data is redacted from log
// lines — and the handler that does the redacting ([Redacting]).
package logging

import (
	"fmt"
	"io"
	"log/slog"
)

// Config is the "log" section.
type Config struct {
	// Level is "debug", "info", "warn" or "error".
	Level string `yaml:"level"`
	// RedactPII replaces the personal data internal/pii finds in log lines
	// (phone numbers, e-mail addresses, SSNs, card numbers, dates of
	// birth) by placeholders. On by default; off is warned about.
	RedactPII bool `yaml:"redact_pii"`
}

// DefaultConfig logs at info, redacting personal data.
func DefaultConfig() Config { return Config{Level: "info", RedactPII: true} }

// Validate returns the problem with the level, if any ("level: ..."), and
// a warning when redaction is off.
func (c Config) Validate() (probs, warns []string) {
	switch c.Level {
	case "debug", "info", "warn", "error":
	default:
		probs = append(probs, fmt.Sprintf("level: %q is not one of debug, info, warn, error", c.Level))
	}
	if !c.RedactPII {
		warns = append(warns, "redact_pii: off: phone numbers, e-mail addresses, card numbers and other personal data that reach a log line are written in clear")
	}
	return probs, warns
}

// Handler returns the handler voicegate logs through: JSON lines to w at
// level, redacting personal data unless RedactPII is off.
func (c Config) Handler(w io.Writer, level slog.Leveler) slog.Handler {
	var h slog.Handler = slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	if c.RedactPII {
		h = Redacting(h)
	}
	return h
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
