package twilio

import (
	"fmt"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/allowlist"
	"github.com/voicegate/voicegate/internal/confval"
	"go.yaml.in/yaml/v3"
)

// Config is the "twilio" section: the voice webhooks Twilio calls, how
// they are authenticated, and what each called number is answered with.
// The section is off (no Twilio route) while VoicePath is empty.
type Config struct {
	// VoicePath is the incoming-call webhook ("A call comes in").
	VoicePath string `yaml:"voice_path"`
	// StatusPath is the call status callback.
	StatusPath string `yaml:"status_path"`
	// PublicBaseURL is the scheme, host, optional port and optional path
	// prefix Twilio is configured with ("https://voice.example.com"): the
	// signed URL is this plus the request's raw path and query. Empty only
	// behind server.trusted_proxies, which then say it with
	// X-Forwarded-Proto and X-Forwarded-Host.
	PublicBaseURL string `yaml:"public_base_url"`
	// AuthTokens are the auth tokens a request may be signed with: the
	// account's, a sub-account's, the old and the new one during a
	// rotation (each with an optional not_after, and an optional
	// account_sid that the request must be for).
	AuthTokens []Token `yaml:"auth_tokens"`
	// AllowFrom restricts the webhooks' source addresses (CIDRs, addresses
	// or presets such as twilio-static-proxy; empty: any). Twilio's
	// standard webhooks come from no fixed range.
	AllowFrom allowlist.Config `yaml:"allow_from"`
	// MaxBodyBytes caps a webhook's body.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// Numbers answer calls to each called number (E.164, the To parameter).
	Numbers map[string]Answer `yaml:"numbers"`
	// UnknownNumber is what a call to a number not in Numbers hears.
	UnknownNumber string `yaml:"unknown_number_message"`
	// ErrorMessage is what a caller hears when voicegate cannot answer the
	// call properly (never silence, never an error status that makes
	// Twilio play its own message).
	ErrorMessage string `yaml:"error_message"`
	// Voice and Language are the <Say> voice and language of the messages
	// (empty: Twilio's default).
	Voice    string `yaml:"voice"`
	Language string `yaml:"language"`
}

// Token is one auth token, written as a string or as {value, not_after,
// account_sid}.
type Token struct {
	confval.Secret
	// AccountSid, when set, is the only account (AccountSid parameter) a
	// request signed with this token may be for: a sub-account's token
	// then cannot act on another account's calls.
	AccountSid string
}

// UnmarshalYAML accepts "value" or {value, not_after, account_sid}.
func (t *Token) UnmarshalYAML(n *yaml.Node) error {
	var notAfter string
	err := confval.DecodeStringOrFields(n, &t.Value, map[string]*string{"value": &t.Value, "not_after": &notAfter, "account_sid": &t.AccountSid},
		"auth token (want value, not_after, account_sid)", "an auth token is a string or {value, not_after, account_sid}")
	if err != nil || notAfter == "" {
		return err
	}
	at, err := time.Parse(time.RFC3339, notAfter)
	if err != nil {
		return confval.DecodeError(n, "not_after %q is not an RFC 3339 time", notAfter)
	}
	t.NotAfter = at
	return nil
}

// MarshalYAML never writes the token.
func (t Token) MarshalYAML() (any, error) { return "<redacted>", nil }

// Answer is how calls to one number are answered: exactly one of Sip,
// Stream or Say, and optionally opening hours.
type Answer struct {
	// Sip connects the call to a SIP URI (Vapi's SIP trunk) with <Dial><Sip>.
	Sip *SipAnswer `yaml:"sip"`
	// Stream connects the call's audio to a WebSocket with <Connect><Stream>.
	Stream *StreamAnswer `yaml:"stream"`
	// Say speaks a message and hangs up.
	Say string `yaml:"say"`
	// Hours, if set, are when the number is open; outside them the caller
	// hears ClosedMessage and the call ends.
	Hours *Hours `yaml:"hours"`
	// ClosedMessage is what a caller hears outside Hours.
	ClosedMessage string `yaml:"closed_message"`
}

