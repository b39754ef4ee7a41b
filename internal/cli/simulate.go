package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/cli/clikit"
	"github.com/voicegate/voicegate/internal/simulate"
)

func runSimulate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("simulate", stderr)
	url := fs.String("url", "", "server URL to call (required), e.g. http://127.0.0.1:3000/webhook/vapi; for the twilio scenarios the server's address, e.g. http://127.0.0.1:3000")
	scenario := fs.String("scenario", "call", "call (a complete call), security (replay, unsigned, stale, oversized, bad JSON) or all; "+
		"twilio-call (an incoming call, status callbacks, retries; needs --effects), twilio-security (tampered requests) or twilio (both), from --config's twilio section")
	twNumber := fs.String("twilio-number", "", "the twilio scenarios: the number called (default: the first of twilio.numbers)")
	af := clikit.RegisterAuthFlags(fs)
	tool := fs.String("tool", "", "a tool the call scenario calls (default: no tool step)")
	toolArgs := fs.String("args", "{}", "the tool's arguments, a JSON object")
	effects := fs.Bool("effects", false, "a real call: stored, and the tool calls its internal API (default: a dry run, answered without side effects)")
	maxBody := fs.Int64("max-body", 1<<20, "the server's body cap; the security scenario sends one byte more (taken from --config when given)")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout")
	caFile := fs.String("ca-file", "", "PEM file of the CA that signed the server's certificate (for https URLs with a private CA)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *url == "" {
		return &UsageError{Msg: "simulate needs --url"}
	}
	if simulate.IsTwilio(*scenario) {
		return simulateTwilio(ctx, *url, *scenario, *twNumber, af.ConfigPath(), *effects, *caFile, *timeout, getenv, stdout)
	}
	if *twNumber != "" {
		return &UsageError{Msg: "simulate --twilio-number is for the twilio scenarios"}
	}
	a, cfgMax, err := af.Resolve(getenv)
	if err != nil {
		if ue, ok := err.(*UsageError); ok {
			return &UsageError{Msg: "simulate " + ue.Msg}
		}
		return err
	}
	if cfgMax > 0 {
		*maxBody = cfgMax
	}
	client, err := simulateClient(*caFile, *timeout)
	if err != nil {
		return err
	}
	if *tool == "" && *toolArgs != "{}" {
		return &UsageError{Msg: "simulate --args needs --tool NAME (the tool the arguments are for)"}
	}
	if !json.Valid([]byte(*toolArgs)) || !strings.HasPrefix(strings.TrimSpace(*toolArgs), "{") {
		return &UsageError{Msg: `simulate --args must be a JSON object, like '{"date":"2026-12-01"}'`}
	}
	if _, err := simulate.Run(ctx, simulate.Options{URL: *url, Scenario: *scenario, Auth: a, Tool: *tool, ToolArgs: json.RawMessage(*toolArgs),
		Effects: *effects, MaxBody: *maxBody, Timeout: *timeout, Client: client}, stdout); err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	return nil
}

// simulateTwilio plays a twilio scenario: the requests go to the server's
// address (base) and are signed for the config's public_base_url.
func simulateTwilio(ctx context.Context, base, scenario, number, cfgPath string, effects bool, caFile string, timeout time.Duration,
	getenv func(string) string, stdout io.Writer) error {
	if !slices.Contains(simulate.Scenarios, scenario) {
		return &UsageError{Msg: fmt.Sprintf("simulate: unknown scenario %q (known: %s)", scenario, strings.Join(simulate.Scenarios, ", "))}
	}
	if cfgPath == "" {
		return &UsageError{Msg: "simulate --scenario " + scenario + " needs --config FILE: its twilio section gives the paths, public_base_url, the auth token and the numbers"}
	}
	if simulate.TwilioStores(scenario) && !effects {
		return &UsageError{Msg: "simulate --scenario " + scenario + " stores a call (the Twilio door has no dry run): add --effects, against a test number; --scenario twilio-security stores nothing"}
	}
	u, err := neturl.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" {
		return &UsageError{Msg: fmt.Sprintf("simulate --url %q: for the twilio scenarios, the server's address such as http://127.0.0.1:3000", base)}
	}
	tw, err := clikit.LoadTwilio(cfgPath, number, getenv, time.Now())
	if err != nil {
		return err
	}
	for _, p := range []string{tw.Config.VoicePath, tw.Config.StatusPath} {
		if strings.HasSuffix(strings.TrimSuffix(u.Path, "/"), p) {
			return &UsageError{Msg: fmt.Sprintf("simulate --url %q: for the twilio scenarios, the server's address without %s (the paths come from the twilio section)", base, p)}
		}
	}
	client, err := simulateClient(caFile, timeout)
	if err != nil {
		return err
	}
	if _, err := simulate.Run(ctx, simulate.Options{URL: base, Scenario: scenario, Effects: effects, Timeout: timeout, Client: client,
		Twilio: &simulate.Twilio{Config: tw.Config, Token: tw.Token, Number: tw.Number}}, stdout); err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	return nil
}

// simulateClient is an HTTP client that never follows redirects and, given
// a CA file, trusts only that CA.
func simulateClient(caFile string, timeout time.Duration) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("read CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Timeout: timeout, Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
}
