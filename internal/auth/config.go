package auth

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
)

const (
	ModeHMAC   = "hmac"
	ModeBearer = "bearer"
	ModeSecret = "secret"
)

// PresetVapiSignature is the widely copied form
// "x-vapi-signature: [sha256=]<hex HMAC-SHA256 of the raw body>".
const PresetVapiSignature = "vapi-signature"

// Config is one accepted credential (an entry of vapi.auth). A request
// that passes any one configured Config is authentic.
type Config struct {
	Mode    string           `yaml:"mode"`
	Preset  string           `yaml:"preset"`
	Secrets []confval.Secret `yaml:"secrets"`
	// Managed takes the secrets from voicegate's secret store (sealed in
	// the database, rotated by voicegate secrets rotate) instead of
	// Secrets: an hmac entry with Vapi's HMAC plan defaults.
	Managed bool `yaml:"managed"`

	// HMAC fields (Vapi's HMACAuthenticationPlan).
	Algorithm       string  `yaml:"algorithm"`
	SignatureHeader string  `yaml:"signature_header"`
	TimestampHeader *string `yaml:"timestamp_header"`
	PayloadFormat   string  `yaml:"payload_format"`
	Encoding        string  `yaml:"encoding"`
	Prefix          string  `yaml:"prefix"`
	// PrefixOptional accepts the signature with or without Prefix.
	PrefixOptional bool `yaml:"prefix_optional"`
	SecretBase64   bool `yaml:"secret_base64"`
	// Tolerance is the accepted clock skew of signed timestamps, both ways.
	Tolerance confval.Duration `yaml:"tolerance"`

	// Header is the header carrying the token (bearer: Authorization;
	// secret: x-vapi-secret).
	Header       string `yaml:"header"`
	BearerPrefix *bool  `yaml:"bearer_prefix"`
}

// TimestampHeaderName returns the timestamp header, "" when none is signed.
func (a Config) TimestampHeaderName() string {
	if a.TimestampHeader == nil {
		return ""
	}
	return *a.TimestampHeader
}

// Complete fills the defaults of an entry: Vapi's HMAC plan defaults, the
// vapi-signature preset, bearer and secret header names.
func (a *Config) Complete() {
	if a.Managed && a.Mode == "" {
		a.Mode = ModeHMAC
	}
	if a.Preset == PresetVapiSignature {
		if a.Mode == "" {
			a.Mode = ModeHMAC
		}
		if a.Algorithm == "" {
			a.Algorithm = "sha256"
		}
		if a.SignatureHeader == "" {
			a.SignatureHeader = "x-vapi-signature"
		}
		if a.TimestampHeader == nil {
			empty := ""
			a.TimestampHeader = &empty
		}
		if a.PayloadFormat == "" {
			a.PayloadFormat = "{body}"
		}
		if a.Prefix == "" {
			a.Prefix = "sha256="
			a.PrefixOptional = true
		}
	}
	switch a.Mode {
	case ModeHMAC:
		if a.Algorithm == "" {
			a.Algorithm = "sha256"
		}
		if a.SignatureHeader == "" {
			a.SignatureHeader = "x-signature"
		}
		if a.TimestampHeader == nil {
			ts := "x-timestamp"
			a.TimestampHeader = &ts
		}
		if a.PayloadFormat == "" {
			if a.TimestampHeaderName() == "" {
				a.PayloadFormat = "{body}"
			} else {
				a.PayloadFormat = "{timestamp}.{body}"
			}
		}
		if a.Encoding == "" {
			a.Encoding = "hex"
		}
	case ModeBearer:
		if a.Header == "" {
			a.Header = "Authorization"
		}
		if a.BearerPrefix == nil {
			t := true
			a.BearerPrefix = &t
		}
	case ModeSecret:
		if a.Header == "" {
			a.Header = "x-vapi-secret"
		}
	}
	if a.Tolerance == 0 {
		a.Tolerance = confval.Duration(5 * time.Minute)
	}
}

// MaxTolerance bounds the accepted skew of signed timestamps.
const MaxTolerance = time.Hour