// SipAnswer dials a SIP URI. Headers are sent as SIP headers (each name
// starting with X-); their values may use the placeholders {CallSid},
// {AccountSid}, {From} and {To}.
type SipAnswer struct {
	URI     string            `yaml:"uri"`
	Headers map[string]string `yaml:"headers"`
}

// StreamAnswer connects the call to a wss:// media stream; Parameters are
// passed to it as <Parameter>s (values may use the placeholders).
type StreamAnswer struct {
	URL        string            `yaml:"url"`
	Parameters map[string]string `yaml:"parameters"`
}

// Hours are opening hours in a time zone: Open lists spans such as
// "mon-fri 08:00-18:00" or "sat 09:00-12:30".
type Hours struct {
	TimeZone string   `yaml:"time_zone"`
	Open     []string `yaml:"open"`

	loc   *time.Location
	spans []span
}

// DefaultConfig is the section off, with its defaults for when it is on.
func DefaultConfig() Config {
	return Config{
		MaxBodyBytes:  64 << 10,
		UnknownNumber: "Sorry, this number is not in service. Goodbye.",
		ErrorMessage:  "Sorry, we cannot take your call right now. Please try again later. Goodbye.",
	}
}

// Enabled reports whether the Twilio routes are served.
func (c Config) Enabled() bool { return c.VoicePath != "" || c.StatusPath != "" }

var (
	e164       = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	accountSid = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	sipHeader  = regexp.MustCompile(`^X-[A-Za-z0-9-]{1,64}$`)
	paramName  = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
	placeholds = regexp.MustCompile(`\{[^}]*\}`)
)

// placeholders are the names a header or parameter value may use.
var placeholders = map[string]bool{"{CallSid}": true, "{AccountSid}": true, "{From}": true, "{To}": true}

// Validate returns the section's problems; trustedProxies says whether
// server.trusted_proxies is set (then public_base_url may come from the
// proxy's headers).
func (c *Config) Validate(trustedProxies bool) []string {
	if !c.Enabled() {
		return nil
	}
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	for name, p := range map[string]string{"voice_path": c.VoicePath, "status_path": c.StatusPath} {
		switch {
		case p == "":
			add("%s: must be set when the other Twilio path is", name)
		case !confval.CleanPath(p):
			add("%s: %q must be a clean path starting with /, not ending with / (no query, dot or empty segments, spaces, braces or control characters)", name, p)
		case p == "/healthz" || p == "/readyz" || p == "/metrics":
			add("%s: %q is voicegate's own", name, p)
		}
	}
	if c.VoicePath != "" && c.VoicePath == c.StatusPath {
		add("status_path: must differ from voice_path")
	}
	switch u, err := url.Parse(c.PublicBaseURL); {
	case c.PublicBaseURL == "" && !trustedProxies:
		add("public_base_url: must be set (the URL Twilio is configured with, such as https://voice.example.com): a signature covers it, and without server.trusted_proxies voicegate has no honest way to learn it")
	case c.PublicBaseURL == "":
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		add("public_base_url: %q must be an http(s) URL with a host, and no query, fragment or credentials", c.PublicBaseURL)
	case strings.HasSuffix(c.PublicBaseURL, "/"):
		add("public_base_url: %q must not end with / (the request's path is appended to it)", c.PublicBaseURL)
	}
	live := 0
	for i, s := range c.AuthTokens {
		switch {
		case s.Value == "":
			add("auth_tokens[%d]: empty (an unset variable?)", i)
			continue
		case strings.ContainsAny(s.Value, "\r\n"):
			add("auth_tokens[%d]: contains a line break", i)
		case len(s.Value) < confval.MinSecretLen:
			add("auth_tokens[%d]: shorter than %d characters: not an auth token (Twilio's are 32)", i, confval.MinSecretLen)
		case confval.WeakSecret(s.Value) != "":
			add("auth_tokens[%d]: %s", i, confval.WeakSecret(s.Value))
		case s.NotAfter.IsZero() || s.NotAfter.After(time.Now()):
			live++
		}
		if s.AccountSid != "" && !accountSid.MatchString(s.AccountSid) {
			add("auth_tokens[%d].account_sid: %q is not an account SID (AC and 32 hex digits)", i, s.AccountSid)
		}
	}
	if len(c.AuthTokens) == 0 {
		add("auth_tokens: at least one auth token is needed (the account's, from the Twilio console)")
	} else if live == 0 && len(probs) == 0 {
		add("auth_tokens: every token is past its not_after: no request could be verified")
	}
	for _, p := range c.AllowFrom.Validate() {
		add("allow_from%s", p)
	}
	if c.MaxBodyBytes < 1024 || c.MaxBodyBytes > 1<<20 {
		add("max_body_bytes: %d is outside 1024..1048576", c.MaxBodyBytes)
	}
	if c.UnknownNumber == "" || c.ErrorMessage == "" {
		add("unknown_number_message and error_message must not be empty: a caller never hears silence")
	}
	nums := make([]string, 0, len(c.Numbers))
	for n := range c.Numbers {
		nums = append(nums, n)
	}
	sort.Strings(nums)
	for _, n := range nums {
		a := c.Numbers[n]
		at := "numbers." + n
		if !e164.MatchString(n) {
			add("%s: %q is not an E.164 number (+ and 7 to 15 digits, as Twilio sends To)", at, n)
		}
		answers := 0
		if a.Sip != nil {
			answers++
			probs = append(probs, a.Sip.validate(at+".sip")...)
		}
		if a.Stream != nil {
			answers++
			probs = append(probs, a.Stream.validate(at+".stream")...)
		}
		if a.Say != "" {
			answers++
		}
		if answers != 1 {
			add("%s: needs exactly one of sip, stream or say (has %d)", at, answers)
		}
		if a.Hours != nil {
			if err := a.Hours.compile(); err != nil {
				add("%s.hours: %v", at, err)
			}
			if a.ClosedMessage == "" {
				add("%s.closed_message: must be set with hours (what a caller hears when closed)", at)
			}
		} else if a.ClosedMessage != "" {
			add("%s.closed_message: set without hours", at)
		}
		c.Numbers[n] = a
	}
	return probs
}

