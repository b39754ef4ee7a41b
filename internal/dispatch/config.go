package dispatch

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/allowlist"
	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/endpointing"
	"github.com/voicegate/voicegate/internal/redact"
)

// Settings are the Vapi endpoint's own settings (keys of the "vapi"
// section).
type Settings struct {
	Path         string `yaml:"path"`
	MaxBodyBytes int64  `yaml:"max_body_bytes"`
	// ServerTimeout is the assistant's server.timeoutSeconds in Vapi
	// (default 20s); every tool timeout must stay below it.
	ServerTimeout confval.Duration `yaml:"server_timeout"`
	// PublicURL is the URL Vapi calls, used for the {url} placeholder of
	// HMAC payload formats (a proxy may change scheme, host or port).
	PublicURL string `yaml:"public_url"`
	// DeadlineWarnRatio logs a warning when handling a message takes more
	// than this share of its deadline.
	DeadlineWarnRatio float64 `yaml:"deadline_warn_ratio"`
	// DryRun answers authentic requests carrying voicegate simulate's
	// dry-run marker without side effects (default true); false refuses
	// them (403), for a deployment that wants no request it cannot see
	// in its call records.
	DryRun bool `yaml:"dry_run"`
	// AllowFrom is the source addresses Vapi's webhooks may come from
	// (CIDRs, addresses, presets such as vapi-webhooks; empty: any).
	AllowFrom allowlist.Config `yaml:"allow_from"`
}

// DefaultSettings returns the endpoint's defaults.
func DefaultSettings() Settings {
	return Settings{Path: "/webhook/vapi", MaxBodyBytes: 1 << 20, ServerTimeout: confval.Duration(20 * time.Second), DeadlineWarnRatio: 0.5, DryRun: true}
}

// Validate returns the settings' problems, each starting with its key.
func (s Settings) Validate() (probs []string) {
	add := func(field, format string, args ...any) {
		probs = append(probs, field+": "+fmt.Sprintf(format, args...))
	}
	for _, p := range s.AllowFrom.Validate() {
		probs = append(probs, "allow_from"+p)
	}
	if !confval.CleanPath(s.Path) || s.Path == "/healthz" || s.Path == "/readyz" || s.Path == "/metrics" {
		add("path", "%q must be a clean path of its own starting with /, not ending with / (no query, dot or empty segments, spaces, braces or control characters)", s.Path)
	}
	if s.MaxBodyBytes <= 0 || s.MaxBodyBytes > 64<<20 {
		add("max_body_bytes", "must be between 1 and 67108864, got %d", s.MaxBodyBytes)
	}
	if st := s.ServerTimeout.D(); st < time.Second || st > 300*time.Second {
		add("server_timeout", "must be between 1s and 300s (Vapi's server.timeoutSeconds), got %s", st)
	}
	if s.PublicURL != "" {
		if u, err := url.Parse(s.PublicURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			add("public_url", "%q is not an absolute http(s) URL", redact.URL(s.PublicURL))
		}
	}
	if s.DeadlineWarnRatio <= 0 || s.DeadlineWarnRatio > 1 {
		add("deadline_warn_ratio", "must be in (0, 1], got %v", s.DeadlineWarnRatio)
	}
	return probs
}

// Config is what the Vapi source's dispatcher needs: its answers and Vapi's
// deadline for a message.
type Config struct {
	AssistantRequest    AssistantRequestConfig
	TransferDestination *TransferConfig
	// ServerTimeout is the assistant's server.timeoutSeconds in Vapi.
	ServerTimeout time.Duration
	// DryRun allows dry runs (Settings.DryRun).
	DryRun bool
	// Endpointing answers call.endpointing.request.
	Endpointing endpointing.Config
	// Handoff routes handoff-destination-request.
	Handoff HandoffConfig
	// LocalSideEffects handles messages with side effects on this
	// replica's own state while the shared state is unreachable
	// (state.on_unavailable: local); false refuses them with 503.
	LocalSideEffects bool
}

