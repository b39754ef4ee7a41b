// Package netpolicy builds the ingress firewall rules a voicegate
// deployment needs — who may reach the SIP signaling ports, the media
// ports and the webhook listener — from the providers' published ranges
// (internal/netranges), and renders them for nftables, iptables and
// ip6tables (restore files), an AWS security group (the input of
// aws ec2 authorize-security-group-ingress --cli-input-json) and a
// Kubernetes NetworkPolicy.
//
// A Policy is a list of rules, each a set of sources allowed to a set of
// destination ports. Build turns Options (which providers, which edges,
// which ports) into a Policy and warns about rule sets that are valid but
// wrong: signaling without media (calls connect and stay silent), ranges
// and port ranges that are out of date.
package netpolicy

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/voicegate/voicegate/internal/netranges"
)

// Protocol is the transport a rule matches.
type Protocol string

// The transports.
const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
)

// Port is a destination port range, From to To inclusive.
type Port struct {
	Protocol Protocol
	From, To uint16
	// Label names what runs there: "SIP/UDP", "SIP/TLS", "RTP", "HTTPS".
	Label string
}

// Source is an allowed source range.
type Source struct {
	Prefix netip.Prefix
	// Note is the edge or region the range serves, or empty.
	Note string
}

// Ref is where a rule's ranges were published.
type Ref struct {
	// URL is the source; SourceDate its own last-change date, if recorded;
	// Taken the day the ranges were taken from it.
	URL, SourceDate, Taken string
}

// String returns the URL with its dates: "URL (page modified D, taken T)".
func (r Ref) String() string {
	if r.SourceDate != "" {
		return fmt.Sprintf("%s (page modified %s, taken %s)", r.URL, r.SourceDate, r.Taken)
	}
	return fmt.Sprintf("%s (taken %s)", r.URL, r.Taken)
}

// Rule allows its sources to reach its ports.
type Rule struct {
	// Name is the preset the sources come from ("twilio-signaling"), or
	// "allow" for sources given by the operator.
	Name string
	// Comment says in one line what the rule admits.
	Comment string
	Sources []Source
	Ports   []Port
	// Refs are where the sources were published; none for "allow".
	Refs []Ref
	// Open marks a rule admitting any address (Sources are 0.0.0.0/0 and
	// ::/0): what a NetworkPolicy or a security group must say, and a
	// host firewall says by leaving the ports alone.
	Open bool
}

// Policy is an ingress allowlist: each rule's sources may reach its ports,
// and (in the renderers that can say so) nobody else may open a connection
// or flow to any of those ports.
type Policy struct {
	Rules []Rule
}

// PortRange is a destination port range given as an option.
type PortRange struct{ From, To uint16 }

// String returns "FROM-TO", or "PORT" for a single port.
func (r PortRange) String() string {
	if r.From == r.To {
		return fmt.Sprint(r.From)
	}
	return fmt.Sprintf("%d-%d", r.From, r.To)
}

// Options choose what a Policy allows. DefaultOptions gives every Twilio
// signaling edge, Twilio media and the published ports.
type Options struct {
	// TwilioEdges are the edges of the twilio-signaling preset to allow; none
	// leaves Twilio SIP out. Twilio does not guarantee which edge a call
	// uses: anything but every edge draws a warning.
	TwilioEdges []string
	// TwilioMedia allows the twilio-media range to MediaPorts.
	TwilioMedia bool
	// MediaPorts is the UDP range your SIP endpoint receives media on;
	// zero means Twilio's published media ports (10000-60000).
	MediaPorts PortRange
	// SIPPort is your SIP endpoint's UDP and TCP port; SIPTLSPort its TLS
	// port (zero: the published 5060 and 5061).
	SIPPort, SIPTLSPort uint16
	// VapiSIP allows Vapi's SIP signaling addresses (Vapi publishes no media
	// range: it draws a signaling-without-media warning).
	VapiSIP bool
	// VapiWebhooks allows Vapi's static webhook range to WebhookPort (it
	// needs server.staticIpAddressesEnabled: true on Vapi's side).
	VapiWebhooks bool
	// TwilioStaticProxy are the regions of Twilio's Static Proxy whose
	// ranges may reach WebhookPort.
	TwilioStaticProxy []string
	// WebhookPort is the webhook listener's TCP port (HTTPS, 443).
	WebhookPort uint16
	// Allow are further sources for WebhookPort. They are checked against
	// the ranges known to be out of date.
	Allow []netip.Prefix
}