func (s *SipAnswer) validate(at string) []string {
	var probs []string
	u, err := url.Parse(s.URI)
	if err != nil || (u.Scheme != "sip" && u.Scheme != "sips") || u.Opaque == "" || strings.ContainsAny(s.URI, "?;<>\" ") {
		probs = append(probs, fmt.Sprintf("%s.uri: %q must be a sip: or sips: URI such as sip:assistant@example.sip.vapi.ai, without parameters or headers (set headers below)", at, s.URI))
	}
	return append(probs, checkValues(at+".headers", s.Headers, sipHeader, "must be a custom header named X-..., letters, digits and dashes")...)
}

func (s *StreamAnswer) validate(at string) []string {
	var probs []string
	u, err := url.Parse(s.URL)
	if err != nil || u.Scheme != "wss" || u.Host == "" || u.RawQuery != "" || u.User != nil {
		probs = append(probs, fmt.Sprintf("%s.url: %q must be a wss:// URL without query or credentials (Twilio passes values as parameters)", at, s.URL))
	}
	return append(probs, checkValues(at+".parameters", s.Parameters, paramName, "is not a plain name (letters, digits, _ . -)")...)
}

// checkValues checks a map of names to values with placeholders: each
// name matches valid (else "name why"), each placeholder is known.
func checkValues(at string, m map[string]string, valid *regexp.Regexp, why string) []string {
	var probs []string
	for _, name := range sortedKeys(m) {
		if !valid.MatchString(name) {
			probs = append(probs, fmt.Sprintf("%s: %q %s", at, name, why))
		}
		for _, p := range placeholds.FindAllString(m[name], -1) {
			if !placeholders[p] {
				probs = append(probs, fmt.Sprintf("%s.%s: unknown placeholder %s (known: {CallSid}, {AccountSid}, {From}, {To})", at, name, p))
			}
		}
	}
	return probs
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
