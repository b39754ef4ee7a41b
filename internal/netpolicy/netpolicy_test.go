package netpolicy

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/netranges"
)

// codes returns the warnings' codes, in order.
func codes(ws []Warning) []WarningCode {
	var out []WarningCode
	for _, w := range ws {
		out = append(out, w.Code)
	}
	return out
}

// TestBuildDefault: every Twilio edge's /30 on 5060 UDP/TCP and 5061, the
// media range on UDP 10000-60000, and the webhook port open to any address
// (an open rule: a NetworkPolicy or a security group must name it, a host
// firewall leaves it alone).
func TestBuildDefault(t *testing.T) {
	p, warns, err := Build(DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if got := codes(warns); !slices.Equal(got, []WarningCode{NoWebhookSources}) {
		t.Errorf("warnings = %v, want only %s", warns, NoWebhookSources)
	}
	if len(p.Rules) != 3 || !p.Rules[2].Open || p.Rules[2].Ports[0].From != 443 || len(p.guarding().Rules) != 2 {
		t.Fatalf("rules = %+v, want signaling, media and the webhook port open", p.Rules)
	}
	sig, media := p.Rules[0], p.Rules[1]
	if sig.Name != "twilio-signaling" || len(sig.Sources) != 8 {
		t.Errorf("signaling rule = %+v", sig)
	}
	wantPorts := []Port{{UDP, 5060, 5060, "SIP/UDP"}, {TCP, 5060, 5060, "SIP/TCP"}, {TCP, 5061, 5061, "SIP/TLS"}}
	if !slices.Equal(sig.Ports, wantPorts) {
		t.Errorf("signaling ports = %v, want %v", sig.Ports, wantPorts)
	}
	if media.Name != "twilio-media" || len(media.Sources) != 1 || media.Sources[0].Prefix.String() != "168.86.128.0/18" ||
		!slices.Equal(media.Ports, []Port{{UDP, 10000, 60000, "RTP"}}) {
		t.Errorf("media rule = %+v", media)
	}
	g := p.guarding().guarded() // the open webhook port is not guarded
	if !slices.Equal(g[TCP], []PortRange{{5060, 5061}}) || !slices.Equal(g[UDP], []PortRange{{5060, 5060}, {10000, 60000}}) {
		t.Errorf("guarded ports = %v", g)
	}
}

// TestWarnings: each mistake draws its warning, and a correct rule set
// draws none.
func TestWarnings(t *testing.T) {
	clean := DefaultOptions()
	clean.VapiWebhooks = true
	for _, tc := range []struct {
		name   string
		change func(*Options)
		want   []WarningCode
	}{
		{"correct", func(*Options) {}, nil},
		{"signaling without media", func(o *Options) { o.TwilioMedia = false }, []WarningCode{SignalingWithoutMedia}},
		{"media without signaling is fine", func(o *Options) { o.TwilioEdges = nil }, nil},
		{"vapi sip has no media range", func(o *Options) { o.VapiSIP = true }, []WarningCode{SignalingWithoutMedia}},
		{"outdated twilio us1", func(o *Options) { o.Allow = []netip.Prefix{netip.MustParsePrefix("54.172.60.0/23")} }, []WarningCode{OutdatedRange}},
		{"inside the outdated /23", func(o *Options) { o.Allow = []netip.Prefix{netip.MustParsePrefix("54.172.61.0/24")} }, []WarningCode{OutdatedRange}},
		{"a current /30 is not outdated", func(o *Options) { o.Allow = []netip.Prefix{netip.MustParsePrefix("54.172.60.0/30")} }, nil},
		{"outdated rtp ports", func(o *Options) { o.MediaPorts = PortRange{10000, 20000} }, []WarningCode{OutdatedPorts}},
		{"some rtp ports are fine", func(o *Options) { o.MediaPorts = PortRange{16384, 32767} }, nil},
		{"some edges", func(o *Options) { o.TwilioEdges = []string{"virginia", "oregon"} }, []WarningCode{SomeEdges}},
		{"no webhook sources", func(o *Options) { o.VapiWebhooks = false }, []WarningCode{NoWebhookSources}},
		{"the whole mistake", func(o *Options) {
			o.TwilioMedia = false
			o.TwilioEdges = []string{"virginia"}
			o.Allow = []netip.Prefix{netip.MustParsePrefix("54.172.60.0/23")}
		}, []WarningCode{SomeEdges, SignalingWithoutMedia, OutdatedRange}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := clean
			tc.change(&o)
			_, warns, err := Build(o)
			if err != nil {
				t.Fatal(err)
			}
			if got := codes(warns); !slices.Equal(got, tc.want) {
				t.Errorf("warnings = %v, want %v", warns, tc.want)
			}
			for _, w := range warns {
				if w.Code == OutdatedRange && !strings.Contains(w.Msg, "54.172.60.0/23") {
					t.Errorf("the outdated warning does not name the range: %s", w.Msg)
				}
				if w.Code == SignalingWithoutMedia && strings.Contains(w.Msg, "Twilio SIP") && !strings.Contains(w.Msg, "168.86.128.0/18") {
					t.Errorf("the silent-audio warning does not name the media range: %s", w.Msg)
				}
			}
		})
	}
}