// Validate returns the entry's problems and warnings, each starting with
// its field ("tolerance: ...", "secrets[0]: ...", or ": ..." for the entry
// as a whole), checking not_after against now. A secret's value is never
// part of a message.
func (a Config) Validate(now time.Time) (probs, warns []string) {
	add := func(field, format string, args ...any) {
		probs = append(probs, field+": "+fmt.Sprintf(format, args...))
	}
	warn := func(field, format string, args ...any) {
		warns = append(warns, field+": "+fmt.Sprintf(format, args...))
	}
	if a.Preset != "" && a.Preset != PresetVapiSignature {
		add("preset", "unknown preset %q (known: %s)", a.Preset, PresetVapiSignature)
	}
	switch a.Mode {
	case ModeHMAC, ModeBearer, ModeSecret:
	default:
		add("mode", "%q is not one of hmac, bearer, secret", a.Mode)
		return probs, warns
	}
	if a.Managed {
		if a.Mode != ModeHMAC {
			add("managed", "a managed entry is hmac (Vapi's HMAC plan), not %s", a.Mode)
		}
		if len(a.Secrets) > 0 {
			add("secrets", "a managed entry takes its secrets from voicegate's secret store: leave secrets out")
		}
		if a.Preset != "" || a.SecretBase64 || a.Prefix != "" {
			add("managed", "a managed entry uses Vapi's HMAC plan as voicegate sets it on the credential: no preset, prefix or secret_base64")
		}
		// voicegate creates the credential with the plan's defaults
		// (vapiapi.HMACPlan): an entry verifying anything else would
		// refuse every webhook Vapi signs with it.
		if a.Algorithm != "sha256" || !strings.EqualFold(a.SignatureHeader, "x-signature") || !strings.EqualFold(a.TimestampHeaderName(), "x-timestamp") ||
			a.PayloadFormat != "{timestamp}.{body}" || a.Encoding != "hex" {
			add("managed", "a managed entry verifies Vapi's HMAC plan as voicegate sets it on the credential (sha256, x-signature, x-timestamp, {timestamp}.{body}, hex): leave algorithm, signature_header, timestamp_header, payload_format and encoding out")
		}
	} else if len(a.Secrets) == 0 {
		add("secrets", "at least one secret is required")
	}
	live := 0
	for j, s := range a.Secrets {
		sp := fmt.Sprintf("secrets[%d]", j)
		key := []byte(s.Value)
		if a.Mode == ModeHMAC && a.SecretBase64 {
			b, err := base64.StdEncoding.DecodeString(s.Value)
			if err != nil {
				add(sp, "secret_base64 is set but the secret is not valid base64")
				continue
			}
			key = b
		}
		if len(key) < confval.MinSecretLen {
			add(sp, "secret is %d bytes; at least %d are required", len(key), confval.MinSecretLen)
		}
		if strings.ContainsAny(s.Value, "\r\n") {
			add(sp, "secret contains a line break")
		}
		if why := confval.WeakSecret(s.Value); why != "" && len(key) >= confval.MinSecretLen {
			add(sp, "secret refused: %s; generate one with: openssl rand -hex 32", why)
		}
		if s.NotAfter.IsZero() || s.NotAfter.After(now) {
			live++
		}
	}
	if len(a.Secrets) > 0 && live == 0 {
		add("secrets", "every secret is past its not_after; add a current one")
	}
	if a.Tolerance.D() <= 0 {
		add("tolerance", "must be positive")
	} else if a.Tolerance.D() > MaxTolerance {
		add("tolerance", "%s is longer than %s: a captured request would verify for that long", a.Tolerance.D(), MaxTolerance)
	} else if a.Mode == ModeHMAC && a.TimestampHeaderName() != "" && a.Tolerance.D() > 5*time.Minute {
		warn("tolerance", "%s is longer than the usual 5m: a captured request verifies for that long (replays are still refused while it does)", a.Tolerance.D())
	}
	switch a.Mode {
	case ModeHMAC:
		switch a.Algorithm {
		case "sha256", "sha512":
		case "sha1":
			warn("algorithm", "sha1 is accepted for compatibility only; use sha256 or sha512 when the sender allows it")
		default:
			add("algorithm", "%q is not one of sha256, sha512, sha1", a.Algorithm)
		}
		switch a.Encoding {
		case "hex", "base64":
		default:
			add("encoding", "%q is not hex or base64", a.Encoding)
		}
		if !confval.ValidHeaderName(a.SignatureHeader) {
			add("signature_header", "%q is not a valid header name", a.SignatureHeader)
		}
		if ts := a.TimestampHeaderName(); ts != "" && !confval.ValidHeaderName(ts) {
			add("timestamp_header", "%q is not a valid header name", ts)
		}
		if !strings.Contains(a.PayloadFormat, "{body}") {
			add("payload_format", "must contain {body}, or the body is not authenticated")
		}
		if strings.Contains(a.PayloadFormat, "{timestamp}") && a.TimestampHeaderName() == "" {
			add("payload_format", "uses {timestamp} but timestamp_header is empty")
		}
		if a.TimestampHeaderName() != "" && !strings.Contains(a.PayloadFormat, "{timestamp}") {
			add("payload_format", "timestamp_header is set but the payload format does not sign {timestamp}, so the timestamp could be forged")
		}
		for _, ph := range placeholderRE.FindAllString(a.PayloadFormat, -1) {
			switch ph {
			case "{body}", "{timestamp}", "{method}", "{url}":
			default:
				add("payload_format", "unknown placeholder %s (known: {timestamp} {body} {method} {url})", ph)
			}
		}
		if a.Header != "" || a.BearerPrefix != nil {
			add("", "header and bearer_prefix apply to bearer and secret modes, not hmac")
		}
		if a.TimestampHeaderName() == "" {
			warn("", "no signed timestamp: a captured request verifies forever, so replays are refused only inside vapi.replay.window; sign a timestamp (timestamp_header) when the sender allows it")
		}
	case ModeBearer, ModeSecret:
		if !confval.ValidHeaderName(a.Header) {
			add("header", "%q is not a valid header name", a.Header)
		}
		if a.Algorithm != "" || a.SignatureHeader != "" || a.TimestampHeader != nil || a.PayloadFormat != "" || a.Encoding != "" || a.Prefix != "" {
			add("", "algorithm, signature_header, timestamp_header, payload_format, encoding and prefix apply to hmac mode only")
		}
		if a.Mode == ModeSecret && a.BearerPrefix != nil {
			add("bearer_prefix", "applies to bearer mode only")
		}
		warn("", "a static %s token never expires: a captured request can be replayed after vapi.replay.window; prefer hmac with a signed timestamp", a.Mode)
	}
	return probs, warns
}

var placeholderRE = regexp.MustCompile(`\{[^{}]*\}`)
