package metrics_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const alertRules = repoRoot + "/deploy/prometheus/voicegate-alerts.yml"

type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadRules(t *testing.T) []rule {
	t.Helper()
	b, err := os.ReadFile(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("%s: %v", alertRules, err)
	}
	var rules []rule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatalf("%s: no rules", alertRules)
	}
	return rules
}

var (
	// A metric name of voicegate's registry (voicegate_, Go's or the
	// process's) and its optional {matchers}. Quoted strings are removed
	// before this runs, so a name can only be an identifier of the query.
	metricRef = regexp.MustCompile(`(?:^|[^A-Za-z0-9_:])((?:voicegate|go|process)_[A-Za-z0-9_:]*)\s*(\{[^}]*\})?`)
	matcher   = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"`)
	quoted    = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	grouping  = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)`)
	// Labels every scraped series has, or that a query adds (replica:
	// voicegate's own, on every metric).
	targetLabels = []string{"job", "instance", "replica"}
)

// seriesOf resolves a name used in a query to its family: a histogram's
// _bucket, _sum and _count series belong to it (le only on _bucket).
func seriesOf(reg map[string]family, name string) (string, family, []string, bool) {
	if f, ok := reg[name]; ok {
		return name, f, nil, true
	}
	for suffix, extra := range map[string][]string{"_bucket": {"le"}, "_sum": nil, "_count": nil} {
		base := strings.TrimSuffix(name, suffix)
		if f, ok := reg[base]; ok && base != name && (f.typ == "histogram" || f.typ == "summary") {
			return base, f, extra, true
		}
	}
	return "", family{}, nil, false
}

// TestAlertRulesNameRegisteredMetrics: every metric a rule's expression
// names is registered by voicegate (histogram suffixes stripped), every label
// it matches on exists on that metric, every value it compares an
// enumerable label with is one the code produces, and every label a rule
// aggregates by (by, without, on, ignoring) exists on a metric it uses.
func TestAlertRulesNameRegisteredMetrics(t *testing.T) {
	reg := registered(t)
	values := codeLabelValues(t)
	for _, r := range loadRules(t) {
		name := r.Alert + r.Record
		var used []family
		usedLabels := slices.Clone(targetLabels)
		for _, m := range metricRef.FindAllStringSubmatch(r.Expr, -1) {
			base, f, extra, ok := seriesOf(reg, m[1])
			if !ok {
				t.Errorf("%s: %s uses %s, which voicegate does not register", alertRules, name, m[1])
				continue
			}
			used = append(used, f)
			labels := append(append(slices.Clone(targetLabels), f.labels...), extra...)
			usedLabels = append(usedLabels, labels...)
			for _, mm := range matcher.FindAllStringSubmatch(m[2], -1) {
				label, op, value := mm[1], mm[2], mm[3]
				if !slices.Contains(labels, label) {
					t.Errorf("%s: %s matches %s on label %q, which it does not have (%v)", alertRules, name, m[1], label, labels)
					continue
				}
				want, ok := values[base+"/"+label]
				if !ok {
					continue
				}
				alts := []string{value}
				if op == "=~" || op == "!~" {
					if strings.ContainsAny(value, `.*+?()[]{}^$\`) {
						continue // a real regular expression: not checked
					}
					alts = strings.Split(value, "|")
				}
				for _, v := range alts {
					if !slices.Contains(want.values, v) {
						t.Errorf("%s: %s compares %s{%s} with %q, a value the code never produces (%v)", alertRules, name, base, label, v, want.values)
					}
				}
			}
		}
		noStrings := quoted.ReplaceAllString(r.Expr, `""`)
		for _, g := range grouping.FindAllStringSubmatch(noStrings, -1) {
			for l := range strings.SplitSeq(g[1], ",") {
				if l = strings.TrimSpace(l); l != "" && !slices.Contains(usedLabels, l) {
					t.Errorf("%s: %s groups by label %q, which none of its metrics has", alertRules, name, l)
				}
			}
		}
		if len(used) == 0 && !strings.Contains(r.Expr, "up{") && !strings.Contains(r.Expr, "up ") {
			t.Errorf("%s: %s names no voicegate metric", alertRules, name)
		}
	}
}

// TestAlertRulesAreComplete: every rule is an alert with a for duration, a
// severity and the summary and description the monitoring guide relies on,
// and the guide explains each alert by name.
func TestAlertRulesAreComplete(t *testing.T) {
	doc, err := os.ReadFile(monitoringDoc)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range loadRules(t) {
		if r.Alert == "" {
			t.Errorf("%s: a rule without an alert name (expr %q)", alertRules, r.Expr)
			continue
		}
		if seen[r.Alert] {
			t.Errorf("%s: %s defined twice", alertRules, r.Alert)
		}
		seen[r.Alert] = true
		if _, err := time.ParseDuration(r.For); err != nil || r.For == "" {
			t.Errorf("%s: %s has no valid for: (%q)", alertRules, r.Alert, r.For)
		}
		if s := r.Labels["severity"]; s != "critical" && s != "warning" {
			t.Errorf("%s: %s has severity %q, want critical or warning", alertRules, r.Alert, s)
		}
		for _, a := range []string{"summary", "description"} {
			if strings.TrimSpace(r.Annotations[a]) == "" {
				t.Errorf("%s: %s has no %s annotation", alertRules, r.Alert, a)
			}
		}
		if !strings.Contains(string(doc), "`"+r.Alert+"`") {
			t.Errorf("%s does not explain alert %s (name it in backticks)", monitoringDoc, r.Alert)
		}
	}
}

// promtool returns the promtool binary, skipping the test when it is absent
// outside CI; under CI=true its absence is a failure (.ci/run installs it).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is not on PATH under CI=true: .ci/run should have installed Debian's prometheus package")
		}
		t.Skip("promtool not on PATH (apt-get install prometheus); CI requires it")
	}
	return p
}

func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, promtool(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestAlertRulesPassPromtoolCheck: the rules file is valid for Prometheus
// (syntax, PromQL, templates).
func TestAlertRulesPassPromtoolCheck(t *testing.T) {
	runPromtool(t, "check", "rules", alertRules)
}

// alertCases are, for every alert, input series under which it must fire
// and how many alerts (label sets) it must then produce at eval. Series are
// written without job and instance, which are added. Each alert must also
// stay silent on healthySeries.
var alertCases = map[string]struct {
	series []string
	eval   string
	want   int
}{
	"VoicegateDown":          {[]string{`up 0x20`}, "10m", 1},
	"VoicegateNotReady":      {[]string{`voicegate_ready 1x5 0x15`}, "15m", 1},
	"VoicegateMetricsAbsent": {[]string{`voicegate_panics_total 0x20`}, "10m", 1},
	"VoicegateRestarting":    {[]string{`process_start_time_seconds 100+60x20`}, "20m", 1},
	"VoicegateRequestErrors": {[]string{
		`voicegate_requests_total{source="vapi",type="status-update",outcome="ok"} 0+60x20`,
		`voicegate_requests_total{source="vapi",type="status-update",outcome="error"} 0+6x20`,
	}, "15m", 1},
	"VoicegateOverloaded": {[]string{
		`voicegate_requests_total{source="vapi",type="none",outcome="overloaded"} 0+5x20`,
		`voicegate_requests_total{source="vapi",type="status-update",outcome="ok"} 0+60x20`,
	}, "15m", 1},
	// The alerts about the service (credentials, tools) add up the
	// replicas: two replicas seeing the same problem make one alert, and
	// two each under the threshold can together pass it.
	"VoicegateAuthFailureSpike": {[]string{
		`voicegate_auth_failures_total{replica="gw-1",source="vapi",reason="mismatch"} 0+4x20`, // 0.067/s each, 0.13/s in all
		`voicegate_auth_failures_total{replica="gw-2",source="vapi",reason="mismatch"} 0+4x20`,
		`voicegate_auth_failures_total{source="vapi",reason="stale"} 0+1x20`,
	}, "15m", 1},
	"VoicegateMostRequestsUnauthorized": {[]string{
		`voicegate_requests_total{replica="gw-1",source="vapi",type="none",outcome="unauthorized"} 0+100x20`,
		`voicegate_requests_total{replica="gw-1",source="vapi",type="status-update",outcome="ok"} 0+10x20`,
		`voicegate_requests_total{replica="gw-2",source="vapi",type="none",outcome="unauthorized"} 0+100x20`,
		`voicegate_requests_total{replica="gw-2",source="vapi",type="status-update",outcome="ok"} 0+10x20`,
	}, "15m", 1},
	"VoicegateExpiredSecretInUse": {[]string{
		`voicegate_auth_failures_total{replica="gw-1",source="vapi",reason="expired_secret"} 0+1x20`,
		`voicegate_auth_failures_total{replica="gw-2",source="vapi",reason="expired_secret"} 0+1x20`,
	}, "15m", 1},
	"VoicegateToolErrorRate": {[]string{
		`voicegate_tool_calls_total{replica="gw-1",tool="a",outcome="ok"} 0+90x20`,
		`voicegate_tool_calls_total{replica="gw-1",tool="a",outcome="timeout"} 0+10x20`,
		`voicegate_tool_calls_total{replica="gw-2",tool="a",outcome="ok"} 0+90x20`,
		`voicegate_tool_calls_total{replica="gw-2",tool="a",outcome="timeout"} 0+10x20`,
		`voicegate_tool_calls_total{tool="b",outcome="ok"} 0+100x20`,
		`voicegate_tool_calls_total{tool="b",outcome="http_error"} 0+1x20`,
		`voicegate_tool_calls_total{tool="unknown",outcome="unknown_tool"} 0+5x20`,
	}, "15m", 1},
	"VoicegateUnknownToolCalls": {[]string{
		`voicegate_tool_calls_total{replica="gw-1",tool="unknown",outcome="unknown_tool"} 0+1x20`,
		`voicegate_tool_calls_total{replica="gw-2",tool="unknown",outcome="unknown_tool"} 0+1x20`,
	}, "15m", 1},
	"VoicegateToolLatencyHigh": {slices.Concat(
		histogram(`voicegate_tool_duration_seconds`, `replica="gw-1",tool="a"`, 50, 2.5), // half of the calls between 2.5 and 5 s
		histogram(`voicegate_tool_duration_seconds`, `replica="gw-2",tool="a"`, 50, 2.5),
		histogram(`voicegate_tool_duration_seconds`, `tool="b"`, 0, 0),
	), "15m", 1},
	"VoicegateToolCallsNearDeadline": {slices.Concat(
		histogram(`voicegate_request_duration_seconds`, `source="vapi",type="tool-calls"`, 5, 10), // 5% over 10 s
		histogram(`voicegate_request_duration_seconds`, `source="vapi",type="function-call"`, 0, 0),
	), "15m", 1},
	"VoicegateAssistantRequestNearDeadline": {slices.Concat(
		histogram(`voicegate_request_duration_seconds`, `source="vapi",type="assistant-request"`, 5, 2.5), // 5% between 2.5 and 5 s
		histogram(`voicegate_request_duration_seconds`, `source="vapi",type="status-update"`, 5, 2.5),
	), "15m", 1},
	"VoicegateSlowAnswers":           {[]string{`voicegate_deadline_warnings_total{source="vapi",type="tool-calls"} 0+1x20`}, "15m", 1},
	"VoicegateDatabaseWriteFailures": {[]string{`voicegate_store_errors_total{op="end_call"} 0+1x20`, `voicegate_store_errors_total{op="checkpoint"} 0+1x20`}, "15m", 1},
	"VoicegateCheckpointFailures":    {[]string{`voicegate_store_errors_total{op="end_call"} 0+1x20`, `voicegate_store_errors_total{op="checkpoint"} 0+1x20`}, "15m", 1},
	"VoicegateWALTooLarge":           {[]string{`voicegate_sqlite_wal_bytes 200000000x20`}, "15m", 1},
	"VoicegateWALRestartBlocked":     {[]string{`voicegate_sqlite_wal_restarts_busy_total 0+1x40`}, "30m", 1},
	"VoicegateReplayEarlyEvictions":  {[]string{`voicegate_replay_early_evictions_total 0+10x20`}, "15m", 1},
	"VoicegateSessionTableFull":      {[]string{`voicegate_sessions_rejected_total 0+1x20`}, "15m", 1},
	"VoicegatePanics":                {[]string{`voicegate_panics_total 0x5 1x15`}, "10m", 1},
	"VoicegateConfigReloadFailed":    {[]string{`voicegate_config_reloads_total{result="error"} 0x5 1x15`, `voicegate_config_reloads_total{result="ok"} 0+1x20`}, "10m", 1},
}

// quietExempt are the alerts quietSeries is not about: they watch series it
// leaves out (absent metrics) or would rightly fire on them.
var quietExempt = map[string]bool{"VoicegateMetricsAbsent": true}

// healthySeries is a gateway at work with nothing wrong: no alert may fire.
var healthySeries = slices.Concat([]string{
	`up 1x40`,
	`voicegate_ready 1x40`,
	`process_start_time_seconds 100x40`,
	`voicegate_requests_total{source="vapi",type="status-update",outcome="ok"} 0+60x40`,
	`voicegate_requests_total{source="vapi",type="tool-calls",outcome="ok"} 0+30x40`,
	`voicegate_requests_total{source="vapi",type="none",outcome="unauthorized"} 0+1x40`,
	`voicegate_requests_total{source="vapi",type="none",outcome="error"} 0x40`,
	`voicegate_requests_total{source="vapi",type="none",outcome="overloaded"} 0x40`,
	`voicegate_auth_failures_total{source="vapi",reason="mismatch"} 0+1x40`,
	`voicegate_auth_failures_total{source="vapi",reason="expired_secret"} 0x40`,
	`voicegate_tool_calls_total{tool="a",outcome="ok"} 0+100x40`,
	`voicegate_tool_calls_total{tool="a",outcome="timeout"} 0+1x40`,
	`voicegate_deadline_warnings_total{source="vapi",type="tool-calls"} 0x40`,
	`voicegate_store_errors_total{op="end_call"} 0x40`,
	`voicegate_store_errors_total{op="checkpoint"} 0x40`,
	`voicegate_sqlite_wal_bytes 5000000x40`,
	`voicegate_sqlite_wal_restarts_total 0+1x40`,
	`voicegate_sqlite_wal_restarts_busy_total 0x40`,
	`voicegate_replay_early_evictions_total 0x40`,
	`voicegate_sessions_rejected_total 0x40`,
	`voicegate_panics_total 0x40`,
	`voicegate_config_reloads_total{result="ok"} 0x5 1x35`,
	`voicegate_config_reloads_total{result="error"} 0x40`,
},
	histogram(`voicegate_tool_duration_seconds`, `tool="a"`, 1, 0.25),
	histogram(`voicegate_request_duration_seconds`, `source="vapi",type="tool-calls"`, 1, 0.25),
	histogram(`voicegate_request_duration_seconds`, `source="vapi",type="assistant-request"`, 1, 0.05),
)

// quietSeries is a night with almost no calls: one scanner request every
// 4 minutes (401) and two lone 5xx answers. Ratios over so little traffic
// mean nothing, so no alert may fire.
var quietSeries = []string{
	`up 1x40`,
	`voicegate_ready 1x40`,
	`process_start_time_seconds 100x40`,
	`voicegate_requests_total{source="vapi",type="status-update",outcome="ok"} 0x40`,
	`voicegate_requests_total{source="vapi",type="none",outcome="unauthorized"} 0 0 0 0 1 1 1 1 2 2 2 2 3 3 3 3 4 4 4 4 5 5 5 5 6 6 6 6 7 7 7 7 8 8 8 8 9 9 9 9`,
	`voicegate_requests_total{source="vapi",type="status-update",outcome="error"} 0x20 1 1 1 1 1 1 1 1 2x11`,
	`voicegate_auth_failures_total{source="vapi",reason="missing"} 0 0 0 0 1 1 1 1 2 2 2 2 3 3 3 3 4 4 4 4 5 5 5 5 6 6 6 6 7 7 7 7 8 8 8 8 9 9 9 9`,
	`voicegate_panics_total 0x40`,
	`voicegate_store_errors_total{op="end_call"} 0x40`,
}

// histogram returns the bucket and count series of a histogram observing
// 100 values a minute, slowPct of them just above the bucket bound slowOver
// (0: none) and the rest under 10 ms.
func histogram(name, labels string, slowPct int, slowOver float64) []string {
	bounds := []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
	var out []string
	for _, le := range bounds {
		n := 100
		if slowPct > 0 && le <= slowOver {
			n = 100 - slowPct
		}
		out = append(out, fmt.Sprintf(`%s_bucket{%s,le="%g"} 0+%dx40`, name, labels, le, n))
	}
	return append(out,
		fmt.Sprintf(`%s_bucket{%s,le="+Inf"} 0+100x40`, name, labels),
		fmt.Sprintf(`%s_count{%s} 0+100x40`, name, labels),
	)
}

// withTarget adds job and instance to a series written without them, and
// replica gw-1 unless it names another (then instance follows it).
func withTarget(s string) string {
	target := `job="voicegate",instance="gw:3000"`
	if !strings.HasPrefix(s, "up ") && !strings.Contains(s, "replica=") {
		target += `,replica="gw-1"`
	}
	if m := regexp.MustCompile(`replica="([^"]+)"`).FindStringSubmatch(s); m != nil {
		target = `job="voicegate",instance="` + m[1] + `:3000"`
	}
	name, values, _ := strings.Cut(s, " ")
	if i := strings.IndexByte(name, '{'); i >= 0 {
		name = name[:i+1] + target + "," + name[i+1:]
	} else {
		name += "{" + target + "}"
	}
	return name + " " + values
}

