package server

import (
	"fmt"
	"github.com/voicegate/voicegate/internal/allowlist"
	"net"

	"github.com/voicegate/voicegate/internal/confval"
)

// AdminConfig is the operator listener (metrics and pprof), on a loopback
// address: the "admin" section. Off when Listen is empty; never the public
// listener.
type AdminConfig struct {
	Listen string `yaml:"listen"`
	// PublicMetricsToken, when set, also serves /metrics on the public
	// listener, to requests carrying "Authorization: Bearer <token>" only
	// (for a scraper that cannot reach the admin listener). Tool names,
	// authentication failures and call volumes are not for the internet.
	PublicMetricsToken string `yaml:"public_metrics_token"`
	// AllowFrom is the addresses the admin listener serves (the
	// connection's address; empty: any that can reach it).
	AllowFrom allowlist.Config `yaml:"allow_from"`
}

// Validate returns one problem per invalid field ("listen: ..."), given
// the public listener's address; none when valid.
func (c AdminConfig) Validate(publicListen string) []string {
	var probs []string
	for _, p := range c.AllowFrom.Validate() {
		probs = append(probs, "allow_from"+p)
	}
	if t := c.PublicMetricsToken; t != "" {
		switch {
		case len(t) < confval.MinSecretLen:
			probs = append(probs, fmt.Sprintf("public_metrics_token: must be at least %d bytes", confval.MinSecretLen))
		case confval.WeakSecret(t) != "":
			probs = append(probs, "public_metrics_token: token refused: "+confval.WeakSecret(t))
		}
	}
	if c.Listen != "" {
		host, _, err := net.SplitHostPort(c.Listen)
		switch {
		case err != nil:
			probs = append(probs, fmt.Sprintf("listen: %q is not host:port", c.Listen))
		case !IsLoopback(host):
			probs = append(probs, fmt.Sprintf("listen: %q: the admin listener (metrics, pprof) must be on a loopback address", c.Listen))
		case c.Listen == publicListen:
			probs = append(probs, "listen: must differ from listen: metrics and pprof are never served on the public listener")
		}
	}
	return probs
}

// IsLoopback reports whether host is a loopback name or address.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
