package server

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
)

// Config is the HTTP server's configuration (the "server" section): its
// timeouts, header and body-memory bounds, HTTP/2 streams and shutdown.
// Start from DefaultConfig.
type Config struct {
	ReadHeaderTimeout confval.Duration `yaml:"read_header_timeout"`
	ReadTimeout       confval.Duration `yaml:"read_timeout"`
	WriteTimeout      confval.Duration `yaml:"write_timeout"`
	IdleTimeout       confval.Duration `yaml:"idle_timeout"`
	MaxHeaderBytes    int              `yaml:"max_header_bytes"`
	// BodyMemoryBytes bounds the memory held by request bodies in flight,
	// all requests together; over it a request gets 503 with Retry-After.
	BodyMemoryBytes int64 `yaml:"body_memory_bytes"`
	// MaxConcurrentStreams bounds HTTP/2 streams per connection.
	MaxConcurrentStreams int `yaml:"max_concurrent_streams"`
	// ShutdownDelay is how long SIGTERM keeps serving with /readyz failing
	// before the listener closes, so that a load balancer stops routing
	// first.
	ShutdownDelay confval.Duration `yaml:"shutdown_delay"`
	// DrainTimeout bounds how long SIGTERM waits for in-flight requests.
	DrainTimeout confval.Duration `yaml:"drain_timeout"`
	// TrustedProxies are the load balancers in front (addresses or CIDR
	// ranges) whose X-Forwarded-For header names the caller in logs. Only
	// logs use it: nothing is allowed or refused by a forwarded address.
	TrustedProxies []string `yaml:"trusted_proxies"`
}

// Proxies returns TrustedProxies parsed (a bare address is a /32 or
// /128); entries Validate refuses are skipped.
func (c Config) Proxies() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range c.TrustedProxies {
		if p, err := parsePrefix(s); err == nil && p.Bits() > 0 {
			out = append(out, p)
		}
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// DefaultConfig returns the server defaults.
func DefaultConfig() Config {
	return Config{
		ReadHeaderTimeout:    confval.Duration(5 * time.Second),
		ReadTimeout:          confval.Duration(15 * time.Second),
		WriteTimeout:         confval.Duration(35 * time.Second),
		IdleTimeout:          confval.Duration(120 * time.Second),
		MaxHeaderBytes:       64 << 10,
		BodyMemoryBytes:      64 << 20,
		MaxConcurrentStreams: 100,
		ShutdownDelay:        confval.Duration(5 * time.Second),
		DrainTimeout:         confval.Duration(25 * time.Second),
	}
}

// Validate returns one problem per invalid field, each starting with the
// field's key in the section ("read_timeout: ..."); none when valid. Rules
// that tie these fields to other sections (the write timeout against the
// Vapi deadline, body memory against the body cap) are the configuration's.
func (c Config) Validate() []string {
	var probs []string
	add := func(field, format string, args ...any) {
		probs = append(probs, field+": "+fmt.Sprintf(format, args...))
	}
	for _, d := range []struct {
		name string
		v    confval.Duration
		max  time.Duration
		why  string
	}{
		{"read_header_timeout", c.ReadHeaderTimeout, time.Minute, "a client may hold a connection that long without finishing its headers"},
		{"read_timeout", c.ReadTimeout, 5 * time.Minute, "a client may trickle a body that long"},
		{"write_timeout", c.WriteTimeout, 15 * time.Minute, "a stuck answer holds its connection that long"},
		{"idle_timeout", c.IdleTimeout, time.Hour, "idle connections are kept that long"},
		{"drain_timeout", c.DrainTimeout, 10 * time.Minute, "shutdown may wait that long"},
	} {
		switch {
		case d.v <= 0:
			add(d.name, "must be positive (a zero timeout means none)")
		case d.v.D() > d.max:
			add(d.name, "%s is longer than the %s allowed: %s", d.v.D(), d.max, d.why)
		}
	}
	if c.ShutdownDelay < 0 || c.ShutdownDelay.D() > time.Minute {
		add("shutdown_delay", "must be between 0s and 1m, got %s", c.ShutdownDelay.D())
	}
	if c.MaxHeaderBytes < 4096 || c.MaxHeaderBytes > 1<<20 {
		add("max_header_bytes", "must be between 4096 and 1048576 (1 MiB), got %d: Vapi's headers are a few hundred bytes", c.MaxHeaderBytes)
	}
	if c.MaxConcurrentStreams < 1 || c.MaxConcurrentStreams > 1000 {
		add("max_concurrent_streams", "must be between 1 and 1000, got %d", c.MaxConcurrentStreams)
	}
	for i, s := range c.TrustedProxies {
		p, err := parsePrefix(s)
		switch {
		case err != nil:
			add(fmt.Sprintf("trusted_proxies[%d]", i), "%q is not an IP address or CIDR range", s)
		case p.Bits() == 0:
			add(fmt.Sprintf("trusted_proxies[%d]", i), "%q trusts every address: any client could name any caller", s)
		}
	}
	return probs
}

// TLSConfig enables HTTPS from PEM files (the "tls" section); the pair is
// re-read when it changes.
type TLSConfig struct {
	CertFile       string           `yaml:"cert_file"`
	KeyFile        string           `yaml:"key_file"`
	MinVersion     string           `yaml:"min_version"` // "1.2" (default) or "1.3"
	ReloadInterval confval.Duration `yaml:"reload_interval"`
}

// DefaultTLSConfig returns the TLS defaults (off).
func DefaultTLSConfig() TLSConfig {
	return TLSConfig{MinVersion: "1.2", ReloadInterval: confval.Duration(30 * time.Second)}
}

// Enabled reports whether TLS is configured.
func (t TLSConfig) Enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// Validate returns one problem per invalid field ("min_version: ...", or
// "" for the section as a whole); none when valid.
func (t TLSConfig) Validate() []string {
	var probs []string
	if t.Enabled() && (t.CertFile == "" || t.KeyFile == "") {
		probs = append(probs, ": cert_file and key_file must both be set")
	}
	switch t.MinVersion {
	case "1.2", "1.3":
	default:
		probs = append(probs, fmt.Sprintf("min_version: %q is not 1.2 or 1.3", t.MinVersion))
	}
	if t.Enabled() && t.ReloadInterval.D() <= 0 {
		probs = append(probs, "reload_interval: must be positive")
	}
	return probs
}
