package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/voicegate/voicegate/internal/app"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/demoapi"
	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/redact"
	"github.com/voicegate/voicegate/internal/server"
)

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	cfgPath := fs.String("config", "", "YAML configuration file")
	dev := fs.Bool("dev", false, "run on embedded defaults: loopback only, generated HMAC secret, demo tool API")
	listen := fs.String("listen", "", "override the listen address (host:port; port 0 picks a free one)")
	dataDir := fs.String("data-dir", "", "override the data directory")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *dev == (*cfgPath != "") {
		return &UsageError{Msg: "serve needs exactly one of --config FILE or --dev"}
	}

	cfg, devSecret, err := loadServeConfig(*dev, *cfgPath, *listen, *dataDir, getenv)
	if err != nil {
		return err
	}
	level := new(slog.LevelVar)
	level.Set(cfg.Log.SlogLevel())
	// Every line passes the PII redactor (log.redact_pii), the HTTP
	// server's error log too (it is built on this handler).
	log := slog.New(cfg.Log.Handler(stderr, level)).With(logkey.Replica, cfg.Replica)
	for _, w := range cfg.Warnings {
		log.Warn("configuration", logkey.Setting, w.Path, logkey.Warning, w.Msg)
	}
	// Files voicegate creates (database, WAL, journal) are private to it.
	privateFiles()

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)
	ctx, stopServing := context.WithCancel(ctx)
	defer stopServing()

	srv, err := server.Listen(cfg.Listen, cfg.Server, cfg.TLS, log)
	if err != nil {
		return err
	}
	addr := srv.Addr().String()
	if *dev {
		// The demo tool is served by this process; point the tool at the
		// address actually bound (the port may have been chosen by the OS).
		cfg.Tools[0].URL = "http://" + addr + demoapi.Path
	}
	if !cfg.TLS.Enabled() {
		if host, _, _ := net.SplitHostPort(addr); !server.IsLoopback(host) {
			log.Warn("serving plain HTTP on a non-loopback address (allow_insecure_http): only behind a TLS-terminating load balancer", logkey.Addr, addr)
		}
	}

	opts := app.Options{Log: log, Level: level, Version: Version}
	if *dev {
		opts.Dev = true
	}
	a, err := app.New(ctx, cfg, opts)
	if err != nil {
		srv.Close()
		return err
	}
	defer a.Close()
	// The signal handler stops with ctx and is waited for before the store
	// closes (defers run in reverse).
	var signals sync.WaitGroup
	defer func() { stopServing(); signals.Wait() }()
	signals.Go(func() {
		handleSignals(ctx, sigs, stopServing, a, log, reloader(*dev, *cfgPath, *listen, *dataDir, getenv), cfg.Server.ShutdownDelay.D())
	})
	ls := app.Listeners{Public: srv}
	if cfg.Admin.Listen != "" {
		allow, err := cfg.Admin.AllowFrom.Build()
		if err != nil {
			srv.Close()
			return err
		}
		if ls.Admin, err = server.ListenAdmin(cfg.Admin.Listen, allow, a.Metrics.Handler(), log); err != nil {
			srv.Close()
			return err
		}
		log.Info("admin listener (metrics, pprof)", logkey.Addr, ls.Admin.Addr().String())
	}

	scheme := "http"
	if cfg.TLS.Enabled() {
		scheme = "https"
	}
	// The URL is the one Vapi calls: public_url when set (the listener's
	// address, "[::]:3000" say, is not reachable by that name).
	serverURL := scheme + "://" + addr + cfg.Vapi.Path
	if cfg.Vapi.PublicURL != "" {
		serverURL = redact.URL(cfg.Vapi.PublicURL)
	}
	log.Info("listening", logkey.Addr, addr, logkey.URL, serverURL, logkey.Tools, len(cfg.Tools), logkey.Credentials, len(cfg.Vapi.Auth), logkey.Version, Version)
	if *dev {
		printDevHelp(stdout, scheme+"://"+addr+cfg.Vapi.Path, devSecret, cfg.DataDir)
	}
	// Everything the process runs — listeners, certificate watcher,
	// checkpoints, sweeper — is owned by a.Run and has stopped when it
	// returns.
	if err := a.Run(ctx, ls); err != nil {
		log.Error("stopped with error", logkey.Err, err)
		return err
	}
	log.Info("stopped")
	return nil
}

// handleSignals runs until ctx ends. SIGHUP reloads the configuration.
// SIGTERM fails readiness at once and stops serving after delay, so that a
// load balancer stops routing before the listener closes; SIGINT (Ctrl-C),
// or a second SIGTERM, stops at once.
func handleSignals(ctx context.Context, sigs <-chan os.Signal, stop context.CancelFunc, a *app.App, log *slog.Logger,
	reload func() (*config.Config, error), delay time.Duration) {
	var delayed <-chan time.Time
	terminating := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-delayed:
			stop()
		case sig := <-sigs:
			switch {
			case sig == syscall.SIGHUP:
				reloadConfig(a, log, reload)
			case sig == syscall.SIGTERM && !terminating && delay > 0:
				terminating = true
				a.Gateway.SetDraining()
				log.Info("SIGTERM: readiness failing; closing the listener after the shutdown delay", logkey.DelayMS, delay.Milliseconds())
				delayed = time.After(delay)
			default:
				stop()
			}
		}
	}
}

