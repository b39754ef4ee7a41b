package metrics_test

// These tests keep docs/monitoring.md in step with the registry: every metric
// voicegate registers is documented with its type and labels, nothing else is,
// and the label values the doc lists are the ones the code can produce.
//
// How the doc is read (keep docs/monitoring.md in this shape):
//   - Metrics: every Markdown table row whose first cell is a backticked name
//     starting with voicegate_ documents that metric: | `name` | type | labels | meaning |.
//     The labels cell holds the label names in backticks (or "—" for none).
//   - Label values: every table row whose first cell is a backticked label name
//     and whose second cell names one or more metrics in backticks:
//     | `label` | `metric`, `metric` | `value`, `value`, … text |.
//     The backticked words of the third cell are the documented values.

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/bargein"
	"github.com/voicegate/voicegate/internal/dispatch"
	"github.com/voicegate/voicegate/internal/health"
	"github.com/voicegate/voicegate/internal/metrics"
)

const (
	repoRoot      = "../.."
	monitoringDoc = repoRoot + "/docs/monitoring.md"
)

// family is one registered metric: its type ("counter", "gauge",
// "histogram", …) and its label names.
type family struct {
	typ    string
	labels []string
}

// registered builds the registry the way the app does (metrics.New with the
// replica, then the store's ObserveWAL), puts one observation in every
// vector so that labelled metrics are gathered, and returns every family by
// name, with its labels less replica (on every metric, documented once). It
// fails if a collector of the Metrics struct is missing from what was
// gathered (a new vector that this function does not observe yet), or if a
// metric lacks the replica label.
func registered(t *testing.T) map[string]family {
	t.Helper()
	zero := func() float64 { return 0 }
	m := metrics.New(zero, zero, zero, metrics.WithReplica("gw-1"))
	m.ObserveWAL(zero, zero, zero)
	m.ObserveReady(zero)
	m.ObserveRedis(zero, zero)
	m.StateLocal.WithLabelValues("refused").Inc()
	m.ForType("vapi", "tool-calls").Observe(metrics.OutcomeOK, time.Millisecond)
	m.ObserveTool("t", "ok", time.Millisecond)
	m.AuthFailures.WithLabelValues("vapi", "missing").Inc()
	m.DeadlineWarnings.WithLabelValues("vapi", "tool-calls").Inc()
	m.StoreErrors.WithLabelValues("create_call").Inc()
	m.ConfigReloads.WithLabelValues("ok").Inc()
	m.BargeinDecisions.WithLabelValues("interrupt", "content_words").Inc()
	m.ControlMessages.WithLabelValues("say", "ok").Inc()
	m.ControlLatency.WithLabelValues("say").Observe(0.01)
	m.AsyncJobs.WithLabelValues("getBalance", "enqueued").Inc()
	m.DroppedFields.WithLabelValues("tool-calls", "timestamp").Inc()
	m.KnowledgeSearches.WithLabelValues("local", "documents").Inc()
	m.KnowledgeLatency.WithLabelValues("local").Observe(0.001)
	m.DependencyUp.WithLabelValues(health.Postgres).Set(1)

	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]family{}
	for _, mf := range mfs {
		f := family{typ: strings.ToLower(mf.GetType().String())}
		if ms := mf.GetMetric(); len(ms) > 0 {
			replica := ""
			for _, lp := range ms[0].GetLabel() {
				if lp.GetName() == metrics.ReplicaLabel {
					replica = lp.GetValue()
					continue
				}
				f.labels = append(f.labels, lp.GetName())
			}
			if replica != "gw-1" {
				t.Errorf("%s has no replica label", mf.GetName())
			}
		}
		sort.Strings(f.labels)
		out[mf.GetName()] = f
	}

	// Every voicegate_ metric the registry describes must have been
	// gathered: a new vector needs one observation above.
	descName := regexp.MustCompile(`^Desc\{fqName: "([^"]+)"`)
	ch := make(chan *prometheus.Desc)
	go func() { m.Registry.Describe(ch); close(ch) }()
	described := 0
	for d := range ch {
		mm := descName.FindStringSubmatch(d.String())
		if mm == nil {
			t.Errorf("cannot read the name of %s", d)
			continue
		}
		if _, ok := out[mm[1]]; !ok && strings.HasPrefix(mm[1], "voicegate_") {
			t.Errorf("%s is registered but was not gathered: observe it once in registered()", mm[1])
		}
		described++
	}
	if described < len(out) {
		t.Fatalf("the registry describes %d metrics but %d were gathered", described, len(out))
	}
	return out
}

func bargeinCodes() []string {
	var out []string
	for _, c := range bargein.Codes {
		out = append(out, string(c))
	}
	return out
}

