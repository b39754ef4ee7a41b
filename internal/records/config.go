package records

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
)

// Config is the "records" section: where the keyring that seals the
// records is kept, what is stored, and for how long.
type Config struct {
	// KeyringFile is the keyring's file, created with mode 0600 on first
	// start (default: keyring.json in data_dir). Back it up apart from
	// the database: without it no record can be read.
	KeyringFile string `yaml:"keyring_file"`
	// KeyringEnv names an environment variable holding the keyring (the
	// file's JSON) instead, for replicas that share one; it cannot be
	// rotated by voicegate.
	KeyringEnv string `yaml:"keyring_env"`
	// KeyringJSON is KeyringEnv's value, read by Resolve.
	KeyringJSON string `yaml:"-"`
	// Redaction is what is stored of a record's content:
	//   - "none" (default): the original, sealed;
	//   - "copy": the original, sealed, and beside it a copy with phone
	//     numbers, e-mail addresses, SSNs, card numbers and dates of
	//     birth replaced by placeholders, sealed under the same data key,
	//     for analytics (voicegate records export --redacted);
	//   - "only": the redacted text only, sealed: the original is never
	//     stored.
	Redaction Redaction `yaml:"redaction"`
	// Retention is how long each kind of record is kept; a background
	// purge deletes older ones. Zero (or absent) keeps them until purged
	// by hand.
	Retention Retention `yaml:"retention"`
	// PurgeInterval is how often the background purge runs (default 1h).
	PurgeInterval confval.Duration `yaml:"purge_interval"`
}

// Redaction says what of a record's content is stored.
type Redaction string

const (
	RedactNone Redaction = "none"
	RedactCopy Redaction = "copy"
	RedactOnly Redaction = "only"
)

// Retention is a retention period per kind of record.
type Retention struct {
	EndOfCall confval.Duration `yaml:"end_of_call_report"`
	ToolCall  confval.Duration `yaml:"tool_call"`
}

// Periods returns the kinds with a retention period, and theirs.
func (r Retention) Periods() map[Kind]time.Duration {
	p := map[Kind]time.Duration{}
	if r.EndOfCall > 0 {
		p[KindEndOfCall] = r.EndOfCall.D()
	}
	if r.ToolCall > 0 {
		p[KindToolCall] = r.ToolCall.D()
	}
	return p
}

// DefaultConfig stores originals only and keeps them until purged.
func DefaultConfig() Config {
	return Config{Redaction: RedactNone, PurgeInterval: confval.Duration(time.Hour)}
}

// Resolve reads the keyring variable, if one is named.
func (c *Config) Resolve(getenv func(string) string) []string {
	if c.KeyringEnv == "" {
		return nil
	}
	if c.KeyringJSON = getenv(c.KeyringEnv); c.KeyringJSON == "" {
		return []string{fmt.Sprintf("keyring_env: environment variable %s is not set", c.KeyringEnv)}
	}
	return nil
}

// Validate returns the section's problems.
func (c Config) Validate() []string {
	var probs []string
	if c.KeyringFile != "" && c.KeyringEnv != "" {
		probs = append(probs, ": keyring_file and keyring_env are both set: choose one")
	}
	switch c.Redaction {
	case RedactNone, RedactCopy, RedactOnly:
	default:
		probs = append(probs, fmt.Sprintf("redaction: %q is not one of none, copy, only", c.Redaction))
	}
	for name, d := range map[string]confval.Duration{"end_of_call_report": c.Retention.EndOfCall, "tool_call": c.Retention.ToolCall} {
		if d < 0 {
			probs = append(probs, fmt.Sprintf("retention.%s: %s is negative (0 keeps records until purged by hand)", name, d.D()))
		} else if d > 0 && d.D() < time.Hour {
			probs = append(probs, fmt.Sprintf("retention.%s: %s is shorter than an hour: a call's records could be deleted while it is still going on", name, d.D()))
		}
	}
	if c.PurgeInterval.D() < time.Second {
		probs = append(probs, fmt.Sprintf("purge_interval: %s is shorter than a second", c.PurgeInterval.D()))
	}
	return probs
}

// KeyringPath is the keyring file's path for data directory dir.
func (c Config) KeyringPath(dir string) string {
	if c.KeyringFile != "" {
		return c.KeyringFile
	}
	return filepath.Join(dir, "keyring.json")
}
