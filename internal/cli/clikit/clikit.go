// Package clikit is what voicegate's command lines share: usage errors and
// exit codes, strict flag parsing, and the flags that describe the
// credential a client command (simulate, voicegate-bench) signs with.
package clikit

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/config"
)

// UsageError is a command-line mistake (exit code 2).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

// ExitCode reports err on stderr and maps it to an exit code: 0 for none
// (or -h), 2 for a usage mistake, 1 otherwise.
func ExitCode(prog string, err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return 0
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "%s: %s\n", prog, ue.Msg)
		return 2
	}
	fmt.Fprintf(stderr, "%s: %v\n", prog, err)
	return 1
}

// ParseFlags parses args strictly: a bad flag or a stray argument is a
// UsageError.
func ParseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &UsageError{Msg: err.Error()}
	}
	if fs.NArg() > 0 {
		return &UsageError{Msg: fmt.Sprintf("unexpected arguments: %s", strings.Join(fs.Args(), " "))}
	}
	return nil
}

// AuthFlags describe the credential a client command (simulate, bench) signs
// with: either a voicegate config's first vapi.auth entry, or flags.
type AuthFlags struct {
	cfgPath, mode, secret, preset, alg, sigHeader, tsHeader, format, encoding, prefix, header *string
	secretB64, noBearer                                                                       *bool
}

// RegisterAuthFlags adds the credential flags to fs.
func RegisterAuthFlags(fs *flag.FlagSet) *AuthFlags {
	return &AuthFlags{
		cfgPath:   fs.String("config", "", "take the credential from this voicegate config (its first vapi.auth entry) instead of the flags"),
		mode:      fs.String("auth", "hmac", "auth mode: hmac, bearer or secret"),
		secret:    fs.String("secret", "", "secret or token (default: $VOICEGATE_SECRET)"),
		preset:    fs.String("preset", "", "hmac preset: vapi-signature (x-vapi-signature: sha256=<hex of body>)"),
		alg:       fs.String("algorithm", "", "hmac algorithm: sha256, sha512, sha1"),
		sigHeader: fs.String("signature-header", "", "hmac signature header (default x-signature)"),
		tsHeader:  fs.String("timestamp-header", "x-timestamp", "hmac timestamp header; empty for none"),
		format:    fs.String("payload-format", "", "hmac payload format (default {timestamp}.{body})"),
		encoding:  fs.String("encoding", "", "hmac signature encoding: hex or base64"),
		prefix:    fs.String("prefix", "", "hmac signature prefix, e.g. sha256="),
		secretB64: fs.Bool("secret-base64", false, "the hmac secret is base64"),
		header:    fs.String("header", "", "bearer/secret header (defaults Authorization / x-vapi-secret)"),
		noBearer:  fs.Bool("no-bearer-prefix", false, "bearer: send the token without \"Bearer \""),
	}
}

// ConfigPath is the --config file given ("" without one): the twilio
// scenarios and mix read its twilio section.
func (f *AuthFlags) ConfigPath() string { return *f.cfgPath }

// Resolve returns the completed credential and, from a config, its body cap
// (0 when given by flags).
func (f *AuthFlags) Resolve(getenv func(string) string) (config.AuthConfig, int64, error) {
	if *f.cfgPath != "" {
		// Only the credential is read: a tool's token need not be set here.
		cfg, err := config.LoadClient(*f.cfgPath, config.Options{Getenv: getenv})
		if err != nil {
			return config.AuthConfig{}, 0, err
		}
		return cfg.Vapi.Auth[0], cfg.Vapi.MaxBodyBytes, nil
	}
	s := *f.secret
	if s == "" {
		s = getenv("VOICEGATE_SECRET")
	}
	if s == "" {
		return config.AuthConfig{}, 0, &UsageError{Msg: "needs --secret (or VOICEGATE_SECRET, or --config)"}
	}
	a := config.AuthConfig{Mode: *f.mode, Preset: *f.preset, Secrets: []config.Secret{{Value: s}}}
	if *f.preset != "" {
		a.Mode = ""
	}
	if a.Mode == auth.ModeHMAC || *f.preset != "" {
		a.Algorithm, a.SignatureHeader, a.PayloadFormat, a.Encoding, a.Prefix, a.SecretBase64 = *f.alg, *f.sigHeader, *f.format, *f.encoding, *f.prefix, *f.secretB64
		if *f.preset == "" {
			a.TimestampHeader = f.tsHeader
		}
	} else {
		a.Header = *f.header
		if a.Mode == auth.ModeBearer && *f.noBearer {
			no := false
			a.BearerPrefix = &no
		}
	}
	a.Complete()
	return a, 0, nil
}
