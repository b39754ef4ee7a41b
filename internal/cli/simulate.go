package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/simulate"
)

func runSimulate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("simulate", stderr)
	url := fs.String("url", "", "server URL to call (required), e.g. http://127.0.0.1:3000/webhook/vapi")
	scenario := fs.String("scenario", "call", "call (a complete call), security (replay, unsigned, stale, oversized, bad JSON) or all")
	cfgPath := fs.String("config", "", "take the credential from this voicegate config (its first vapi.auth entry) instead of the flags")
	mode := fs.String("auth", "hmac", "auth mode: hmac, bearer or secret")
	secret := fs.String("secret", "", "secret or token (default: $VOICEGATE_SECRET)")
	preset := fs.String("preset", "", "hmac preset: vapi-signature (x-vapi-signature: sha256=<hex of body>)")
	alg := fs.String("algorithm", "", "hmac algorithm: sha256, sha512, sha1")
	sigHeader := fs.String("signature-header", "", "hmac signature header (default x-signature)")
	tsHeader := fs.String("timestamp-header", "x-timestamp", "hmac timestamp header; empty for none")
	format := fs.String("payload-format", "", "hmac payload format (default {timestamp}.{body})")
	encoding := fs.String("encoding", "", "hmac signature encoding: hex or base64")
	prefix := fs.String("prefix", "", "hmac signature prefix, e.g. sha256=")
	secretB64 := fs.Bool("secret-base64", false, "the hmac secret is base64")
	header := fs.String("header", "", "bearer/secret header (defaults Authorization / x-vapi-secret)")
	noBearer := fs.Bool("no-bearer-prefix", false, "bearer: send the token without \"Bearer \"")
	tool := fs.String("tool", "getAppointment", "tool name used by the call scenario")
	maxBody := fs.Int64("max-body", 1<<20, "the server's body cap; the security scenario sends one byte more")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *url == "" {
		return &UsageError{Msg: "simulate needs --url"}
	}
	var a config.AuthConfig
	if *cfgPath != "" {
		cfg, err := config.Load(*cfgPath, config.Options{Getenv: getenv})
		if err != nil {
			return err
		}
		a = cfg.Vapi.Auth[0]
		*maxBody = cfg.Vapi.MaxBodyBytes
	} else {
		s := *secret
		if s == "" {
			s = getenv("VOICEGATE_SECRET")
		}
		if s == "" {
			return &UsageError{Msg: "simulate needs --secret (or VOICEGATE_SECRET, or --config)"}
		}
		a = config.AuthConfig{Mode: *mode, Preset: *preset, Secrets: []config.Secret{{Value: s}}}
		if *mode == config.ModeHMAC {
			a.Algorithm, a.SignatureHeader, a.PayloadFormat, a.Encoding, a.Prefix, a.SecretBase64 = *alg, *sigHeader, *format, *encoding, *prefix, *secretB64
			if *preset == "" {
				a.TimestampHeader = tsHeader
			}
		} else {
			a.Header = *header
			if *mode == config.ModeBearer && *noBearer {
				f := false
				a.BearerPrefix = &f
			}
		}
		a.Complete()
	}
	_, err := simulate.Run(ctx, simulate.Options{URL: *url, Scenario: *scenario, Auth: a, Tool: *tool, MaxBody: *maxBody, Timeout: *timeout}, stdout)
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	return nil
}