// TestAlertRulesFireAsIntended runs promtool's rule unit tests, generated
// from the rules file itself: for every alert, its expression (wrapped in
// count) yields the expected number of alerts on series showing the problem
// and nothing on healthy series. This checks the PromQL semantics (vector
// matching of ratios, histogram quantiles, label filters), not just syntax.
func TestAlertRulesFireAsIntended(t *testing.T) {
	bin := promtool(t)
	rules := loadRules(t)
	type sample struct {
		Labels string  `yaml:"labels"`
		Value  float64 `yaml:"value"`
	}
	type exprTest struct {
		Expr       string   `yaml:"expr"`
		EvalTime   string   `yaml:"eval_time"`
		ExpSamples []sample `yaml:"exp_samples"`
	}
	type series struct {
		Series string `yaml:"series"`
		Values string `yaml:"values"`
	}
	type group struct {
		Name        string     `yaml:"name"`
		Interval    string     `yaml:"interval"`
		InputSeries []series   `yaml:"input_series"`
		Tests       []exprTest `yaml:"promql_expr_test"`
	}
	toSeries := func(ss []string) []series {
		var out []series
		for _, s := range ss {
			name, values, _ := strings.Cut(withTarget(s), " ")
			out = append(out, series{Series: name, Values: values})
		}
		return out
	}
	healthy := group{Name: "healthy", Interval: "1m", InputSeries: toSeries(healthySeries)}
	quiet := group{Name: "quiet", Interval: "1m", InputSeries: toSeries(quietSeries)}
	var groups []group
	names := map[string]bool{}
	for _, r := range rules {
		names[r.Alert] = true
		c, ok := alertCases[r.Alert]
		if !ok {
			t.Errorf("alert %s has no case in alertCases: add series under which it fires", r.Alert)
			continue
		}
		expr := "count(" + r.Expr + ")"
		groups = append(groups, group{Name: r.Alert, Interval: "1m", InputSeries: toSeries(c.series),
			Tests: []exprTest{{Expr: expr, EvalTime: c.eval, ExpSamples: []sample{{Labels: "{}", Value: float64(c.want)}}}}})
		healthy.Tests = append(healthy.Tests, exprTest{Expr: expr, EvalTime: "35m"})
		if !quietExempt[r.Alert] {
			for _, at := range []string{"20m", "30m", "39m"} {
				quiet.Tests = append(quiet.Tests, exprTest{Expr: expr, EvalTime: at})
			}
		}
	}
	for name := range alertCases {
		if !names[name] {
			t.Errorf("alertCases has %s, which the rules file does not define", name)
		}
	}
	sort.Slice(groups, func(i, j int) bool { return groups[i].Name < groups[j].Name })
	abs, err := filepath.Abs(alertRules)
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(map[string]any{"rule_files": []string{abs}, "evaluation_interval": "1m", "tests": append(groups, healthy, quiet)})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "voicegate-alerts.test.yml")
	if err := os.WriteFile(file, out, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if b, err := exec.CommandContext(ctx, bin, "test", "rules", file).CombinedOutput(); err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, b)
	}
}
