package tracing

import (
	"fmt"
	"math"
	"net"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
)

// Config is the "tracing" section: where spans are exported (OTLP over
// HTTP), which share of the requests is traced, and the exporter's headers
// and timeout. An empty Endpoint turns tracing off.
type Config struct {
	// Endpoint is the collector's OTLP/HTTP base URL
	// (http://otel-collector.observability:4318); spans are POSTed to its
	// /v1/traces (kept when the URL already ends with it). Empty: off.
	Endpoint string `yaml:"endpoint"`
	// SampleRatio is the share of new traces recorded, 0 to 1. Parent
	// based: a request carrying a traceparent follows its sampled flag.
	SampleRatio float64 `yaml:"sample_ratio"`
	// Headers are sent with every export (authorization for a hosted
	// collector). Values never print: they may hold a key.
	Headers map[string]confval.Masked `yaml:"headers"`
	// Timeout bounds one export (its HTTP request, retries included) and
	// the flush at shutdown.
	Timeout confval.Duration `yaml:"timeout"`
}

// DefaultConfig is tracing off; once an endpoint is set, every request is
// traced and an export may take 5 s.
func DefaultConfig() Config {
	return Config{SampleRatio: 1, Timeout: confval.Duration(5 * time.Second)}
}

// Enabled reports whether spans are exported.
func (c Config) Enabled() bool { return c.Endpoint != "" }

// MaxTimeout bounds timeout: a flush at shutdown waits up to it.
const MaxTimeout = time.Minute

// reservedHeaders are set by the exporter itself.
var reservedHeaders = []string{"Content-Type", "Content-Encoding", "Content-Length", "Host", "User-Agent"}

// Validate returns the section's problems ("field: why") and warnings.
func (c Config) Validate() (probs, warns []string) {
	if math.IsNaN(c.SampleRatio) || c.SampleRatio < 0 || c.SampleRatio > 1 {
		probs = append(probs, fmt.Sprintf("sample_ratio: %v is not between 0 and 1", c.SampleRatio))
	}
	if t := c.Timeout.D(); t <= 0 || t > MaxTimeout {
		probs = append(probs, fmt.Sprintf("timeout: %s must be above 0 and at most %s", t, MaxTimeout))
	}
	names := make([]string, 0, len(c.Headers))
	for k := range c.Headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		switch v := string(c.Headers[k]); {
		case !confval.ValidHeaderName(k):
			probs = append(probs, fmt.Sprintf("headers: %q is not a valid header name", k))
		case isReserved(k):
			probs = append(probs, fmt.Sprintf("headers.%s: set by the exporter itself", k))
		case v == "":
			probs = append(probs, fmt.Sprintf("headers.%s: empty value (an unset ${ENV}?)", k))
		case strings.ContainsAny(v, "\r\n\x00"):
			probs = append(probs, fmt.Sprintf("headers.%s: the value holds a line break or NUL", k))
		}
	}
	if c.Endpoint == "" {
		return probs, warns
	}
	u, err := url.Parse(c.Endpoint)
	switch {
	case err != nil:
		// The parser's message quotes the URL, which may hold a key.
		probs = append(probs, "endpoint: not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		probs = append(probs, fmt.Sprintf("endpoint: scheme %q: want http:// or https:// (OTLP over HTTP)", u.Scheme))
	case u.Host == "" || u.Hostname() == "":
		probs = append(probs, "endpoint: no host")
	case u.User != nil:
		probs = append(probs, "endpoint: credentials in the URL: put them in tracing.headers (authorization) instead")
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		probs = append(probs, "endpoint: a query or fragment is not part of an OTLP endpoint")
	case u.Scheme == "http" && len(c.Headers) > 0 && !loopback(u.Hostname()):
		warns = append(warns, "endpoint: plain http to a remote collector sends tracing.headers (a key?) in clear: use https")
	}
	return probs, warns
}

func isReserved(name string) bool {
	for _, r := range reservedHeaders {
		if strings.EqualFold(r, name) {
			return true
		}
	}
	return false
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// TracesURL is where spans are POSTed: the endpoint with /v1/traces
// appended, unless its path already ends with it. Only for a valid,
// enabled configuration.
func (c Config) TracesURL() string {
	e := strings.TrimRight(c.Endpoint, "/")
	if strings.HasSuffix(e, "/v1/traces") {
		return e
	}
	return e + "/v1/traces"
}
