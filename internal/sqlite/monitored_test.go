package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/calls"
)

// holdWriteLock takes SQLite's write lock on the database in dir from a
// connection of its own, as another process would, so that every write of
// the store fails with SQLITE_BUSY once its busy timeout passes. release
// gives the lock back.
func holdWriteLock(t *testing.T, dir string) (release func()) {
	t.Helper()
	ctx := context.Background()
	other, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "voicegate.db")+"?_pragma=busy_timeout(1000)")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := other.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, `BEGIN EXCLUSIVE`); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := conn.ExecContext(ctx, `ROLLBACK`); err != nil {
			t.Fatal(err)
		}
		conn.Close()
		other.Close()
	}
}

// With writes failing for real (the write lock held elsewhere), the store
// still answers Ping; readiness must fail until a write succeeds again or
// the window passes.
func TestReadyFailsWhileWritesFail(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := DefaultConfig()
	cfg.busyTimeout = 50 * time.Millisecond
	db := openWith(t, dir, cfg)
	defer db.Close()
	now := time.UnixMilli(1_795_000_000_000)
	const window = time.Minute
	m := calls.Monitored(db, func() time.Time { return now }, window)
	if err := m.CreateCall(ctx, calls.Record{ID: "before"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Ready(ctx); err != nil {
		t.Fatalf("ready before any failure: %v", err)
	}

	release := holdWriteLock(t, dir)
	for _, write := range []func() error{
		func() error { return m.CreateCall(ctx, calls.Record{ID: "locked"}) },
		func() error { return m.RecordStatus(ctx, "before", calls.StatusChange{Status: "ringing", At: now}) },
		func() error { return m.EndCall(ctx, "before", calls.End{Reason: "hangup"}) },
	} {
		if err := write(); err == nil {
			t.Fatal("a write succeeded while another connection held the write lock")
		} else if !isBusy(err) {
			t.Fatalf("write while locked: %v, want SQLITE_BUSY", err)
		}
	}
	if err := db.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v (the store answers pings while its writes fail)", err)
	}
	err := m.Ready(ctx)
	if !errors.Is(err, calls.ErrWritesFailing) {
		t.Fatalf("Ready while every write fails: %v, want ErrWritesFailing", err)
	}
	t.Log(err)
	now = now.Add(window)
	if err := m.Ready(ctx); err != nil {
		t.Fatalf("not ready a window after the last failure: %v", err)
	}
	if err := m.CreateCall(ctx, calls.Record{ID: "locked-again"}); err == nil {
		t.Fatal("a write succeeded while another connection held the write lock")
	}
	if err := m.Ready(ctx); !errors.Is(err, calls.ErrWritesFailing) {
		t.Fatalf("Ready after a new failure: %v, want ErrWritesFailing", err)
	}

	release()
	if err := m.CreateCall(ctx, calls.Record{ID: "after"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Ready(ctx); err != nil {
		t.Errorf("not ready after a successful write: %v", err)
	}
}

// BenchmarkCreateCall compares a write through the store with the same write
// through calls.Monitored.
func BenchmarkCreateCall(b *testing.B) {
	ctx := context.Background()
	for _, name := range []string{"direct", "monitored"} {
		b.Run(name, func(b *testing.B) {
			db := open(b, b.TempDir())
			defer db.Close()
			var s calls.Store = db
			if name == "monitored" {
				s = calls.Monitored(db, time.Now, time.Minute)
			}
			cctx, cancel := context.WithCancel(ctx)
			stopped := make(chan struct{})
			go func() { db.RunCheckpoints(cctx, 0, nil); close(stopped) }()
			defer func() { cancel(); <-stopped }()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				if err := s.CreateCall(ctx, calls.Record{ID: fmt.Sprintf("call-%d", i), OrgID: "org", Status: "queued"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
