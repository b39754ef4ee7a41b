package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/records/writertest"
)

// TestKBCommands: an operator adds a directory of documents to a local
// base, lists them, searches as an assistant would be answered, replaces
// and removes one; every command is in the audit log, without document
// names or the query; wrong bases, formats and arguments are refused
// clearly.
func TestKBCommands(t *testing.T) {
	dir := t.TempDir()
	writertest.SQLite(t, dir, nil, "").DB.Close() // a data dir as serve leaves it
	cfg := filepath.Join(t.TempDir(), "voicegate.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`data_dir: %s
vapi:
  auth: [{mode: bearer, token: "${UNSET_TOKEN}"}]
  knowledge_base:
    default: handbook
    bases:
      handbook: {}
      claims: {search_api: {url: https://search.internal/kb, headers: {Authorization: "Bearer ${UNSET_SEARCH_TOKEN}"}}}
`, dir)), 0o600)
	docs := t.TempDir()
	os.MkdirAll(filepath.Join(docs, "sub"), 0o700)
	os.WriteFile(filepath.Join(docs, "refunds.md"), []byte("# Refunds\n\nCancelled appointments are refunded to the card within five days.\n"), 0o600)
	os.WriteFile(filepath.Join(docs, "sub", "parking-walnut.txt"), []byte("Parking is free behind the clinic.\n"), 0o600)
	os.WriteFile(filepath.Join(docs, "ignored.png"), []byte{0x89, 'P', 'N', 'G'}, 0o600)
	run := func(args ...string) (string, string, int) {
		t.Helper()
		return runCLI(t, nil, append(args, "--config", cfg)...)
	}
	out, errOut, code := run("kb", "add", "handbook", docs)
	if code != 0 || !strings.Contains(out, "added refunds.md in handbook: 1 passage(s)") || !strings.Contains(out, "added parking-walnut.txt") {
		t.Fatalf("add: %d %s %s", code, out, errOut)
	}
	out, _, code = run("kb", "list")
	if code != 0 || !strings.Contains(out, "handbook  parking-walnut.txt  1") || !strings.Contains(out, "refunds.md") {
		t.Fatalf("list: %d %s", code, out)
	}
	out, _, code = run("kb", "search", "handbook", "can", "I", "get", "my", "money", "back", "for", "a", "cancelled", "appointment")
	if code != 0 || !strings.HasPrefix(out, "1. refunds.md, passage 1 — similarity ") || !strings.Contains(out, "   Cancelled appointments are refunded") {
		t.Fatalf("search: %d %s", code, out)
	}
	if out, _, _ := run("kb", "search", "handbook", "xylophone"); !strings.Contains(out, "no passage") {
		t.Fatalf("search without a match: %s", out)
	}
	os.WriteFile(filepath.Join(docs, "refunds.md"), []byte("# Refunds\n\nNo refunds after the appointment.\n"), 0o600)
	if out, _, code := run("kb", "add", "handbook", filepath.Join(docs, "refunds.md")); code != 0 || !strings.HasPrefix(out, "replaced refunds.md") {
		t.Fatalf("replace: %d %s", code, out)
	}
	if out, _, code := run("kb", "remove", "handbook", "parking-walnut.txt"); code != 0 || !strings.Contains(out, "removed parking-walnut.txt from handbook") {
		t.Fatalf("remove: %d %s", code, out)
	}
	if _, errOut, code := run("kb", "remove", "handbook", "parking-walnut.txt"); code != 1 || !strings.Contains(errOut, "no such document") {
		t.Fatalf("remove again: %d %s", code, errOut)
	}
	if out, _, _ := run("kb", "list", "handbook"); strings.Contains(out, "parking") || !strings.Contains(out, "refunds.md") {
		t.Fatalf("list after remove: %s", out)
	}
	out, _, _ = run("audit", "list")
	for _, want := range []string{"kb.add", "kb.list", "kb.search", "kb.remove"} {
		if !strings.Contains(out, want) {
			t.Errorf("audit log lacks %s:\n%s", want, out)
		}
	}
	for _, leak := range []string{"walnut", "refunds.md", "money"} {
		if strings.Contains(out, leak) {
			t.Errorf("the audit log holds %q:\n%s", leak, out)
		}
	}
	bad := filepath.Join(docs, "manual.pdf")
	os.WriteFile(bad, []byte("%PDF-1.4"), 0o600)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"kb"}, 2, "kb needs add"},
		{[]string{"kb", "nope"}, 2, "unknown kb command"},
		{[]string{"kb", "add", "handbook"}, 2, "needs BASE and at least one FILE"},
		{[]string{"kb", "search", "handbook"}, 2, "needs BASE and a QUERY"},
		{[]string{"kb", "search", "handbook", "x", "--limit", "99"}, 2, "--limit"},
		{[]string{"kb", "add", "nobase", docs}, 1, `no knowledge base "nobase"`},
		{[]string{"kb", "add", "claims", docs}, 1, "answered by its search API"},
		{[]string{"kb", "add", "handbook", bad}, 1, "pdftotext"},
		{[]string{"kb", "add", "handbook", filepath.Join(docs, "missing.md")}, 1, "no such file"},
	} {
		_, errOut, code := run(c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: %d %s, want %d %q", c.args, code, errOut, c.code, c.want)
		}
	}
	if _, errOut, code := runCLI(t, nil, "kb", "list"); code != 2 || !strings.Contains(errOut, "needs --config") {
		t.Errorf("without a config: %d %s", code, errOut)
	}
}
