package netranges

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

// TestData: the embedded file decodes strictly and passes every check
// (valid, canonical, public CIDRs; https sources; real dates; no overlap;
// outdated entries explained and not current).
func TestData(t *testing.T) {
	if _, err := parse(rangesYAML); err != nil {
		t.Fatalf("ranges.yaml:\n%v", err)
	}
	for _, p := range Presets() {
		for _, r := range p.Ranges {
			if r.Source == "" || r.Taken == "" {
				t.Errorf("%s %s: no source or no date", p.Name, r.Prefix)
			}
			if _, bad := Outdated(r.Prefix); bad {
				t.Errorf("%s %s: a current range reported as outdated", p.Name, r.Prefix)
			}
		}
	}
}

// TestFactsFromTheReference pins the values the issue and the providers'
// pages state, so that an edit of ranges.yaml that changes one is a
// deliberate edit of this test too.
func TestFactsFromTheReference(t *testing.T) {
	sig := mustLookup(t, "twilio-signaling")
	wantSig := map[string]string{
		"virginia":  "54.172.60.0/30",
		"oregon":    "54.244.51.0/30",
		"ireland":   "54.171.127.192/30",
		"frankfurt": "35.156.191.128/30",
		"tokyo":     "54.65.63.192/30",
		"singapore": "54.169.127.128/30",
		"sydney":    "54.252.254.64/30",
		"sao-paulo": "177.71.206.192/30",
	}
	if len(sig.Ranges) != len(wantSig) {
		t.Errorf("twilio-signaling has %d ranges, want %d", len(sig.Ranges), len(wantSig))
	}
	for _, r := range sig.Ranges {
		if got, want := r.Prefix.String(), wantSig[r.Edge]; got != want {
			t.Errorf("twilio-signaling %s = %s, want %s", r.Edge, got, want)
		}
		if got := portStrings(r.Ports); !slices.Equal(got, []string{"udp/5060", "tcp/5060", "tls/5061"}) {
			t.Errorf("twilio-signaling %s ports = %v", r.Edge, got)
		}
	}

	media := mustLookup(t, "twilio-media")
	if len(media.Ranges) != 1 || media.Ranges[0].Prefix.String() != "168.86.128.0/18" ||
		!slices.Equal(portStrings(media.Ranges[0].Ports), []string{"udp/10000-60000"}) {
		t.Errorf("twilio-media = %+v, want 168.86.128.0/18 udp/10000-60000", media.Ranges)
	}
	if got := prefixStrings(mustLookup(t, "vapi-webhooks").Prefixes()); !slices.Equal(got, []string{"167.150.224.0/23"}) {
		t.Errorf("vapi-webhooks = %v", got)
	}
	if got := prefixStrings(mustLookup(t, "vapi-sip-signaling").Prefixes()); !slices.Equal(got, []string{"44.229.228.186/32", "44.238.177.138/32"}) {
		t.Errorf("vapi-sip-signaling = %v", got)
	}
	proxy := mustLookup(t, "twilio-static-proxy")
	if got := prefixStrings(proxy.Prefixes()); !slices.Equal(got, []string{"3.80.20.0/25", "3.251.214.32/27", "3.26.81.96/27"}) {
		t.Errorf("twilio-static-proxy = %v", got)
	}
	if got := proxy.Edges(); !slices.Equal(got, []string{"us1", "ie1", "au1"}) {
		t.Errorf("twilio-static-proxy regions = %v", got)
	}

	o := OutdatedRanges()
	if len(o) != 1 || o[0].Prefix.String() != "54.172.60.0/23" {
		t.Errorf("outdated ranges = %+v, want 54.172.60.0/23", o)
	}
	op := OutdatedPortRanges()
	if len(op) != 1 || op[0].Ports.String() != "udp/10000-20000" {
		t.Errorf("outdated port ranges = %+v, want udp/10000-20000", op)
	}
}

