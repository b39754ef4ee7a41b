package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBargeinEval: the command scores the public corpus 1.000 / 1.000 and
// writes one decision line per event; usage mistakes exit 2.
func TestBargeinEval(t *testing.T) {
	out := filepath.Join(t.TempDir(), "decisions.jsonl")
	stdout, stderr, code := runCLI(t, nil, "bargein", "eval", "--cases", "../../testdata/bargein/public.jsonl", "--decisions", out)
	if code != 0 || !strings.Contains(stdout, "precision 1.000\nrecall 1.000") || !strings.Contains(stdout, "cases 120, decided exactly right 120") {
		t.Fatalf("%d %s %s", code, stdout, stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var first struct {
		Case     string `json:"case"`
		Event    int    `json:"event"`
		Decision string `json:"decision"`
		Reason   string `json:"reason"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.Case != "case-001" || first.Event != 0 || first.Decision != "none" || first.Reason == "" {
		t.Fatalf("first line %q: %v", lines[0], err)
	}
	for _, args := range [][]string{{"bargein"}, {"bargein", "eval"}, {"bargein", "eval", "--cases", "x"}, {"bargein", "nope"}} {
		if _, _, code := runCLI(t, nil, args...); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
	if _, errOut, code := runCLI(t, nil, "bargein", "eval", "--cases", "/nonexistent", "--decisions", out); code != 1 || !strings.Contains(errOut, "nonexistent") {
		t.Fatalf("a missing corpus: %d %s", code, errOut)
	}
}