// DefaultOptions returns every Twilio signaling edge and Twilio media on
// the published ports, and 443 for the webhook listener.
func DefaultOptions() Options {
	sig, _ := netranges.Lookup("twilio-signaling")
	return Options{TwilioEdges: sig.Edges(), TwilioMedia: true, WebhookPort: 443}
}

// WarningCode says what a Warning is about, for callers that branch on it.
type WarningCode string

// The warnings.
const (
	// SignalingWithoutMedia: SIP signaling is allowed but the media that
	// goes with it is not (calls connect and stay silent).
	SignalingWithoutMedia WarningCode = "signaling-without-media"
	// OutdatedRange: a source is, or reaches into, a range known to be out
	// of date.
	OutdatedRange WarningCode = "outdated-range"
	// OutdatedPorts: a port range is one known to be out of date.
	OutdatedPorts WarningCode = "outdated-ports"
	// SomeEdges: Twilio signaling is allowed from only some edges.
	SomeEdges WarningCode = "some-edges"
	// NoWebhookSources: no webhook source was named, so the webhook port
	// is open to any address.
	NoWebhookSources WarningCode = "no-webhook-sources"
	// NotRendered: part of the policy cannot be expressed in the chosen
	// format (IPv6 sources in an iptables file).
	NotRendered WarningCode = "not-rendered"
	// Placeholder: the output holds a placeholder to replace (an AWS group
	// id).
	Placeholder WarningCode = "placeholder"
	// OverQuota: the output is larger than the target's default quota.
	OverQuota WarningCode = "over-quota"
)

// Warning is a valid but probably wrong choice, for standard error.
type Warning struct {
	Code WarningCode
	Msg  string
}

func (w Warning) String() string { return fmt.Sprintf("%s: %s", w.Code, w.Msg) }

// ErrEmpty is returned by Build when the options allow nothing.
var ErrEmpty = errors.New("nothing to allow: choose Twilio edges, Twilio media, Vapi or --allow sources")

