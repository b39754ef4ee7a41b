package records_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/erasure"
	"github.com/voicegate/voicegate/internal/records"
	"github.com/voicegate/voicegate/internal/sqlite"
)

// TestRotateRewrapRetire on the real SQLite store: records sealed under
// the first key stay readable after a rotation, a rewrap moves them all to
// the new key without touching payloads — resuming after an interruption —
// and only then may the old key be retired.
func TestRotateRewrapRetire(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, dir, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	clock := time.Now()
	kr, err := envelope.LoadFile(filepath.Join(dir, "keyring.json"), rand.Reader, func() time.Time { return clock })
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := erasure.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer secrets.Close()
	w := records.NewWriter(db, kr, secrets, rand.Reader, time.Now)
	const n = 1200 // more than two rewrap batches
	for i := range n {
		if err := w.ToolCall(ctx, "call-1", records.ToolCall{ToolCallID: string(rune('a'+i%26)) + time.Duration(i).String(), Tool: "t", Result: "secret"}); err != nil {
			t.Fatal(err)
		}
	}
	old := kr.Current()
	if _, err := kr.Rotate(); err != nil {
		t.Fatal(err)
	}
	// An interrupted rewrap: cancelled after the first batch.
	cctx, cancel := context.WithCancel(ctx)
	done, err := w.Rewrap(cctx, func(int) { cancel() })
	if !errors.Is(err, context.Canceled) || done != records.RewrapBatch {
		t.Fatalf("interrupted rewrap: %d done, %v", done, err)
	}
	clock = clock.Add(envelope.RetireAfter + time.Second)
	if err := w.CheckRetire(ctx, old); !errors.Is(err, records.ErrKeyInUse) {
		t.Fatalf("retire with records still under the key: %v", err)
	}
	rest, err := w.Rewrap(ctx, nil)
	if err != nil || rest != n-records.RewrapBatch {
		t.Fatalf("resumed rewrap: %d %v, want %d", rest, err, n-records.RewrapBatch)
	}
	if err := w.CheckRetire(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := kr.Retire(old); err != nil {
		t.Fatal(err)
	}
	recs, err := db.CallRecords(ctx, "call-1")
	if err != nil || len(recs) != n {
		t.Fatalf("%d records %v", len(recs), err)
	}
	for _, r := range recs {
		if b, err := w.Open(ctx, r); err != nil || len(b) == 0 || r.Key.KeyID != kr.Current() {
			t.Fatalf("record %s under %s after the rewrap: %v", r.ID, r.Key.KeyID, err)
		}
	}
}

// copyDB copies a SQLite database (with its write-ahead log) to a new
// directory: a backup taken at that moment.
func copyDB(t *testing.T, from string) string {
	t.Helper()
	to := t.TempDir()
	for _, name := range []string{"voicegate.db", "voicegate.db-wal"} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			if name == "voicegate.db-wal" && errors.Is(err, os.ErrNotExist) {
				continue
			}
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// TestPurgeDefeatsAnEarlierBackup: a purge erases the call's secret, so a
// copy of the database taken before it, opened with the current keyring,
// opens none of the call's records — while another call's still open.
func TestPurgeDefeatsAnEarlierBackup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, dir, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
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
	for _, call := range []string{"gone", "kept"} {
		if err := w.EndOfCall(ctx, call, []byte(`{"transcript":"my number is +15557654321"}`)); err != nil {
			t.Fatal(err)
		}
	}
	backupDir := copyDB(t, dir)
	if n, err := w.Purge(ctx, "gone"); err != nil || n != 1 {
		t.Fatalf("purge: %d %v", n, err)
	}
	backup, err := sqlite.Open(ctx, backupDir, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer backup.Close()
	fromBackup := records.NewWriter(backup, kr, secrets, rand.Reader, time.Now)
	for call, wantOpen := range map[string]bool{"gone": false, "kept": true} {
		recs, err := backup.CallRecords(ctx, call)
		if err != nil || len(recs) != 1 || recs[0].Key.KeyID == "" {
			t.Fatalf("%s in the backup: %v %v", call, recs, err)
		}
		b, err := fromBackup.Open(ctx, recs[0])
		if wantOpen && (err != nil || len(b) == 0) {
			t.Fatalf("another call's record no longer opens from the backup: %v", err)
		}
		if !wantOpen && !errors.Is(err, records.ErrShredded) {
			t.Fatalf("the purged call's record opens from a backup taken before the purge: %v %q", err, b)
		}
		if !wantOpen {
			// Someone with the backup and the keyring uses their own code,
			// not Open: without the call's secret the envelope must not open.
			r := recs[0]
			for _, aad := range [][]byte{r.AAD(), append(r.AAD(), make([]byte, 32)...)} {
				if pt, err := envelope.Open(kr, envelope.Sealed{Key: r.Key, Payload: r.Payload}, aad); err == nil {
					t.Fatalf("the purged record opens without its call's secret: %q", pt)
				}
			}
		}
	}
	// A live call purged stays erased: its next event keeps nothing.
	if err := w.ToolCall(ctx, "gone", records.ToolCall{ToolCallID: "later", Tool: "t", Arguments: []byte(`{"ssn":"123-45-6789"}`)}); err != nil {
		t.Fatal(err)
	}
	if recs, _ := db.CallRecords(ctx, "gone"); len(recs) != 1 {
		t.Fatalf("an erased call got %d records, want its 1 shredded one", len(recs))
	}
}
