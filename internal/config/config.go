// Package config provides voicegate's configuration: the YAML file format,
// ${ENV} expansion, strict decoding, defaults and validation that reports every
// problem in one pass.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/bargein"
	"github.com/voicegate/voicegate/internal/callcontrol"
	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/dispatch"
	"github.com/voicegate/voicegate/internal/endpointing"
	"github.com/voicegate/voicegate/internal/knowledge"
	"github.com/voicegate/voicegate/internal/logging"
	"github.com/voicegate/voicegate/internal/predial"
	"github.com/voicegate/voicegate/internal/ratelimit"
	"github.com/voicegate/voicegate/internal/records"
	"github.com/voicegate/voicegate/internal/replay"
	"github.com/voicegate/voicegate/internal/secrets"
	"github.com/voicegate/voicegate/internal/server"
	"github.com/voicegate/voicegate/internal/session"
	"github.com/voicegate/voicegate/internal/state"
	"github.com/voicegate/voicegate/internal/storage"
	"github.com/voicegate/voicegate/internal/tools"
	"github.com/voicegate/voicegate/internal/twilio"
	"github.com/voicegate/voicegate/internal/vapiapi"
	"go.yaml.in/yaml/v3"
)

// Config is the whole of voicegate's configuration.
type Config struct {
	Listen string `yaml:"listen"`
	// DataDir holds the SQLite database. Created with mode 0700.
	DataDir string `yaml:"data_dir"`
	// AllowInsecureHTTP permits plain HTTP on a non-loopback address, for a
	// deployment behind a TLS-terminating internal load balancer.
	AllowInsecureHTTP bool               `yaml:"allow_insecure_http"`
	TLS               server.TLSConfig   `yaml:"tls"`
	Server            server.Config      `yaml:"server"`
	Log               logging.Config     `yaml:"log"`
	Admin             server.AdminConfig `yaml:"admin"`
	Vapi              VapiConfig         `yaml:"vapi"`
	Tools             []ToolConfig       `yaml:"tools"`
	Sessions          session.Config     `yaml:"sessions"`
	Storage           storage.Config     `yaml:"storage"`
	Records           records.Config     `yaml:"records"`
	Limits            ratelimit.Config   `yaml:"limits"`
	Twilio            twilio.Config      `yaml:"twilio"`
	Bargein           bargein.Config     `yaml:"bargein"`
	CallControl       callcontrol.Config `yaml:"call_control"`
	State             state.Config       `yaml:"state"`

	// Warnings are settings accepted because they have a legitimate use,
	// but weaker than the defaults; serve logs them, config check shows them.
	Warnings []Problem `yaml:"-"`
}

// AuthConfig is one credential of vapi.auth (internal/auth owns its
// defaults and validation); Secret is one of its secrets.
type (
	AuthConfig = auth.Config
	Secret     = confval.Secret
)

// VapiConfig configures the Vapi server-URL endpoint.
type VapiConfig struct {
	// The endpoint's own settings (path, body cap, server timeout, public
	// URL, slow-answer ratio), as the Vapi source defines them.
	dispatch.Settings   `yaml:",inline"`
	Auth                []AuthConfig                    `yaml:"auth"`
	Replay              replay.Config                   `yaml:"replay"`
	AssistantRequest    dispatch.AssistantRequestConfig `yaml:"assistant_request"`
	TransferDestination *dispatch.TransferConfig        `yaml:"transfer_destination"`
	Endpointing         endpointing.Config              `yaml:"endpointing"`
	Handoff             dispatch.HandoffConfig          `yaml:"handoff"`
	Predial             predial.Config                  `yaml:"predial"`
	// KnowledgeBase answers knowledge-base-request from an internal
	// search API.
	KnowledgeBase knowledge.Config `yaml:"knowledge_base"`
	// Rotation rotates the managed webhook secret on a schedule.
	Rotation secrets.RotationConfig `yaml:"rotation"`
	// PhoneCallControl executes phone-call-control through Twilio.
	PhoneCallControl twilio.RESTConfig `yaml:"phone_call_control"`
	// API is Vapi's management API (vapi plan|apply, secret rotation).
	API vapiapi.Config `yaml:"api"`
}