// Build returns the policy the options describe, and warnings about it.
// It returns an error for an unknown edge or region (wrapping
// netranges.ErrUnknownEdge), a zero or reversed port, a source that is not
// a canonical prefix, or ErrEmpty.
func Build(o Options) (*Policy, []Warning, error) {
	var (
		p     Policy
		warns []Warning
	)
	warn := func(code WarningCode, format string, args ...any) {
		warns = append(warns, Warning{code, fmt.Sprintf(format, args...)})
	}
	sig, err := lookup("twilio-signaling")
	if err != nil {
		return nil, nil, err
	}
	media, err := lookup("twilio-media")
	if err != nil {
		return nil, nil, err
	}
	if len(media.Ranges) != 1 || len(media.Ranges[0].Ports) != 1 {
		return nil, nil, errors.New("the range data: twilio-media must be one range with one port range")
	}
	sipPort, tlsPort := o.SIPPort, o.SIPTLSPort
	if sipPort == 0 {
		sipPort = 5060
	}
	if tlsPort == 0 {
		tlsPort = 5061
	}
	mediaPorts := o.MediaPorts
	if mediaPorts == (PortRange{}) {
		pub := media.Ranges[0].Ports[0]
		mediaPorts = PortRange{pub.From, pub.To}
	}
	if mediaPorts.From == 0 || mediaPorts.To < mediaPorts.From {
		return nil, nil, fmt.Errorf("media ports %s: want FROM-TO with 1 <= FROM <= TO", mediaPorts)
	}
	if o.WebhookPort == 0 {
		return nil, nil, errors.New("webhook port: want 1 to 65535")
	}

	if len(o.TwilioEdges) > 0 {
		sel, err := sig.Select(o.TwilioEdges...)
		if err != nil {
			return nil, nil, err
		}
		comment := fmt.Sprintf("Twilio SIP signaling, all %d edges", len(sel.Ranges))
		if len(sel.Ranges) < len(sig.Ranges) {
			comment = "Twilio SIP signaling, edges " + strings.Join(sel.Edges(), ", ")
			warn(SomeEdges, "Twilio SIP signaling allowed from %d of %d edges (%s): Twilio does not guarantee which edge a call uses; calls through the others are refused",
				len(sel.Ranges), len(sig.Ranges), strings.Join(sel.Edges(), ", "))
		}
		p.Rules = append(p.Rules, sipRule(sel, comment, sipPort, tlsPort))
		if !o.TwilioMedia {
			warn(SignalingWithoutMedia, "the rules allow Twilio SIP signaling but not Twilio media (%s, UDP %d-%d): calls will connect and stay silent",
				media.Ranges[0].Prefix, media.Ranges[0].Ports[0].From, media.Ranges[0].Ports[0].To)
		}
	}
	if o.TwilioMedia {
		r := presetRule(media, "Twilio media (RTP/SRTP), every edge")
		r.Ports = []Port{{UDP, mediaPorts.From, mediaPorts.To, "RTP"}}
		p.Rules = append(p.Rules, r)
		if old, ok := netranges.OutdatedPortRange(netranges.PortRange{Proto: netranges.UDP, From: mediaPorts.From, To: mediaPorts.To}); ok {
			warn(OutdatedPorts, "media ports %s are out of date as %s: %s Keep them only if they are your own SIP endpoint's RTP range. Source: %s",
				mediaPorts, old.ClaimedAs, oneLine(old.Why), old.Source)
		}
	}
	if o.VapiSIP {
		vsip, err := lookup("vapi-sip-signaling")
		if err != nil {
			return nil, nil, err
		}
		p.Rules = append(p.Rules, sipRule(vsip, "Vapi SIP signaling", sipPort, tlsPort))
		warn(SignalingWithoutMedia, "the rules allow Vapi SIP signaling, but Vapi publishes no media range (its SIP media comes from dynamic addresses): admit that media some other way or calls will be silent")
	}

	webhook := Port{TCP, o.WebhookPort, o.WebhookPort, "HTTPS"}
	if o.VapiWebhooks {
		vw, err := lookup("vapi-webhooks")
		if err != nil {
			return nil, nil, err
		}
		r := presetRule(vw, "Vapi webhooks (needs server.staticIpAddressesEnabled: true)")
		r.Ports = []Port{webhook}
		p.Rules = append(p.Rules, r)
	}
	if len(o.TwilioStaticProxy) > 0 {
		proxy, err := lookup("twilio-static-proxy")
		if err != nil {
			return nil, nil, err
		}
		sel, err := proxy.Select(o.TwilioStaticProxy...)
		if err != nil {
			return nil, nil, err
		}
		r := presetRule(sel, "Twilio webhooks through the Static Proxy, regions "+strings.Join(sel.Edges(), ", "))
		r.Ports = []Port{webhook}
		p.Rules = append(p.Rules, r)
	}
	if len(o.Allow) > 0 {
		r := Rule{Name: "allow", Comment: "further webhook sources (--allow)", Ports: []Port{webhook}}
		for _, pfx := range o.Allow {
			if err := checkPrefix(pfx); err != nil {
				return nil, nil, err
			}
			if slices.ContainsFunc(r.Sources, func(s Source) bool { return s.Prefix == pfx }) {
				continue
			}
			r.Sources = append(r.Sources, Source{Prefix: pfx})
			if old, ok := netranges.Outdated(pfx); ok {
				warn(OutdatedRange, "--allow %s: %s is out of date as %s: %s Current presets: %s. Source: %s",
					pfx, old.Prefix, old.ClaimedAs, oneLine(old.Why), strings.Join(old.Current, ", "), old.Source)
			}
		}
		r.Sources = withoutCovered(r.Sources)
		p.Rules = append(p.Rules, r)
	}
	if !o.VapiWebhooks && len(o.TwilioStaticProxy) == 0 && len(o.Allow) == 0 {
		// Twilio's standard webhooks, and Vapi's without static addresses,
		// come from any address: the port is opened to all, explicitly —
		// a NetworkPolicy or a security group admits nothing it does not
		// name, and leaving the port out would cut every webhook off.
		p.Rules = append(p.Rules, Rule{Name: "webhooks-any", Comment: "webhooks from any address (Twilio's standard webhooks; Vapi without static IPs)",
			Ports: []Port{webhook}, Sources: []Source{{Prefix: netip.MustParsePrefix("0.0.0.0/0")}, {Prefix: netip.MustParsePrefix("::/0")}}, Open: true})
		warn(NoWebhookSources, "no webhook sources (Vapi's static range, Twilio's Static Proxy or --allow): TCP port %d is open to any address, as Twilio's standard webhooks and Vapi without static IPs need; their signatures are the control. Narrow it with --vapi, --twilio-static-proxy or --allow", o.WebhookPort)
	}
	if len(p.guarding().Rules) == 0 {
		return nil, warns, ErrEmpty
	}
	return &p, warns, nil
}

// lookup returns a preset the data file must define.
func lookup(name string) (netranges.Preset, error) {
	p, err := netranges.Lookup(name)
	if err != nil {
		return netranges.Preset{}, fmt.Errorf("the range data: %w", err)
	}
	return p, nil
}

