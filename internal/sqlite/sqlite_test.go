package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/calls"
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

func TestCallLifecycle(t *testing.T) {
	ctx := context.Background()
	db := open(t, t.TempDir())
	defer db.Close()
	t0 := time.UnixMilli(1_795_000_000_000)
	if err := db.CreateCall(ctx, calls.Record{ID: "c1", OrgID: "o", Type: "inboundPhoneCall", PhoneNumberID: "pn", Status: "ringing", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateCall(ctx, calls.Record{ID: "c1", OrgID: "other"}); err != nil {
		t.Fatal(err)
	}
	db.RecordStatus(ctx, "c1", calls.StatusChange{Status: "ringing", At: t0})
	db.RecordStatus(ctx, "c1", calls.StatusChange{Status: "in-progress", At: t0.Add(time.Second)})
	db.RecordStatus(ctx, "c1", calls.StatusChange{Status: "ended", At: t0.Add(time.Minute)})
	cost, dur := 0.5, 60.0
	if err := db.EndCall(ctx, "c1", calls.End{Reason: "hangup", Cost: &cost, Duration: &dur, At: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	// A late, out-of-order status does not reopen the call.
	db.RecordStatus(ctx, "c1", calls.StatusChange{Status: "in-progress", At: t0.Add(2 * time.Second)})
	r, hist, err := db.Call(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if r.OrgID != "o" || r.Status != "ended" || r.EndedReason != "hangup" || *r.Cost != 0.5 || *r.Duration != 60 || !r.EndedAt.Equal(t0.Add(time.Minute)) || !r.CreatedAt.Equal(t0) {
		t.Fatalf("record: %+v", r)
	}
	var seq []string
	for _, h := range hist {
		seq = append(seq, h.Status)
	}
	if len(seq) != 4 || seq[0] != "ringing" || seq[1] != "in-progress" || seq[2] != "in-progress" || seq[3] != "ended" {
		t.Fatalf("history by time: %v", seq)
	}
	// A report without cost keeps the known cost.
	db.EndCall(ctx, "c1", calls.End{})
	if r, _, _ := db.Call(ctx, "c1"); r.Cost == nil || *r.Cost != 0.5 || r.EndedReason != "hangup" {
		t.Fatalf("second report erased data: %+v", r)
	}
	if _, _, err := db.Call(ctx, "nope"); !errors.Is(err, calls.ErrNotFound) {
		t.Fatalf("want ErrNotFound, got %v", err)
	}
}

func TestEndWithoutCreateAndPingAfterClose(t *testing.T) {
	ctx := context.Background()
	db := open(t, t.TempDir())
	if err := db.EndCall(ctx, "only-report", calls.End{Reason: "x"}); err != nil {
		t.Fatal(err)
	}
	if r, _, err := db.Call(ctx, "only-report"); err != nil || r.Status != "ended" || r.EndedAt.IsZero() {
		t.Fatalf("%+v %v", r, err)
	}
	if err := db.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := db.Ping(ctx); err == nil {
		t.Fatal("ping on a closed database must fail")
	}
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
	var busy, logFrames, done int
	if err := db.ck.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &done); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(dbFile)
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
