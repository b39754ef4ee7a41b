package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/redact"
	"github.com/voicegate/voicegate/internal/replay"
	"github.com/voicegate/voicegate/internal/session"
	"github.com/voicegate/voicegate/internal/storage"
)

func runConfigCheck(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("config check", stderr)
	path := fs.String("config", "", "configuration file to validate")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *path == "" {
		return &UsageError{Msg: "config check needs --config FILE"}
	}
	cfg, err := config.Load(*path, config.Options{Getenv: getenv})
	if err != nil {
		var ve *config.ValidationError
		if errors.As(err, &ve) {
			fmt.Fprintf(stdout, "%s: %d problem(s)\n", *path, len(ve.Problems))
			for _, p := range ve.Problems {
				// A problem may quote a tool URL, which may hold a key.
				fmt.Fprintf(stdout, "  - %s\n", redact.Text(p.String()))
			}
			printWarnings(stdout, ve.Warnings)
			return fmt.Errorf("%s is not valid", *path)
		}
		return err
	}
	fmt.Fprintf(stdout, "%s: OK\n", *path)
	fmt.Fprintf(stdout, "  listen %s (%s), webhook path %s, %d credential(s), %d tool(s), %d assistant route(s)\n",
		cfg.Listen, scheme(cfg), cfg.Vapi.Path, len(cfg.Vapi.Auth), len(cfg.Tools), len(cfg.Vapi.AssistantRequest.Routes))
	fmt.Fprintf(stdout, "  server URL for Vapi: %s\n", serverURL(cfg))
	store := "sqlite in data_dir"
	if cfg.Storage.Driver == storage.DriverPostgres {
		store = "postgres at " + redact.URL(cfg.Storage.PostgresURL)
	}
	fmt.Fprintf(stdout, "  data_dir %s; calls stored in %s\n", cfg.DataDir, store)
	admin := "off (no metrics or pprof listener; set admin.listen)"
	if cfg.Admin.Listen != "" {
		admin = "http://" + cfg.Admin.Listen + "/metrics and /debug/pprof/ (loopback only)"
	}
	if cfg.Admin.PublicMetricsToken != "" {
		admin += "; /metrics also on the public listener behind its bearer token"
	}
	fmt.Fprintf(stdout, "  admin %s\n", admin)
	api := "no key: vapi plan|apply and secrets rotate cannot reach Vapi (set vapi.api.key)"
	if cfg.Vapi.API.Enabled() {
		api = fmt.Sprintf("%s, key set, timeout %s, %d retries", redact.URL(cfg.Vapi.API.BaseURL), cfg.Vapi.API.Timeout.D(), cfg.Vapi.API.RetryCount())
	}
	fmt.Fprintf(stdout, "  Vapi API: %s\n", api)
	for i, a := range cfg.Vapi.Auth {
		fmt.Fprintf(stdout, "  auth[%d]: %s\n", i, describeAuth(a))
	}
	// Output goes to terminals and CI logs: a key in a tool URL is redacted.
	for _, t := range cfg.Tools {
		fmt.Fprintf(stdout, "  tool %s: %s %s, timeout %s, max %d concurrent, schema %v\n", t.Name, t.Method, redact.URL(t.URL), t.Timeout.D(), t.MaxConcurrency, t.Schema != nil)
	}
	fmt.Fprintf(stdout, "  memory at capacity: replay cache %d entries ~%d MiB, sessions %d calls ~%d MiB, request bodies at most %d MiB\n",
		cfg.Vapi.Replay.Capacity, int64(cfg.Vapi.Replay.Capacity)*replay.EntryBytes>>20,
		cfg.Sessions.Capacity, int64(cfg.Sessions.Capacity)*session.EntryBytes>>20, cfg.Server.BodyMemoryBytes>>20)
	printWarnings(stdout, cfg.Warnings)
	return nil
}

// printWarnings lists settings that are accepted but weaker than the
// defaults; serve logs the same lines at start-up and on reload.
func printWarnings(w io.Writer, ws []config.Problem) {
	if len(ws) == 0 {
		return
	}
	fmt.Fprintf(w, "  %d warning(s):\n", len(ws))
	for _, p := range ws {
		fmt.Fprintf(w, "  ! %s\n", redact.Text(p.String()))
	}
}

// serverURL is the URL Vapi must call: vapi.public_url when set, else
// what the listener serves (an address to replace with the public name).
func serverURL(c *config.Config) string {
	if c.Vapi.PublicURL != "" {
		return redact.URL(c.Vapi.PublicURL) + " (vapi.public_url)"
	}
	s := "http"
	if c.TLS.Enabled() {
		s = "https"
	}
	return s + "://" + c.Listen + c.Vapi.Path + " (set vapi.public_url to the address Vapi reaches)"
}

func scheme(c *config.Config) string {
	if c.TLS.Enabled() {
		return "https, TLS " + c.TLS.MinVersion + "+"
	}
	return "plain http"
}

// describeAuth says how an entry verifies, never what its secrets are.
func describeAuth(a config.AuthConfig) string {
	switch a.Mode {
	case auth.ModeHMAC:
		ts := a.TimestampHeaderName()
		if ts == "" {
			ts = "none"
		}
		return fmt.Sprintf("hmac-%s in %s (%s, prefix %q), timestamp header %s, payload %q, %d secret(s)",
			a.Algorithm, a.SignatureHeader, a.Encoding, a.Prefix, ts, a.PayloadFormat, len(a.Secrets))
	case auth.ModeBearer:
		return fmt.Sprintf("bearer token in %s (Bearer prefix %v), %d token(s)", a.Header, *a.BearerPrefix, len(a.Secrets))
	default:
		return fmt.Sprintf("static secret in %s, %d secret(s)", a.Header, len(a.Secrets))
	}
}
