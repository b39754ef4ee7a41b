package tools

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/redact"
	"go.yaml.in/yaml/v3"
)

// Config binds a Vapi tool name to an internal HTTP endpoint (one entry of
// the "tools" section). Complete fills its defaults, Resolve does its I/O
// (header values from the environment or files, the schema file, compiling
// the schema), Validate checks it without any.
type Config struct {
	Name string `yaml:"name"`
	// Description tells the model what the tool does: the Vapi tool's
	// function.description when voicegate vapi apply --tools-from-config
	// generates it.
	Description string                 `yaml:"description"`
	URL         string                 `yaml:"url"`
	Method      string                 `yaml:"method"`
	Headers     map[string]HeaderValue `yaml:"headers"`
	Timeout     confval.Duration       `yaml:"timeout"`
	// MaxConcurrency caps simultaneous requests to this tool's endpoint.
	MaxConcurrency   int            `yaml:"max_concurrency"`
	MaxResponseBytes int64          `yaml:"max_response_bytes"`
	Schema           map[string]any `yaml:"schema"`
	SchemaFile       string         `yaml:"schema_file"`
	// Compiled is Schema compiled by Resolve, so that it is compiled once
	// (nil when there is no schema).
	Compiled *jsonschema.Schema `yaml:"-"`

	// Async answers Vapi at once with HoldingPhrase and runs the call in the
	// durable queue (internal/asynctools): retried until Deadline or
	// MaxAttempts, its result delivered to the call later.
	Async bool `yaml:"async"`
	// HoldingPhrase is the tool's immediate answer when Async (default
	// DefaultHoldingPhrase).
	HoldingPhrase string `yaml:"holding_phrase"`
	// Deadline is how long an async call may keep retrying from the moment
	// it is queued (default DefaultDeadline); past it the caller is told the
	// information could not be had. It must exceed Timeout.
	Deadline confval.Duration `yaml:"deadline"`
	// MaxAttempts bounds the internal API requests of one async call
	// (default DefaultMaxAttempts).
	MaxAttempts int `yaml:"max_attempts"`
	// Response is how the internal API's answer is read: "body" (default:
	// the whole answer is the result) or "vapi" (a JSON object in Vapi's
	// tool-result shape, {"result"|"error", "message"?, "metadata"?}, the
	// spoken message and metadata passed through to Vapi).
	Response string `yaml:"response"`
	// Delivery is how an async result reaches the live call: add-message
	// (default: a system message the model answers from) or say (spoken
	// as is).
	Delivery string `yaml:"delivery"`
}

// Defaults of a tool entry.
const (
	DefaultTimeout          = 4 * time.Second
	DefaultConcurrency      = 64
	DefaultMaxResponseBytes = 64 << 10

	// Async tools only.
	DefaultHoldingPhrase = "I'm looking into that now; I'll let you know in a moment."
	DefaultDeadline      = 10 * time.Minute
	DefaultMaxAttempts   = 10
	DeliveryAddMessage   = "add-message"
	ResponseBody         = "body"
	ResponseVapi         = "vapi"
	DeliverySay          = "say"
)

// Bounds of the async settings: a queued call holds the caller's
// arguments (sealed) until it ends, so it cannot wait forever.
const (
	MaxDeadline          = 24 * time.Hour
	MaxMaxAttempts       = 100
	MaxHoldingPhraseSize = 500
	// MaxDescriptionSize bounds a description (the model reads it on
	// every turn).
	MaxDescriptionSize = 1000
)

// ReservedConfigHeaders are set by voicegate (or by HTTP itself) on every
// request to an internal API; a tool cannot configure them.
var ReservedConfigHeaders = []string{HeaderCallID, HeaderToolCallID, HeaderIdempotencyKey, "Host", "Content-Length", "Transfer-Encoding", "Connection"}

