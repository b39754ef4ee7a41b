package erasure_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/erasure"
	"github.com/voicegate/voicegate/internal/erasure/erasuretest"
)

// TestContract: the SQLite store meets the contract PostgreSQL's meets too.
func TestContract(t *testing.T) {
	erasuretest.Run(t, func(t *testing.T) erasure.Secrets {
		s, err := erasure.Open(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestExport: every call the store knows, with its secret, tombstone and
// idle mark, for the move into PostgreSQL; Remove leaves no file behind.
func TestExport(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := erasure.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	kept, err := s.Secret(ctx, "kept", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Secret(ctx, "erased", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Erase(ctx, "erased"); err != nil {
		t.Fatal(err)
	}
	idle := time.UnixMilli(1_795_000_000_000)
	if err := s.MarkIdle(ctx, "kept", idle); err != nil {
		t.Fatal(err)
	}
	var rows []erasure.Row
	if err := s.Export(ctx, func(r erasure.Row) error { rows = append(rows, r); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].CallID != "erased" || !rows[0].Erased || rows[0].Secret != nil ||
		rows[1].CallID != "kept" || rows[1].Erased || !bytes.Equal(rows[1].Secret, kept) || !rows[1].IdleSince.Equal(idle) {
		t.Fatalf("export: %+v", rows)
	}
	s.Close()
	if err := erasure.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if erasure.Exists(dir) {
		t.Fatal("erasure.db still there after Remove")
	}
}
