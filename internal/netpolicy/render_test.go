package netpolicy

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	sigsjson "sigs.k8s.io/json"
	sigsyaml "sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// scenario is one set of options rendered in every format.
type scenario struct {
	name string
	opts Options
	ro   RenderOptions
}

var defaultSelector, _ = ParseLabels(DefaultK8sPodSelector)

func scenarios() []scenario {
	full := DefaultOptions()
	full.VapiWebhooks = true
	full.VapiSIP = true
	full.TwilioStaticProxy = []string{"us1", "ie1", "au1"}
	full.Allow = []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24"), netip.MustParsePrefix("2001:db8::/32")}
	full.WebhookPort = 8443
	return []scenario{
		// What voicegate netpolicy --format FORMAT writes.
		{"default", DefaultOptions(), RenderOptions{Command: "voicegate netpolicy --format FORMAT", K8sName: DefaultK8sName, K8sPodSelector: defaultSelector}},
		{"full", full, RenderOptions{
			Command:        "voicegate netpolicy --format FORMAT --vapi --vapi-sip --twilio-static-proxy all --allow 198.51.100.0/24 --allow 2001:db8::/32 --webhook-port 8443",
			AWSGroupID:     "sg-0123456789abcdef0",
			K8sNamespace:   "voice",
			K8sPodSelector: []Label{{"app", "voicegate"}, {"app.kubernetes.io/part-of", "voice"}},
		}},
	}
}

// render returns the scenario in format f.
func render(t *testing.T, sc scenario, f Format) ([]byte, *Policy, []Warning) {
	t.Helper()
	p, _, err := Build(sc.opts)
	if err != nil {
		t.Fatal(err)
	}
	ro := sc.ro
	ro.Command = strings.ReplaceAll(ro.Command, "FORMAT", string(f))
	var buf bytes.Buffer
	warns, err := Render(&buf, p, f, ro)
	if err != nil {
		t.Fatalf("render %s %s: %v", sc.name, f, err)
	}
	return buf.Bytes(), p, warns
}

func goldenPath(sc scenario, f Format) string {
	return filepath.Join("testdata", sc.name+"."+string(f)+".golden")
}

// TestGolden: every format of every scenario equals its golden file
// (go test ./internal/netpolicy -update rewrites them; read the diff).
func TestGolden(t *testing.T) {
	for _, sc := range scenarios() {
		for _, f := range Formats() {
			t.Run(sc.name+"/"+string(f), func(t *testing.T) {
				got, _, _ := render(t, sc, f)
				path := goldenPath(sc, f)
				if *update {
					if err := os.WriteFile(path, got, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(path)
				if err != nil {
					t.Fatalf("%v (run go test ./internal/netpolicy -update to create it)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s differs from %s (go test ./internal/netpolicy -update rewrites it):\n%s", f, path, got)
				}
			})
		}
	}
}

// TestRenderWarnings: what a format cannot express or still needs is said.
func TestRenderWarnings(t *testing.T) {
	full := scenarios()[1]
	_, _, w := render(t, full, IPTables)
	if got := codes(w); !slices.Equal(got, []WarningCode{NotRendered}) || !strings.Contains(w[0].Msg, "2001:db8::/32") {
		t.Errorf("iptables with an IPv6 source: warnings %v", w)
	}
	if _, _, w := render(t, full, IP6Tables); len(w) != 0 {
		t.Errorf("ip6tables: warnings %v (the providers' ranges are IPv4; that is expected)", w)
	}
	def := scenarios()[0]
	if _, _, w := render(t, def, AWSSG); !slices.Equal(codes(w), []WarningCode{Placeholder}) {
		t.Errorf("aws-sg without a group id: warnings %v", w)
	}
	if _, _, w := render(t, full, AWSSG); len(w) != 0 {
		t.Errorf("aws-sg with a group id: warnings %v", w)
	}

	many := DefaultOptions()
	for i := range 70 {
		many.Allow = append(many.Allow, netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), 32))
	}
	if _, _, w := render(t, scenario{"many", many, RenderOptions{AWSGroupID: "sg-01234567"}}, AWSSG); !slices.Equal(codes(w), []WarningCode{OverQuota}) {
		t.Errorf("aws-sg with 96 IPv4 rules: warnings %v", w)
	}
}

