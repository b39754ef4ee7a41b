package ratelimit

import "fmt"

// Config is the "limits" section: what one client address and one route
// may send, and how many requests may be served at once. Checked in that
// order, before a request's body is read or authenticated.
type Config struct {
	// PerSource is each client address's bucket (an IPv6 client by its
	// /64; behind server.trusted_proxies, the forwarded address).
	PerSource Rate `yaml:"per_source"`
	// PerRoute is each webhook route's bucket, all clients together.
	PerRoute Rate `yaml:"per_route"`
	// MaxSources bounds the addresses with a bucket of their own; beyond
	// it, new addresses share one bucket.
	MaxSources int `yaml:"max_sources"`
	// MaxInFlight caps the webhook requests served at once; over it the
	// answer is 503 with Retry-After (readiness stays green: the load
	// balancer should not take the instance out, which would push the
	// overload onto the others).
	MaxInFlight int `yaml:"max_in_flight"`
}

// DefaultConfig are the limits for a real deployment, chosen against the
// measured capacity in BENCHMARKS.md (about 15,000 requests per second of
// the realistic mix on two cores) and against what Vapi sends (a live call
// is about 3 messages per second: 15 per turn, a turn every few seconds):
//   - per source, 5,000/s with a burst of 10,000: Vapi's webhooks come
//     from a few egress addresses, so one address carries about 1,500 live
//     calls before it is limited, while one abusive address gets at most
//     a third of the capacity;
//   - per route, 12,000/s with a burst of 24,000: under the capacity, so
//     that a flood is refused with 429 in microseconds instead of queueing
//     until every answer misses Vapi's deadline (raise both on a bigger
//     machine, after measuring it with voicegate-bench);
//   - 65,536 tracked addresses (about 10 MB at most);
//   - 2,048 requests in flight: tool calls wait on internal APIs for up
//     to their timeout, so in-flight requests are mostly waiting, not
//     working; past this many the server is overloaded whatever the cause.
func DefaultConfig() Config {
	return Config{
		PerSource:   Rate{PerSecond: 5000, Burst: 10000},
		PerRoute:    Rate{PerSecond: 12000, Burst: 24000},
		MaxSources:  65536,
		MaxInFlight: 2048,
	}
}

// Validate returns the section's problems.
func (c Config) Validate() []string {
	var probs []string
	for _, nr := range []struct {
		name string
		r    Rate
	}{{"per_source", c.PerSource}, {"per_route", c.PerRoute}} {
		name, r := nr.name, nr.r
		switch {
		case r.PerSecond < 0 || r.Burst < 0:
			probs = append(probs, fmt.Sprintf("%s: per_second and burst must not be negative", name))
		case r.PerSecond > 0 && r.Burst < 1:
			probs = append(probs, fmt.Sprintf("%s: burst must be at least 1 when per_second is set (a burst of 0 refuses everything)", name))
		case r.PerSecond == 0 && r.Burst != 0:
			probs = append(probs, fmt.Sprintf("%s: burst without per_second: set per_second, or 0 for both to turn the limit off", name))
		}
	}
	if c.MaxSources < 16 || c.MaxSources > 10_000_000 {
		probs = append(probs, fmt.Sprintf("max_sources: %d is outside 16..10000000", c.MaxSources))
	}
	if c.MaxInFlight < 0 {
		probs = append(probs, "max_in_flight: must not be negative (0 turns the cap off)")
	}
	return probs
}
