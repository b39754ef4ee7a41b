package netpolicy

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Format is an output format.
type Format string

// The formats.
const (
	// NFTables is an nftables script (nft -f): table inet voicegate, IPv4
	// and IPv6 in one.
	NFTables Format = "nftables"
	// IPTables is iptables-restore input for IPv4: the chain VOICEGATE.
	IPTables Format = "iptables"
	// IP6Tables is ip6tables-restore input for IPv6: the chain VOICEGATE
	// with the IPv6 sources and the same refusals.
	IP6Tables Format = "ip6tables"
	// AWSSG is the JSON input of aws ec2 authorize-security-group-ingress
	// --cli-input-json.
	AWSSG Format = "aws-sg"
	// K8s is a networking.k8s.io/v1 NetworkPolicy in YAML.
	K8s Format = "k8s"
)

// Formats lists every format, in the order the help gives them.
func Formats() []Format { return []Format{NFTables, IPTables, IP6Tables, AWSSG, K8s} }

// ParseFormat returns the format named s, or an error listing them.
func ParseFormat(s string) (Format, error) {
	for _, f := range Formats() {
		if string(f) == s {
			return f, nil
		}
	}
	names := make([]string, 0, len(Formats()))
	for _, f := range Formats() {
		names = append(names, string(f))
	}
	return "", fmt.Errorf("unknown format %q (formats: %s)", s, strings.Join(names, ", "))
}

// AWSGroupIDPlaceholder is the security group id written when none is
// given; AWS refuses it, so a file not edited fails loudly.
const AWSGroupIDPlaceholder = "sg-REPLACE_ME"

// The Kubernetes defaults of voicegate netpolicy: the name of the
// NetworkPolicy, and the labels of the pods it protects (those of the
// Deployment in docs/deployment.md).
const (
	DefaultK8sName        = "voicegate-ingress"
	DefaultK8sPodSelector = "app=voicegate"
)

// Label is one key=value pair of a Kubernetes label selector.
type Label struct{ Key, Value string }

// RenderOptions are the settings of one format; the zero value is usable.
type RenderOptions struct {
	// Command is the command line that generated the output, quoted in its
	// header (formats with comments).
	Command string
	// AWSGroupID is the security group (aws-sg); empty for
	// AWSGroupIDPlaceholder.
	AWSGroupID string
	// K8sName is the NetworkPolicy's name (empty: DefaultK8sName);
	// K8sNamespace its namespace (empty: none written, kubectl's current
	// one applies).
	K8sName, K8sNamespace string
	// K8sPodSelector selects the pods the policy protects; none selects
	// every pod in the namespace.
	K8sPodSelector []Label
}

