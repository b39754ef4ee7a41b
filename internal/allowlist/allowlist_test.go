package allowlist

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func presets(names ...string) ([]netip.Prefix, error) {
	if name := names[0]; name == "vapi-webhooks" {
		return []netip.Prefix{netip.MustParsePrefix("167.150.224.0/23")}, nil
	}
	return nil, errors.New(`unknown preset "` + names[0] + `" (known: vapi-webhooks)`)
}

func TestAllows(t *testing.T) {
	l, probs := Parse([]string{"10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "vapi-webhooks", "::ffff:198.51.100.0/120", "fd00::1", "fe80::/10"}, presets)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	for addr, want := range map[string]bool{
		"10.1.2.3": true, "11.0.0.1": false, "192.0.2.7": true, "192.0.2.8": false,
		"2001:db8::1": true, "2001:db9::1": false, "167.150.225.255": true, "167.150.226.0": false,
		"::ffff:10.9.9.9": true, "198.51.100.20": true, "::ffff:192.0.2.7": true, "fd00::1": true, "fd00::2": false, "fe80::9": true,
	} {
		if got := l.Allows(netip.MustParseAddr(addr)); got != want {
			t.Errorf("%s: %v, want %v", addr, got, want)
		}
	}
	var none *List
	if !none.Allows(netip.MustParseAddr("203.0.113.1")) || !none.Allows(netip.Addr{}) {
		t.Fatal("no list must allow all")
	}
	if l.Allows(netip.Addr{}) {
		t.Fatal("a list allowed a connection without an IP address")
	}
	if l, probs := Parse(nil, presets); l != nil || probs != nil {
		t.Fatal("an empty list is no list")
	}
}

func TestParseRefusals(t *testing.T) {
	for entry, want := range map[string]string{
		"":                   "empty",
		"10.0.0.0/33":        "is not a CIDR",
		"0.0.0.0/0":          "allows every address",
		"::/0":               "allows every address",
		"::ffff:0:0/96":      "allows every address",
		"::ffff:10.0.0.0/80": "shorter than /96",
		"10.0.0.300":         "is not an address",
		"twilio-nothing":     `unknown preset "twilio-nothing"`,
	} {
		_, probs := Parse([]string{"10.0.0.0/8", entry}, presets)
		if len(probs) != 1 || !strings.HasPrefix(probs[0], "[1]: ") || !strings.Contains(probs[0], want) {
			t.Errorf("%q: %q, want %q", entry, probs, want)
		}
	}
}

func BenchmarkAllows(b *testing.B) {
	l, _ := Parse([]string{"54.172.60.0/30", "54.244.51.0/30", "54.171.127.192/30", "35.156.191.128/30", "54.65.63.192/30",
		"54.169.127.128/30", "54.252.254.64/30", "177.71.206.192/30", "vapi-webhooks"}, presets)
	a := netip.MustParseAddr("167.150.224.9")
	b.ReportAllocs()
	for b.Loop() {
		l.Allows(a)
	}
}

// TestConfigUsesTheProvidersRanges: preset names resolve through the
// embedded ranges (internal/netranges), an edge included.
func TestConfigUsesTheProvidersRanges(t *testing.T) {
	l, err := Config{"vapi-webhooks", "twilio-static-proxy:us1"}.Build()
	if err != nil {
		t.Fatal(err)
	}
	for addr, want := range map[string]bool{"167.150.224.1": true, "3.80.20.5": true, "3.251.214.33": false, "8.8.8.8": false} {
		if l.Allows(netip.MustParseAddr(addr)) != want {
			t.Errorf("%s: want %v", addr, want)
		}
	}
	if probs := (Config{"twilio-nope"}).Validate(); len(probs) != 1 || !strings.Contains(probs[0], "twilio-nope") || !strings.Contains(probs[0], "vapi-webhooks") {
		t.Fatalf("an unknown preset: %q", probs)
	}
	if l, err := (Config{}).Build(); l != nil || err != nil {
		t.Fatal("an empty list must be no list")
	}
}

func TestWarningsOnOutdatedRanges(t *testing.T) {
	w := Config{"vapi-webhooks", "54.172.60.0/23", "54.172.60.0/30", "10.0.0.0/8"}.Warnings()
	if len(w) != 1 || !strings.HasPrefix(w[0], "[1]: 54.172.60.0/23 is out of date") {
		t.Fatalf("warnings %q", w)
	}
}
