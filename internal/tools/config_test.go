package tools

import (
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
)

// Resolve does every read through the functions it is given; Validate
// reads nothing and checks the resolved values.
func TestConfigResolveThenValidate(t *testing.T) {
	c := Config{Name: "getX", URL: "http://127.0.0.1:9/x", Headers: map[string]HeaderValue{
		"Authorization": {Env: "API_TOKEN"},
		"X-Tenant":      {File: "/secrets/tenant"},
		"X-Missing":     {Env: "NOT_SET"},
	}, SchemaFile: "/schemas/x.yaml"}
	c.Complete()
	files := map[string]string{"/secrets/tenant": "acme\n", "/schemas/x.yaml": "type: object\nrequired: [date]\n"}
	getenv := func(k string) string { return map[string]string{"API_TOKEN": "Bearer t0k3n"}[k] }
	readFile := func(p string) ([]byte, error) {
		if v, ok := files[p]; ok {
			return []byte(v), nil
		}
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	probs := c.Resolve(getenv, readFile)
	if len(probs) != 1 || !strings.HasPrefix(probs[0], "headers.X-Missing: environment variable NOT_SET is not set") {
		t.Fatalf("resolve problems %q", probs)
	}
	if c.Headers["Authorization"].Value != "Bearer t0k3n" || c.Headers["X-Tenant"].Value != "acme" || c.Compiled == nil {
		t.Fatalf("not resolved: %+v, compiled %v", c.Headers, c.Compiled != nil)
	}
	probs, _ = c.Validate()
	if len(probs) != 0 {
		t.Fatalf("validate problems %q", probs)
	}
	bad := Config{Name: "bad name!", URL: "ftp://x", Method: "TRACE", Headers: map[string]HeaderValue{"Host": {Value: "evil"}}}
	probs, _ = bad.Validate()
	got := strings.Join(probs, "\n")
	for _, want := range []string{"name: ", "url: ", "method: ", "headers.Host: Host is set by voicegate", "timeout: must be positive"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems %q lack %q", probs, want)
		}
	}
}

// TestConfigAsync: async tools get their defaults from Complete; the
// settings are checked against each other and refused on a tool that is
// not async.
func TestConfigAsync(t *testing.T) {
	base := func(mut func(*Config)) Config {
		c := Config{Name: "slow", URL: "http://127.0.0.1:9/x", Async: true}
		if mut != nil {
			mut(&c)
		}
		c.Complete()
		return c
	}
	c := base(nil)
	if c.HoldingPhrase != DefaultHoldingPhrase || c.Deadline.D() != DefaultDeadline || c.MaxAttempts != DefaultMaxAttempts {
		t.Fatalf("defaults: %q %s %d", c.HoldingPhrase, c.Deadline.D(), c.MaxAttempts)
	}
	if probs, _ := c.Validate(); len(probs) != 0 {
		t.Fatalf("defaults invalid: %q", probs)
	}
	sync := Config{Name: "sync", URL: "http://127.0.0.1:9/x"}
	sync.Complete()
	if sync.HoldingPhrase != "" || sync.Deadline != 0 || sync.MaxAttempts != 0 {
		t.Fatalf("a synchronous tool got async defaults: %+v", sync)
	}
	for _, tc := range []struct {
		name string
		mut  func(*Config)
		want string
	}{
		{"deadline not above timeout", func(c *Config) {
			c.Timeout = confval.Duration(5 * time.Second)
			c.Deadline = confval.Duration(5 * time.Second)
		}, "deadline: 5s must exceed timeout (5s)"},
		{"deadline negative", func(c *Config) { c.Deadline = confval.Duration(-time.Second) }, "deadline: must be positive"},
		{"deadline too long", func(c *Config) { c.Deadline = confval.Duration(25 * time.Hour) }, "deadline: 25h0m0s is more than 24h0m0s"},
		{"attempts negative", func(c *Config) { c.MaxAttempts = -1 }, "max_attempts: must be between 1 and 100, got -1"},
		{"attempts too many", func(c *Config) { c.MaxAttempts = 101 }, "max_attempts: must be between 1 and 100, got 101"},
		{"phrase blank", func(c *Config) { c.HoldingPhrase = "  " }, "holding_phrase: must not be empty"},
		{"phrase line break", func(c *Config) { c.HoldingPhrase = "one\ntwo" }, "holding_phrase: contains a line break"},
		{"phrase too long", func(c *Config) { c.HoldingPhrase = strings.Repeat("a", 501) }, "holding_phrase: is 501 bytes"},
		{"settings on a sync tool", func(c *Config) {
			c.Async = false
			c.HoldingPhrase, c.Deadline, c.MaxAttempts = "wait", confval.Duration(time.Minute), 3
		}, "holding_phrase: applies only to a tool with async: true\ndeadline: applies only to a tool with async: true\nmax_attempts: applies only to a tool with async: true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			probs, _ := base(tc.mut).Validate()
			if got := strings.Join(probs, "\n"); !strings.Contains(got, tc.want) {
				t.Fatalf("problems %q, want %q", probs, tc.want)
			}
		})
	}
	bad := Config{Name: "x", URL: "http://127.0.0.1:9/x", Headers: map[string]HeaderValue{"Idempotency-Key": {Value: "k"}}}
	bad.Complete()
	if probs, _ := bad.Validate(); !strings.Contains(strings.Join(probs, "\n"), "headers.Idempotency-Key: Idempotency-Key is set by voicegate") {
		t.Fatalf("a configured Idempotency-Key must be refused: %q", probs)
	}
}

func TestResponseSetting(t *testing.T) {
	c := Config{Name: "t", URL: "http://127.0.0.1/x"}
	c.Complete()
	if c.Response != ResponseBody {
		t.Fatalf("default response %q", c.Response)
	}
	c.Response = "xml"
	if probs, _ := c.Validate(); len(probs) != 1 || !strings.HasPrefix(probs[0], "response: ") {
		t.Fatalf("problems %q", probs)
	}
}
