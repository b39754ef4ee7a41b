// Package allowlist provides source allowlists: the addresses a route
// accepts requests from, written as CIDRs, single addresses or the names
// of the providers' published ranges (presets).
//
// An allowlist is defence in depth, never authentication: a provider's
// range is shared by all its customers, so a request from it is still
// authenticated like any other. What it buys is that nobody else reaches
// body reading and authentication at all.
package allowlist

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/voicegate/voicegate/internal/netranges"
)

// Config is an allow_from list as written in the configuration.
type Config []string

// Validate returns the list's problems, each starting with its index
// ("[1]: ...").
func (c Config) Validate() []string {
	_, probs := Parse(c, netranges.Prefixes)
	return probs
}

// Warnings names the entries that are, or take in, a range known to be out
// of date (such as 54.172.60.0/23 as "Twilio US1").
func (c Config) Warnings() []string {
	var warns []string
	for i, e := range c {
		l, probs := Parse([]string{e}, netranges.Prefixes)
		if len(probs) > 0 || !looksLikeAddr(strings.TrimSpace(e)) {
			continue // refused elsewhere, or a preset: current by definition
		}
		for _, p := range l.Prefixes() {
			if o, ok := netranges.Outdated(p); ok {
				warns = append(warns, fmt.Sprintf("[%d]: %s is out of date (%s as %q): %s", i, p, o.Provider, o.ClaimedAs, o.Why))
			}
		}
	}
	return warns
}

// Build returns the list (nil for an empty one: any address).
func (c Config) Build() (*List, error) {
	l, probs := Parse(c, netranges.Prefixes)
	if len(probs) > 0 {
		return nil, fmt.Errorf("allow_from%s", strings.Join(probs, "; "))
	}
	return l, nil
}

// List is a parsed allowlist. A nil List allows every address.
type List struct {
	prefixes []netip.Prefix
	// entries are the list as written, for messages.
	entries []string
}

// Presets resolves a preset's name to its ranges (an error for an unknown
// name, naming the known ones): netranges.Prefixes.
type Presets func(names ...string) ([]netip.Prefix, error)

// Parse reads entries: CIDRs ("10.0.0.0/8"), single addresses (a /32 or
// /128) and preset names. An empty list is nil: no allowlist. Every
// problem is returned, each naming its entry; "0.0.0.0/0" and "::/0" are
// refused (they allow everyone: leave the list empty instead).
func Parse(entries []string, presets Presets) (*List, []string) {
	if len(entries) == 0 {
		return nil, nil
	}
	l := &List{entries: entries}
	var probs []string
	for i, e := range entries {
		e = strings.TrimSpace(e)
		switch {
		case e == "":
			probs = append(probs, fmt.Sprintf("[%d]: empty", i))
		case strings.Contains(e, "/"):
			p, err := netip.ParsePrefix(e)
			if err != nil {
				probs = append(probs, fmt.Sprintf("[%d]: %q is not a CIDR (%v)", i, e, err))
				continue
			}
			if p.Addr().Is4In6() {
				// An IPv4-mapped prefix is its IPv4 prefix: checked as one.
				if p.Bits() < 96 {
					probs = append(probs, fmt.Sprintf("[%d]: %q is an IPv4-mapped prefix shorter than /96: write the IPv4 CIDR", i, e))
					continue
				}
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			if p.Bits() == 0 {
				probs = append(probs, fmt.Sprintf("[%d]: %q allows every address: leave the list empty to allow all", i, e))
				continue
			}
			l.prefixes = append(l.prefixes, p.Masked())
		case looksLikeAddr(e):
			a, err := netip.ParseAddr(e)
			if err != nil {
				probs = append(probs, fmt.Sprintf("[%d]: %q is not an address (%v)", i, e, err))
				continue
			}
			a = a.Unmap()
			l.prefixes = append(l.prefixes, netip.PrefixFrom(a, a.BitLen()))
		default:
			if presets == nil {
				probs = append(probs, fmt.Sprintf("[%d]: %q is not an address or CIDR", i, e))
				continue
			}
			ps, err := presets(e)
			if err != nil {
				probs = append(probs, fmt.Sprintf("[%d]: %v", i, err))
				continue
			}
			l.prefixes = append(l.prefixes, ps...)
		}
	}
	if len(probs) > 0 {
		return nil, probs
	}
	return l, nil
}

// looksLikeAddr tells an address from a preset name: presets start with
// a letter ("vapi-webhooks", "twilio-static-proxy:us1"); addresses with a
// digit, or a colon (IPv6, "::1").
func looksLikeAddr(s string) bool {
	c := s[0] | 0x20
	return !(c >= 'a' && c <= 'z') || s[0] == ':' || isHexAddr(s)
}

// isHexAddr reports an IPv6 address that starts with a hex letter
// ("fd00::1", "fe80::/10"): letters a-f, digits, colons, dots and at most
// one slash, with a colon somewhere.
func isHexAddr(s string) bool {
	if !strings.Contains(s, ":") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i] | 0x20
		if !(c >= 'a' && c <= 'f') && !(s[i] >= '0' && s[i] <= '9') && s[i] != ':' && s[i] != '.' && s[i] != '/' {
			return false
		}
	}
	return true
}

// Allows reports whether a is in the list (an IPv4-mapped IPv6 address is
// its IPv4 address). A nil list allows all; an invalid address (not an IP
// connection) is allowed only by a nil list.
func (l *List) Allows(a netip.Addr) bool {
	if l == nil {
		return true
	}
	a = a.Unmap()
	for _, p := range l.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Prefixes returns the ranges the list allows.
func (l *List) Prefixes() []netip.Prefix {
	if l == nil {
		return nil
	}
	return l.prefixes
}

// String returns the list as written.
func (l *List) String() string {
	if l == nil {
		return "(any)"
	}
	return strings.Join(l.entries, ", ")
}