var (
	sgIDRE      = regexp.MustCompile(`^sg-([0-9a-f]{8}|[0-9a-f]{17})$`)
	dnsLabelRE  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	labelNameRE = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`)
)

// Validate checks the options the format uses: an AWS group id of the form
// sg-xxxxxxxx, Kubernetes names and labels as the API server requires.
func (o RenderOptions) Validate(f Format) error {
	switch f {
	case AWSSG:
		if o.AWSGroupID != "" && o.AWSGroupID != AWSGroupIDPlaceholder && !sgIDRE.MatchString(o.AWSGroupID) {
			return fmt.Errorf("AWS group id %q: want sg- and 8 or 17 lower-case hex digits", o.AWSGroupID)
		}
	case K8s:
		if o.K8sName != "" && !isDNSSubdomain(o.K8sName) {
			return fmt.Errorf("NetworkPolicy name %q: want lower-case letters, digits, '-' and '.', at most 253", o.K8sName)
		}
		if o.K8sNamespace != "" && (len(o.K8sNamespace) > 63 || !dnsLabelRE.MatchString(o.K8sNamespace)) {
			return fmt.Errorf("namespace %q: want lower-case letters, digits and '-', at most 63", o.K8sNamespace)
		}
		seen := map[string]bool{}
		for _, l := range o.K8sPodSelector {
			if err := checkLabel(l); err != nil {
				return err
			}
			if seen[l.Key] {
				return fmt.Errorf("pod selector: label %q twice", l.Key)
			}
			seen[l.Key] = true
		}
	}
	return nil
}

// ParseLabels parses "k=v,k2=v2" (empty: none) into labels, checked as the
// Kubernetes API server checks label keys and values.
func ParseLabels(s string) ([]Label, error) {
	var out []Label
	if s == "" {
		return nil, nil
	}
	for kv := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("pod selector %q: want key=value pairs separated by ','", s)
		}
		l := Label{k, v}
		if err := checkLabel(l); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

func checkLabel(l Label) error {
	name := l.Key
	if prefix, n, ok := strings.Cut(l.Key, "/"); ok {
		if !isDNSSubdomain(prefix) {
			return fmt.Errorf("label key %q: the prefix is not a DNS subdomain", l.Key)
		}
		name = n
	}
	if len(name) > 63 || !labelNameRE.MatchString(name) {
		return fmt.Errorf("label key %q: want letters, digits, '-', '_' and '.', at most 63, starting and ending with a letter or digit", l.Key)
	}
	if len(l.Value) > 63 || (l.Value != "" && !labelNameRE.MatchString(l.Value)) {
		return fmt.Errorf("label value %q: want letters, digits, '-', '_' and '.', at most 63, starting and ending with a letter or digit", l.Value)
	}
	return nil
}

func isDNSSubdomain(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for part := range strings.SplitSeq(s, ".") {
		if len(part) > 63 || !dnsLabelRE.MatchString(part) {
			return false
		}
	}
	return true
}

// Render writes p in format f. It returns warnings about what the format
// could not express or still needs (IPv6 sources in an iptables file, a
// placeholder group id), and an error for invalid options or a failed
// write.
func Render(w io.Writer, p *Policy, f Format, o RenderOptions) ([]Warning, error) {
	if err := o.Validate(f); err != nil {
		return nil, err
	}
	if p == nil || len(p.Rules) == 0 {
		return nil, errNoRules
	}
	bw := bufio.NewWriter(w)
	var (
		warns []Warning
		err   error
	)
	switch f {
	case NFTables:
		renderNFT(bw, p, o)
	case IPTables:
		warns = renderIPTables(bw, p, o, false)
	case IP6Tables:
		warns = renderIPTables(bw, p, o, true)
	case AWSSG:
		warns, err = renderAWS(bw, p, o)
	case K8s:
		renderK8s(bw, p, o)
	default:
		return nil, fmt.Errorf("unknown format %q", f)
	}
	if err != nil {
		return nil, err
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	return warns, nil
}

// header writes the comment block that opens the comment-capable formats:
// what the rules allow, where the ranges come from, how to load them.
func header(w *bufio.Writer, p *Policy, o RenderOptions, refusal string, load ...string) {
	fmt.Fprintln(w, "# voicegate netpolicy: the sources allowed to reach the voice ports (ingress).")
	if o.Command != "" {
		fmt.Fprintf(w, "# Generated by: %s\n", printable(o.Command))
	}
	fmt.Fprintln(w, "#")
	fmt.Fprintln(w, "# Allowed:")
	width := 0
	for _, r := range p.Rules {
		width = max(width, len(r.Name))
	}
	for _, r := range p.Rules {
		fmt.Fprintf(w, "#   %-*s  %s: %s\n", width, r.Name, r.Comment, portList(r.Ports))
	}
	fmt.Fprintf(w, "# %s\n", refusal)
	if refs := p.refs(); len(refs) > 0 {
		fmt.Fprintln(w, "#")
		fmt.Fprintln(w, "# Ranges as published at:")
		for _, u := range refs {
			fmt.Fprintf(w, "#   %s: %s\n", strings.Join(u.Rules, ", "), u.Ref)
		}
	}
	if len(load) > 0 {
		fmt.Fprintln(w, "#")
		for _, l := range load {
			fmt.Fprintf(w, "# %s\n", l)
		}
	}
}

// printable replaces control characters, so that a command line cannot end
// the comment it is quoted in.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// portList writes ports as "UDP 5060 (SIP/UDP), TCP 5061 (SIP/TLS)".
func portList(ports []Port) string {
	var parts []string
	for _, p := range ports {
		parts = append(parts, fmt.Sprintf("%s %s (%s)", strings.ToUpper(string(p.Protocol)), PortRange{p.From, p.To}, p.Label))
	}
	return strings.Join(parts, ", ")
}

// family splits sources into IPv4 and IPv6.
func family(srcs []Source) (v4, v6 []Source) {
	for _, s := range srcs {
		if s.Prefix.Addr().Is4() {
			v4 = append(v4, s)
		} else {
			v6 = append(v6, s)
		}
	}
	return v4, v6
}

// byProtocol groups ports by protocol, TCP first, keeping their order.
func byProtocol(ports []Port) [][]Port {
	var out [][]Port
	for _, proto := range []Protocol{TCP, UDP} {
		var ps []Port
		for _, p := range ports {
			if p.Protocol == proto {
				ps = append(ps, p)
			}
		}
		if len(ps) > 0 {
			out = append(out, ps)
		}
	}
	return out
}

func labels(ports []Port) string {
	var ls []string
	for _, p := range ports {
		ls = append(ls, p.Label)
	}
	return strings.Join(ls, " ")
}

// --- nftables ---

// renderNFT writes an nftables script: its own table, replaced whole on
// each load, with a named set of sources per rule and address family and
// one input chain at filter priority. The chain accepts the allowed
// sources and drops new connections and flows to the same ports from
// anyone else; every other packet passes on to the host's other tables
// (policy accept).
func renderNFT(w *bufio.Writer, p *Policy, o RenderOptions) {
	p = p.guarding()
	fmt.Fprintln(w, "#!/usr/sbin/nft -f")
	header(w, p, o, "Any other source is refused a new connection or flow to these ports (IPv4 and IPv6); other traffic passes on to your other rules.",
		"Load: nft -f FILE (replaces only table inet voicegate; check first with nft -c -f FILE).",
		"The chain hooks input: it guards services on the host itself, not containers behind NAT.")
	fmt.Fprintln(w, "table inet voicegate")
	fmt.Fprintln(w, "delete table inet voicegate")
	fmt.Fprintln(w, "table inet voicegate {")
	type set struct{ name, family string }
	sets := make([][2]set, len(p.Rules))
	for i, r := range p.Rules {
		v4, v6 := family(r.Sources)
		for j, fam := range []struct {
			suffix, typ, kw string
			srcs            []Source
		}{{"_v4", "ipv4_addr", "ip", v4}, {"_v6", "ipv6_addr", "ip6", v6}} {
			if len(fam.srcs) == 0 {
				continue
			}
			name := strings.ReplaceAll(r.Name, "-", "_") + fam.suffix
			sets[i][j] = set{name, fam.kw}
			fmt.Fprintf(w, "\t# %s: %s\n", r.Name, r.Comment)
			fmt.Fprintf(w, "\tset %s {\n\t\ttype %s\n\t\tflags interval\n\t\telements = {\n", name, fam.typ)
			for _, s := range fam.srcs {
				if s.Note != "" {
					fmt.Fprintf(w, "\t\t\t%s comment %q,\n", s.Prefix, s.Note)
				} else {
					fmt.Fprintf(w, "\t\t\t%s,\n", s.Prefix)
				}
			}
			fmt.Fprintln(w, "\t\t}\n\t}")
		}
	}
	fmt.Fprintln(w, "\tchain ingress {")
	fmt.Fprintln(w, "\t\ttype filter hook input priority filter; policy accept;")
	for i, r := range p.Rules {
		for _, s := range sets[i] {
			if s.name == "" {
				continue
			}
			for _, ports := range byProtocol(r.Ports) {
				fmt.Fprintf(w, "\t\t%s saddr @%s %s dport %s accept comment %q\n",
					s.family, s.name, ports[0].Protocol, nftPorts(ports), r.Name+" "+labels(ports))
			}
		}
	}
	fmt.Fprintln(w, "\t\t# Any other source: no new connection or flow to these ports.")
	g := p.guarded()
	for _, proto := range []Protocol{TCP, UDP} {
		if len(g[proto]) == 0 {
			continue
		}
		var ps []Port
		for _, r := range g[proto] {
			ps = append(ps, Port{Protocol: proto, From: r.From, To: r.To})
		}
		fmt.Fprintf(w, "\t\tct state new %s dport %s drop comment %q\n", proto, nftPorts(ps), "voicegate: other sources")
	}
	fmt.Fprintln(w, "\t}")
	fmt.Fprintln(w, "}")
}

func nftPorts(ports []Port) string {
	parts := make([]string, 0, len(ports))
	for _, p := range ports {
		s := PortRange{p.From, p.To}.String()
		if !slices.Contains(parts, s) {
			parts = append(parts, s)
		}
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "{ " + strings.Join(parts, ", ") + " }"
}

// --- iptables / ip6tables ---

// renderIPTables writes iptables-restore (or ip6tables-restore) input that
// fills one chain, VOICEGATE, in the filter table: an ACCEPT per source
// and port of its family, then a DROP of new connections and flows to
// every one of the ports from anyone else. Loaded with --noflush it
// replaces that chain only; the jump to it from INPUT is added once by
// hand (the header says how), so reloading never duplicates it.
func renderIPTables(w *bufio.Writer, p *Policy, o RenderOptions, v6 bool) []Warning {
	p = p.guarding()
	tool, otherFormat := "iptables", IP6Tables
	if v6 {
		tool, otherFormat = "ip6tables", IPTables
	}
	header(w, p, o, fmt.Sprintf("Any other source is refused a new connection or flow to these ports (%s); other traffic passes on to your other rules.", map[bool]string{false: "IPv4", true: "IPv6"}[v6]),
		fmt.Sprintf("Load: %s-restore --noflush FILE (replaces only the chain VOICEGATE; check first with --test).", tool),
		fmt.Sprintf("Then, once: %s -C INPUT -j VOICEGATE 2>/dev/null || %s -I INPUT -j VOICEGATE", tool, tool),
		fmt.Sprintf("%s only: on a host with %s, load the --format %s output too.", map[bool]string{false: "IPv4", true: "IPv6"}[v6], map[bool]string{false: "IPv6", true: "IPv4"}[v6], otherFormat))
	fmt.Fprintln(w, "*filter")
	fmt.Fprintln(w, ":VOICEGATE - [0:0]")
	var skipped []string
	for _, r := range p.Rules {
		v4s, v6s := family(r.Sources)
		srcs, others := v4s, v6s
		if v6 {
			srcs, others = v6s, v4s
		}
		for _, s := range others {
			skipped = append(skipped, s.Prefix.String())
		}
		if len(srcs) == 0 {
			continue
		}
		fmt.Fprintf(w, "# %s: %s\n", r.Name, r.Comment)
		for _, s := range srcs {
			for _, port := range r.Ports {
				comment := r.Name
				if s.Note != "" {
					comment += " " + s.Note
				}
				comment += " " + port.Label
				fmt.Fprintf(w, "-A VOICEGATE -s %s -p %s -m %s --dport %s -m comment --comment %q -j ACCEPT\n",
					s.Prefix, port.Protocol, port.Protocol, iptPorts(port.From, port.To), comment)
			}
		}
	}
	fmt.Fprintln(w, "# Any other source: no new connection or flow to these ports.")
	g := p.guarded()
	for _, proto := range []Protocol{TCP, UDP} {
		for _, r := range g[proto] {
			fmt.Fprintf(w, "-A VOICEGATE -p %s -m %s --dport %s -m conntrack --ctstate NEW -m comment --comment %q -j DROP\n",
				proto, proto, iptPorts(r.From, r.To), "voicegate: other sources")
		}
	}
	fmt.Fprintln(w, "COMMIT")
	// The providers' ranges are all IPv4: an ip6tables file without them is
	// the expected case, but IPv6 sources left out of an iptables file are
	// worth a word.
	if len(skipped) > 0 && !v6 {
		return []Warning{{NotRendered, fmt.Sprintf("IPv6 sources not in this iptables file: %s; generate their rules with --format ip6tables",
			strings.Join(skipped, ", "))}}
	}
	return nil
}

func iptPorts(from, to uint16) string {
	if from == to {
		return strconv.Itoa(int(from))
	}
	return fmt.Sprintf("%d:%d", from, to)
}

// --- AWS security group ---

// awsIngress is the input of aws ec2 authorize-security-group-ingress
// --cli-input-json, with the fields this output uses.
type awsIngress struct {
	GroupId       string          `json:"GroupId"`
	IpPermissions []awsPermission `json:"IpPermissions"`
}

type awsPermission struct {
	IpProtocol string         `json:"IpProtocol"`
	FromPort   int            `json:"FromPort"`
	ToPort     int            `json:"ToPort"`
	IpRanges   []awsIPRange   `json:"IpRanges,omitempty"`
	Ipv6Ranges []awsIPv6Range `json:"Ipv6Ranges,omitempty"`
}

type awsIPRange struct {
	CidrIp      string `json:"CidrIp"`
	Description string `json:"Description"`
}

type awsIPv6Range struct {
	CidrIpv6    string `json:"CidrIpv6"`
	Description string `json:"Description"`
}

// awsRuleQuota is AWS's default quota of inbound rules per security group
// (counted separately for IPv4 and IPv6).
const awsRuleQuota = 60

// renderAWS writes one IpPermission per protocol and port range (the
// rules sharing one merged), each source once in it, described by rule,
// edge and port label.
func renderAWS(w *bufio.Writer, p *Policy, o RenderOptions) ([]Warning, error) {
	in := awsIngress{GroupId: o.AWSGroupID}
	var warns []Warning
	if in.GroupId == "" || in.GroupId == AWSGroupIDPlaceholder {
		in.GroupId = AWSGroupIDPlaceholder
		warns = append(warns, Warning{Placeholder, fmt.Sprintf("GroupId is the placeholder %s: give --aws-group-id", AWSGroupIDPlaceholder)})
	}
	index := map[[3]int]int{}
	seen := map[[3]int]map[netip.Prefix]bool{}
	n4, n6 := 0, 0
	for _, r := range p.Rules {
		for _, port := range r.Ports {
			key := [3]int{protoNumber(port.Protocol), int(port.From), int(port.To)}
			i, ok := index[key]
			if !ok {
				i = len(in.IpPermissions)
				index[key] = i
				seen[key] = map[netip.Prefix]bool{}
				in.IpPermissions = append(in.IpPermissions, awsPermission{IpProtocol: string(port.Protocol), FromPort: int(port.From), ToPort: int(port.To)})
			}
			perm := &in.IpPermissions[i]
			for _, s := range r.Sources {
				if seen[key][s.Prefix] {
					continue
				}
				seen[key][s.Prefix] = true
				desc := "voicegate " + r.Name
				if s.Note != "" {
					desc += " " + s.Note
				}
				desc = awsDescription(desc + " " + port.Label)
				if s.Prefix.Addr().Is4() {
					perm.IpRanges = append(perm.IpRanges, awsIPRange{s.Prefix.String(), desc})
					n4++
				} else {
					perm.Ipv6Ranges = append(perm.Ipv6Ranges, awsIPv6Range{s.Prefix.String(), desc})
					n6++
				}
			}
		}
	}
	if n4 > awsRuleQuota || n6 > awsRuleQuota {
		warns = append(warns, Warning{OverQuota, fmt.Sprintf("%d IPv4 and %d IPv6 rules: AWS's default quota is %d inbound rules of each per security group; raise it or split the rules over two groups", n4, n6, awsRuleQuota)})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(in); err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	return warns, nil
}

func protoNumber(p Protocol) int {
	if p == TCP {
		return 6
	}
	return 17
}

// awsDescription keeps only the characters AWS accepts in a rule
// description (letters, digits, spaces and ._-:/()#,@[]+=&;{}!$*), at most
// 255 of them.
func awsDescription(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune(" ._-:/()#,@[]+=&;{}!$*", r):
			return r
		}
		return '-'
	}, s)
	if len(s) > 255 {
		s = s[:255]
	}
	return s
}

// --- Kubernetes ---

// renderK8s writes a NetworkPolicy selecting the voicegate pods for
// ingress: one ingress rule per policy rule, its sources as ipBlocks.
func renderK8s(w *bufio.Writer, p *Policy, o RenderOptions) {
	name := o.K8sName
	if name == "" {
		name = DefaultK8sName
	}
	header(w, p, o, "Once this policy selects a pod, Kubernetes refuses that pod every other ingress (any source, any port).",
		"Apply: kubectl apply -f FILE. Sources are matched as the pod sees them: behind an Ingress",
		"controller or a load balancer that rewrites the client address, select the controller's pods",
		"instead, or use externalTrafficPolicy: Local.")
	fmt.Fprintln(w, "apiVersion: networking.k8s.io/v1")
	fmt.Fprintln(w, "kind: NetworkPolicy")
	fmt.Fprintln(w, "metadata:")
	// Names and labels are quoted: a YAML 1.1 reader takes an unquoted
	// "true", "null" or "0123" for something other than a string.
	fmt.Fprintf(w, "  name: %q\n", name)
	if o.K8sNamespace != "" {
		fmt.Fprintf(w, "  namespace: %q\n", o.K8sNamespace)
	}
	fmt.Fprintln(w, "spec:")
	if len(o.K8sPodSelector) == 0 {
		fmt.Fprintln(w, "  podSelector: {}")
	} else {
		fmt.Fprintln(w, "  podSelector:")
		fmt.Fprintln(w, "    matchLabels:")
		for _, l := range o.K8sPodSelector {
			fmt.Fprintf(w, "      %q: %q\n", l.Key, l.Value)
		}
	}
	fmt.Fprintln(w, "  policyTypes:")
	fmt.Fprintln(w, "    - Ingress")
	fmt.Fprintln(w, "  ingress:")
	for _, r := range p.Rules {
		fmt.Fprintf(w, "    # %s: %s\n", r.Name, r.Comment)
		fmt.Fprintln(w, "    - from:")
		for _, s := range r.Sources {
			fmt.Fprintln(w, "        - ipBlock:")
			if s.Note != "" {
				fmt.Fprintf(w, "            cidr: \"%s\"  # %s\n", s.Prefix, s.Note)
			} else {
				fmt.Fprintf(w, "            cidr: \"%s\"\n", s.Prefix)
			}
		}
		fmt.Fprintln(w, "      ports:")
		for _, port := range r.Ports {
			fmt.Fprintf(w, "        - protocol: %s  # %s\n", strings.ToUpper(string(port.Protocol)), port.Label)
			fmt.Fprintf(w, "          port: %d\n", port.From)
			if port.To != port.From {
				fmt.Fprintf(w, "          endPort: %d\n", port.To)
			}
		}
	}
}

// errNoRules is returned by Render for a policy Build would refuse.
var errNoRules = errors.New("the policy has no rules")
