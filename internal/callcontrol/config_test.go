package callcontrol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
	"go.yaml.in/yaml/v3"
)

const testKey = "3c9a1f7e-5b2d-4e8a-9c6f-0d1e2f3a4b5c"

func TestDefaults(t *testing.T) {
	c := DefaultConfig()
	if len(c.AllowedHosts) != 1 || c.AllowedHosts[0] != "*.vapi.ai" {
		t.Errorf("allowed_hosts = %q, want [*.vapi.ai]", c.AllowedHosts)
	}
	if c.Timeout.D() != 2*time.Second || c.RetryCount() != 2 || c.Backoff.D() != 100*time.Millisecond || c.BearerKey != "" {
		t.Errorf("defaults = timeout %s, retries %d, backoff %s", c.Timeout.D(), c.RetryCount(), c.Backoff.D())
	}
	if p := c.Validate(); len(p) != 0 {
		t.Errorf("defaults have problems: %q", p)
	}
	// retries: 0 is kept (no retry), not replaced by the default.
	zero := Config{Retries: ptr(0)}
	zero.Complete()
	if zero.RetryCount() != 0 {
		t.Errorf("retries: 0 completed to %d", zero.RetryCount())
	}
}

// TestDecode decodes the section as the configuration loader does: strictly,
// over the defaults.
func TestDecode(t *testing.T) {
	src := "allowed_hosts: [\"*.vapi.ai\", \"127.0.0.1:8080\"]\nbearer_key: " + testKey + "\ntimeout: 1500ms\nretries: 0\nbackoff: 50ms\n"
	c := DefaultConfig()
	dec := yaml.NewDecoder(strings.NewReader(src))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	if c.Timeout.D() != 1500*time.Millisecond || c.RetryCount() != 0 || c.Backoff.D() != 50*time.Millisecond || string(c.BearerKey) != testKey || len(c.AllowedHosts) != 2 {
		t.Errorf("decoded %+v", c)
	}
	if p := c.Validate(); len(p) != 0 {
		t.Errorf("problems: %q", p)
	}
	// The defaults are not shared: decoding into one does not change another.
	if DefaultConfig().RetryCount() != DefaultRetries {
		t.Error("decoding changed the defaults")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string // the problem's start
	}{
		{"no hosts", func(c *Config) { c.AllowedHosts = []string{} }, "allowed_hosts: must list"},
		{"bad host", func(c *Config) { c.AllowedHosts = []string{"*.vapi.ai", "*.ai"} }, `allowed_hosts: "*.ai": a wildcard`},
		{"URL as host", func(c *Config) { c.AllowedHosts = []string{"https://x.vapi.ai"} }, `allowed_hosts: "https://x.vapi.ai"`},
		{"key and file", func(c *Config) { c.BearerKey, c.BearerKeyFile = testKey, "/run/secrets/vapi" }, "bearer_key: set bearer_key or bearer_key_file"},
		{"file not resolved", func(c *Config) { c.BearerKeyFile = "/run/secrets/vapi" }, "bearer_key_file: not read"},
		{"key with newline", func(c *Config) { c.BearerKey = testKey + "\n" }, "bearer_key: contains"},
		{"key with space", func(c *Config) { c.BearerKey = "Bearer " + testKey }, "bearer_key: contains"},
		{"timeout negative", func(c *Config) { c.Timeout = confval.Duration(-time.Second) }, "timeout: -1s is outside"},
		{"timeout long", func(c *Config) { c.Timeout = confval.Duration(time.Minute) }, "timeout: 1m0s is outside"},
		{"retries negative", func(c *Config) { c.Retries = ptr(-1) }, "retries: -1 is outside 0..5"},
		{"retries many", func(c *Config) { c.Retries = ptr(6) }, "retries: 6 is outside 0..5"},
		{"backoff negative", func(c *Config) { c.Backoff = confval.Duration(-time.Second) }, "backoff: -1s is outside"},
		{"backoff long", func(c *Config) { c.Backoff = confval.Duration(time.Minute) }, "backoff: 1m0s is outside"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			probs := c.Validate()
			if len(probs) != 1 || !strings.HasPrefix(probs[0], tc.want) {
				t.Fatalf("problems = %q, want one starting with %q", probs, tc.want)
			}
			if strings.Contains(probs[0], testKey) {
				t.Errorf("problem quotes the key: %q", probs[0])
			}
			if _, err := New(c, Deps{}); err == nil {
				t.Error("New accepted the configuration")
			}
		})
	}
}

func TestResolve(t *testing.T) {
	files := map[string]string{"/run/secrets/vapi": testKey + "\n", "/run/secrets/empty": "\n"}
	readFile := func(name string) ([]byte, error) {
		s, ok := files[name]
		if !ok {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		return []byte(s), nil
	}
	getenv := func(string) string { t.Error("getenv called"); return "" }

	c := DefaultConfig()
	c.BearerKeyFile = "/run/secrets/vapi"
	if p := c.Resolve(getenv, readFile); len(p) != 0 {
		t.Fatalf("problems: %q", p)
	}
	if string(c.BearerKey) != testKey || c.BearerKeyFile != "" {
		t.Errorf("key %q, file %q after Resolve", string(c.BearerKey), c.BearerKeyFile)
	}
	if p := c.Validate(); len(p) != 0 {
		t.Errorf("problems after Resolve: %q", p)
	}

	for name, want := range map[string]string{
		"/run/secrets/missing": "bearer_key_file: read /run/secrets/missing: file does not exist",
		"/run/secrets/empty":   "bearer_key_file: /run/secrets/empty is empty",
	} {
		c := DefaultConfig()
		c.BearerKeyFile = name
		if p := c.Resolve(getenv, readFile); len(p) != 1 || p[0] != want {
			t.Errorf("Resolve(%s) = %q, want %q", name, p, want)
		}
	}

	// Both set: nothing is read, and Validate reports it once.
	c = DefaultConfig()
	c.BearerKey, c.BearerKeyFile = testKey, "/run/secrets/missing"
	if p := c.Resolve(getenv, readFile); len(p) != 0 {
		t.Errorf("Resolve with both set = %q", p)
	}
	if p := c.Validate(); len(p) != 1 {
		t.Errorf("Validate with both set = %q", p)
	}
}

// TestKeyNeverPrinted: the key does not come out of fmt, slog, YAML or JSON.
func TestKeyNeverPrinted(t *testing.T) {
	c := DefaultConfig()
	c.BearerKey = testKey
	var out []string
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		out = append(out, fmt.Sprintf(f, c), fmt.Sprintf(f, c.BearerKey))
	}
	y, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	j, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("config", "key", c.BearerKey, "cfg", c)
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "key", c.BearerKey)
	out = append(out, string(y), string(j), logs.String())
	for _, s := range out {
		if strings.Contains(s, testKey) || strings.Contains(s, "3c9a1f7e") {
			t.Errorf("key printed: %s", s)
		}
	}
	if !strings.Contains(string(y), "bearer_key: <redacted>") {
		t.Errorf("YAML = %s, want bearer_key: <redacted>", y)
	}
	// Unset stays visibly unset.
	if s := fmt.Sprint(Key("")); s != "" {
		t.Errorf("empty key prints %q", s)
	}
}
