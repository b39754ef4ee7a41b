package callcontrol

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// ErrURLRefused is wrapped by every error CheckURL returns.
var ErrURLRefused = errors.New("control URL refused")

// maxURLLen bounds a control URL (Vapi's are about 120 bytes).
const maxURLLen = 2048

// hostPattern is one compiled allowed_hosts entry.
type hostPattern struct {
	// suffix: "*.name" matches any host ending in ".name" (name itself not).
	suffix bool
	// name is the host in lower case (for suffix, without "*."); unset
	// for an IP.
	name string
	ip   netip.Addr // valid for an IP literal, unmapped
	port string     // "": the scheme's default port only
}

// parsePattern compiles an allowed_hosts entry: "*.vapi.ai", "host",
// "host:port", an IP ("10.0.0.5", "::1"), "[::1]:8443".
func parsePattern(s string) (hostPattern, error) {
	var p hostPattern
	if s == "" {
		return p, errors.New("empty")
	}
	host := strings.ToLower(s)
	switch n := strings.Count(host, ":"); {
	case strings.HasPrefix(host, "["):
		end := strings.IndexByte(host, ']')
		if end < 0 {
			return p, errors.New("missing ]")
		}
		rest := host[end+1:]
		host = host[1:end]
		if rest != "" {
			if !strings.HasPrefix(rest, ":") {
				return p, errors.New("unexpected text after ]")
			}
			p.port = rest[1:]
			if p.port == "" {
				return p, errors.New("empty port")
			}
		}
		if a, err := netip.ParseAddr(host); err != nil || !a.Is6() {
			return p, errors.New("[...] must hold an IPv6 address")
		}
	case n == 1:
		host, p.port, _ = strings.Cut(host, ":")
		if p.port == "" {
			return p, errors.New("empty port")
		}
	}
	if p.port != "" && !validPort(p.port) {
		return p, fmt.Errorf("port %q is not a number in 1..65535", p.port)
	}
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		if strings.Count(rest, ".") < 1 || !validDNSName(rest) {
			return p, errors.New(`a wildcard needs a domain of two labels or more after "*." (such as "*.vapi.ai")`)
		}
		p.suffix, p.name = true, rest
		return p, nil
	}
	if strings.Contains(host, "*") {
		return p, errors.New(`the only wildcard is a leading "*." (such as "*.vapi.ai")`)
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			return p, errors.New("an IPv6 zone is not allowed")
		}
		p.ip = a.Unmap()
		return p, nil
	}
	if !validDNSName(host) {
		return p, errors.New("not a host name, IP address or *.domain")
	}
	p.name = host
	return p, nil
}

// matches reports whether the pattern allows a URL's host (lower case;
// ip valid when it is an IP literal) on port, the effective port (explicit
// or the scheme's default, defPort).
func (p hostPattern) matches(host string, ip netip.Addr, port, defPort string) bool {
	want := p.port
	if want == "" {
		want = defPort
	}
	if port != want {
		return false
	}
	switch {
	case p.ip.IsValid():
		return ip.IsValid() && ip == p.ip
	case ip.IsValid():
		return false // a name, even "*.x", never matches an IP literal
	case p.suffix:
		// The dot boundary: "*.vapi.ai" must not match "evilvapi.ai".
		return len(host) > len(p.name)+1 && strings.HasSuffix(host, "."+p.name)
	}
	return host == p.name
}

// exactLoopback reports whether the pattern names a loopback host exactly
// (127.0.0.1, ::1 or localhost): only those may be reached over plain http.
func (p hostPattern) exactLoopback() bool {
	if p.suffix {
		return false
	}
	if p.ip.IsValid() {
		return p.ip == netip.MustParseAddr("127.0.0.1") || p.ip == netip.IPv6Loopback()
	}
	return p.name == "localhost"
}

// refuse returns an error wrapping ErrURLRefused. host is named only when
// it has been checked to be a plain host name or IP address.
func refuse(host, reason string) error {
	if host == "" {
		return fmt.Errorf("%w: %s", ErrURLRefused, reason)
	}
	return fmt.Errorf("%w: host %s: %s", ErrURLRefused, host, reason)
}

// checkURL parses and checks a control URL against the allowlist. Its
// errors never quote the URL (its path is the call's capability) and name
// the host only once it is known to be a plain host; it also returns that
// host (with the port, if any) for logs.
func checkURL(raw string, pats []hostPattern) (*url.URL, string, error) {
	if len(raw) > maxURLLen {
		return nil, "", refuse("", fmt.Sprintf("longer than %d bytes", maxURLLen))
	}
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" || u.Host == "" {
		return nil, "", refuse("", "not an absolute URL with a host")
	}
	host := strings.ToLower(u.Hostname())
	ip, ipErr := netip.ParseAddr(host)
	switch {
	case ipErr == nil && ip.Zone() != "":
		return nil, "", refuse("", "IPv6 zones are not allowed")
	case ipErr == nil:
		ip = ip.Unmap()
	case !validDNSName(host):
		return nil, "", refuse("", "the host is not a plain host name or IP address")
	}
	port := u.Port()
	shown := host
	if ip.Is6() {
		shown = "[" + host + "]"
	}
	if port != "" {
		if !validPort(port) {
			return nil, "", refuse(shown, "the port is not a number in 1..65535")
		}
		shown += ":" + port
	}
	if u.User != nil {
		// Credentials in a URL end up in proxies' and servers' logs; Vapi's
		// control URLs have none.
		return nil, shown, refuse(shown, "credentials in the URL are not allowed")
	}
	var defPort string
	switch u.Scheme {
	case "https":
		defPort = "443"
	case "http":
		defPort = "80"
	default:
		return nil, shown, refuse(shown, "the scheme must be https")
	}
	if port == "" {
		port = defPort
	}
	for _, p := range pats {
		if !p.matches(host, ip, port, defPort) {
			continue
		}
		if u.Scheme == "http" && !p.exactLoopback() {
			// Plain http would carry the bearer key and the call's control
			// in clear text through the network; only a loopback listener
			// the operator named (a test standing in for Vapi) may use it.
			return nil, shown, refuse(shown, "plain http is allowed only for a loopback host listed exactly in allowed_hosts; use https")
		}
		return u, shown, nil
	}
	return nil, shown, refuse(shown, "not in call_control.allowed_hosts")
}

func validPort(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}

// validDNSName reports whether s (lower case) is a plain DNS host name:
// labels of a-z, 0-9 and "-" (not at either end), 1 to 63 bytes each, 253
// in all, and a last label that is not all digits (which would be an IP
// address written some other way, such as "127.1" or "0x7f.1").
func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	last := labels[len(labels)-1]
	return strings.Trim(last, "0123456789") != "" && !strings.HasPrefix(last, "0x")
}
