package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/voicegate/voicegate/internal/config"
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
				fmt.Fprintf(stdout, "  - %s\n", p)
			}
			return fmt.Errorf("%s is not valid", *path)
		}
		return err
	}
	fmt.Fprintf(stdout, "%s: OK\n", *path)
	fmt.Fprintf(stdout, "  listen %s (%s), webhook path %s, %d credential(s), %d tool(s), %d assistant route(s)\n",
		cfg.Listen, scheme(cfg), cfg.Vapi.Path, len(cfg.Vapi.Auth), len(cfg.Tools), len(cfg.Vapi.AssistantRequest.Routes))
	for i, a := range cfg.Vapi.Auth {
		fmt.Fprintf(stdout, "  auth[%d]: %s\n", i, describeAuth(a))
	}
	for _, t := range cfg.Tools {
		fmt.Fprintf(stdout, "  tool %s: %s %s, timeout %s, max %d concurrent, schema %v\n", t.Name, t.Method, t.URL, t.Timeout.D(), t.MaxConcurrency, t.Schema != nil)
	}
	return nil
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
	case config.ModeHMAC:
		ts := a.TimestampHeaderName()
		if ts == "" {
			ts = "none"
		}
		return fmt.Sprintf("hmac-%s in %s (%s, prefix %q), timestamp header %s, payload %q, %d secret(s)",
			a.Algorithm, a.SignatureHeader, a.Encoding, a.Prefix, ts, a.PayloadFormat, len(a.Secrets))
	case config.ModeBearer:
		return fmt.Sprintf("bearer token in %s (Bearer prefix %v), %d token(s)", a.Header, *a.BearerPrefix, len(a.Secrets))
	default:
		return fmt.Sprintf("static secret in %s, %d secret(s)", a.Header, len(a.Secrets))
	}
}
