package cli

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/erasure"
	"github.com/voicegate/voicegate/internal/records"
	"github.com/voicegate/voicegate/internal/sqlite"
)

// TestRecordsCommands: an operator lists a call's records, reads one (its
// transcript printed, terminal controls neutralised), exports them as JSON
// lines, purges the call; every read and the purge is in the audit log,
// and a purged record no longer opens.
func TestRecordsCommands(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, dir, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	kr, err := envelope.LoadFile(filepath.Join(dir, "keyring.json"), rand.Reader, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := erasure.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer secrets.Close()
	w := records.NewWriter(db, kr, secrets, rand.Reader, time.Now)
	if err := w.EndOfCall(ctx, "C1", json.RawMessage(`{"type":"end-of-call-report","artifact":{"transcript":"User: my code is walnut-42\u001b[2J"}}`)); err != nil {
		t.Fatal(err)
	}
	if err := w.ToolCall(ctx, "C1", records.ToolCall{ToolCallID: "t1", Tool: "book", Arguments: json.RawMessage(`{"date":"2026-12-01"}`), Result: "booked"}); err != nil {
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
	for _, c := range [][]string{{"records"}, {"records", "list"}, {"records", "show"}, {"records", "nope"}} {
		if _, _, code := runCLI(t, nil, append(c, "--data-dir", dir)...); code != 2 {
			t.Errorf("%v: exit %d, want 2", c, code)
		}
	}
}
