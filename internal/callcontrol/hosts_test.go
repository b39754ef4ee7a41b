package callcontrol

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckURL(t *testing.T) {
	cfg := DefaultConfig()
	cfg.AllowedHosts = []string{"*.vapi.ai", "api.example.com:8443", "127.0.0.1:9999", "[::1]:9998", "10.0.0.5", "*.lo.localhost:9997", "localhost:9996"}
	c := mustNew(t, cfg, Deps{})
	const path = "/" + callID + "/control"

	ok := []string{
		"https://aws-us-west-2-production1-phone-call-websocket.vapi.ai" + path,
		"https://A.VAPI.AI" + path,
		"https://x.vapi.ai:443" + path,
		"https://a.b.vapi.ai" + path,
		"https://x.vapi.ai",
		"https://api.example.com:8443" + path,
		// Local stand-ins for Vapi (tests): plain http, loopback hosts
		// listed exactly.
		"http://127.0.0.1:9999" + path,
		"http://[::1]:9998" + path,
		"http://localhost:9996" + path,
		"https://10.0.0.5" + path,
		"https://[::ffff:10.0.0.5]" + path, // the same address, IPv4-mapped
	}
	for _, raw := range ok {
		if err := c.CheckURL(raw); err != nil {
			t.Errorf("CheckURL(%s) = %v, want nil", raw, err)
		}
	}

	refused := []struct {
		name, url, want string
	}{
		{"http, not loopback", "http://x.vapi.ai" + path, "plain http"},
		{"http to a listed IP", "http://10.0.0.5:80" + path, "plain http"},
		{"http, loopback by wildcard", "http://a.lo.localhost:9997" + path, "plain http"},
		{"apex not a subdomain", "https://vapi.ai" + path, "not in"},
		{"suffix without dot", "https://evilvapi.ai" + path, "not in"},
		{"suffix without dot, subdomain", "https://x.evilvapi.ai" + path, "not in"},
		{"allowed name as a prefix", "https://vapi.ai.evil.com" + path, "not in"},
		{"allowed subdomain as a prefix", "https://x.vapi.ai.evil.com" + path, "not in"},
		{"trailing dot", "https://x.vapi.ai." + path, "not a plain host"},
		{"empty label", "https://x..vapi.ai" + path, "not a plain host"},
		{"escaped dot", "https://x.vapi.ai%2eevil.com" + path, ""},
		{"backslash", `https://evil.com\.vapi.ai` + path, ""},
		{"port not listed", "https://x.vapi.ai:8443" + path, "not in"},
		{"listed port missing", "https://api.example.com" + path, "not in"},
		{"userinfo", "https://user:pass@x.vapi.ai" + path, "credentials"},
		{"user only", "https://user@x.vapi.ai" + path, "credentials"},
		{"userinfo naming an allowed host", "https://x.vapi.ai@evil.com" + path, "credentials"},
		{"empty", "", "not an absolute URL"},
		{"not a URL", "not a url", "not an absolute URL"},
		{"relative", path, "not an absolute URL"},
		{"no scheme", "x.vapi.ai" + path, "not an absolute URL"},
		{"bad escape", "https://x.vapi.ai/%zz/control", "not an absolute URL"},
		{"opaque", "https:x.vapi.ai" + path, "not an absolute URL"},
		{"ftp", "ftp://x.vapi.ai" + path, "scheme"},
		{"wss", "wss://x.vapi.ai" + path, "scheme"},
		{"IP not listed", "https://1.2.3.4" + path, "not in"},
		{"loopback IP not listed on 443", "https://127.0.0.1" + path, "not in"},
		{"loopback wrong port", "http://127.0.0.1:9998" + path, "not in"},
		{"localhost for a listed 127.0.0.1", "http://localhost:9999" + path, "not in"},
		{"IPv6 loopback wrong port", "https://[::1]:9999" + path, "not in"},
		{"IPv6 zone", "https://[fe80::1%25eth0]" + path, "zone"},
		{"short IPv4 form", "https://127.1:9999" + path, "not a plain host"},
		{"hex IPv4 form", "https://0x7f.0.0.1:9999" + path, "not a plain host"},
		{"port 0", "https://x.vapi.ai:0" + path, "port"},
		{"port too big", "https://x.vapi.ai:99999" + path, "port"},
		{"too long", "https://x.vapi.ai/" + strings.Repeat("a", maxURLLen), "longer than"},
		{"space in host", "https://x .vapi.ai" + path, ""},
		{"non-ASCII host", "https://xn--vap-8na.ai" + path, "not in"},
		{"unicode host", "https://väpi.ai" + path, ""},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			err := c.CheckURL(tc.url)
			if err == nil {
				t.Fatalf("CheckURL(%s) = nil, want refused", tc.url)
			}
			if !errors.Is(err, ErrURLRefused) {
				t.Errorf("err = %v, want ErrURLRefused", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to contain %q", err, tc.want)
			}
			// The path is the call's capability: never in an error.
			if strings.Contains(err.Error(), callID) || strings.Contains(err.Error(), "/control") || strings.Contains(err.Error(), "pass") {
				t.Errorf("err = %q quotes the URL", err)
			}
		})
	}
}

// TestCheckURLDefault: the default allowlist takes Vapi's control URLs, over
// https only.
func TestCheckURLDefault(t *testing.T) {
	c := mustNew(t, DefaultConfig(), Deps{})
	if err := c.CheckURL("https://aws-us-west-2-production1-phone-call-websocket.vapi.ai/" + callID + "/control"); err != nil {
		t.Errorf("Vapi's control URL refused: %v", err)
	}
	for _, raw := range []string{
		"http://127.0.0.1:8080/" + callID + "/control", // loopback, but not listed
		"http://localhost/x",
		"https://127.0.0.1/x",
		"https://169.254.169.254/latest/meta-data",
		"https://internal.example.com/x",
	} {
		if err := c.CheckURL(raw); err == nil {
			t.Errorf("CheckURL(%s) = nil with the default allowlist", raw)
		}
	}
}

func TestParsePattern(t *testing.T) {
	for _, s := range []string{"*.vapi.ai", "*.VAPI.ai", "x.vapi.ai", "x.vapi.ai:8443", "127.0.0.1:8080", "::1", "[::1]:8443", "[::1]", "localhost:9999", "10.0.0.5", "a-b.c"} {
		if _, err := parsePattern(s); err != nil {
			t.Errorf("parsePattern(%q) = %v, want nil", s, err)
		}
	}
	for _, s := range []string{"", "*", "*.", "*.ai", "**.vapi.ai", "a.*.vapi.ai", "*vapi.ai", "vapi.ai:", "vapi.ai:0", "vapi.ai:70000", "vapi.ai:+80",
		"[::1", "[::1]x", "[::1]:", "[1.2.3.4]", "fe80::1%eth0", "ex ample.com", "-bad.com", "bad-.com", "a..b", "vapi.ai.", "https://x.vapi.ai",
		"x.vapi.ai/control", "*.127.0.0.1", "127.1", "user@x.vapi.ai"} {
		if _, err := parsePattern(s); err == nil {
			t.Errorf("parsePattern(%q) = nil, want an error", s)
		}
	}
}