// TestRenderRefusesBadOptions: values the target would refuse, or read as
// something else, are refused before anything is written.
func TestRenderRefusesBadOptions(t *testing.T) {
	p, _, err := Build(DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		f  Format
		ro RenderOptions
	}{
		{AWSSG, RenderOptions{AWSGroupID: "my-group"}},
		{AWSSG, RenderOptions{AWSGroupID: "sg-123"}},
		{K8s, RenderOptions{K8sName: "Voicegate"}},
		{K8s, RenderOptions{K8sNamespace: "voice.gate"}},
		{K8s, RenderOptions{K8sPodSelector: []Label{{"app", "voice gate"}}}},
		{K8s, RenderOptions{K8sPodSelector: []Label{{"-app", "x"}}}},
		{K8s, RenderOptions{K8sPodSelector: []Label{{"app", "x"}, {"app", "y"}}}},
	} {
		var buf bytes.Buffer
		if _, err := Render(&buf, p, tc.f, tc.ro); err == nil || buf.Len() > 0 {
			t.Errorf("%s %+v: err = %v, wrote %d bytes", tc.f, tc.ro, err, buf.Len())
		}
	}
	if _, err := ParseLabels("app=voicegate,tier"); err == nil {
		t.Error("ParseLabels accepted a pair without =")
	}
	if l, err := ParseLabels("app.kubernetes.io/name=voicegate,tier="); err != nil || len(l) != 2 || l[1] != (Label{"tier", ""}) {
		t.Errorf("ParseLabels = %v, %v", l, err)
	}
	if _, err := ParseFormat("iptables-nft"); err == nil {
		t.Error("ParseFormat accepted an unknown format")
	}
}

// --- validity: each output is accepted by its target ---

// needTool returns the path of a command the validity checks run. Under
// CI=true a missing tool fails the test (.ci/run installs Debian's
// nftables and iptables); elsewhere the test is skipped.
func needTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed; .ci/run installs it (Debian packages nftables and iptables)", name)
		}
		t.Skipf("%s is not installed (apt-get install nftables iptables)", name)
	}
	return path
}

// runTool runs a checker. Checking a rule set talks to the kernel over
// netlink and needs CAP_NET_ADMIN: without it the test is skipped, except
// under CI=true, where it fails.
func runTool(t *testing.T, name string, args ...string) ([]byte, error) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil && (bytes.Contains(out, []byte("Operation not permitted")) || bytes.Contains(out, []byte("Permission denied"))) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s %v needs CAP_NET_ADMIN (CI runs as root): %s", name, args, out)
		}
		t.Skipf("%s needs CAP_NET_ADMIN here: %s", name, out)
	}
	return out, err
}

