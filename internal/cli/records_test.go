package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/records"
	"github.com/voicegate/voicegate/internal/records/writertest"
)

// TestRecordsCommands: an operator lists a call's records, reads one (its
// transcript printed, terminal controls neutralised), exports them as JSON
// lines, purges the call; every read and the purge is in the audit log,
// and a purged record no longer opens.
func TestRecordsCommands(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := writertest.SQLite(t, dir, nil, "")
	db, w := p.DB, p.Writer
	if err := w.EndOfCall(ctx, records.Call{ID: "C1"}, json.RawMessage(`{"type":"end-of-call-report","artifact":{"transcript":"User: my code is walnut-42\u001b[2J"}}`)); err != nil {
		t.Fatal(err)
	}
	if err := w.ToolCall(ctx, records.Call{ID: "C1"}, records.ToolCall{ToolCallID: "t1", Tool: "book", Arguments: json.RawMessage(`{"date":"2026-12-01"}`), Result: "booked"}); err != nil {
		t.Fatal(err)
	}
	recs, _ := db.CallRecords(ctx, "C1")
	db.Close()
	run := func(args ...string) (string, string, int) {
		t.Helper()
		return runCLI(t, nil, append(args, "--data-dir", dir)...)
	}
	if out, errOut, code := run("records", "list", "--call", "C1"); code != 0 || strings.Count(out, "rec_") != 2 || strings.Contains(out, "walnut") {
		t.Fatalf("list: %d %s %s", code, out, errOut)
	}
	out, errOut, code := run("records", "show", recs[0].ID)
	if code != 0 || !strings.Contains(out, "transcript:\nUser: my code is walnut-42\\u001b[2J") || strings.Contains(out, "\x1b") {
		t.Fatalf("show: %d %q %s", code, out, errOut)
	}
	out, errOut, code = run("records", "export", "--call", "C1")
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, `"result":"booked"`) || strings.Contains(out, "\x1b") {
		t.Fatalf("export: %d %s %s", code, out, errOut)
	}
	if out, errOut, code := run("records", "purge", "--call", "C1"); code != 0 || !strings.Contains(out, "2 record key(s) destroyed") {
		t.Fatalf("purge: %d %s %s", code, out, errOut)
	}
	if _, errOut, code := run("records", "show", recs[0].ID); code != 1 || !strings.Contains(errOut, "purged") {
		t.Fatalf("show after purge: %d %s", code, errOut)
	}
	out, _, _ = run("audit", "list")
	for _, want := range []string{"records.read", "records.export", "records.purge"} {
		if !strings.Contains(out, want) {
			t.Errorf("audit log lacks %s:\n%s", want, out)
		}
	}
	for _, c := range [][]string{{"records"}, {"records", "list"}, {"records", "show"}, {"records", "nope"},
		{"records", "purge", "--call", "C1", "--caller", "+14155550123"}, {"records", "expire", "--call", "C1"}} {
		if _, _, code := runCLI(t, nil, append(c, "--data-dir", dir)...); code != 2 {
			t.Errorf("%v: exit %d, want 2", c, code)
		}
	}
}

// TestRecordsByCaller: an operator lists, exports and purges a caller's
// records by number, written as people write it; the audit log names the
// caller by keyed hash only, never the number. expire applies the
// configured retention.
func TestRecordsByCaller(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := writertest.SQLite(t, dir, nil, "")
	const number = "+14155550123"
	for _, call := range []string{"A1", "A2", "B1"} {
		caller := number
		if call == "B1" {
			caller = "+14155550999"
		}
		if err := p.Writer.EndOfCall(ctx, records.Call{ID: call, Caller: caller}, json.RawMessage(`{"transcript":"hi"}`)); err != nil {
			t.Fatal(err)
		}
	}
	h := p.Writer.CallerHash(number)
	p.DB.Close()
	run := func(args ...string) (string, string, int) {
		t.Helper()
		return runCLI(t, nil, append(args, "--data-dir", dir)...)
	}
	if out, errOut, code := run("records", "list", "--caller", "+1 (415) 555-0123"); code != 0 || !strings.Contains(out, "A1") || !strings.Contains(out, "A2") || strings.Contains(out, "B1") {
		t.Fatalf("list by caller: %d %s %s", code, out, errOut)
	}
	if out, errOut, code := run("records", "export", "--caller", number); code != 0 || strings.Count(out, "\n") != 2 {
		t.Fatalf("export by caller: %d %s %s", code, out, errOut)
	}
	if _, errOut, code := run("records", "list", "--caller", "4155550123"); code != 0 || !strings.Contains(errOut, "E.164") {
		t.Fatalf("a national number: %d %s", code, errOut)
	}
	out, errOut, code := run("records", "purge", "--caller", number)
	if code != 0 || !strings.Contains(out, "2 call(s) erased") || !strings.Contains(out, "caller:"+h) {
		t.Fatalf("purge by caller: %d %s %s", code, out, errOut)
	}
	if out, _, _ := run("records", "export", "--caller", number); out != "" {
		t.Fatalf("the purged caller still exports: %s", out)
	}
	if out, _, _ := run("records", "export", "--call", "B1"); !strings.Contains(out, `"content"`) {
		t.Fatalf("another caller's call no longer opens: %s", out)
	}
	out, _, _ = run("audit", "list")
	if !strings.Contains(out, "caller:"+h) || strings.Contains(out, "5550123") {
		t.Fatalf("the audit log should name the caller by hash only:\n%s", out)
	}
	// expire needs a retention period; with one, it applies it now.
	if _, errOut, code := run("records", "expire"); code != 1 || !strings.Contains(errOut, "retention") {
		t.Fatalf("expire without retention: %d %s", code, errOut)
	}
	cfgPath := filepath.Join(t.TempDir(), "vg.yaml")
	os.WriteFile(cfgPath, []byte("data_dir: "+dir+"\nrecords:\n  retention:\n    end_of_call_report: 1h\n"), 0o600)
	if out, errOut, code := runCLI(t, nil, "records", "expire", "--config", cfgPath); code != 0 || !strings.Contains(out, "deleted 0 end-of-call") {
		t.Fatalf("expire: %d %s %s", code, out, errOut)
	}
}
