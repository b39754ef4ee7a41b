package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/audit/audittest"
	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/calls/storetest"
	"github.com/voicegate/voicegate/internal/records"
	"github.com/voicegate/voicegate/internal/records/recordstest"
)

func open(t testing.TB, dir string) *DB {
	t.Helper()
	return openWith(t, dir, DefaultConfig())
}

func openWith(t testing.TB, dir string, cfg Config) *DB {
	t.Helper()
	db, err := Open(context.Background(), dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestMigrationsAndPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	db := open(t, dir)
	v, err := db.SchemaVersion(context.Background())
	if err != nil || v != len(migrations)-1 {
		t.Fatalf("version %d err %v", v, err)
	}
	db.Close()
	db = open(t, dir) // reopening applies nothing twice
	defer db.Close()
	if v2, _ := db.SchemaVersion(context.Background()); v2 != v {
		t.Fatalf("version after reopen %d", v2)
	}
	for path, want := range map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "voicegate.db"): 0o600} {
		fi, err := os.Stat(path)
		if err != nil || fi.Mode().Perm() != want {
			t.Fatalf("%s mode %v, want %v", path, fi.Mode().Perm(), want)
		}
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	dir := t.TempDir()
	db := open(t, dir)
	db.w.Exec(`INSERT INTO schema_migrations(version, applied_at) VALUES (99, 0)`)
	db.Close()
	if _, err := Open(context.Background(), dir, DefaultConfig()); err == nil {
		t.Fatal("a database from a newer voicegate must not be used")
	}
}

// TestStoreContract: the SQLite store meets calls.Store's contract, alone
// and behind the write-outcome monitor.
func TestStoreContract(t *testing.T) {
	t.Run("SQLite", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) calls.Store { return open(t, t.TempDir()) })
	})
	t.Run("Monitored", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) calls.Store {
			return calls.Monitored(open(t, t.TempDir()), time.Now, time.Minute)
		})
	})
}

func TestCheckpointsRunOffTheWritePath(t *testing.T) {
	ctx := context.Background()
	db := open(t, t.TempDir())
	defer db.Close()
	var auto int
	if err := db.w.QueryRowContext(ctx, `PRAGMA wal_autocheckpoint`).Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("writes must not checkpoint (autocheckpoint %d, %v)", auto, err)
	}
	for i := 0; i < 50; i++ {
		db.CreateCall(ctx, calls.Record{ID: "c" + string(rune('A'+i))})
	}
	dbFile := filepath.Join(db.dir, "voicegate.db")
	before, _ := os.Stat(dbFile)
	if err := db.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	// Checkpoint itself copied the log into the database file (read
	// before anything else here could checkpoint).
	after, _ := os.Stat(dbFile)
	var busy, logFrames, done int
	if err := db.ck.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &done); err != nil {
		t.Fatal(err)
	}
	if busy != 0 || done != logFrames || logFrames == 0 || after.Size() <= before.Size() {
		t.Fatalf("after Checkpoint: busy %d, %d of %d frames copied; db %d -> %d bytes", busy, done, logFrames, before.Size(), after.Size())
	}
	// The background loop checkpoints on its own: new writes reach the
	// database file without anyone calling Checkpoint.
	for i := 0; i < 200; i++ {
		if err := db.CreateCall(ctx, calls.Record{ID: fmt.Sprintf("bg-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	before, _ = os.Stat(dbFile)
	cctx, cancel := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { db.RunCheckpoints(cctx, 10*time.Millisecond, func(err error) { t.Error(err) }); close(stopped) }()
	grew := false
	for deadline := time.Now().Add(3 * time.Second); !grew && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		now, _ := os.Stat(dbFile)
		grew = now.Size() > before.Size()
	}
	cancel()
	<-stopped
	if !grew {
		t.Fatal("RunCheckpoints never copied the log into the database")
	}
}

// TestRecordsContract: the SQLite store meets records.Store's contract.
func TestRecordsContract(t *testing.T) {
	recordstest.Run(t, func(t *testing.T) records.Store {
		db := open(t, t.TempDir())
		t.Cleanup(func() { db.Close() })
		return db
	})
}

// TestAuditContract: the SQLite store keeps the audit chain, and verify
// catches each way of tampering with it.
func TestAuditContract(t *testing.T) {
	audittest.Run(t, func(t *testing.T) audittest.Env {
		db := open(t, t.TempDir())
		t.Cleanup(func() { db.Close() })
		return audittest.Env{Store: db, Exec: func(q string, args ...any) error {
			_, err := db.w.Exec(q, args...)
			return err
		}}
	})
}

// TestConcurrentOpensMigrateOnce: processes starting at once (serve and
// operator commands) each apply pending migrations; every migration runs
// once and none fails (a version read outside the write lock let two
// processes apply the same ALTER TABLE).
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	for trial := range 6 {
		dir := t.TempDir()
		if trial%2 == 1 {
			// An existing database one migration behind (the upgrade case),
			// whichever migration is the newest.
			raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "voicegate.db"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := raw.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
				t.Fatal(err)
			}
			for v := 1; v < len(migrations)-1; v++ {
				if _, err := raw.Exec(migrations[v]); err != nil {
					t.Fatal(v, err)
				}
				if _, err := raw.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, v); err != nil {
					t.Fatal(err)
				}
			}
			raw.Close()
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for range 8 {
			wg.Go(func() {
				db, err := Open(context.Background(), dir, DefaultConfig())
				if err != nil {
					errs <- err
					return
				}
				db.Close()
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("trial %d: %v", trial, err)
		}
		db, err := Open(context.Background(), dir, DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		var n int
		db.w.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n)
		db.Close()
		if n != len(migrations)-1 {
			t.Fatalf("trial %d: %d migrations recorded, want %d", trial, n, len(migrations)-1)
		}
	}
}