// TestBuildRefuses: options that cannot mean what was asked are errors.
func TestBuildRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(*Options)
		is     error
		want   string
	}{
		{"unknown edge", func(o *Options) { o.TwilioEdges = []string{"atlantis"} }, netranges.ErrUnknownEdge, "atlantis"},
		{"unknown proxy region", func(o *Options) { o.TwilioStaticProxy = []string{"us2"} }, netranges.ErrUnknownEdge, "us2"},
		{"host bits", func(o *Options) { o.Allow = []netip.Prefix{netip.MustParsePrefix("203.0.113.7/24")} }, nil, "203.0.113.0/24"},
		{"ipv4 as ipv6", func(o *Options) { o.Allow = []netip.Prefix{netip.MustParsePrefix("::ffff:203.0.113.0/120")} }, nil, "203.0.113.0/24"},
		{"reversed media ports", func(o *Options) { o.MediaPorts = PortRange{20000, 10000} }, nil, "media ports"},
		{"no webhook port", func(o *Options) { o.WebhookPort = 0 }, nil, "webhook port"},
		{"nothing", func(o *Options) { o.TwilioEdges, o.TwilioMedia = nil, false }, ErrEmpty, "nothing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := DefaultOptions()
			tc.change(&o)
			_, _, err := Build(o)
			if err == nil || (tc.is != nil && !errors.Is(err, tc.is)) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one (is %v) mentioning %q", err, tc.is, tc.want)
			}
		})
	}
}

// TestAllowDeduplicated: a repeated or covered --allow source appears once
// (an nftables interval set refuses overlapping elements).
func TestAllowDeduplicated(t *testing.T) {
	o := DefaultOptions()
	o.Allow = []netip.Prefix{
		netip.MustParsePrefix("198.51.100.0/25"),
		netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("198.51.100.0/24"),
		netip.MustParsePrefix("2001:db8::/32"),
		netip.MustParsePrefix("2001:db8:1::/48"),
		netip.MustParsePrefix("192.0.2.1/32"),
	}
	p, _, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	allow := p.Rules[len(p.Rules)-1]
	var got []string
	for _, s := range allow.Sources {
		got = append(got, s.Prefix.String())
	}
	if want := []string{"198.51.100.0/24", "2001:db8::/32", "192.0.2.1/32"}; !slices.Equal(got, want) {
		t.Errorf("allow sources = %v, want %v", got, want)
	}
}

// TestCustomPorts: the SIP, TLS, media and webhook ports are yours to set.
func TestCustomPorts(t *testing.T) {
	o := DefaultOptions()
	o.SIPPort, o.SIPTLSPort, o.MediaPorts, o.WebhookPort = 5080, 5081, PortRange{16384, 32767}, 8443
	o.VapiWebhooks, o.VapiSIP = true, true
	p, _, err := Build(o)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]Port{
		"twilio-signaling":   {{UDP, 5080, 5080, "SIP/UDP"}, {TCP, 5080, 5080, "SIP/TCP"}, {TCP, 5081, 5081, "SIP/TLS"}},
		"twilio-media":       {{UDP, 16384, 32767, "RTP"}},
		"vapi-sip-signaling": {{UDP, 5080, 5080, "SIP/UDP"}, {TCP, 5081, 5081, "SIP/TLS"}},
		"vapi-webhooks":      {{TCP, 8443, 8443, "HTTPS"}},
	}
	for _, r := range p.Rules {
		if !slices.Equal(r.Ports, want[r.Name]) {
			t.Errorf("%s ports = %v, want %v", r.Name, r.Ports, want[r.Name])
		}
	}
	if len(p.Rules) != len(want) {
		t.Errorf("%d rules, want %d", len(p.Rules), len(want))
	}
}

func TestMergeRanges(t *testing.T) {
	got := mergeRanges([]PortRange{{443, 443}, {5061, 5061}, {5060, 5060}, {10000, 60000}, {16384, 16400}, {60001, 60001}, {1, 1}})
	want := []PortRange{{1, 1}, {443, 443}, {5060, 5061}, {10000, 60001}}
	if !slices.Equal(got, want) {
		t.Errorf("mergeRanges = %v, want %v", got, want)
	}
	if got := mergeRanges([]PortRange{{65535, 65535}, {65534, 65535}}); !slices.Equal(got, []PortRange{{65534, 65535}}) {
		t.Errorf("mergeRanges at the top = %v", got)
	}
}
