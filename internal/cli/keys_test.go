package cli

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/audit"
	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/erasure"
	"github.com/voicegate/voicegate/internal/knowledge/library"
	"github.com/voicegate/voicegate/internal/records"
	"github.com/voicegate/voicegate/internal/records/writertest"
	"github.com/voicegate/voicegate/internal/sqlite"
)

// TestKeysCommands: list shows the keys and how many records each seals;
// rotate adds a current key; rewrap moves the records to it; retire
// refuses a key a running voicegate may still use, and one still in use.
func TestKeysCommands(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p := writertest.SQLite(t, dir, nil, "")
	db, kr, secrets, w := p.DB, p.Keys, p.Secrets, p.Writer
	_ = kr
	for _, id := range []string{"t1", "t2", "t3"} {
		if err := w.ToolCall(ctx, records.Call{ID: "c1"}, records.ToolCall{ToolCallID: id, Tool: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	lib := library.New(library.Deps{Store: db, Keys: kr, LookupKey: kr.LookupKey(), Erasure: secrets})
	if _, err := lib.Add(ctx, "handbook", "en", "a.txt", []byte("Opening hours"), library.Text); err != nil {
		t.Fatal(err)
	}
	db.Close()
	first := kr.Current()
	keys := func(args ...string) (string, string, int) {
		t.Helper()
		return runCLI(t, nil, append([]string{"keys"}, append(args, "--data-dir", dir)...)...)
	}
	if out, errOut, code := keys("list"); code != 0 || !strings.Contains(out, "* "+first+"  3 record(s)") {
		t.Fatalf("list: %d %s %s", code, out, errOut)
	}
	out, errOut, code := keys("rotate")
	if code != 0 || !strings.Contains(out, "new current key") {
		t.Fatalf("rotate: %d %s %s", code, out, errOut)
	}
	if _, errOut, code := keys("retire", first); code != 1 || !strings.Contains(errOut, "still wraps 3 record(s)") {
		t.Fatalf("retire of a key in use: %d %s", code, errOut)
	}
	if out, errOut, code := keys("rewrap"); code != 0 || !strings.Contains(out, "3 record(s) and 1 knowledge-base document(s) or webhook secret(s) rewrapped") {
		t.Fatalf("rewrap: %d %s %s", code, out, errOut)
	}
	if _, errOut, code := keys("retire", first); code != 1 || !strings.Contains(errOut, "may still wrap with it") {
		t.Fatalf("retire right after a rotation: %d %s", code, errOut)
	}
	// A mistyped directory is an error, not a new database and keyring.
	empty := t.TempDir()
	if _, errOut, code := runCLI(t, nil, "audit", "verify", "--data-dir", empty); code != 1 || !strings.Contains(errOut, "no database in") {
		t.Fatalf("verify of an empty directory: %d %s", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(empty, "keyring.json")); err == nil {
		t.Fatal("a command created a keyring")
	}
	for _, c := range [][]string{{"keys"}, {"keys", "nope"}, {"keys", "retire"}, {"keys", "list"}} {
		if _, _, code := runCLI(t, nil, c...); code != 2 {
			t.Errorf("%v: exit %d, want 2", c, code)
		}
	}
}

// TestAuditCommands: key operations are in the audit log; verify says the
// chain is intact, and names the entry an attacker edited in the database.
func TestAuditCommands(t *testing.T) {
	dir := t.TempDir()
	// The data directory of a voicegate that has served: its database and keyring.
	if db, err := sqlite.Open(context.Background(), dir, sqlite.DefaultConfig()); err == nil {
		db.Close()
	}
	if _, err := envelope.LoadFile(filepath.Join(dir, "keyring.json"), rand.Reader, time.Now); err != nil {
		t.Fatal(err)
	}
	if secrets, err := erasure.Open(context.Background(), dir); err == nil {
		secrets.Close()
	}
	run := func(args ...string) (string, string, int) {
		t.Helper()
		return runCLI(t, nil, append(args, "--data-dir", dir)...)
	}
	if _, errOut, code := run("keys", "rotate"); code != 0 {
		t.Fatalf("rotate: %s", errOut)
	}
	if _, errOut, code := run("keys", "rewrap"); code != 0 {
		t.Fatalf("rewrap: %s", errOut)
	}
	out, errOut, code := run("audit", "list")
	if code != 0 || !strings.Contains(out, "keys.rotate") || !strings.Contains(out, "keys.rewrap") || !strings.Contains(out, "cli") {
		t.Fatalf("audit list: %d %s %s", code, out, errOut)
	}
	if out, errOut, code := run("audit", "verify"); code != 0 || !strings.Contains(out, "intact: 2 entries") {
		t.Fatalf("verify: %d %s %s", code, out, errOut)
	}
	db, err := sqlite.Open(context.Background(), dir, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	if err := db.InsertAudit(context.Background(), audit.Entry{Seq: 3, Event: "forged", Prev: make([]byte, 32), Hash: make([]byte, 32)}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, errOut, code := run("audit", "verify"); code != 1 || !strings.Contains(errOut, "NOT intact") || !strings.Contains(errOut, "audit entry 3") {
		t.Fatalf("verify of a forged entry: %d %s", code, errOut)
	}
}
