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

// TestBargeinEvalWithConfig: --config takes the lists of a configuration's
// bargein section (a language with --language); the policy's defaults
// otherwise.
func TestBargeinEvalWithConfig(t *testing.T) {
	dir := t.TempDir()
	cases := filepath.Join(dir, "cases.jsonl")
	os.WriteFile(cases, []byte(`{"id":"de","events":[`+
		`{"message":{"type":"speech-update","role":"assistant","status":"started","timestamp":1000}},`+
		`{"message":{"type":"transcript","role":"user","transcriptType":"partial","transcript":"ja genau","timestamp":1100}},`+
		`{"message":{"type":"transcript","role":"user","transcriptType":"partial","transcript":"Moment!","timestamp":1200},"expect":"interrupt"}]}`+"\n"), 0o600)
	cfg := filepath.Join(dir, "voicegate.yaml")
	os.WriteFile(cfg, []byte("vapi: {auth: [{mode: hmac, secrets: [\"${UNSET_SECRET}\"]}]}\nbargein:\n  languages:\n    de: {backchannels: [ja, genau], interruptions: [moment]}\n"), 0o600)
	out := filepath.Join(dir, "out.jsonl")
	// German lists: exact. The default lists: "ja genau" is two content
	// words (a false interrupt), "Moment!" one (a miss).
	for args, want := range map[string]string{
		"--config " + cfg + " --language de": "cases 1, decided exactly right 1",
		"--config " + cfg:                    "cases 1, decided exactly right 0",
		"":                                   "cases 1, decided exactly right 0",
	} {
		stdout, stderr, code := runCLI(t, nil, append([]string{"bargein", "eval", "--cases", cases, "--decisions", out}, strings.Fields(args)...)...)
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("%s: %d %s %s", args, code, stdout, stderr)
		}
	}
	for _, args := range []string{"--language de", "--config " + cfg + " --language fr"} {
		if _, _, code := runCLI(t, nil, append([]string{"bargein", "eval", "--cases", cases, "--decisions", out}, strings.Fields(args)...)...); code != 2 {
			t.Errorf("%s: exit %d, want 2", args, code)
		}
	}
	os.WriteFile(cfg, []byte("bargein:\n  min_words: -1\n"), 0o600)
	if _, errOut, code := runCLI(t, nil, "bargein", "eval", "--cases", cases, "--decisions", out, "--config", cfg); code != 1 || !strings.Contains(errOut, "bargein.min_words") {
		t.Fatalf("an invalid section: %d %s", code, errOut)
	}
}
