package app

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/voicegate/voicegate/internal/audit"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/erasure"
	"github.com/voicegate/voicegate/internal/postgres"
	"github.com/voicegate/voicegate/internal/postgres/pgtest"
	"github.com/voicegate/voicegate/internal/records"
)

// sharedKeyring is a records keyring as records.keyring_env carries it.
func sharedKeyring(t *testing.T) string {
	t.Helper()
	key := func() string {
		b := make([]byte, 32)
		rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	b, err := json.Marshal(map[string]any{"version": 1, "current": "k1", "lookup_key": key(),
		"keys": []map[string]any{{"id": "k1", "created": time.Now().UTC(), "key": key()}}})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// replica starts an app on url with a fresh data_dir of its own and the
// keyring given in VG_KEYRING.
func replica(t *testing.T, url, keyring, extra string) (*App, string, error) {
	t.Helper()
	dir := t.TempDir()
	c, err := config.Parse([]byte(fmt.Sprintf("data_dir: %s\nvapi:\n  auth:\n    - mode: hmac\n      secrets: [%s]\nrecords:\n  keyring_env: VG_KEYRING\nstorage:\n  driver: postgres\n  postgres_url: %s\n%s",
		dir, testSecret, url, extra)), config.Options{Getenv: func(k string) string {
		if k == "VG_KEYRING" {
			return keyring
		}
		return ""
	}})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(context.Background(), c, Options{})
	if err == nil {
		t.Cleanup(func() { a.Close() })
	}
	return a, dir, err
}

// TestReplicasShareRecordsErasureAndAudit: two replicas on one PostgreSQL
// schema, each with a fresh data_dir of its own and the same keyring
// (records.keyring_env). What one seals the other opens; what one erases
// is erased for the other; both append to one audit chain, which
// verifies as one (and shows tampering); nothing is left in a data_dir
// that a replica could not lose.
func TestReplicasShareRecordsErasureAndAudit(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	keyring := sharedKeyring(t)
	a, dirA, err := replica(t, url, keyring, "")
	if err != nil {
		t.Fatal(err)
	}
	report := json.RawMessage(`{"type":"end-of-call-report","summary":"the caller asked about opening hours"}`)
	if err := a.Records.EndOfCall(ctx, records.Call{ID: "call-kept"}, report); err != nil {
		t.Fatal(err)
	}
	if err := a.Records.ToolCall(ctx, records.Call{ID: "call-erased"}, records.ToolCall{ToolCallID: "t1", Tool: "lookup", Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	// Before: "records exist but erasure.db is missing".
	b, dirB, err := replica(t, url, keyring, "")
	if err != nil {
		t.Fatalf("a second replica with an empty data_dir: %v", err)
	}
	rs := b.store.records
	kept, err := rs.CallRecords(ctx, "call-kept")
	if err != nil || len(kept) != 1 {
		t.Fatalf("records of call-kept: %d %v", len(kept), err)
	}
	if got, err := b.Records.Open(ctx, kept[0]); err != nil || !bytes.Equal(got, report) {
		t.Fatalf("the other replica opens the record: %q %v", got, err)
	}
	// Erased through one replica, erased for the other.
	if _, err := a.Records.Purge(ctx, "call-erased"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.erasure.Secret(ctx, "call-erased", false); !errors.Is(err, records.ErrCallErased) {
		t.Fatalf("the other replica's secret of an erased call: %v", err)
	}
	// A late event of the erased call, at the other replica: nothing more
	// of it is kept.
	if err := b.Records.ToolCall(ctx, records.Call{ID: "call-erased"}, records.ToolCall{ToolCallID: "t2", Tool: "lookup", Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}
	erased, err := rs.CallRecords(ctx, "call-erased")
	if err != nil || len(erased) != 1 {
		t.Fatalf("records of call-erased: %d %v", len(erased), err)
	}
	if _, err := b.Records.Open(ctx, erased[0]); !errors.Is(err, records.ErrShredded) {
		t.Fatalf("opening an erased call's record: %v, want ErrShredded", err)
	}

	// Both replicas append at once: one chain.
	var wg sync.WaitGroup
	for i, r := range []*App{a, b} {
		wg.Go(func() {
			for j := range 15 {
				if err := r.Audit.Append(ctx, "records.read", fmt.Sprintf("r%d-%d", i, j), "test"); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	db, err := postgres.Open(ctx, url, postgres.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	key := audit.SharedKey(b.keys.LookupKey())
	rep, err := audit.VerifyShared(ctx, db, key, "")
	if err != nil || rep.Entries < 30 {
		t.Fatalf("the chain of two replicas: %+v %v", rep, err)
	}
	for _, dir := range []string{dirA, dirB} {
		for _, name := range []string{erasure.FileName, "audit.key", "audit-head.json"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				t.Errorf("%s in a replica's data_dir", name)
			}
		}
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE audit_log SET detail = 'nothing' WHERE seq = 7`); err != nil {
		t.Fatal(err)
	}
	var p *audit.Problem
	if _, err := audit.VerifyShared(ctx, db, key, ""); !errors.As(err, &p) || p.Seq != 7 {
		t.Fatalf("a tampered entry: %v, want a problem at 7", err)
	}

	// Secrets elsewhere than where the records' were: refused, not
	// replaced by new ones.
	_, _, err = replica(t, url, keyring, "  erasure_postgres_url: "+pgtest.URL(t)+"\n")
	if err == nil || !strings.Contains(err.Error(), "holds no secret") {
		t.Fatalf("a replica whose erasure store is empty beside records: %v", err)
	}
}

// TestErasureDBMovesIntoPostgres: a replica that kept its secrets in
// erasure.db (before they were shared) moves them into PostgreSQL at
// start, with their tombstones, and removes the file.
func TestErasureDBMovesIntoPostgres(t *testing.T) {
	ctx := context.Background()
	url := pgtest.URL(t)
	keyring := sharedKeyring(t)
	a, dir, err := replica(t, url, keyring, "")
	if err != nil {
		t.Fatal(err)
	}
	a.Close()
	old, err := erasure.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := old.Secret(ctx, "old-call", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.Erase(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	old.Close()
	// The same data_dir again.
	c := *a.Config
	b, err := New(ctx, &c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if erasure.Exists(dir) {
		t.Fatal("erasure.db is still in data_dir after the move")
	}
	if got, err := b.erasure.Secret(ctx, "old-call", false); err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("the moved secret: %v", err)
	}
	if _, err := b.erasure.Secret(ctx, "gone", true); !errors.Is(err, records.ErrCallErased) {
		t.Fatalf("the moved tombstone: %v", err)
	}
}
