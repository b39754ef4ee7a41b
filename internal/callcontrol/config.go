package callcontrol

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
)

// Config is the "call_control" section: which control URLs voicegate posts
// to, the key it authenticates with, and how long and how often it tries.
// Complete fills its defaults, Resolve does its I/O (the key file),
// Validate checks it without any.
type Config struct {
	// AllowedHosts are the hosts a control URL may point at: "*.vapi.ai"
	// (any subdomain of vapi.ai, not vapi.ai itself), an exact host
	// ("phone-call-websocket.vapi.ai") or an IP address, each with an
	// optional ":port" (without one, only the scheme's default port
	// matches). Default ["*.vapi.ai"]. Plain http is accepted only for a
	// loopback host (127.0.0.1, ::1, localhost) listed exactly.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// BearerKey is the Vapi public API key sent as "Authorization: Bearer"
	// on every request, needed when the assistant's
	// monitorPlan.controlAuthenticationEnabled is true. Empty: no header.
	// Write it as "${VAPI_PUBLIC_KEY}" (expanded by the configuration
	// loader) or use BearerKeyFile. Never printed.
	BearerKey Key `yaml:"bearer_key"`
	// BearerKeyFile is a file holding BearerKey (trailing newline
	// trimmed), read by Resolve.
	BearerKeyFile string `yaml:"bearer_key_file"`
	// Timeout bounds each attempt: connecting, sending and Vapi's answer
	// (default 2s).
	Timeout confval.Duration `yaml:"timeout"`
	// Retries is how many more attempts a failed message may get (default
	// 2, at most 5; 0: none). Only failures that are safe to retry are
	// retried: see Client.Send.
	Retries *int `yaml:"retries"`
	// Backoff is the wait before the first retry, doubled before each
	// later one, with jitter (default 100ms).
	Backoff confval.Duration `yaml:"backoff"`
}

// Defaults and bounds of the section.
const (
	DefaultAllowedHost = "*.vapi.ai"
	DefaultTimeout     = 2 * time.Second
	DefaultRetries     = 2
	DefaultBackoff     = 100 * time.Millisecond
	MaxRetries         = 5

	minTimeout = 10 * time.Millisecond
	maxTimeout = 30 * time.Second
	minBackoff = time.Millisecond
	maxBackoff = 10 * time.Second
)

// DefaultConfig returns the section with its defaults, to decode over.
func DefaultConfig() Config {
	var c Config
	c.Complete()
	return c
}

// Complete fills the section's defaults. An explicit empty allowed_hosts
// stays empty (Validate reports it); retries: 0 stays 0.
func (c *Config) Complete() {
	if c.AllowedHosts == nil {
		c.AllowedHosts = []string{DefaultAllowedHost}
	}
	if c.Timeout == 0 {
		c.Timeout = confval.Duration(DefaultTimeout)
	}
	if c.Retries == nil {
		n := DefaultRetries
		c.Retries = &n
	}
	if c.Backoff == 0 {
		c.Backoff = confval.Duration(DefaultBackoff)
	}
}

// RetryCount is Retries, or DefaultRetries when unset.
func (c Config) RetryCount() int {
	if c.Retries == nil {
		return DefaultRetries
	}
	return *c.Retries
}

// Resolve does the section's I/O: the key file becomes BearerKey. getenv
// is not needed (bearer_key's ${ENV} is expanded by the configuration
// loader); it is taken so that every section resolves alike. It returns
// problems like Validate's.
func (c *Config) Resolve(_ func(string) string, readFile func(string) ([]byte, error)) []string {
	if c.BearerKeyFile == "" || c.BearerKey != "" {
		return nil // both set: Validate reports it
	}
	b, err := readFile(c.BearerKeyFile)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return []string{fmt.Sprintf("bearer_key_file: read %s: %v", c.BearerKeyFile, err)}
	}
	k := strings.TrimRight(string(b), "\r\n")
	if k == "" {
		// Fail closed: an empty file is a mistake, not "no key".
		return []string{fmt.Sprintf("bearer_key_file: %s is empty", c.BearerKeyFile)}
	}
	c.BearerKey, c.BearerKeyFile = Key(k), ""
	return nil
}

// Validate returns the section's problems, each starting with its field
// ("allowed_hosts: ..."). It reads nothing: run Resolve first. It never
// quotes the key.
func (c Config) Validate() []string {
	var probs []string
	add := func(field, format string, args ...any) {
		probs = append(probs, field+": "+fmt.Sprintf(format, args...))
	}
	if len(c.AllowedHosts) == 0 {
		add("allowed_hosts", "must list at least one host (default %q)", DefaultAllowedHost)
	}
	for _, h := range c.AllowedHosts {
		if _, err := parsePattern(h); err != nil {
			add("allowed_hosts", "%q: %v", h, err)
		}
	}
	if c.BearerKey != "" && c.BearerKeyFile != "" {
		add("bearer_key", "set bearer_key or bearer_key_file, not both")
	}
	if c.BearerKeyFile != "" && c.BearerKey == "" {
		add("bearer_key_file", "not read yet (Resolve)")
	}
	for i := 0; i < len(c.BearerKey); i++ {
		if ch := c.BearerKey[i]; ch <= ' ' || ch >= 0x7f {
			add("bearer_key", "contains a space, line break, control or non-ASCII character (position %d)", i+1)
			break
		}
	}
	if d := c.Timeout.D(); d < minTimeout || d > maxTimeout {
		add("timeout", "%s is outside %s..%s", d, minTimeout, maxTimeout)
	}
	if n := c.RetryCount(); n < 0 || n > MaxRetries {
		add("retries", "%d is outside 0..%d", n, MaxRetries)
	}
	if d := c.Backoff.D(); d < minBackoff || d > maxBackoff {
		add("backoff", "%s is outside %s..%s", d, minBackoff, maxBackoff)
	}
	return probs
}

// Key is a secret that never prints (confval.Masked): fmt, slog, YAML and
// JSON show "<redacted>". Use string(k) for the value.
type Key = confval.Masked
