package twilio

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/voicegate/voicegate/internal/confval"
)

func validConfig() Config {
	c := DefaultConfig()
	c.VoicePath, c.StatusPath, c.PublicBaseURL = "/twilio/voice", "/twilio/status", "https://voice.example.com"
	c.AuthTokens = []Token{{Secret: confval.Secret{Value: "9f3ac1e07b5d4e2a8c6f1b3d5e7a9c2f"}}}
	c.Numbers = map[string]Answer{"+15550001111": {Say: "hello"}}
	return c
}

func TestConfigValidate(t *testing.T) {
	if c := validConfig(); len(c.Validate(false)) != 0 {
		t.Fatal(c.Validate(false))
	}
	if c := DefaultConfig(); len(c.Validate(false)) != 0 || c.Enabled() {
		t.Fatal("the section off must be valid")
	}
	past := time.Now().Add(-time.Hour)
	for _, c := range []struct {
		mut  func(*Config)
		want string
	}{
		{func(c *Config) { c.StatusPath = "" }, "status_path: must be set"},
		{func(c *Config) { c.VoicePath = "twilio" }, `voice_path: "twilio" must be a clean path`},
		{func(c *Config) { c.StatusPath = c.VoicePath }, "status_path: must differ"},
		{func(c *Config) { c.PublicBaseURL = "" }, "public_base_url: must be set"},
		{func(c *Config) { c.PublicBaseURL = "ftp://x" }, "must be an http(s) URL"},
		{func(c *Config) { c.PublicBaseURL = "https://x.example.com/" }, "must not end with /"},
		{func(c *Config) { c.PublicBaseURL = "https://user:pw@x.example.com" }, "no query, fragment or credentials"},
		{func(c *Config) { c.AuthTokens = nil }, "auth_tokens: at least one"},
		{func(c *Config) {
			c.AuthTokens = []Token{{Secret: confval.Secret{Value: "9f3ac1e07b5d4e2a8c6f1b3d5e7a9c2f", NotAfter: past}}}
		}, "every token is past its not_after"},
		{func(c *Config) { c.AuthTokens = []Token{{Secret: confval.Secret{Value: "12345"}}} }, "shorter than 16 characters"},
		{func(c *Config) { c.AuthTokens = []Token{{Secret: confval.Secret{Value: "changemechangemechangeme"}}} }, "auth_tokens[0]:"},
		{func(c *Config) { c.AuthTokens = []Token{{Secret: confval.Secret{Value: ""}}} }, "empty (an unset variable?)"},
		{func(c *Config) { c.AuthTokens[0].AccountSid = "AC12" }, "is not an account SID"},
		{func(c *Config) { c.VoicePath = "/twilio/" }, "not ending with /"},
		{func(c *Config) { c.VoicePath = "/" }, "not ending with /"},
		{func(c *Config) { c.VoicePath = "/tw//voice" }, "must be a clean path"},
		{func(c *Config) { c.VoicePath = "/tw/../voice" }, "must be a clean path"},
		{func(c *Config) { c.StatusPath = "/healthz" }, "is voicegate's own"},
		{func(c *Config) { c.AllowFrom = []string{"0.0.0.0/0"} }, "allow_from[0]"},
		{func(c *Config) { c.MaxBodyBytes = 10 }, "max_body_bytes"},
		{func(c *Config) { c.ErrorMessage = "" }, "never hears silence"},
		{func(c *Config) { c.Numbers = map[string]Answer{"5550001111": {Say: "x"}} }, "is not an E.164 number"},
		{func(c *Config) { c.Numbers = map[string]Answer{"+15550001111": {}} }, "needs exactly one of sip, stream or say (has 0)"},
		{func(c *Config) {
			c.Numbers = map[string]Answer{"+15550001111": {Say: "x", Sip: &SipAnswer{URI: "sip:a@b.example.com"}}}
		}, "(has 2)"},
		{func(c *Config) { c.Numbers = map[string]Answer{"+15550001111": {Sip: &SipAnswer{URI: "http://x"}}} }, "must be a sip: or sips: URI"},
		{func(c *Config) {
			c.Numbers = map[string]Answer{"+15550001111": {Sip: &SipAnswer{URI: "sip:a@b.example.com?X-A=1"}}}
		}, "without parameters or headers"},
		{func(c *Config) {
			c.Numbers = map[string]Answer{"+15550001111": {Sip: &SipAnswer{URI: "sip:a@b.example.com", Headers: map[string]string{"Call-ID": "x"}}}}
		}, `"Call-ID" must be a custom header named X-`},
		{func(c *Config) {
			c.Numbers = map[string]Answer{"+15550001111": {Sip: &SipAnswer{URI: "sip:a@b.example.com", Headers: map[string]string{"X-A": "{Caller}"}}}}
		}, "unknown placeholder {Caller}"},
		{func(c *Config) {
			c.Numbers = map[string]Answer{"+15550001111": {Stream: &StreamAnswer{URL: "ws://x.example.com"}}}
		}, "must be a wss:// URL"},
		{func(c *Config) {
			c.Numbers = map[string]Answer{"+15550001111": {Stream: &StreamAnswer{URL: "wss://x.example.com", Parameters: map[string]string{"a b": "1"}}}}
		}, `"a b" is not a plain name`},
		{func(c *Config) {
			c.Numbers = map[string]Answer{"+15550001111": {Say: "x", Hours: &Hours{TimeZone: "Mars/Olympus", Open: []string{"mon-fri 08:00-18:00"}}, ClosedMessage: "closed"}}
		}, "is not an IANA time zone"},
		{func(c *Config) {
			c.Numbers = map[string]Answer{"+15550001111": {Say: "x", Hours: &Hours{TimeZone: "UTC", Open: []string{"mon-fri 18:00-08:00"}}, ClosedMessage: "closed"}}
		}, "the end must be after the start"},
		{func(c *Config) {
			c.Numbers = map[string]Answer{"+15550001111": {Say: "x", Hours: &Hours{TimeZone: "UTC", Open: []string{"weekdays 08:00-18:00"}}, ClosedMessage: "closed"}}
		}, `days "weekdays"`},
		{func(c *Config) {
			c.Numbers = map[string]Answer{"+15550001111": {Say: "x", Hours: &Hours{TimeZone: "UTC", Open: []string{"mon 8:00-18:00"}}, ClosedMessage: "closed"}}
		}, "want HH:MM"},
		{func(c *Config) {
			c.Numbers = map[string]Answer{"+15550001111": {Say: "x", Hours: &Hours{TimeZone: "UTC", Open: []string{"mon 08:00-18:00"}}}}
		}, "closed_message: must be set with hours"},
	} {
		cfg := validConfig()
		c.mut(&cfg)
		probs := strings.Join(cfg.Validate(false), "\n")
		if !strings.Contains(probs, c.want) {
			t.Errorf("problems %q, want %q", probs, c.want)
		}
	}
	// Behind a trusted proxy the base URL may come from its headers.
	c := validConfig()
	c.PublicBaseURL = ""
	if probs := c.Validate(true); len(probs) != 0 {
		t.Fatal(probs)
	}
}