// codeLabelValues returns, for each "metric/label" whose values the code
// enumerates, every value the code can produce; exact says whether the doc
// must list exactly these (true) or at least these (false: the label also
// takes configured names, e.g. tool).
func codeLabelValues(t *testing.T) map[string]struct {
	values []string
	exact  bool
} {
	t.Helper()
	type vals = struct {
		values []string
		exact  bool
	}
	types := dispatch.NewSource("/webhook/vapi", nil).Types()
	var reasons []string
	for _, r := range auth.Reasons {
		reasons = append(reasons, string(r))
	}
	toolOutcomes := constsOfType(t, repoRoot+"/internal/tools", "Outcome")
	storeOps := literalArgs(t, repoRoot+"/internal", "StoreErrors.WithLabelValues", 0)
	reloads := literalArgs(t, repoRoot+"/internal", "ConfigReloads.WithLabelValues", 0)
	toolNames := literalArgs(t, repoRoot+"/internal/tools", "observe", 0)
	for name, v := range map[string][]string{"tool outcomes": toolOutcomes, "store ops": storeOps, "reload results": reloads, "tool names": toolNames} {
		if len(v) == 0 {
			t.Fatalf("found no %s in the code: the scan is broken", name)
		}
	}
	return map[string]vals{
		"voicegate_requests_total/type":              {types, true},
		"voicegate_requests_total/outcome":           {metrics.Outcomes, true},
		"voicegate_bargein_decisions_total/reason":   {bargeinCodes(), true},
		"voicegate_bargein_decisions_total/decision": {[]string{"interrupt", "none"}, true},
		"voicegate_request_duration_seconds/type":    {types, true},
		"voicegate_deadline_warnings_total/type":     {types, true},
		"voicegate_auth_failures_total/reason":       {reasons, true},
		"voicegate_tool_calls_total/outcome":         {toolOutcomes, true},
		"voicegate_tool_calls_total/tool":            {toolNames, false},
		"voicegate_tool_duration_seconds/tool":       {toolNames, false},
		"voicegate_store_errors_total/op":            {storeOps, true},
		"voicegate_config_reloads_total/result":      {reloads, true},
		"voicegate_dependency_up/dependency":         {health.Names, true},
	}
}

// goFiles parses the non-test Go files under dir (recursively).
func goFiles(t *testing.T, dir string) []*ast.File {
	t.Helper()
	var files []*ast.File
	fset := token.NewFileSet()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// constsOfType returns the string values of the constants of type typ
// declared in the non-test files of package dir.
func constsOfType(t *testing.T, dir, typ string) []string {
	var out []string
	for _, f := range goFiles(t, dir) {
		ast.Inspect(f, func(n ast.Node) bool {
			vs, ok := n.(*ast.ValueSpec)
			if !ok {
				return true
			}
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != typ {
				return true
			}
			for _, v := range vs.Values {
				if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					out = append(out, s)
				}
			}
			return true
		})
	}
	return uniq(out)
}

// literalArgs returns the string literals passed as argument arg to calls
// whose function expression ends with fn ("StoreErrors.WithLabelValues",
// "observe") in the non-test files under dir.
func literalArgs(t *testing.T, dir, fn string, arg int) []string {
	var out []string
	parts := strings.Split(fn, ".")
	for _, f := range goFiles(t, dir) {
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) <= arg || !endsWith(call.Fun, parts) {
				return true
			}
			if lit, ok := call.Args[arg].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				s, _ := strconv.Unquote(lit.Value)
				out = append(out, s)
			}
			return true
		})
	}
	return uniq(out)
}

// endsWith reports whether expr is a selector chain ending in parts
// (x.StoreErrors.WithLabelValues ends with StoreErrors, WithLabelValues).
func endsWith(expr ast.Expr, parts []string) bool {
	for i := len(parts) - 1; i >= 0; i-- {
		switch e := expr.(type) {
		case *ast.SelectorExpr:
			if e.Sel.Name != parts[i] {
				return false
			}
			expr = e.X
		case *ast.Ident:
			return i == 0 && e.Name == parts[i]
		default:
			return false
		}
	}
	return true
}

func uniq(s []string) []string {
	sort.Strings(s)
	return slices.Compact(s)
}

var (
	backticked = regexp.MustCompile("`([^`]+)`")
	// A table row: | cell | cell | ... |
	tableRow = regexp.MustCompile(`^\|(.*)\|\s*$`)
)

// docRows returns the cells of every table row of the document.
func docRows(t *testing.T, path string) [][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rows [][]string
	for line := range strings.SplitSeq(string(b), "\n") {
		m := tableRow.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		var cells []string
		for c := range strings.SplitSeq(m[1], "|") {
			cells = append(cells, strings.TrimSpace(c))
		}
		rows = append(rows, cells)
	}
	return rows
}

