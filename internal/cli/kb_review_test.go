package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/records/writertest"
)

// kbReviewSetup is a data directory as serve leaves it and a config with
// one local base, handbook.
func kbReviewSetup(t *testing.T, bases string) (dataDir, cfg string) {
	t.Helper()
	dataDir = t.TempDir()
	writertest.SQLite(t, dataDir, nil, "").DB.Close()
	cfg = filepath.Join(t.TempDir(), "voicegate.yaml")
	writeKBConfig(t, cfg, dataDir, bases)
	return dataDir, cfg
}

func writeKBConfig(t *testing.T, cfg, dataDir, bases string) {
	t.Helper()
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`data_dir: %s
vapi:
  auth: [{mode: bearer, token: "${UNSET_TOKEN}"}]
  knowledge_base:
    bases:
%s
`, dataDir, bases)), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestKBRemoveOfABaseNoLongerConfigured: documents are personal data; a
// base taken out of the config (or turned into a search API) must not
// leave documents behind that no command can remove.
func TestKBRemoveOfABaseNoLongerConfigured(t *testing.T) {
	dataDir, cfg := kbReviewSetup(t, "      handbook: {}\n      old: {}")
	doc := filepath.Join(t.TempDir(), "patients.txt")
	os.WriteFile(doc, []byte("Alice Example is treated on Mondays.\n"), 0o600)
	if _, errOut, code := runCLI(t, nil, "kb", "add", "old", doc, "--config", cfg); code != 0 {
		t.Fatalf("add: %d %s", code, errOut)
	}
	for _, bases := range []string{
		"      handbook: {}",
		"      handbook: {}\n      old: {search_api: {url: https://search.internal/kb}}",
	} {
		writeKBConfig(t, cfg, dataDir, bases)
		out, _, code := runCLI(t, nil, "kb", "list", "--config", cfg)
		if code != 0 || !strings.Contains(out, "patients.txt") {
			t.Fatalf("list: %d %s", code, out)
		}
		if out, _, code := runCLI(t, nil, "kb", "list", "old", "--config", cfg); code != 0 || !strings.Contains(out, "patients.txt") {
			t.Fatalf("list old: %d %s", code, out)
		}
		if _, errOut, code := runCLI(t, nil, "kb", "search", "old", "monday", "--config", cfg); code != 1 || !strings.Contains(errOut, "old") {
			t.Fatalf("search of a base not local: %d %s", code, errOut)
		}
		if _, errOut, code := runCLI(t, nil, "kb", "add", "old", doc, "--config", cfg); code != 1 {
			t.Fatalf("add to a base not local: %d %s", code, errOut)
		}
	}
	out, errOut, code := runCLI(t, nil, "kb", "remove", "old", "patients.txt", "--config", cfg)
	if code != 0 || !strings.Contains(out, "removed patients.txt from old") {
		t.Fatalf("remove: %d %s %s", code, out, errOut)
	}
	if out, _, _ := runCLI(t, nil, "kb", "list", "--config", cfg); strings.Contains(out, "patients") {
		t.Fatalf("still listed: %s", out)
	}
	if _, errOut, code := runCLI(t, nil, "kb", "remove", "Bad Name!", "x.txt", "--config", cfg); code != 1 || !strings.Contains(errOut, "Bad Name!") {
		t.Fatalf("a name that is no base's: %d %s", code, errOut)
	}
}
