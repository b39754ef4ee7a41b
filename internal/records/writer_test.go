package records_test

import (
	"context"
	"crypto/rand"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/envelope"
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
	w := records.NewWriter(db, kr, rand.Reader, time.Now)
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
		if b, err := w.Open(r); err != nil || len(b) == 0 || r.Key.KeyID != kr.Current() {
			t.Fatalf("record %s under %s after the rewrap: %v", r.ID, r.Key.KeyID, err)
		}
	}
}
