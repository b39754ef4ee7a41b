package sqlite

import (
	"context"
	"errors"
	"flag"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
)

var (
	soak         = flag.Duration("soak", 0, "run TestWALSoak: write at full speed for this long and report the WAL size and write latency (e.g. -soak=60s)")
	soakLimit    = flag.Int64("soak-wal-limit", DefaultConfig().WALLimitBytes, "TestWALSoak: Config.WALLimitBytes")
	soakInterval = flag.Duration("soak-interval", DefaultConfig().CheckpointInterval.D(), "TestWALSoak: Config.CheckpointInterval")
)

// TestWALSoak measures the store under writes that never pause, as in
// BENCHMARKS.md: go test ./internal/sqlite -run TestWALSoak -soak=60s -v
func TestWALSoak(t *testing.T) {
	if *soak <= 0 {
		t.Skip("measurement; run with -soak=60s")
	}
	ctx := context.Background()
	dir := t.TempDir()
	db := openWith(t, dir, Config{WALLimitBytes: *soakLimit, CheckpointInterval: confval.Duration(*soakInterval)})
	defer db.Close()
	cctx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	var ckErrs atomic.Int64
	go func() {
		db.RunCheckpoints(cctx, 0, func(err error) { ckErrs.Add(1); t.Log(err) })
		close(stopped)
	}()
	stopSampling := make(chan struct{})
	sampler := sampleWAL(filepath.Join(db.dir, "voicegate.db-wal"), 10*time.Millisecond, stopSampling)

	const workers = 4
	lat := make([][]time.Duration, workers)
	lctx, lcancel := context.WithTimeout(ctx, *soak)
	start := time.Now()
	n, err := writeLoad(lctx, db, workers, 1<<62, func(w int, d time.Duration) { lat[w] = append(lat[w], d) })
	elapsed := time.Since(start)
	lcancel()
	close(stopSampling)
	final := walSize(t, db)
	cancel()
	<-stopped
	if err != nil {
		t.Fatal(err)
	}
	maxWAL, _ := sampler.result()
	all := slices.Concat(lat...)
	slices.Sort(all)
	q := func(p float64) time.Duration { return all[int(p*float64(len(all)-1))] }
	fi := dbFileSize(t, db)
	st := db.CheckpointStats()
	t.Logf("WAL limit %d MiB, checkpoint every %s: %d restarts, %d busy", *soakLimit>>20, *soakInterval, st.Restarts, st.RestartsBusy)
	t.Logf("%s, %d workers: %d writes, %.0f writes/s; latency p50 %s p99 %s p99.9 %s max %s; WAL max %.1f MiB, final %.1f MiB; database %.1f MiB; %d checkpoint errors",
		elapsed.Round(time.Millisecond), workers, n, float64(n)/elapsed.Seconds(), q(0.50), q(0.99), q(0.999), all[len(all)-1],
		float64(maxWAL)/(1<<20), float64(final)/(1<<20), float64(fi)/(1<<20), ckErrs.Load())
}

var quickCheckMB = flag.Int("quickcheck-mb", 0, "run TestQuickCheckDuration on a database of about this many MiB (e.g. -quickcheck-mb=100)")

// TestQuickCheckDuration measures Open's integrity check on a large
// database (with the file in the page cache, as after it was just written):
// go test ./internal/sqlite -run TestQuickCheckDuration -quickcheck-mb=100 -v
func TestQuickCheckDuration(t *testing.T) {
	if *quickCheckMB <= 0 {
		t.Skip("measurement; run with -quickcheck-mb=100")
	}
	ctx := context.Background()
	dir := t.TempDir()
	db := open(t, dir)
	const batch = 50_000
	for i := 0; dbFileSize(t, db) < int64(*quickCheckMB)<<20; i += batch {
		if _, err := db.w.ExecContext(ctx, `WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i+1 FROM n WHERE i < ?)
			INSERT INTO calls (id, org_id, call_type, phone_number_id, assistant_id, status, ended_reason, cost, duration_seconds, created_at, updated_at, ended_at)
			SELECT printf('%08x-0000-4000-8000-%012d', i, i), 'org-4f1c2b7e-9a3d-4e5f', 'inboundPhoneCall', 'pn-0a1b2c3d', 'asst-5e6f7a8b', 'ended', 'customer-ended-call', 0.05, 61.5, 1795000000000 + i, 1795000060000 + i, 1795000060000 + i FROM n`, i, i+batch-1); err != nil {
			t.Fatal(err)
		}
		if _, err := db.w.ExecContext(ctx, `INSERT INTO call_status_changes (call_id, status, at)
			SELECT id, s.status, created_at FROM calls, (SELECT 'ringing' AS status UNION ALL SELECT 'in-progress' UNION ALL SELECT 'ended') s WHERE created_at >= 1795000000000 + ?`, i); err != nil {
			t.Fatal(err)
		}
		if err := db.Checkpoint(ctx); err != nil && !errors.Is(err, ErrCheckpointBusy) {
			t.Fatal(err)
		}
	}
	if _, err := db.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	var rows int
	db.w.QueryRowContext(ctx, `SELECT count(*) FROM calls`).Scan(&rows)
	size := dbFileSize(t, db)
	db.Close()
	for range 3 {
		start := time.Now()
		db = open(t, dir)
		t.Logf("database %.0f MiB (%d calls): Open %s, of which quick_check %s",
			float64(size)/(1<<20), rows, time.Since(start).Round(time.Millisecond), db.QuickCheckDuration().Round(time.Millisecond))
		db.Close()
	}
}