func TestOpeningHours(t *testing.T) {
	h := &Hours{TimeZone: "America/New_York", Open: []string{"mon-fri 08:00-18:00", "sat 09:00-12:30", "sun,sat 23:00-24:00"}}
	if err := h.compile(); err != nil {
		t.Fatal(err)
	}
	ny, _ := time.LoadLocation("America/New_York")
	for when, open := range map[string]bool{
		"2026-12-02 08:00": true,  // Wednesday, opening
		"2026-12-02 07:59": false, // before
		"2026-12-02 17:59": true,
		"2026-12-02 18:00": false, // the end is not included
		"2026-12-05 12:29": true,  // Saturday morning
		"2026-12-05 12:30": false,
		"2026-12-06 23:30": true, // Sunday night span
		"2026-12-06 10:00": false,
	} {
		tm, err := time.ParseInLocation("2006-01-02 15:04", when, ny)
		if err != nil {
			t.Fatal(err)
		}
		// The same instant in UTC: the time zone decides, not the clock's.
		if got := h.OpenAt(tm.UTC()); got != open {
			t.Errorf("%s New York: open=%v, want %v", when, got, open)
		}
	}
	var none *Hours
	if !none.OpenAt(time.Now()) {
		t.Fatal("no hours: always open")
	}
}

func TestSipURICapped(t *testing.T) {
	long := strings.Repeat("é", 200) // 400 bytes, two per character
	a := &SipAnswer{URI: "sip:a@b.example.com", Headers: map[string]string{}}
	for i := range 12 {
		a.Headers[fmt.Sprintf("X-H%02d", i)] = "{From}"
	}
	d, err := ReadTwiML(dialSip(a, callValues{From: long}))
	if err != nil || d.Dial == nil {
		t.Fatal(err)
	}
	if n := len(d.Dial.Sip); n > maxSipURI || !strings.Contains(d.Dial.Sip, "X-H00=") {
		t.Fatalf("%d characters: %s", n, d.Dial.Sip)
	}
	if strings.Contains(d.Dial.Sip, "%C3?") || !utf8.ValidString(d.Dial.Sip) {
		t.Fatal("a character cut in half")
	}
}