// TestOutdated: the outdated range and anything reaching into it is
// reported, unless it lies inside a current range.
func TestOutdated(t *testing.T) {
	for _, tc := range []struct {
		cidr string
		want bool
	}{
		{"54.172.60.0/23", true},
		{"54.172.61.0/24", true},          // inside the /23, no current range
		{"54.172.60.0/24", true},          // holds the Virginia /30 and 252 other addresses
		{"54.172.0.0/16", true},           // wider than the /23
		{"54.0.0.0/8", false},             // far broader: not a copy of it
		{"0.0.0.0/0", false},              // any address (Twilio's webhooks come from anywhere)
		{"54.172.61.17/32", true},         // one address of the /23
		{"54.172.60.0/30", false},         // Virginia signaling, current
		{"54.172.60.1/32", false},         // inside Virginia signaling
		{"54.172.62.0/23", false},         // next to it
		{"168.86.128.0/18", false},        // twilio-media
		{"2001:db8::/32", false},          // IPv6, unrelated
		{"54.172.60.5/23", true},          // host bits are ignored
		{"::ffff:54.172.60.0/120", false}, // an IPv6 prefix is not the IPv4 range
	} {
		t.Run(tc.cidr, func(t *testing.T) {
			o, got := Outdated(netip.MustParsePrefix(tc.cidr))
			if got != tc.want {
				t.Fatalf("Outdated(%s) = %v, want %v", tc.cidr, got, tc.want)
			}
			if got && (o.Why == "" || o.Source == "" || len(o.Current) == 0) {
				t.Errorf("Outdated(%s) explains nothing: %+v", tc.cidr, o)
			}
		})
	}
	if _, ok := OutdatedPortRange(PortRange{Proto: UDP, From: 10000, To: 20000}); !ok {
		t.Error("udp/10000-20000 not reported as outdated")
	}
	for _, r := range []PortRange{{UDP, 10000, 60000}, {TCP, 10000, 20000}, {UDP, 10000, 19999}} {
		if _, ok := OutdatedPortRange(r); ok {
			t.Errorf("%s reported as outdated", r)
		}
	}
}

// TestPrefixes: presets by name and by name:edge, each prefix once, unknown
// names as typed errors.
func TestPrefixes(t *testing.T) {
	got, err := Prefixes("vapi-webhooks", "twilio-static-proxy:ie1", "vapi-webhooks")
	if err != nil {
		t.Fatal(err)
	}
	if s := prefixStrings(got); !slices.Equal(s, []string{"167.150.224.0/23", "3.251.214.32/27"}) {
		t.Errorf("Prefixes = %v", s)
	}
	if _, err := Prefixes("twilio-signalling"); !errors.Is(err, ErrUnknownPreset) {
		t.Errorf("misspelt preset: err = %v, want ErrUnknownPreset", err)
	}
	if _, err := Prefixes("twilio-signaling:atlantis"); !errors.Is(err, ErrUnknownEdge) {
		t.Errorf("unknown edge: err = %v, want ErrUnknownEdge", err)
	}
	if _, err := Prefixes("vapi-webhooks:us1"); !errors.Is(err, ErrUnknownEdge) {
		t.Errorf("edge of a preset without edges: err = %v, want ErrUnknownEdge", err)
	}
	sig := mustLookup(t, "twilio-signaling")
	sub, err := sig.Select("tokyo", "virginia")
	if err != nil {
		t.Fatal(err)
	}
	if s := sub.Edges(); !slices.Equal(s, []string{"virginia", "tokyo"}) {
		t.Errorf("Select keeps the file's order: %v", s)
	}
}

// TestPresetsAreCopies: a caller changing what it got changes nothing here.
func TestPresetsAreCopies(t *testing.T) {
	p := Presets()
	p[0].Ranges[0].Ports[0].From = 1
	p[0].Ranges[0].Prefix = netip.MustParsePrefix("10.0.0.0/8")
	if q := Presets(); q[0].Ranges[0].Ports[0].From == 1 || q[0].Ranges[0].Prefix.String() == "10.0.0.0/8" {
		t.Error("Presets returned shared slices")
	}
}

