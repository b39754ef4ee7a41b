package cli

import (
	"bufio"
	"fmt"
	"github.com/voicegate/voicegate/internal/allowlist"
	"github.com/voicegate/voicegate/internal/config"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/voicegate/voicegate/internal/netpolicy"
	"github.com/voicegate/voicegate/internal/netranges"
)

const netpolicyUsage = `usage: voicegate netpolicy --format nftables|iptables|ip6tables|aws-sg|k8s [flags]
       voicegate netpolicy --list`

// runNetpolicy writes the firewall rules a deployment needs, in one format,
// to stdout: who may reach the SIP signaling ports, the media ports and the
// webhook listener. It needs no configuration: providers, edges and ports
// are flags. Warnings (signaling without media, ranges or ports out of
// date, what the format cannot express) go to stderr; they do not change
// the exit code.
func runNetpolicy(args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	sig, err := netranges.Lookup("twilio-signaling")
	if err != nil {
		return err
	}
	proxy, err := netranges.Lookup("twilio-static-proxy")
	if err != nil {
		return err
	}
	formats := make([]string, 0, len(netpolicy.Formats()))
	for _, f := range netpolicy.Formats() {
		formats = append(formats, string(f))
	}
	fs := newFlagSet("netpolicy", stderr)
	format := fs.String("format", "", "output format: "+strings.Join(formats, ", ")+" (required)")
	cfgPath := fs.String("config", "", "also allow, to --webhook-port, the sources of vapi.allow_from and twilio.allow_from in this voicegate config (nothing else of it is read)")
	list := fs.Bool("list", false, "print the presets, each range with its source and date, and the values known to be out of date; then exit")
	edges := fs.String("twilio-edges", "all", "Twilio SIP signaling edges: all, none, or some of "+strings.Join(sig.Edges(), ","))
	noMedia := fs.Bool("no-media", false, "leave out Twilio media (168.86.128.0/18): calls will be silent (warns)")
	mediaPorts := fs.String("media-ports", "10000-60000", "UDP ports your SIP endpoint receives media on, FROM-TO (Twilio sends from 10000-60000)")
	sipPort := fs.Uint("sip-port", 5060, "your SIP endpoint's UDP and TCP port")
	sipTLSPort := fs.Uint("sip-tls-port", 5061, "your SIP endpoint's TLS port")
	vapi := fs.Bool("vapi", false, "allow Vapi's static webhook range to --webhook-port (needs server.staticIpAddressesEnabled: true in Vapi)")
	vapiSIP := fs.Bool("vapi-sip", false, "allow Vapi's SIP signaling addresses (Vapi publishes no media range: warns)")
	staticProxy := fs.String("twilio-static-proxy", "", "allow Twilio's Static Proxy to --webhook-port from these regions: all or some of "+strings.Join(proxy.Edges(), ","))
	webhookPort := fs.Uint("webhook-port", 443, "the webhook listener's TCP port (in Kubernetes, the pod's port)")
	var allow prefixFlag
	fs.Var(&allow, "allow", "a further source `CIDR` for --webhook-port (repeatable; checked against the ranges known to be out of date)")
	awsGroup := fs.String("aws-group-id", "", "aws-sg: the security group id (default: the placeholder "+netpolicy.AWSGroupIDPlaceholder+")")
	k8sName := fs.String("k8s-name", netpolicy.DefaultK8sName, "k8s: the NetworkPolicy's name")
	k8sNamespace := fs.String("k8s-namespace", "", "k8s: the namespace (default: none written, kubectl's applies)")
	k8sSelector := fs.String("k8s-pod-selector", netpolicy.DefaultK8sPodSelector, "k8s: labels of the pods to protect, key=value,...; empty selects every pod of the namespace")
	fs.Usage = func() {
		fmt.Fprintln(stderr, netpolicyUsage)
		fmt.Fprintln(stderr, "Writes the ingress firewall rules for Twilio SIP signaling and media, Vapi's webhook range and the webhook listener.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *list {
		if *format != "" {
			return &UsageError{Msg: "netpolicy: --list takes no --format"}
		}
		return listRanges(stdout)
	}
	if *format == "" {
		return &UsageError{Msg: "netpolicy needs --format (" + strings.Join(formats, ", ") + ")"}
	}
	f, err := netpolicy.ParseFormat(*format)
	if err != nil {
		return &UsageError{Msg: "netpolicy: " + err.Error()}
	}

	o := netpolicy.Options{TwilioMedia: !*noMedia, VapiWebhooks: *vapi, VapiSIP: *vapiSIP, Allow: allow}
	if o.TwilioEdges, err = choice("--twilio-edges", *edges, sig.Edges()); err != nil {
		return err
	}
	if *staticProxy != "" {
		if o.TwilioStaticProxy, err = choice("--twilio-static-proxy", *staticProxy, proxy.Edges()); err != nil {
			return err
		}
	}
	if *cfgPath != "" {
		vapiFrom, twilioFrom, err := config.LoadWebhookSources(*cfgPath, config.Options{Getenv: getenv})
		if err != nil {
			return err
		}
		if err := addConfigSources(&o, append(vapiFrom, twilioFrom...), proxy.Edges()); err != nil {
			return err
		}
	}
	for _, p := range []struct {
		name string
		v    uint
		dst  *uint16
	}{{"--sip-port", *sipPort, &o.SIPPort}, {"--sip-tls-port", *sipTLSPort, &o.SIPTLSPort}, {"--webhook-port", *webhookPort, &o.WebhookPort}} {
		if p.v == 0 || p.v > 65535 {
			return &UsageError{Msg: fmt.Sprintf("netpolicy: %s %d: want 1 to 65535", p.name, p.v)}
		}
		*p.dst = uint16(p.v)
	}
	if o.MediaPorts, err = parsePortRange(*mediaPorts); err != nil {
		return &UsageError{Msg: "netpolicy: --media-ports: " + err.Error()}
	}
	ro := netpolicy.RenderOptions{
		Command:      commandLine(append([]string{"voicegate", "netpolicy"}, args...)),
		AWSGroupID:   *awsGroup,
		K8sName:      *k8sName,
		K8sNamespace: *k8sNamespace,
	}
	if ro.K8sPodSelector, err = netpolicy.ParseLabels(*k8sSelector); err != nil {
		return &UsageError{Msg: "netpolicy: --k8s-pod-selector: " + err.Error()}
	}
	if err := ro.Validate(f); err != nil {
		return &UsageError{Msg: "netpolicy: " + err.Error()}
	}

	policy, warns, err := netpolicy.Build(o)
	if err != nil {
		return &UsageError{Msg: "netpolicy: " + err.Error()}
	}
	more, err := netpolicy.Render(stdout, policy, f, ro)
	if err != nil {
		return err
	}
	for _, w := range append(warns, more...) {
		fmt.Fprintf(stderr, "voicegate netpolicy: warning (%s): %s\n", w.Code, w.Msg)
	}
	return nil
}

// addConfigSources adds a configuration's webhook allowlist entries to o:
// the Vapi and Twilio Static Proxy presets as such (their notes and
// warnings go with them), every other entry as the prefixes it stands for.
func addConfigSources(o *netpolicy.Options, entries []string, proxyEdges []string) error {
	for _, e := range entries {
		switch name, edge, _ := strings.Cut(e, ":"); {
		case e == "vapi-webhooks":
			o.VapiWebhooks = true
		case name == "twilio-static-proxy" && !strings.Contains(e, "/"):
			regions := proxyEdges
			if edge != "" {
				regions = []string{edge}
			}
			for _, r := range regions {
				if !slices.Contains(o.TwilioStaticProxy, r) {
					o.TwilioStaticProxy = append(o.TwilioStaticProxy, r)
				}
			}
		default:
			l, err := allowlist.Config{e}.Build()
			if err != nil {
				return err
			}
			for _, p := range l.Prefixes() {
				if !slices.Contains(o.Allow, p) {
					o.Allow = append(o.Allow, p)
				}
			}
		}
	}
	return nil
}

// choice parses "all", "none" or a comma list of names from have.
func choice(flagName, s string, have []string) ([]string, error) {
	switch s {
	case "all":
		return have, nil
	case "none":
		return nil, nil
	}
	var out []string
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(have, name) {
			return nil, &UsageError{Msg: fmt.Sprintf("netpolicy: %s: unknown %q (all, none, or some of %s)", flagName, name, strings.Join(have, ","))}
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out, nil
}

// parsePortRange parses "PORT" or "FROM-TO".
func parsePortRange(s string) (netpolicy.PortRange, error) {
	from, to, isRange := strings.Cut(s, "-")
	f, err := strconv.ParseUint(from, 10, 16)
	if err != nil || f == 0 {
		return netpolicy.PortRange{}, fmt.Errorf("%q: want PORT or FROM-TO, ports 1 to 65535", s)
	}
	r := netpolicy.PortRange{From: uint16(f), To: uint16(f)}
	if isRange {
		t, err := strconv.ParseUint(to, 10, 16)
		if err != nil || t < f {
			return netpolicy.PortRange{}, fmt.Errorf("%q: want PORT or FROM-TO, ports 1 to 65535, FROM <= TO", s)
		}
		r.To = uint16(t)
	}
	return r, nil
}

// prefixFlag collects --allow values: CIDRs, or single addresses (taken as
// /32 or /128). A prefix with host bits set is refused by Build.
type prefixFlag []netip.Prefix

func (p *prefixFlag) String() string {
	if p == nil {
		return ""
	}
	var s []string
	for _, x := range *p {
		s = append(s, x.String())
	}
	return strings.Join(s, ",")
}

func (p *prefixFlag) Set(v string) error {
	if !strings.Contains(v, "/") {
		a, err := netip.ParseAddr(v)
		if err != nil {
			return fmt.Errorf("%q is not a CIDR or an address", v)
		}
		*p = append(*p, netip.PrefixFrom(a, a.BitLen()))
		return nil
	}
	x, err := netip.ParsePrefix(v)
	if err != nil {
		return fmt.Errorf("%q is not a CIDR: %v", v, err)
	}
	*p = append(*p, x)
	return nil
}

// commandLine quotes args as a POSIX shell would need them.
func commandLine(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=/.,:@+") == "" {
			out[i] = a
		} else {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}

// listRanges prints every preset with its ranges and sources, and the
// values known to be out of date.
func listRanges(stdout io.Writer) error {
	bw := bufio.NewWriter(stdout)
	for _, p := range netranges.Presets() {
		fmt.Fprintf(bw, "%s (%s): %s\n", p.Name, p.Provider, p.Description)
		if p.Note != "" {
			fmt.Fprintf(bw, "  %s\n", strings.Join(strings.Fields(p.Note), " "))
		}
		tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
		for _, r := range p.Ranges {
			var ports []string
			for _, pr := range r.Ports {
				ports = append(ports, pr.String())
			}
			date := "taken " + r.Taken
			if r.SourceDate != "" {
				date = "page modified " + r.SourceDate + ", " + date
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s (%s)\n", r.Prefix, or(r.Edge, "-"), or(strings.Join(ports, " "), "-"), r.Source, date)
		}
		tw.Flush()
		fmt.Fprintln(bw)
	}
	fmt.Fprintln(bw, "Out of date (voicegate netpolicy warns when they are used):")
	for _, o := range netranges.OutdatedRanges() {
		fmt.Fprintf(bw, "  %s (%s, as %q): %s Current: %s. Source: %s (taken %s)\n", o.Prefix, o.Provider, o.ClaimedAs,
			strings.Join(strings.Fields(o.Why), " "), strings.Join(o.Current, ", "), o.Source, o.Taken)
	}
	for _, o := range netranges.OutdatedPortRanges() {
		fmt.Fprintf(bw, "  %s (%s, as %q): %s Current: %s. Source: %s (taken %s)\n", o.Ports, o.Provider, o.ClaimedAs,
			strings.Join(strings.Fields(o.Why), " "), strings.Join(o.Current, ", "), o.Source, o.Taken)
	}
	return bw.Flush()
}
