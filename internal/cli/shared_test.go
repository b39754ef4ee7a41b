package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/voicegate/voicegate/internal/app"
	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/postgres/pgtest"
	"github.com/voicegate/voicegate/internal/records"
)

// TestOperatorCommandsOnASharedStore: with storage.driver postgres, the
// operator's commands run from a machine with an empty data_dir of its
// own read and erase what a replica wrote — records list/show/purge,
// calls show/list (before: "no database"), audit verify of the chain the
// replica and the commands appended to — and see tampering.
func TestOperatorCommandsOnASharedStore(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	key := func() string {
		b := make([]byte, 32)
		rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	kb, _ := json.Marshal(map[string]any{"version": 1, "current": "k1", "lookup_key": key(),
		"keys": []map[string]any{{"id": "k1", "created": time.Now().UTC(), "key": key()}}})
	dirs := map[string]string{"replica": t.TempDir(), "operator": t.TempDir()}
	env := func(who string) func(string) string {
		return func(k string) string {
			switch k {
			case "VG_KEYRING":
				return string(kb)
			case "VG_DATA":
				return dirs[who]
			case "VG_PG":
				return url
			}
			return ""
		}
	}
	cfgPath := writeTemp(t, `
data_dir: ${VG_DATA}
vapi:
  auth:
    - mode: hmac
      secrets: [k3J9xQ2mV7pL5nR8wT4z]
records:
  keyring_env: VG_KEYRING
storage:
  driver: postgres
  postgres_url: ${VG_PG}
`)
	cfg, err := config.Load(cfgPath, config.Options{Getenv: env("replica")})
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(ctx, cfg, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	t0 := time.UnixMilli(1_795_000_000_000)
	for _, err := range []error{
		a.Store.CreateCall(ctx, calls.Record{ID: "call-1", AssistantID: "asst-1", Status: "in-progress", CreatedAt: t0}),
		a.Store.RecordStatus(ctx, "call-1", calls.StatusChange{Status: "in-progress", At: t0}),
		a.Records.EndOfCall(ctx, records.Call{ID: "call-1"}, json.RawMessage(`{"artifact":{"transcript":"hello there"}}`)),
		a.Records.EndOfCall(ctx, records.Call{ID: "call-2"}, json.RawMessage(`{"artifact":{"transcript":"erase me"}}`)),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	a.AuditEvent("config.reload", "", "applied")

	op := env("operator")
	out, errOut, code := runCLI(t, op, "calls", "show", "call-1", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "status           in-progress") {
		t.Fatalf("calls show on PostgreSQL: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := runCLI(t, op, "calls", "list", "--config", cfgPath); code != 0 || !strings.Contains(out, "call-1") {
		t.Fatalf("calls list on PostgreSQL: exit %d\n%s%s", code, out, errOut)
	}
	if _, errOut, code := runCLI(t, op, "calls", "show", "nope", "--config", cfgPath); code != 1 || !strings.Contains(errOut, "no call nope in PostgreSQL at postgres://REDACTED@127.0.0.1") {
		t.Fatalf("an unknown call: exit %d %s", code, errOut)
	}
	recs, err := a.Records.Store().CallRecords(ctx, "call-1")
	if err != nil || len(recs) != 1 {
		t.Fatalf("%d %v", len(recs), err)
	}
	if out, errOut, code := runCLI(t, op, "records", "show", recs[0].ID, "--config", cfgPath); code != 0 || !strings.Contains(out, "hello there") {
		t.Fatalf("records show of the replica's record: exit %d\n%s%s", code, out, errOut)
	}
	if out, errOut, code := runCLI(t, op, "records", "purge", "--call", "call-2", "--config", cfgPath); code != 0 || !strings.Contains(out, "call call-2 erased") {
		t.Fatalf("records purge: exit %d\n%s%s", code, out, errOut)
	}
	erased, err := a.Records.Store().CallRecords(ctx, "call-2")
	if err != nil || len(erased) != 1 {
		t.Fatalf("%d %v", len(erased), err)
	}
	if _, err := a.Records.Open(ctx, erased[0]); !errors.Is(err, records.ErrShredded) {
		t.Fatalf("the replica opens a record the operator erased: %v", err)
	}
	out, errOut, code = runCLI(t, op, "audit", "verify", "--config", cfgPath)
	if code != 0 || !strings.Contains(out, "audit log intact") {
		t.Fatalf("audit verify: exit %d\n%s%s", code, out, errOut)
	}
	for who, dir := range dirs {
		for _, name := range []string{"erasure.db", "audit.key", "audit-head.json"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				t.Errorf("%s in the %s's data_dir", name, who)
			}
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE audit_log SET actor = 'someone else' WHERE seq = 1`); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runCLI(t, op, "audit", "verify", "--config", cfgPath); code != 1 || !strings.Contains(errOut, "NOT intact") || !strings.Contains(errOut, "entry 1") {
		t.Fatalf("audit verify of a tampered chain: exit %d\n%s%s", code, out, errOut)
	}
}