// ticks returns the backticked words of a cell.
func ticks(cell string) []string {
	var out []string
	for _, m := range backticked.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

// docMetric is one metric as the doc documents it.
type docMetric struct {
	typ    string
	labels []string
}

// documentedMetrics reads the metric rows of docs/monitoring.md.
func documentedMetrics(t *testing.T) map[string]docMetric {
	t.Helper()
	out := map[string]docMetric{}
	for _, cells := range docRows(t, monitoringDoc) {
		names := ticks(cells[0])
		if len(names) != 1 || !strings.HasPrefix(names[0], "voicegate_") || len(cells) < 4 {
			continue
		}
		if _, dup := out[names[0]]; dup {
			t.Errorf("%s: %s is documented twice", monitoringDoc, names[0])
		}
		labels := ticks(cells[2])
		sort.Strings(labels)
		out[names[0]] = docMetric{typ: strings.ToLower(strings.TrimSpace(cells[1])), labels: labels}
	}
	if len(out) == 0 {
		t.Fatalf("%s: no metric rows found (| `voicegate_...` | type | labels | meaning |)", monitoringDoc)
	}
	return out
}

// TestMonitoringDocListsEveryMetric: the doc's metric table and the registry
// name the same voicegate_ metrics, with the same types and label names; the
// only other metrics are Go's and the process's, which the doc mentions.
func TestMonitoringDocListsEveryMetric(t *testing.T) {
	reg := registered(t)
	doc := documentedMetrics(t)
	for name, f := range reg {
		if !strings.HasPrefix(name, "voicegate_") {
			if !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
				t.Errorf("%s is registered but is neither voicegate_, go_ nor process_: document it in %s and extend this test", name, monitoringDoc)
			}
			continue
		}
		d, ok := doc[name]
		if !ok {
			t.Errorf("%s is registered but not documented in %s", name, monitoringDoc)
			continue
		}
		if d.typ != f.typ {
			t.Errorf("%s: documented as %q, registered as %q", name, d.typ, f.typ)
		}
		if !slices.Equal(d.labels, f.labels) {
			t.Errorf("%s: documented labels %v, registered %v", name, d.labels, f.labels)
		}
	}
	for name := range doc {
		if _, ok := reg[name]; !ok {
			t.Errorf("%s is documented in %s but not registered", name, monitoringDoc)
		}
	}
	b, _ := os.ReadFile(monitoringDoc)
	for _, prefix := range []string{"`go_*`", "`process_*`"} {
		if !strings.Contains(string(b), prefix) {
			t.Errorf("%s does not mention the %s metrics", monitoringDoc, prefix)
		}
	}
}

// TestMonitoringDocLabelValues: every label of every voicegate_ metric has
// one row in the doc's label-value table, and where the code enumerates the
// values (outcomes, reasons, message types, store operations, reload
// results), the row lists exactly those.
func TestMonitoringDocLabelValues(t *testing.T) {
	reg := registered(t)
	documented := map[string][]string{} // "metric/label" -> values
	for _, cells := range docRows(t, monitoringDoc) {
		if len(cells) < 3 {
			continue
		}
		label, on := ticks(cells[0]), ticks(cells[1])
		if len(label) != 1 || len(on) == 0 || strings.HasPrefix(label[0], "voicegate_") || !strings.HasPrefix(on[0], "voicegate_") {
			continue
		}
		for _, metric := range on {
			key := metric + "/" + label[0]
			if _, dup := documented[key]; dup {
				t.Errorf("%s: the values of %s are documented twice", monitoringDoc, key)
			}
			documented[key] = uniq(ticks(cells[2]))
		}
	}
	for name, f := range reg {
		if !strings.HasPrefix(name, "voicegate_") {
			continue
		}
		for _, l := range f.labels {
			if _, ok := documented[name+"/"+l]; !ok {
				t.Errorf("%s: label %s of %s has no row in the label-value table", monitoringDoc, l, name)
			}
		}
	}
	for key := range documented {
		name, label, _ := strings.Cut(key, "/")
		if f, ok := reg[name]; !ok || !slices.Contains(f.labels, label) {
			t.Errorf("%s: label values documented for %s, which is not a registered label", monitoringDoc, key)
		}
	}
	for key, want := range codeLabelValues(t) {
		got, ok := documented[key]
		if !ok {
			continue // reported above
		}
		want.values = uniq(slices.Clone(want.values))
		if want.exact {
			if !slices.Equal(got, want.values) {
				t.Errorf("%s: %s documented as %v; the code produces %v", monitoringDoc, key, got, want.values)
			}
			continue
		}
		for _, v := range want.values {
			if !slices.Contains(got, v) {
				t.Errorf("%s: %s does not list %q, which the code produces", monitoringDoc, key, v)
			}
		}
	}
}