// presetRule returns a rule with the preset's ranges as sources and their
// sources as refs; the caller sets the ports.
func presetRule(p netranges.Preset, comment string) Rule {
	r := Rule{Name: p.Name, Comment: comment}
	for _, rg := range p.Ranges {
		r.Sources = append(r.Sources, Source{Prefix: rg.Prefix, Note: rg.Edge})
		ref := Ref{URL: rg.Source, SourceDate: rg.SourceDate, Taken: rg.Taken}
		if !slices.Contains(r.Refs, ref) {
			r.Refs = append(r.Refs, ref)
		}
	}
	return r
}

// sipRule returns a rule for a SIP signaling preset: each published port
// maps to yours, UDP and TCP to sipPort and TLS to tlsPort.
func sipRule(p netranges.Preset, comment string, sipPort, tlsPort uint16) Rule {
	r := presetRule(p, comment)
	for _, rg := range p.Ranges {
		for _, pr := range rg.Ports {
			port := Port{Protocol(pr.Proto.Transport()), sipPort, sipPort, "SIP/" + strings.ToUpper(string(pr.Proto))}
			if pr.Proto == netranges.TLS {
				port.From, port.To = tlsPort, tlsPort
			}
			if !slices.Contains(r.Ports, port) {
				r.Ports = append(r.Ports, port)
			}
		}
	}
	return r
}

// checkPrefix refuses a source that a firewall would read differently
// from what was meant: host bits set, an IPv4 range written as IPv6, a
// zone.
func checkPrefix(p netip.Prefix) error {
	switch {
	case !p.IsValid():
		return errors.New("an invalid source prefix")
	case p.Addr().Is4In6():
		return fmt.Errorf("source %s: write IPv4 ranges as IPv4 (%s)", p, netip.PrefixFrom(p.Addr().Unmap(), max(p.Bits()-96, 0)).Masked())
	case p.Addr().Zone() != "":
		return fmt.Errorf("source %s: a zone has no meaning in a firewall rule", p)
	case p != p.Masked():
		return fmt.Errorf("source %s has host bits set: did you mean %s?", p, p.Masked())
	}
	return nil
}

// withoutCovered drops the sources that lie inside another of them, so
// that no two overlap (an nftables interval set refuses overlaps).
func withoutCovered(srcs []Source) []Source {
	var out []Source
	for i, s := range srcs {
		covered := slices.ContainsFunc(srcs, func(o Source) bool {
			return o.Prefix != s.Prefix && o.Prefix.Bits() < s.Prefix.Bits() && o.Prefix.Contains(s.Prefix.Addr())
		})
		if !covered && !slices.ContainsFunc(srcs[:i], func(o Source) bool { return o.Prefix == s.Prefix }) {
			out = append(out, s)
		}
	}
	return out
}

// oneLine joins the lines of a folded text and ends it with a full stop.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// guarded returns the policy's destination ports per protocol, merged into
// disjoint ranges in ascending order: what other sources are kept from.
// guarding returns the policy without its open rules: what a host firewall
// writes (a port it does not guard stays open to all).
func (p *Policy) guarding() *Policy {
	q := &Policy{}
	for _, r := range p.Rules {
		if !r.Open {
			q.Rules = append(q.Rules, r)
		}
	}
	return q
}

func (p *Policy) guarded() map[Protocol][]PortRange {
	out := map[Protocol][]PortRange{}
	for _, proto := range []Protocol{TCP, UDP} {
		var rs []PortRange
		for _, r := range p.Rules {
			for _, port := range r.Ports {
				if port.Protocol == proto {
					rs = append(rs, PortRange{port.From, port.To})
				}
			}
		}
		out[proto] = mergeRanges(rs)
	}
	return out
}

// mergeRanges sorts port ranges and merges those that overlap or touch.
func mergeRanges(rs []PortRange) []PortRange {
	slices.SortFunc(rs, func(a, b PortRange) int { return int(a.From) - int(b.From) })
	var out []PortRange
	for _, r := range rs {
		if n := len(out); n > 0 && uint32(r.From) <= uint32(out[n-1].To)+1 {
			out[n-1].To = max(out[n-1].To, r.To)
			continue
		}
		out = append(out, r)
	}
	return out
}

// refUse is a source and the rules whose ranges come from it.
type refUse struct {
	Ref   Ref
	Rules []string
}

// refs returns every rule's refs, each once, with the rules that use it.
func (p *Policy) refs() []refUse {
	var out []refUse
	for _, r := range p.Rules {
		for _, ref := range r.Refs {
			i := slices.IndexFunc(out, func(u refUse) bool { return u.Ref == ref })
			if i < 0 {
				out = append(out, refUse{Ref: ref})
				i = len(out) - 1
			}
			if !slices.Contains(out[i].Rules, r.Name) {
				out[i].Rules = append(out[i].Rules, r.Name)
			}
		}
	}
	return out
}