// TestValidationCatchesEachMistake: each kind of bad entry is refused, with
// where it is.
func TestValidationCatchesEachMistake(t *testing.T) {
	const good = `presets:
  - name: p
    provider: x
    description: d
    ranges:
      - {cidr: 203.0.113.0/24, ports: [udp/5060], source: "https://example.com/ips", source_date: "2026-01-01", taken: "2026-02-01"}
`
	if _, err := parse([]byte(good)); err != nil {
		t.Fatalf("the good file is refused: %v", err)
	}
	for _, tc := range []struct{ name, from, to, want string }{
		{"invalid cidr", "203.0.113.0/24", "203.0.113.0/33", "cidr"},
		{"host bits", "203.0.113.0/24", "203.0.113.7/24", "host bits"},
		{"not canonical", "203.0.113.0/24", "203.000.113.0/24", "cidr"},
		{"ipv4 as ipv6", "cidr: 203.0.113.0/24", `cidr: "::ffff:203.0.113.0/120"`, "written as IPv6"},
		{"private", "203.0.113.0/24", "10.0.0.0/8", "not a public"},
		{"every address", "203.0.113.0/24", "0.0.0.0/0", "every address"},
		{"no source", `source: "https://example.com/ips", `, "", "no source"},
		{"http source", "https://example.com", "http://example.com", "not an https URL"},
		{"no date", `taken: "2026-02-01"`, `taken: ""`, "taken"},
		{"bad date", "2026-02-01", "2026-02-30", "taken"},
		{"source after taken", "2026-01-01", "2026-03-01", "after taken"},
		{"bad port", "udp/5060", "udp/70000", "port"},
		{"bad protocol", "udp/5060", "sctp/5060", "protocol"},
		{"reversed range", "udp/5060", "udp/6000-5000", "not above"},
		{"unknown key", "ports:", "portz:", "portz"},
		{"bad name", "name: p", "name: P_1", "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := strings.Replace(good, tc.from, tc.to, 1)
			if bad == good {
				t.Fatalf("the substitution changed nothing")
			}
			_, err := parse([]byte(bad))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one mentioning %q", err, tc.want)
			}
		})
	}

	overlap := good + `      - {cidr: 203.0.113.128/25, source: "https://example.com/ips", taken: "2026-02-01"}
`
	if _, err := parse([]byte(overlap)); err == nil || !strings.Contains(err.Error(), "overlaps") {
		t.Errorf("overlapping ranges: err = %v", err)
	}
	outdated := good + `outdated:
  ranges:
    - {cidr: 203.0.113.0/25, provider: x, claimed_as: c, why: w, current: [p], source: "https://example.com/ips", taken: "2026-02-01"}
`
	if _, err := parse([]byte(outdated)); err == nil || !strings.Contains(err.Error(), "inside a current range") {
		t.Errorf("an outdated range inside a current one: err = %v", err)
	}
	noPreset := good + `outdated:
  ports:
    - {ports: udp/1000-2000, provider: x, claimed_as: c, why: w, current: [nope], source: "https://example.com/ips", taken: "2026-02-01"}
`
	if _, err := parse([]byte(noPreset)); err == nil || !strings.Contains(err.Error(), `"nope" does not exist`) {
		t.Errorf("an outdated entry naming no preset: err = %v", err)
	}
}

// TestIPv6 ranges are accepted when canonical, and Outdated works on them.
func TestIPv6(t *testing.T) {
	const file = `presets:
  - name: p
    provider: x
    description: d
    ranges:
      - {cidr: "2600:1f00::/40", source: "https://example.com/ips", taken: "2026-02-01"}
`
	c, err := parse([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.presets[0].Ranges[0].Prefix; !got.Addr().Is6() || got.Bits() != 40 {
		t.Errorf("prefix = %s", got)
	}
	if _, err := parse([]byte(strings.Replace(file, "2600:1f00::/40", "2600:1F00::/40", 1))); err == nil {
		t.Error("upper-case IPv6 accepted as canonical")
	}
}

func mustLookup(t *testing.T, name string) Preset {
	t.Helper()
	p, err := Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func portStrings(ps []PortRange) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

func prefixStrings(ps []netip.Prefix) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}
