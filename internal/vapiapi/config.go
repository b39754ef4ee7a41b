package vapiapi

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
)

// Config is the "vapi.api" section: where Vapi's management API is and the
// private key voicegate calls it with. Complete fills its defaults, Resolve
// does its I/O (the key file), Validate checks it without any. The API is
// off while no key is set: the commands that need it say so.
type Config struct {
	// BaseURL is Vapi's API (default https://api.vapi.ai). https is
	// required, except on a loopback host (a local stand-in).
	BaseURL string `yaml:"base_url"`
	// Key is Vapi's private API key, written as ${VAPI_API_KEY} (expanded
	// by the configuration loader) or read from KeyFile. Never printed or
	// logged.
	Key Key `yaml:"key"`
	// KeyFile is a file holding Key (trailing newline trimmed).
	KeyFile string `yaml:"key_file"`
	// Timeout bounds each attempt: connecting, sending and Vapi's whole
	// answer (default 10s).
	Timeout confval.Duration `yaml:"timeout"`
	// Retries is how many more attempts a request gets after a 429, a 5xx
	// or a connection that failed before an answer (default 3; 0: none).
	Retries *int `yaml:"retries"`
}

// Defaults and bounds of the section.
const (
	DefaultBaseURL = "https://api.vapi.ai"
	DefaultTimeout = 10 * time.Second
	DefaultRetries = 3
	MaxRetries     = 10

	minTimeout = 100 * time.Millisecond
	maxTimeout = 2 * time.Minute
)

// DefaultConfig returns the section with its defaults, to decode over.
func DefaultConfig() Config {
	var c Config
	c.Complete()
	return c
}

// Complete fills the defaults; retries: 0 stays 0.
func (c *Config) Complete() {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if c.Timeout == 0 {
		c.Timeout = confval.Duration(DefaultTimeout)
	}
	if c.Retries == nil {
		n := DefaultRetries
		c.Retries = &n
	}
}

// RetryCount is Retries, or DefaultRetries when unset.
func (c Config) RetryCount() int {
	if c.Retries == nil {
		return DefaultRetries
	}
	return *c.Retries
}

// Enabled reports whether a key is set (after Resolve).
func (c Config) Enabled() bool { return c.Key != "" }

// Resolve reads the key file into Key. getenv is not needed (key's ${ENV}
// is expanded by the configuration loader); it is taken so that every
// section resolves alike. It returns problems like Validate's.
func (c *Config) Resolve(_ func(string) string, readFile func(string) ([]byte, error)) []string {
	if c.KeyFile == "" || c.Key != "" {
		return nil // both set: Validate reports it
	}
	b, err := readFile(c.KeyFile)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return []string{fmt.Sprintf("key_file: read %s: %v", c.KeyFile, err)}
	}
	k := strings.TrimRight(string(b), "\r\n")
	if k == "" {
		// Fail closed: an empty file is a mistake, not "no key".
		return []string{fmt.Sprintf("key_file: %s is empty", c.KeyFile)}
	}
	c.Key, c.KeyFile = Key(k), ""
	return nil
}

// Validate returns the section's problems, each starting with its field.
// It reads nothing (run Resolve first) and never quotes the key.
func (c Config) Validate() []string {
	var probs []string
	add := func(field, format string, args ...any) {
		probs = append(probs, field+": "+fmt.Sprintf(format, args...))
	}
	u, err := url.Parse(c.BaseURL)
	switch {
	case err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || (u.Scheme != "http" && u.Scheme != "https"):
		add("base_url", "%q is not a base URL such as %s", c.BaseURL, DefaultBaseURL)
	case u.Scheme != "https" && !isLoopback(u.Hostname()):
		add("base_url", "must be https (http only on a loopback address, for a local stand-in): the API key travels with every request")
	}
	if c.Key != "" && c.KeyFile != "" {
		add("key", "set key or key_file, not both")
	}
	if c.KeyFile != "" && c.Key == "" {
		add("key_file", "not read yet (Resolve)")
	}
	for i := 0; i < len(c.Key); i++ {
		if ch := c.Key[i]; ch <= ' ' || ch >= 0x7f {
			add("key", "contains a space, line break, control or non-ASCII character (position %d)", i+1)
			break
		}
	}
	if d := c.Timeout.D(); d < minTimeout || d > maxTimeout {
		add("timeout", "%s is outside %s..%s", d, minTimeout, maxTimeout)
	}
	if n := c.RetryCount(); n < 0 || n > MaxRetries {
		add("retries", "%d is outside 0..%d", n, MaxRetries)
	}
	return probs
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Key is a secret that never prints (confval.Masked): fmt, slog, YAML and
// JSON show "<redacted>". Use string(k) for the value.
type Key = confval.Masked

// redacted stands for a secret removed from a message.
const redacted = confval.Redacted