// reloadConfig loads, validates and applies the configuration; an invalid
// one keeps the running configuration and says why.
func reloadConfig(a *app.App, log *slog.Logger, load func() (*config.Config, error)) {
	next, err := load()
	if err == nil {
		prevAuth, prevTwilio := a.Config.Vapi.Auth, a.Config.Twilio.AuthTokens
		var restart []string
		restart, err = a.Reload(next)
		if err == nil {
			detail := "applied"
			if !reflect.DeepEqual(prevAuth, next.Vapi.Auth) || !reflect.DeepEqual(prevTwilio, next.Twilio.AuthTokens) {
				detail = "applied; credentials changed"
			}
			a.AuditEvent("config.reload", "", detail)
			for _, w := range next.Warnings {
				log.Warn("configuration", logkey.Setting, w.Path, logkey.Warning, w.Msg)
			}
			if len(restart) > 0 {
				log.Warn("configuration reloaded, but these settings need a restart and keep their running values", logkey.Settings, strings.Join(restart, ", "))
			}
			a.Metrics.ConfigReloads.WithLabelValues("ok").Inc()
			log.Info("configuration reloaded", logkey.Tools, len(next.Tools), logkey.Credentials, len(next.Vapi.Auth))
			return
		}
	}
	a.Metrics.ConfigReloads.WithLabelValues("error").Inc()
	a.AuditEvent("config.reload", "", "refused")
	log.Error("configuration reload refused; the running configuration is kept", logkey.Err, err.Error())
}

// reloader returns how SIGHUP gets the next configuration.
func reloader(dev bool, path, listen, dataDir string, getenv func(string) string) func() (*config.Config, error) {
	if dev {
		return func() (*config.Config, error) {
			return nil, errors.New("serve --dev has no configuration file to reload")
		}
	}
	return func() (*config.Config, error) {
		cfg, _, err := loadServeConfig(false, path, listen, dataDir, getenv)
		return cfg, err
	}
}

// loadServeConfig builds the configuration of serve --dev, or loads the file
// and applies the flag overrides, validating the result either way.
func loadServeConfig(dev bool, path, listen, dataDir string, getenv func(string) string) (*config.Config, string, error) {
	if dev {
		dir := or(dataDir, "./data")
		addr := or(listen, "127.0.0.1:3000")
		host, _, err := net.SplitHostPort(addr)
		if err != nil || !server.IsLoopback(host) {
			return nil, "", &UsageError{Msg: "--dev listens on loopback only (127.0.0.1:PORT, [::1]:PORT or localhost:PORT)"}
		}
		secret, err := devSecretIn(dir)
		if err != nil {
			return nil, "", err
		}
		cfg := devConfig(secret, addr, dir)
		if err := cfg.Check(config.Options{Dev: true, Getenv: getenv}); err != nil {
			return nil, "", err
		}
		return cfg, secret, nil
	}
	cfg, err := config.Load(path, config.Options{Getenv: getenv})
	if err != nil {
		return nil, "", err
	}
	if listen != "" || dataDir != "" {
		cfg.Listen = or(listen, cfg.Listen)
		cfg.DataDir = or(dataDir, cfg.DataDir)
		if err := cfg.Check(config.Options{Getenv: getenv}); err != nil {
			return nil, "", err
		}
	}
	return cfg, "", nil
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// devSecretIn returns the dev-mode secret kept in dir (mode 0600), creating
// it on first use so that restarts keep working with the same simulate line.
func devSecretIn(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create data directory: %w", err)
	}
	path := filepath.Join(dir, "dev-webhook-secret")
	b, err := os.ReadFile(path)
	if err == nil && len(strings.TrimSpace(string(b))) >= confval.MinSecretLen {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read dev secret: %w", err)
	}
	s := confval.NewSecret()
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write dev secret: %w", err)
	}
	return s, nil
}

func printDevHelp(w io.Writer, url, secret, dir string) {
	fmt.Fprintf(w, `voicegate --dev: development mode (loopback only; never use in production)
  Vapi server URL:  %s
  Webhook secret:   %s   (kept in %s/dev-webhook-secret)
  Signing:          x-timestamp: <unix seconds>
                    x-signature: hex(HMAC-SHA256(secret, "<x-timestamp>.<raw body>"))
  Try a full call:  go run ./cmd/voicegate simulate --url %s --secret %s --tool getAppointment --effects
  Demo tool:        getAppointment (served by this process)
`, url, secret, dir, url, secret)
}