// AssistantRequestConfig routes assistant-request messages.
type AssistantRequestConfig struct {
	Routes  []AssistantRoute `yaml:"routes"`
	Default *AssistantAnswer `yaml:"default"`
	// ErrorMessage is spoken to the caller when no route answers.
	ErrorMessage string `yaml:"error_message"`
	// Router, when set, is an internal API that chooses each call's
	// assistant first; the routes answer when it fails.
	Router *AssistantAPIConfig `yaml:"router"`
}

// DefaultAssistantRequestConfig answers with a spoken apology when nothing
// is configured.
func DefaultAssistantRequestConfig() AssistantRequestConfig {
	return AssistantRequestConfig{ErrorMessage: "Sorry, we cannot take your call right now. Please try again later."}
}

// AssistantRoute answers when every non-empty match field equals the call's.
type AssistantRoute struct {
	PhoneNumberID   string `yaml:"phone_number_id"`
	CalledNumber    string `yaml:"called_number"`
	CallerNumber    string `yaml:"caller_number"`
	AssistantAnswer `yaml:",inline"`
}

// AssistantAnswer is exactly one of an assistant id, an inline assistant, a
// squad id, or a transfer destination.
type AssistantAnswer struct {
	AssistantID        string         `yaml:"assistant_id"`
	Assistant          map[string]any `yaml:"assistant"`
	SquadID            string         `yaml:"squad_id"`
	Destination        map[string]any `yaml:"destination"`
	AssistantOverrides map[string]any `yaml:"assistant_overrides"`
}

func (a AssistantAnswer) count() int {
	n := 0
	if a.AssistantID != "" {
		n++
	}
	if a.Assistant != nil {
		n++
	}
	if a.SquadID != "" {
		n++
	}
	if a.Destination != nil {
		n++
	}
	return n
}

// TransferConfig answers transfer-destination-request.
type TransferConfig struct {
	Destination map[string]any `yaml:"destination"`
	Message     string         `yaml:"message"`
}

// Validate returns the section's problems, each starting with its field
// ("routes[0]: ...", or ": ..." for the section as a whole).
func (c AssistantRequestConfig) Validate() (probs []string) {
	if strings.TrimSpace(c.ErrorMessage) == "" {
		probs = append(probs, "error_message: must not be empty (Vapi speaks an empty error as \"Unknown Error\")")
	}
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d]", i)
		if r.PhoneNumberID == "" && r.CalledNumber == "" && r.CallerNumber == "" {
			probs = append(probs, p+": needs at least one of phone_number_id, called_number, caller_number (use default for a catch-all)")
		}
		if n := r.count(); n != 1 {
			probs = append(probs, fmt.Sprintf("%s: needs exactly one of assistant_id, assistant, squad_id, destination (has %d)", p, n))
		}
	}
	if r := c.Router; r != nil {
		rc := *r
		rc.Name = routerToolName
		if rc.Timeout == 0 {
			rc.Timeout = confval.Duration(DefaultRouterTimeout)
		}
		rc.Complete()
		rp, _ := rc.Validate()
		for _, p := range rp {
			if !strings.HasPrefix(p, "name: ") {
				probs = append(probs, "router."+p)
			}
		}
		if rc.Timeout.D() > 5*time.Second {
			probs = append(probs, "router.timeout: must be at most 5s: the answer is due within 6s, and the routes must still have time")
		}
		if rc.Async {
			probs = append(probs, "router.async: the router answers now")
		}
	}
	if c.Default != nil && c.Default.count() != 1 {
		probs = append(probs, "default: needs exactly one of assistant_id, assistant, squad_id, destination")
	}
	return probs
}

// Validate returns the section's problems ("destination: ...").
func (t TransferConfig) Validate() (probs []string) {
	if t.Destination == nil {
		probs = append(probs, "destination: must be set (for example {type: number, number: \"+15551234567\"})")
	}
	return probs
}