func writeTemp(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// checkers are the validity checks per format: nil error when the target
// accepts the output.
var checkers = map[Format]func(t *testing.T, out []byte, p *Policy) error{
	NFTables: func(t *testing.T, out []byte, _ *Policy) error {
		nft := needTool(t, "nft")
		path := writeTemp(t, "rules.nft", out)
		if o, err := runTool(t, nft, "-c", "-f", path); err != nil {
			return fmt.Errorf("nft -c -f: %v\n%s", err, o)
		}
		listed, err := loadTwice(t, fmt.Sprintf("nft -f %[1]s && nft -f %[1]s && nft list table inet voicegate", path))
		if err != nil {
			return err
		}
		// As many rules listed as written: the second load replaced the
		// first instead of adding to it.
		for _, rule := range []string{" accept comment ", " drop comment "} {
			if got, want := strings.Count(listed, rule), bytes.Count(out, []byte(rule)); got != want || want == 0 {
				return fmt.Errorf("%d %q rules listed after two loads, want %d:\n%s", got, rule, want, listed)
			}
		}
		return nil
	},
	IPTables:  func(t *testing.T, out []byte, _ *Policy) error { return checkIPTables(t, "iptables", out) },
	IP6Tables: func(t *testing.T, out []byte, _ *Policy) error { return checkIPTables(t, "ip6tables", out) },
	AWSSG:     func(_ *testing.T, out []byte, p *Policy) error { return checkAWS(out, p) },
	K8s:       func(_ *testing.T, out []byte, p *Policy) error { return checkK8s(out, p) },
}

// checkIPTables runs TOOL-restore --test on the file, then loads it twice
// for real and compares the chain TOOL-save lists with the file, rule for
// rule: --test alone lets "-p udp --dport 60000:70000" through, which the
// kernel then holds as 60000:4464.
func checkIPTables(t *testing.T, tool string, out []byte) error {
	restore := needTool(t, tool+"-restore")
	needTool(t, tool+"-save")
	path := writeTemp(t, "rules", out)
	if o, err := runTool(t, restore, "--test", path); err != nil {
		return fmt.Errorf("%s-restore --test: %v\n%s", tool, err, o)
	}
	listed, err := loadTwice(t, fmt.Sprintf("%[1]s-restore --noflush %[2]s && %[1]s-restore --noflush %[2]s && %[1]s-save -t filter", tool, path))
	if err != nil {
		return err
	}
	rules := func(s string) []string {
		var out []string
		for line := range strings.SplitSeq(s, "\n") {
			if strings.HasPrefix(line, "-A VOICEGATE ") {
				out = append(out, line)
			}
		}
		return out
	}
	written, loaded := rules(string(out)), rules(listed)
	if len(written) == 0 || !slices.Equal(written, loaded) {
		return fmt.Errorf("after two loads %s-save lists other rules than the file's:\nwritten:\n%s\nlisted:\n%s",
			tool, strings.Join(written, "\n"), strings.Join(loaded, "\n"))
	}
	return nil
}

// loadTwice runs script (which loads rules and lists them) in a network
// namespace of its own that disappears with it (unshare --net), and
// returns what it printed.
func loadTwice(t *testing.T, script string) (string, error) {
	t.Helper()
	unshare := needTool(t, "unshare")
	out, err := runTool(t, unshare, "--net", "sh", "-c", script)
	if err != nil {
		if os.Getenv("CI") != "true" && bytes.Contains(out, []byte("unshare failed")) {
			t.Skipf("no network namespaces here: %s", out)
		}
		return "", fmt.Errorf("%s: %v\n%s", script, err, out)
	}
	return string(out), nil
}

// TestOutputsAreValid: each format of each scenario is accepted by its
// target: nft -c -f, iptables-restore --test and ip6tables-restore --test,
// then each loaded twice into a kernel (in a network namespace of its own)
// and listed back; a case-sensitive strict decode into the Kubernetes API's
// NetworkPolicy type; and the AWS CLI input's shape.
func TestOutputsAreValid(t *testing.T) {
	for _, sc := range scenarios() {
		for _, f := range Formats() {
			t.Run(sc.name+"/"+string(f), func(t *testing.T) {
				out, p, _ := render(t, sc, f)
				if err := checkers[f](t, out, p); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestValidityChecksCatchMistakes: each check refuses a broken output, so
// that a pass means something.
func TestValidityChecksCatchMistakes(t *testing.T) {
	full := scenarios()[1]
	for _, tc := range []struct {
		f        Format
		from, to string
	}{
		{NFTables, "54.172.60.0/30", "54.172.60.0/33"},
		{NFTables, "tcp dport", "tcp dprt"},
		{IPTables, "-s 54.172.60.0/30", "-s 54.172.60.0/33"},
		{IPTables, "--dport 5061", "--dport 70000"},
		{IPTables, "--dport 10000:60000", "--dport 60000:70000"}, // passes --test; the kernel listing differs
		{IP6Tables, "-s 2001:db8::/32", "-s 2001:db8::/129"},
		{IP6Tables, "--ctstate NEW", "--ctstate NEWISH"},
		{AWSSG, `"IpRanges"`, `"IPRanges"`},
		{AWSSG, `"CidrIp": "54.172.60.0/30"`, `"CidrIp": "54.172.60.1/30"`},
		{AWSSG, `"FromPort": 10000`, `"FromPort": 70000`},
		{AWSSG, `"voicegate twilio-media RTP"`, `"voicegate twilio-media RTP über"`},
		{K8s, "endPort", "endport"}, // encoding/json alone would take it
		{K8s, "  policyTypes:", "  policytypes: [Egress]\n  policyTypes:"},
		{K8s, "ipBlock:", "ipblock:"},
		{K8s, "protocol: UDP", "protocol: ICMP"},
		{K8s, `cidr: "168.86.128.0/18"`, `cidr: "168.86.128.0/17"`},
		{K8s, "port: 10000", "port: 70000"},
	} {
		t.Run(string(tc.f)+" "+tc.to, func(t *testing.T) {
			out, p, _ := render(t, full, tc.f)
			bad := bytes.Replace(out, []byte(tc.from), []byte(tc.to), 1)
			if bytes.Equal(bad, out) {
				t.Fatalf("%q is not in the %s output", tc.from, tc.f)
			}
			if err := checkers[tc.f](t, bad, p); err == nil {
				t.Errorf("the %s check accepted an output with %q", tc.f, tc.to)
			} else {
				t.Logf("refused as expected: %v", firstLine(err.Error()))
			}
		})
	}
}

func firstLine(s string) string { return strings.SplitN(s, "\n", 2)[0] }

// --- the AWS CLI input ---

// awsSkeleton is the key structure of the input of
// aws ec2 authorize-security-group-ingress --cli-input-json (its
// --generate-cli-skeleton): keys are compared exactly, case included
// (encoding/json alone would accept "groupid").
var awsSkeleton = map[string]any{
	"GroupId": nil, "GroupName": nil, "DryRun": nil, "TagSpecifications": nil,
	"CidrIp": nil, "FromPort": nil, "ToPort": nil, "IpProtocol": nil,
	"SourceSecurityGroupName": nil, "SourceSecurityGroupOwnerId": nil,
	"IpPermissions": map[string]any{
		"IpProtocol": nil, "FromPort": nil, "ToPort": nil, "UserIdGroupPairs": nil, "PrefixListIds": nil,
		"IpRanges":   map[string]any{"CidrIp": nil, "Description": nil},
		"Ipv6Ranges": map[string]any{"CidrIpv6": nil, "Description": nil},
	},
}

// checkKeys compares every object key of v with the skeleton's.
func checkKeys(path string, v any, skel map[string]any) error {
	switch v := v.(type) {
	case map[string]any:
		for k, child := range v {
			sub, ok := skel[k]
			if !ok {
				return fmt.Errorf("%s: %q is not a field of the CLI input", path, k)
			}
			if m, ok := sub.(map[string]any); ok {
				if err := checkKeys(path+"."+k, child, m); err != nil {
					return err
				}
			}
		}
	case []any:
		for i, e := range v {
			if err := checkKeys(fmt.Sprintf("%s[%d]", path, i), e, skel); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkAWS checks the output's shape against the CLI input skeleton and
// its values against what EC2 accepts, and that it holds the policy's
// rules.
func checkAWS(out []byte, p *Policy) error {
	var generic any
	if err := json.Unmarshal(out, &generic); err != nil {
		return fmt.Errorf("not JSON: %v", err)
	}
	if err := checkKeys("$", generic, awsSkeleton); err != nil {
		return err
	}
	var in struct {
		GroupId       string
		IpPermissions []struct {
			IpProtocol       string
			FromPort, ToPort *int
			IpRanges         []struct{ CidrIp, Description string }
			Ipv6Ranges       []struct{ CidrIpv6, Description string }
		}
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return fmt.Errorf("decode: %v", err)
	}
	if in.GroupId == "" || !strings.HasPrefix(in.GroupId, "sg-") {
		return fmt.Errorf("GroupId %q", in.GroupId)
	}
	if len(in.IpPermissions) == 0 {
		return fmt.Errorf("no IpPermissions")
	}
	type grant struct {
		proto    string
		from, to int
		cidr     string
	}
	var got []grant
	seenPerm := map[[3]string]bool{}
	for i, perm := range in.IpPermissions {
		if perm.IpProtocol != "tcp" && perm.IpProtocol != "udp" {
			return fmt.Errorf("IpPermissions[%d].IpProtocol %q", i, perm.IpProtocol)
		}
		if perm.FromPort == nil || perm.ToPort == nil {
			return fmt.Errorf("IpPermissions[%d] without FromPort or ToPort", i)
		}
		if *perm.FromPort < 0 || *perm.ToPort > 65535 || *perm.FromPort > *perm.ToPort {
			return fmt.Errorf("IpPermissions[%d] ports %d-%d", i, *perm.FromPort, *perm.ToPort)
		}
		key := [3]string{perm.IpProtocol, fmt.Sprint(*perm.FromPort), fmt.Sprint(*perm.ToPort)}
		if seenPerm[key] {
			return fmt.Errorf("IpPermissions[%d]: %v twice", i, key)
		}
		seenPerm[key] = true
		if len(perm.IpRanges)+len(perm.Ipv6Ranges) == 0 {
			return fmt.Errorf("IpPermissions[%d] allows nobody", i)
		}
		seen := map[string]bool{}
		check := func(cidr, desc string, want6 bool) error {
			pfx, err := netip.ParsePrefix(cidr)
			if err != nil || pfx != pfx.Masked() || pfx.Addr().Is6() != want6 || pfx.String() != cidr {
				return fmt.Errorf("IpPermissions[%d]: %q is not a canonical %s CIDR", i, cidr, map[bool]string{false: "IPv4", true: "IPv6"}[want6])
			}
			if seen[cidr] {
				return fmt.Errorf("IpPermissions[%d]: %s twice (EC2 refuses a duplicate)", i, cidr)
			}
			seen[cidr] = true
			if len(desc) > 255 || awsDescription(desc) != desc {
				return fmt.Errorf("IpPermissions[%d] %s: description %q has characters EC2 refuses", i, cidr, desc)
			}
			got = append(got, grant{perm.IpProtocol, *perm.FromPort, *perm.ToPort, cidr})
			return nil
		}
		for _, r := range perm.IpRanges {
			if err := check(r.CidrIp, r.Description, false); err != nil {
				return err
			}
		}
		for _, r := range perm.Ipv6Ranges {
			if err := check(r.CidrIpv6, r.Description, true); err != nil {
				return err
			}
		}
	}
	var want []grant
	for _, r := range p.Rules {
		for _, port := range r.Ports {
			for _, s := range r.Sources {
				g := grant{string(port.Protocol), int(port.From), int(port.To), s.Prefix.String()}
				if !slices.Contains(want, g) {
					want = append(want, g)
				}
			}
		}
	}
	if len(got) != len(want) {
		return fmt.Errorf("%d grants, the policy has %d", len(got), len(want))
	}
	for _, g := range want {
		if !slices.Contains(got, g) {
			return fmt.Errorf("the policy's %v is missing", g)
		}
	}
	return nil
}

// --- the Kubernetes NetworkPolicy ---

// checkK8s decodes the output strictly (unknown, duplicate or mis-cased
// fields are errors) into the Kubernetes API's own networking/v1 NetworkPolicy, checks
// what the API server would validate for these fields, and that it holds
// the policy's rules.
func checkK8s(out []byte, p *Policy) error {
	// As the API server decodes with field validation Strict: YAML to JSON
	// refusing duplicate keys, then JSON keys matched case-sensitively,
	// unknown and duplicate fields refused.
	js, err := sigsyaml.YAMLToJSONStrict(out)
	if err != nil {
		return fmt.Errorf("YAML: %v", err)
	}
	var np networkingv1.NetworkPolicy
	strict, err := sigsjson.UnmarshalStrict(js, &np, sigsjson.DisallowDuplicateFields, sigsjson.DisallowUnknownFields)
	if err != nil {
		return fmt.Errorf("decode into networking/v1 NetworkPolicy: %v", err)
	}
	if len(strict) > 0 {
		return fmt.Errorf("strict decode into networking/v1 NetworkPolicy: %v", errors.Join(strict...))
	}
	if np.APIVersion != "networking.k8s.io/v1" || np.Kind != "NetworkPolicy" {
		return fmt.Errorf("apiVersion %q kind %q", np.APIVersion, np.Kind)
	}
	if np.Name == "" || !isDNSSubdomain(np.Name) {
		return fmt.Errorf("metadata.name %q", np.Name)
	}
	if !slices.Equal(np.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) {
		return fmt.Errorf("policyTypes %v, want [Ingress]", np.Spec.PolicyTypes)
	}
	if len(np.Spec.Ingress) != len(p.Rules) {
		return fmt.Errorf("%d ingress rules, the policy has %d", len(np.Spec.Ingress), len(p.Rules))
	}
	for i, in := range np.Spec.Ingress {
		r := p.Rules[i]
		if len(in.From) != len(r.Sources) {
			return fmt.Errorf("ingress[%d]: %d peers, want %d", i, len(in.From), len(r.Sources))
		}
		for j, peer := range in.From {
			if peer.IPBlock == nil || peer.PodSelector != nil || peer.NamespaceSelector != nil {
				return fmt.Errorf("ingress[%d].from[%d] is not an ipBlock alone", i, j)
			}
			pfx, err := netip.ParsePrefix(peer.IPBlock.CIDR)
			if err != nil || pfx != pfx.Masked() || pfx != r.Sources[j].Prefix {
				return fmt.Errorf("ingress[%d].from[%d].ipBlock.cidr %q, want %s", i, j, peer.IPBlock.CIDR, r.Sources[j].Prefix)
			}
		}
		if len(in.Ports) != len(r.Ports) {
			return fmt.Errorf("ingress[%d]: %d ports, want %d", i, len(in.Ports), len(r.Ports))
		}
		for j, port := range in.Ports {
			want := r.Ports[j]
			if port.Protocol == nil || string(*port.Protocol) != strings.ToUpper(string(want.Protocol)) {
				got := "none"
				if port.Protocol != nil {
					got = string(*port.Protocol)
				}
				return fmt.Errorf("ingress[%d].ports[%d].protocol %s, want %s", i, j, got, strings.ToUpper(string(want.Protocol)))
			}
			if port.Port == nil || port.Port.Type != intstr.Int || port.Port.IntVal < 1 || port.Port.IntVal > 65535 || port.Port.IntVal != int32(want.From) {
				return fmt.Errorf("ingress[%d].ports[%d].port %v, want %d", i, j, port.Port, want.From)
			}
			switch {
			case want.To == want.From && port.EndPort != nil:
				return fmt.Errorf("ingress[%d].ports[%d]: endPort for a single port", i, j)
			case want.To != want.From && (port.EndPort == nil || *port.EndPort != int32(want.To) || *port.EndPort < port.Port.IntVal):
				return fmt.Errorf("ingress[%d].ports[%d].endPort missing or not %d", i, j, want.To)
			}
		}
	}
	return nil
}

// TestAWSCLIAcceptsInput hands the aws-sg outputs to the AWS CLI itself,
// where one is installed (Debian's awscli; CI does not install it, 94 MB):
// the CLI validates --cli-input-json against EC2's API model before
// sending anything, and the request then goes only to a closed port on
// loopback, with made-up credentials. "Could not connect" means the input
// passed validation; a broken input is refused first.
func TestAWSCLIAcceptsInput(t *testing.T) {
	aws, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("the AWS CLI is not installed (optional: apt-get install awscli)")
	}
	run := func(t *testing.T, input []byte) string {
		t.Helper()
		cmd := exec.Command(aws, "ec2", "authorize-security-group-ingress",
			"--cli-input-json", "file://"+writeTemp(t, "sg.json", input),
			"--endpoint-url", "http://127.0.0.1:9", "--cli-connect-timeout", "2")
		cmd.Env = append(os.Environ(), "AWS_ACCESS_KEY_ID=AKIAEXAMPLEEXAMPLE", "AWS_SECRET_ACCESS_KEY=example",
			"AWS_DEFAULT_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null",
			"AWS_SHARED_CREDENTIALS_FILE=/dev/null", "AWS_MAX_ATTEMPTS=1", "AWS_PAGER=")
		out, _ := cmd.CombinedOutput()
		return string(out)
	}
	for _, sc := range scenarios() {
		out, _, _ := render(t, sc, AWSSG)
		if sc.ro.AWSGroupID == "" {
			out = bytes.ReplaceAll(out, []byte(AWSGroupIDPlaceholder), []byte("sg-01234567"))
		}
		if got := run(t, out); !strings.Contains(got, "Could not connect to the endpoint URL") {
			t.Errorf("%s: the AWS CLI refused the input:\n%s", sc.name, got)
		}
		bad := bytes.Replace(out, []byte(`"FromPort": 5060`), []byte(`"FromPort": "5060"`), 1)
		if got := run(t, bad); !strings.Contains(got, "Parameter validation failed") {
			t.Errorf("%s: the AWS CLI accepted a port given as a string:\n%s", sc.name, got)
		}
	}
}
