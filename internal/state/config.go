// Package state selects where the state replicas must share lives — the
// replay guard (replay protection and in-flight de-duplication), the call
// sessions and the rate limits' share — and says what a request may do
// while that place is unreachable.
//
// The default driver, memory, keeps it in the process (one replica). The
// redis driver keeps it in Redis (package redisstate), so that any replica
// handles any event of any call, a replay reaching another replica is
// answered from the original's answer, and a tool call is executed once
// whichever replica it reaches.
package state

import (
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/redact"
)

// Drivers.
const (
	DriverMemory = "memory"
	DriverRedis  = "redis"
)

// What a request with side effects gets while Redis is unreachable.
const (
	// Refuse answers 503 with Retry-After, so that the provider retries
	// once Redis is back: exactly-once is never traded away silently.
	Refuse = "refuse"
	// Local handles it on this replica's own state (a replay reaching
	// another replica during the outage is executed again).
	Local = "local"
)

// Config is the "state" section.
type Config struct {
	// Driver is memory (in the process: one replica) or redis.
	Driver string `yaml:"driver"`
	// RedisURL is redis:// or rediss:// (TLS), [user[:password]@]host:port[/db].
	RedisURL string `yaml:"redis_url"`
	// RedisPasswordFile holds the password (of the ACL user in the URL),
	// instead of the URL.
	RedisPasswordFile string `yaml:"redis_password_file"`
	// KeyPrefix starts every key voicegate writes (several deployments
	// may share one Redis).
	KeyPrefix string `yaml:"key_prefix"`
	// Timeout bounds each Redis command.
	Timeout confval.Duration `yaml:"timeout"`
	// Lease is how long a replica owns a request it is handling without
	// renewing the claim (renewed every third of it while it works): when
	// a replica dies mid-request, a retry is handled after at most this.
	Lease confval.Duration `yaml:"lease"`
	// OnUnavailable is Refuse or Local.
	OnUnavailable string `yaml:"on_unavailable"`
}

// DefaultConfig returns the defaults: in-process state.
func DefaultConfig() Config {
	return Config{Driver: DriverMemory, KeyPrefix: "vg:", Timeout: confval.Duration(250 * time.Millisecond),
		Lease: confval.Duration(5 * time.Second), OnUnavailable: Refuse}
}

// Shared reports whether the state is shared by replicas.
func (c Config) Shared() bool { return c.Driver == DriverRedis }

// Validate returns the section's problems, each starting with its field.
func (c Config) Validate() []string {
	var probs []string
	switch c.Driver {
	case DriverMemory:
		if c.RedisURL != "" {
			probs = append(probs, "redis_url: set, but driver is memory (set driver: redis to share state between replicas)")
		}
	case DriverRedis:
		u, err := url.Parse(c.RedisURL)
		switch {
		case c.RedisURL == "":
			probs = append(probs, "redis_url: required with driver redis (redis://host:6379/0 or rediss:// for TLS)")
		case err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "":
			probs = append(probs, fmt.Sprintf("redis_url: %s is not a redis:// or rediss:// URL with a host", redact.URL(c.RedisURL)))
		}
		if c.RedisPasswordFile != "" {
			if _, err := os.Stat(c.RedisPasswordFile); err != nil {
				probs = append(probs, fmt.Sprintf("redis_password_file: %v", err))
			}
		}
	default:
		probs = append(probs, fmt.Sprintf("driver: %q is not memory or redis", c.Driver))
	}
	if c.KeyPrefix == "" || len(c.KeyPrefix) > 64 || strings.ContainsAny(c.KeyPrefix, " \t\r\n{}") {
		probs = append(probs, fmt.Sprintf("key_prefix: %q must be 1..64 characters without spaces or braces", c.KeyPrefix))
	}
	if d := c.Timeout.D(); d < time.Millisecond || d > 10*time.Second {
		probs = append(probs, fmt.Sprintf("timeout: %s is outside 1ms..10s", d))
	}
	if d := c.Lease.D(); d < 500*time.Millisecond || d > time.Minute {
		probs = append(probs, fmt.Sprintf("lease: %s is outside 500ms..1m", d))
	} else if d <= 2*c.Timeout.D() {
		probs = append(probs, fmt.Sprintf("lease: %s must be more than twice timeout (%s): a renewal must land before the lease ends", d, c.Timeout.D()))
	}
	if c.OnUnavailable != Refuse && c.OnUnavailable != Local {
		probs = append(probs, fmt.Sprintf("on_unavailable: %q is not refuse or local", c.OnUnavailable))
	}
	return probs
}