// ToolConfig binds a Vapi tool name to an internal HTTP endpoint
// (internal/tools owns its defaults, resolution and validation).
type ToolConfig = tools.Config

// Duration is a time.Duration written as "2s", "150ms", "5m" (confval's,
// shared by every component's configuration).
type Duration = confval.Duration

// Problem is one configuration error at a path such as "vapi.auth[0].secrets".
type Problem struct {
	Path string
	Msg  string
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Msg
	}
	return p.Path + ": " + p.Msg
}

// ValidationError lists every problem found in a configuration.
type ValidationError struct {
	Problems []Problem
	// Warnings are collected beside the problems (they do not fail).
	Warnings []Problem
}

func (e *ValidationError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "invalid configuration (%d problem", len(e.Problems))
	if len(e.Problems) != 1 {
		b.WriteString("s")
	}
	b.WriteString("):")
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p.String())
	}
	return b.String()
}

func (e *ValidationError) add(path, format string, args ...any) {
	e.Problems = append(e.Problems, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (e *ValidationError) warn(path, format string, args ...any) {
	e.Warnings = append(e.Warnings, Problem{Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (e *ValidationError) orNil() error {
	if len(e.Problems) == 0 {
		return nil
	}
	return e
}

// Options change how a configuration is completed and validated.
type Options struct {
	// Dev permits running without a credential (serve --dev).
	Dev bool
	// Getenv resolves ${ENV} references and {env: NAME} header values.
	Getenv func(string) string
	// ReadFile reads the configuration file, header value files and schema
	// files (default os.ReadFile).
	ReadFile func(string) ([]byte, error)
	// Now is the time secrets' not_after are checked against (default
	// time.Now).
	Now func() time.Time
}

// withDefaults fills what opt leaves out: no environment, the real files
// and clock.
func (opt Options) withDefaults() Options {
	if opt.Getenv == nil {
		opt.Getenv = func(string) string { return "" }
	}
	if opt.ReadFile == nil {
		opt.ReadFile = os.ReadFile
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	return opt
}

// Load reads, expands, strictly decodes, completes and validates the file at
// path. Every problem is reported in one *ValidationError.
func Load(path string, opt Options) (*Config, error) {
	opt = opt.withDefaults()
	raw, err := opt.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(raw, opt)
}

// Parse is Load on bytes.
func Parse(raw []byte, opt Options) (*Config, error) {
	opt = opt.withDefaults()
	verr := &ValidationError{}
	cfg, missing := decode(raw, nil, opt, verr)
	if cfg == nil {
		return nil, verr
	}
	cfg.applyDefaults()
	cfg.resolve(verr, opt)
	cfg.validate(verr, opt)
	reportUnexpanded(verr, missing)
	if err := verr.orNil(); err != nil {
		return nil, err
	}
	cfg.Warnings = verr.Warnings
	return cfg, nil
}

// decode parses raw, keeps only what prune leaves of the document (nil:
// all of it), expands ${ENV} in its scalars and strictly decodes it over
// the defaults, collecting every problem in verr; nil when the document
// cannot be decoded at all. ${ENV} is expanded inside scalar values only,
// after parsing: a comment is never expanded, and an environment value
// cannot inject YAML structure (a secret containing ": " or a newline stays
// one string).
func decode(raw []byte, prune func(doc *yaml.Node), opt Options, verr *ValidationError) (*Config, []unexpanded) {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		verr.add("", "%s", strings.TrimPrefix(err.Error(), "yaml: "))
		return nil, nil
	}
	if prune != nil && len(root.Content) > 0 {
		if root.Content[0].Kind != yaml.MappingNode {
			verr.add("", "not a voicegate configuration (want a mapping of keys)")
			return nil, nil
		}
		prune(root.Content[0])
	}
	return decodeNode(&root, opt, verr)
}

func decodeNode(root *yaml.Node, opt Options, verr *ValidationError) (*Config, []unexpanded) {
	// The values that could not be expanded are reported by
	// reportUnexpanded, once validation is done.
	missing := expandNode(root, "", opt.Getenv)
	cfg := Default()
	if len(root.Content) == 0 {
		return cfg, missing
	}
	expanded, err := yaml.Marshal(root)
	if err != nil {
		verr.add("", "%v", err)
		return nil, missing
	}
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			verr.add("", "%s", strings.TrimPrefix(err.Error(), "yaml: "))
			return nil, missing
		}
		for _, m := range te.Errors {
			verr.add("", "%s", decodeMessage(m))
		}
	}
	return cfg, missing
}

// unknownField is yaml's message for a key the schema does not have, which
// names a Go type the operator has never seen.
var unknownField = regexp.MustCompile(`^(line \d+: )field (.+) not found in type \S+$`)

// decodeMessage words a decoding problem for the operator: an unknown key
// is called that, without the Go type it was decoded into.
func decodeMessage(m string) string {
	m = strings.TrimPrefix(m, "yaml: ")
	if sm := unknownField.FindStringSubmatch(m); sm != nil {
		return fmt.Sprintf("%sunknown key %q", sm[1], sm[2])
	}
	return m
}

// Default returns the configuration used for every key the file omits.
func Default() *Config {
	return &Config{
		Listen:  "127.0.0.1:3000",
		DataDir: "./data",
		TLS:     server.DefaultTLSConfig(),
		Server:  server.DefaultConfig(),
		Log:     logging.DefaultConfig(),
		Vapi: VapiConfig{
			Settings:         dispatch.DefaultSettings(),
			Replay:           replay.DefaultConfig(),
			AssistantRequest: dispatch.DefaultAssistantRequestConfig(),
			Endpointing:      endpointing.DefaultConfig(),
			Handoff:          dispatch.DefaultHandoffConfig(),
			API:              vapiapi.DefaultConfig(),
		},
		Storage:     storage.DefaultConfig(),
		Records:     records.DefaultConfig(),
		Limits:      ratelimit.DefaultConfig(),
		Twilio:      twilio.DefaultConfig(),
		Sessions:    session.DefaultConfig(),
		Bargein:     bargein.DefaultConfig(),
		CallControl: callcontrol.DefaultConfig(),
		State:       state.DefaultConfig(),
	}
}

func (c *Config) applyDefaults() {
	for i := range c.Vapi.Auth {
		c.Vapi.Auth[i].Complete()
	}
	for i := range c.Tools {
		c.Tools[i].Complete()
	}
	c.Vapi.PhoneCallControl.Complete()
	c.Vapi.KnowledgeBase.Complete()
	c.Vapi.Rotation.Complete()
	c.Vapi.API.Complete()
}

// validateReplay collects the replay cache's problems and checks that its
// window covers every signed-timestamp tolerance.
func (c *Config) validateReplay(e *ValidationError) {
	probs, warns := c.Vapi.Replay.Validate()
	e.section("vapi.replay", probs)
	e.sectionWarn("vapi.replay", warns)
	r := c.Vapi.Replay
	for i, a := range c.Vapi.Auth {
		if a.Mode == auth.ModeHMAC && a.TimestampHeaderName() != "" && r.Window < a.Tolerance {
			e.add("vapi.replay.window", "%s is shorter than vapi.auth[%d].tolerance (%s): a replay after the window would still verify", r.Window.D(), i, a.Tolerance.D())
		}
	}
}

// resolve does the configuration's I/O, through opt: each tool's header
// values from the environment or files, schema files, compiled schemas.
// Validation that follows reads nothing.
func (c *Config) resolve(e *ValidationError, opt Options) {
	for i := range c.Tools {
		e.section(fmt.Sprintf("tools[%d]", i), c.Tools[i].Resolve(opt.Getenv, opt.ReadFile))
	}
	e.section("records", c.Records.Resolve(opt.Getenv))
	e.section("call_control", c.CallControl.Resolve(opt.Getenv, opt.ReadFile))
	e.section("vapi.phone_call_control", c.Vapi.PhoneCallControl.Resolve(opt.ReadFile))
	e.section("vapi.knowledge_base", c.Vapi.KnowledgeBase.Resolve(opt.Getenv, opt.ReadFile))
	e.section("vapi.api", c.Vapi.API.Resolve(opt.Getenv, opt.ReadFile))
}

// validate checks the decoded, completed and resolved configuration; it
// reads nothing but opt.Now.
func (c *Config) validate(e *ValidationError, opt Options) {
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		e.add("listen", "%q is not host:port", c.Listen)
	} else if !c.TLS.Enabled() && !c.AllowInsecureHTTP && !server.IsLoopback(host) {
		e.add("listen", "plain HTTP on non-loopback address %q: configure tls, or set allow_insecure_http: true when a TLS-terminating load balancer is in front", c.Listen)
	}
	if c.DataDir == "" {
		e.add("data_dir", "must not be empty")
	}
	e.section("admin", c.Admin.Validate(c.Listen))
	c.validateTLS(e)
	c.validateServer(e)
	probs, warns := c.Log.Validate()
	e.section("log", probs)
	e.sectionWarn("log", warns)
	v := &c.Vapi
	e.section("vapi", v.Settings.Validate())
	c.validateReplay(e)
	if len(v.Auth) == 0 && !opt.Dev {
		e.add("vapi.auth", "no credential configured: voicegate refuses to start without one (fail closed); add an hmac, bearer or secret entry")
	}
	for i := range v.Auth {
		probs, warns := v.Auth[i].Validate(opt.Now())
		e.section(fmt.Sprintf("vapi.auth[%d]", i), probs)
		e.sectionWarn(fmt.Sprintf("vapi.auth[%d]", i), warns)
	}
	e.section("vapi.assistant_request", v.AssistantRequest.Validate())
	e.section("vapi.endpointing", v.Endpointing.Validate())
	e.section("vapi.handoff", v.Handoff.Validate())
	e.section("vapi.predial", v.Predial.Validate())
	e.section("vapi.knowledge_base", v.KnowledgeBase.Validate())
	e.section("vapi.rotation", v.Rotation.Validate())
	e.section("vapi.api", v.API.Validate())
	managed := 0
	for _, a := range v.Auth {
		if a.Managed {
			managed++
		}
	}
	if managed > 1 {
		e.add("vapi.auth", "at most one entry may be managed")
	}
	if v.Rotation.Every > 0 && managed == 0 {
		e.add("vapi.rotation.every", "rotates the managed secret: mark one vapi.auth entry managed: true")
	}
	// A scheduled rotation creates the new secret's Vapi credential and
	// points the assistants calling vapi.public_url at it: without either
	// it would add a secret every check and stop there.
	if v.Rotation.Every > 0 && !v.API.Enabled() {
		e.add("vapi.rotation.every", "needs vapi.api (key) to create the new secret's Vapi credential")
	}
	if v.Rotation.Every > 0 && v.PublicURL == "" {
		e.add("vapi.rotation.every", "needs vapi.public_url to point the assistants calling voicegate at the new credential")
	}
	e.section("vapi.phone_call_control", v.PhoneCallControl.Validate())
	if v.TransferDestination != nil {
		e.section("vapi.transfer_destination", v.TransferDestination.Validate())
	}
	c.validateTools(e, opt)
	probs, warns = c.Sessions.Validate()
	e.section("sessions", probs)
	e.sectionWarn("sessions", warns)
	e.section("storage", c.Storage.Validate())
	e.section("records", c.Records.Validate())
	e.section("limits", c.Limits.Validate())
	e.section("bargein", c.Bargein.Validate())
	e.section("call_control", c.CallControl.Validate())
	e.section("state", c.State.Validate())
	if c.State.Shared() && c.Storage.Driver != "postgres" {
		e.sectionWarn("state", []string{"driver: redis with storage.driver " + c.Storage.Driver + ": each replica keeps its own calls, records and audit; use storage.driver: postgres to share them"})
	}
	e.section("twilio", c.Twilio.Validate(len(c.Server.TrustedProxies) > 0))
	e.sectionWarn("vapi.allow_from", v.AllowFrom.Warnings())
	e.sectionWarn("twilio.allow_from", c.Twilio.AllowFrom.Warnings())
	e.sectionWarn("admin.allow_from", c.Admin.AllowFrom.Warnings())
	if c.Twilio.Enabled() {
		for name, p := range map[string]string{"voice_path": c.Twilio.VoicePath, "status_path": c.Twilio.StatusPath} {
			if p == v.Path {
				e.add("twilio."+name, "%q is vapi.path too: each webhook needs a path of its own", p)
			}
		}
	}
}

// sectionWarn is section for warnings.
func (e *ValidationError) sectionWarn(path string, warns []string) {
	var w ValidationError
	w.section(path, warns)
	e.Warnings = append(e.Warnings, w.Problems...)
}

// section collects a component's problems ("field: why", or ": why" for
// the section as a whole), qualified with the section's path.
func (e *ValidationError) section(path string, probs []string) {
	for _, p := range probs {
		key, msg, ok := strings.Cut(p, ": ")
		if !ok {
			key, msg = "", p
		}
		if key != "" {
			key = "." + key
		}
		e.add(path+key, "%s", msg)
	}
}

func (c *Config) validateTLS(e *ValidationError) { e.section("tls", c.TLS.Validate()) }

// validateServer collects the server's own problems and checks the rules
// that tie it to other sections.
func (c *Config) validateServer(e *ValidationError) {
	e.section("server", c.Server.Validate())
	s := c.Server
	if s.WriteTimeout.D() > 0 && s.WriteTimeout <= c.Vapi.ServerTimeout {
		e.add("server.write_timeout", "must exceed vapi.server_timeout (%s), or slow tool answers are cut off", c.Vapi.ServerTimeout.D())
	}
	if s.BodyMemoryBytes < c.Vapi.MaxBodyBytes || s.BodyMemoryBytes > 16<<30 {
		e.add("server.body_memory_bytes", "must be between vapi.max_body_bytes (%d) and 17179869184 (16 GiB), got %d", c.Vapi.MaxBodyBytes, s.BodyMemoryBytes)
	}
}

// validateTools collects each tool entry's problems and checks what ties
// the entries to each other and to Vapi's deadline.
func (c *Config) validateTools(e *ValidationError, opt Options) {
	seen := map[string]bool{}
	for i := range c.Tools {
		t := &c.Tools[i]
		p := fmt.Sprintf("tools[%d]", i)
		probs, warns := t.Validate()
		e.section(p, probs)
		e.sectionWarn(p, warns)
		if seen[t.Name] {
			e.add(p+".name", "duplicate tool %q", t.Name)
		}
		seen[t.Name] = true
		if t.Timeout > 0 && t.Timeout >= c.Vapi.ServerTimeout && !t.Async { // an async tool answers at once
			e.add(p+".timeout", "%s must stay below vapi.server_timeout (%s) so an error can be returned before Vapi gives up", t.Timeout.D(), c.Vapi.ServerTimeout.D())
		}
	}
	if pc := c.Vapi.PhoneCallControl; pc.Enabled() {
		if all := pc.Timeout.D() * time.Duration(pc.Retries+1); all >= c.Vapi.ServerTimeout.D() {
			e.add("vapi.phone_call_control.timeout", "%s for each of %d attempts (%s in all) must stay below vapi.server_timeout (%s): the last retries would be cut off", pc.Timeout.D(), pc.Retries+1, all, c.Vapi.ServerTimeout.D())
		}
	}
}

// CheckCombined validates, without any I/O, the rules that tie the settings
// a reload can change to those it cannot (server timeouts, body memory and
// the replay window against the Vapi deadlines, body cap and auth
// tolerances). A reload keeps the running restart-only settings and must
// refuse a combination that serve would refuse.
func (c *Config) CheckCombined() error {
	e := &ValidationError{}
	c.validateServer(e)
	c.validateReplay(e)
	return e.orNil()
}

// Check completes defaults and validates an already-built configuration (for
// Dev, flag overrides, or tests).
func (c *Config) Check(opt Options) error {
	c.applyDefaults()
	opt = opt.withDefaults()
	e := &ValidationError{}
	c.resolve(e, opt)
	c.validate(e, opt)
	c.Warnings = e.Warnings
	return e.orNil()
}