// Complete fills the entry's defaults.
func (c *Config) Complete() {
	if c.Method == "" {
		c.Method = http.MethodPost
	}
	c.Method = strings.ToUpper(c.Method)
	if c.Timeout == 0 {
		c.Timeout = confval.Duration(DefaultTimeout)
	}
	if c.MaxConcurrency == 0 {
		c.MaxConcurrency = DefaultConcurrency
	}
	if c.MaxResponseBytes == 0 {
		c.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.Response == "" {
		c.Response = ResponseBody
	}
	if c.Async {
		if c.HoldingPhrase == "" {
			c.HoldingPhrase = DefaultHoldingPhrase
		}
		if c.Deadline == 0 {
			c.Deadline = confval.Duration(DefaultDeadline)
		}
		if c.MaxAttempts == 0 {
			c.MaxAttempts = DefaultMaxAttempts
		}
		if c.Delivery == "" {
			c.Delivery = DeliveryAddMessage
		}
	}
}

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// Validate returns the entry's problems and warnings, each starting with its
// field ("url: ...", "headers.X-Api-Key: ...", or ": ..." for the entry as
// a whole). It reads nothing: run Resolve first for header values from the
// environment or files and for the schema.
func (c Config) Validate() (probs, warns []string) {
	add := func(field, format string, args ...any) {
		probs = append(probs, field+": "+fmt.Sprintf(format, args...))
	}
	if !nameRE.MatchString(c.Name) {
		add("name", "%q must match ^[a-zA-Z0-9_-]{1,64}$ (Vapi's function name rule)", c.Name)
	}
	u, err := url.Parse(c.URL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		add("url", "%q is not an absolute http(s) URL", redact.URL(c.URL))
	} else if u.User != nil {
		add("url", "credentials in the URL are not allowed; use headers with env or file values")
	} else if redact.URL(c.URL) != c.URL {
		warns = append(warns, fmt.Sprintf("url: the URL seems to carry a credential (%s): it is redacted in voicegate's output, but internal proxies and access logs may record it; prefer a header with an env or file value", redact.URL(c.URL)))
	}
	switch c.Method {
	case http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete:
	default:
		add("method", "%q is not one of GET, POST, PUT, PATCH, DELETE", c.Method)
	}
	if c.Timeout <= 0 {
		add("timeout", "must be positive")
	}
	if c.MaxConcurrency < 0 {
		add("max_concurrency", "must be positive")
	}
	if c.MaxResponseBytes < 0 {
		add("max_response_bytes", "must be positive")
	}
	for name, hv := range c.Headers {
		hp := "headers." + name
		if !confval.ValidHeaderName(name) {
			add(hp, "not a valid header name")
		}
		for _, r := range ReservedConfigHeaders {
			if strings.EqualFold(name, r) {
				add(hp, "%s is set by voicegate on every tool request and cannot be configured", r)
			}
		}
		if strings.ContainsAny(hv.Value, "\r\n") {
			add(hp, "value contains a line break")
		}
	}
	if len(c.Description) > MaxDescriptionSize {
		add("description", "is %d bytes, more than %d", len(c.Description), MaxDescriptionSize)
	}
	if c.Response != ResponseBody && c.Response != ResponseVapi {
		add("response", "%q is not body or vapi", c.Response)
	}
	if c.Schema != nil && c.SchemaFile != "" {
		add("", "set schema or schema_file, not both")
	}
	c.validateAsync(add)
	return probs, warns
}

// validateAsync checks the async settings: they belong to async tools only
// (Complete gives those their defaults), and bound how long a queued call
// may live.
func (c Config) validateAsync(add func(field, format string, args ...any)) {
	if !c.Async {
		if c.HoldingPhrase != "" {
			add("holding_phrase", "applies only to a tool with async: true")
		}
		if c.Deadline != 0 {
			add("deadline", "applies only to a tool with async: true")
		}
		if c.MaxAttempts != 0 {
			add("max_attempts", "applies only to a tool with async: true")
		}
		if c.Delivery != "" {
			add("delivery", "applies only to a tool with async: true")
		}
		return
	}
	if c.Delivery != DeliveryAddMessage && c.Delivery != DeliverySay {
		add("delivery", "%q is not add-message or say", c.Delivery)
	}
	switch {
	case strings.TrimSpace(c.HoldingPhrase) == "":
		add("holding_phrase", "must not be empty: it is what the caller hears while the tool runs")
	case strings.ContainsAny(c.HoldingPhrase, "\r\n"):
		add("holding_phrase", "contains a line break")
	case len(c.HoldingPhrase) > MaxHoldingPhraseSize:
		add("holding_phrase", "is %d bytes, more than %d", len(c.HoldingPhrase), MaxHoldingPhraseSize)
	}
	switch {
	case c.Deadline <= 0:
		add("deadline", "must be positive")
	case c.Timeout > 0 && c.Deadline <= c.Timeout:
		add("deadline", "%s must exceed timeout (%s): it bounds all the attempts together", c.Deadline.D(), c.Timeout.D())
	case c.Deadline.D() > MaxDeadline:
		add("deadline", "%s is more than %s", c.Deadline.D(), MaxDeadline)
	}
	if c.MaxAttempts < 1 || c.MaxAttempts > MaxMaxAttempts {
		add("max_attempts", "must be between 1 and %d, got %d", MaxMaxAttempts, c.MaxAttempts)
	}
}

// Resolve does the entry's I/O: header values from the environment or
// files become literal values, the schema file is read, and the schema is
// compiled (once). It returns problems like Validate's.
func (c *Config) Resolve(getenv func(string) string, readFile func(string) ([]byte, error)) (probs []string) {
	add := func(field, format string, args ...any) {
		probs = append(probs, field+": "+fmt.Sprintf(format, args...))
	}
	for name, hv := range c.Headers {
		hp := "headers." + name
		set := 0
		for _, s := range []string{hv.Value, hv.Env, hv.File} {
			if s != "" {
				set++
			}
		}
		if set != 1 {
			add(hp, "needs exactly one of a value, env or file")
			continue
		}
		switch {
		case hv.Env != "":
			v := getenv(hv.Env)
			if v == "" {
				add(hp, "environment variable %s is not set", hv.Env)
			}
			hv.Value, hv.Env = v, ""
		case hv.File != "":
			b, err := readFile(hv.File)
			if err != nil {
				add(hp, "read %s: %v", hv.File, unwrapPathErr(err))
			}
			hv.Value, hv.File = strings.TrimRight(string(b), "\r\n"), ""
		}
		c.Headers[name] = hv
	}
	if c.SchemaFile != "" {
		b, err := readFile(c.SchemaFile)
		if err != nil {
			add("schema_file", "read %s: %v", c.SchemaFile, unwrapPathErr(err))
		} else if c.Schema != nil {
			// Both set: Validate reports it; the inline schema is kept.
		} else if err := yaml.Unmarshal(b, &c.Schema); err != nil {
			add("schema_file", "%s is not JSON or YAML: %v", c.SchemaFile, err)
		} else {
			c.SchemaFile = ""
		}
	}
	if c.Schema != nil && c.SchemaFile == "" {
		var err error
		if c.Compiled, err = CompileSchema(c.Name, c.Schema); err != nil {
			add("schema", "%v", err)
		}
	}
	return probs
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// HeaderValue is a header value given literally, from an environment
// variable, or from a file (trailing newline trimmed). Resolve turns the
// last two into literal values.
type HeaderValue struct {
	Value string
	Env   string
	File  string
}

// UnmarshalYAML accepts "literal", {env: NAME} or {file: PATH}.
func (h *HeaderValue) UnmarshalYAML(n *yaml.Node) error {
	return confval.DecodeStringOrFields(n, &h.Value, map[string]*string{"value": &h.Value, "env": &h.Env, "file": &h.File},
		"header value (want value, env or file)", "a header value is a string or {env|file: ...}")
}

// MarshalYAML never writes the header's value.
func (h HeaderValue) MarshalYAML() (any, error) { return "<redacted>", nil }
