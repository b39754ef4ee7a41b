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
	"strings"
	"syscall"

	"github.com/voicegate/voicegate/internal/app"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/demoapi"
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
	log := newLogger(stderr, cfg.Log.Level)
	// Files voicegate creates (database, WAL, journal) are private to it.
	syscall.Umask(0o077)

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	srv, err := server.Listen(cfg, log)
	if err != nil {
		return err
	}
	addr := srv.Addr().String()
	if *dev {
		// The demo tool is served by this process; point the tool at the
		// address actually bound (the port may have been chosen by the OS).
		cfg.Tools[0].URL = "http://" + addr + config.DevToolPath
	}
	if !cfg.TLS.Enabled() {
		if host, _, _ := net.SplitHostPort(addr); !config.IsLoopback(host) {
			log.Warn("serving plain HTTP on a non-loopback address (allow_insecure_http): only behind a TLS-terminating load balancer", "addr", addr)
		}
	}

	opts := app.Options{Log: log}
	if *dev {
		opts.DevTool = demoapi.Handler()
	}
	a, err := app.New(ctx, cfg, opts)
	if err != nil {
		srv.Close()
		return err
	}
	defer a.Close()
	go a.Run(ctx)
	if cfg.Admin.Listen != "" {
		adminAddr, err := server.ServeAdmin(ctx, cfg.Admin.Listen, log)
		if err != nil {
			srv.Close()
			return err
		}
		log.Info("admin listener (pprof)", "addr", adminAddr.String())
	}

	scheme := "http"
	if cfg.TLS.Enabled() {
		scheme = "https"
	}
	log.Info("listening", "addr", addr, "url", scheme+"://"+addr+cfg.Vapi.Path, "tools", len(cfg.Tools), "credentials", len(cfg.Vapi.Auth), "version", Version)
	if *dev {
		printDevHelp(stdout, scheme+"://"+addr+cfg.Vapi.Path, devSecret, cfg.DataDir)
	}
	err = srv.Serve(ctx, a.Gateway, cfg.TLS.ReloadInterval.D(), a.Gateway.SetDraining)
	if err != nil {
		log.Error("stopped with error", "err", err)
		return err
	}
	log.Info("stopped")
	return nil
}

// loadServeConfig builds the configuration of serve --dev, or loads the file
// and applies the flag overrides, validating the result either way.
func loadServeConfig(dev bool, path, listen, dataDir string, getenv func(string) string) (*config.Config, string, error) {
	if dev {
		dir := or(dataDir, "./data")
		addr := or(listen, "127.0.0.1:3000")
		host, _, err := net.SplitHostPort(addr)
		if err != nil || !config.IsLoopback(host) {
			return nil, "", &UsageError{Msg: "--dev listens on loopback only (127.0.0.1:PORT, [::1]:PORT or localhost:PORT)"}
		}
		secret, err := devSecretIn(dir)
		if err != nil {
			return nil, "", err
		}
		cfg := config.Dev(secret, addr, dir)
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
	if err == nil && len(strings.TrimSpace(string(b))) >= config.MinSecretLen {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read dev secret: %w", err)
	}
	s := config.NewSecret()
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
  Try a full call:  go run ./cmd/voicegate simulate --url %s --secret %s
  Demo tool:        getAppointment (served by this process)
`, url, secret, dir, url, secret)
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	switch level {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}
