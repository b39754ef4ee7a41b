package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/calls"
)

// withMigrations runs f while only the first n migrations exist: a database
// opened meanwhile is one an older voicegate left.
func withMigrations(t *testing.T, n int, f func()) {
	t.Helper()
	saved := migrations
	migrations = migrations[:n+1]
	defer func() { migrations = saved }()
	f()
}

// TestMigrationFromVersion1: a database an older voicegate left is migrated
// in place, its calls kept, and its list index replaced.
func TestMigrationFromVersion1(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	t0 := time.UnixMilli(1_795_000_000_000)
	withMigrations(t, 1, func() {
		db := open(t, dir)
		for i := range 3 {
			if err := db.CreateCall(ctx, calls.Record{ID: fmt.Sprintf("c%d", i), Status: "queued", CreatedAt: t0.Add(time.Duration(i) * time.Second)}); err != nil {
				t.Fatal(err)
			}
		}
		if v, err := db.SchemaVersion(ctx); err != nil || v != 1 {
			t.Fatalf("old database at version %d, %v", v, err)
		}
		db.Close()
	})
	db := open(t, dir)
	defer db.Close()
	if v, err := db.SchemaVersion(ctx); err != nil || v != len(migrations)-1 {
		t.Fatalf("migrated to version %d, %v", v, err)
	}
	var idx []string
	rows, err := db.r.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'calls' AND sql IS NOT NULL ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		idx = append(idx, n)
	}
	rows.Close()
	if fmt.Sprint(idx) != "[calls_created_id]" {
		t.Fatalf("indexes on calls after migrating: %v, want [calls_created_id]", idx)
	}
	list, err := db.List(ctx, calls.ListFilter{})
	if err != nil || len(list) != 3 || list[0].ID != "c2" {
		t.Fatalf("calls after migrating: %+v %v", list, err)
	}
}

// TestListUsesTheIndex: every page of List is read from the index, in
// order, without sorting the table: a page costs its own rows however many
// calls are stored.
func TestListUsesTheIndex(t *testing.T) {
	ctx := context.Background()
	db := open(t, t.TempDir())
	defer db.Close()
	t0 := time.UnixMilli(1_795_000_000_000)
	for _, f := range []calls.ListFilter{
		{},
		{Limit: 5},
		{Status: "ended"},
		{Before: t0},
		{Before: t0.Add(time.Microsecond)},
		{Before: t0, BeforeID: "c1"},
		{Before: t0, BeforeID: "c1", Status: "in-progress", Limit: 3},
	} {
		q, args := listQuery(f)
		rows, err := db.r.QueryContext(ctx, `EXPLAIN QUERY PLAN `+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		if !strings.Contains(p, "USING INDEX calls_created_id") || strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("List(%+v) plan %q: want the calls_created_id index and no sort", f, p)
		}
	}
}

func TestOpenReadOnly(t *testing.T) {
	ctx := context.Background()
	t0 := time.UnixMilli(1_795_000_000_000)

	t.Run("NoDatabase", func(t *testing.T) {
		empty := t.TempDir()
		missing := filepath.Join(t.TempDir(), "never-served")
		for _, dir := range []string{empty, missing} {
			_, err := OpenReadOnly(ctx, dir)
			if !errors.Is(err, ErrNoDatabase) || !strings.Contains(err.Error(), "no database in "+dir+": has voicegate served with this data_dir?") {
				t.Fatalf("OpenReadOnly(%s): %v, want ErrNoDatabase", dir, err)
			}
		}
		if ents, _ := os.ReadDir(empty); len(ents) != 0 {
			t.Fatalf("OpenReadOnly created %v", ents)
		}
		if _, err := os.Stat(missing); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("OpenReadOnly created the directory: %v", err)
		}
	})

	t.Run("WhileTheWriterRuns", func(t *testing.T) {
		dir := t.TempDir()
		db := open(t, dir)
		defer db.Close()
		if err := db.CreateCall(ctx, calls.Record{ID: "c1", Status: "ringing", CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		if err := db.RecordStatus(ctx, "c1", calls.StatusChange{Status: "in-progress", At: t0.Add(time.Second)}); err != nil {
			t.Fatal(err)
		}
		walBefore := db.WALSize()
		dbBefore, _ := os.ReadFile(db.path)
		v, err := OpenReadOnly(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		// What is still only in the write-ahead log is read.
		if r, hist, err := v.Call(ctx, "c1"); err != nil || r.Status != "in-progress" || len(hist) != 1 {
			t.Fatalf("Call through the view: %+v %+v %v", r, hist, err)
		}
		if _, _, err := v.Call(ctx, "nope"); !errors.Is(err, calls.ErrNotFound) {
			t.Fatalf("unknown call through the view: %v, want ErrNotFound", err)
		}
		// The writer is not held back by the open view, and the next read
		// sees its write.
		if err := db.EndCall(ctx, "c1", calls.End{Reason: "hangup", At: t0.Add(time.Minute)}); err != nil {
			t.Fatalf("write while a view is open: %v", err)
		}
		if list, err := v.List(ctx, calls.ListFilter{}); err != nil || len(list) != 1 || list[0].Status != "ended" {
			t.Fatalf("List through the view: %+v %v", list, err)
		}
		// Nothing can be written through the view.
		if _, err := v.r.ExecContext(ctx, `INSERT INTO calls (id, created_at, updated_at) VALUES ('x', 0, 0)`); err == nil {
			t.Fatal("a write through the read-only view succeeded")
		}
		if _, err := v.r.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err == nil {
			if db.WALSize() < walBefore {
				t.Fatal("the read-only view checkpointed the log")
			}
		}
		if err := v.Close(); err != nil {
			t.Fatal(err)
		}
		// Closing the view neither checkpointed nor changed the database
		// file: the log holds the writer's writes still.
		if dbAfter, _ := os.ReadFile(db.path); !bytes.Equal(dbBefore, dbAfter) || db.WALSize() < walBefore {
			t.Fatalf("the view changed the database (log %d -> %d bytes)", walBefore, db.WALSize())
		}
	})

	t.Run("AfterTheWriterStopped", func(t *testing.T) {
		dir := t.TempDir()
		db := open(t, dir)
		if err := db.CreateCall(ctx, calls.Record{ID: "c1", CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		db.Close()
		before, _ := os.ReadFile(filepath.Join(dir, "voicegate.db"))
		v, err := OpenReadOnly(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		if list, err := v.List(ctx, calls.ListFilter{}); err != nil || len(list) != 1 {
			t.Fatalf("List: %+v %v", list, err)
		}
		v.Close()
		if after, _ := os.ReadFile(filepath.Join(dir, "voicegate.db")); !bytes.Equal(before, after) {
			t.Fatal("the read-only view changed the database file")
		}
	})

	t.Run("NewerSchema", func(t *testing.T) {
		dir := t.TempDir()
		db := open(t, dir)
		db.w.Exec(`INSERT INTO schema_migrations(version, applied_at) VALUES (99, 0)`)
		db.Close()
		if _, err := OpenReadOnly(ctx, dir); !errors.Is(err, ErrSchemaVersion) || !strings.Contains(err.Error(), "newer than this binary knows") {
			t.Fatalf("a database from a newer voicegate: %v, want ErrSchemaVersion", err)
		}
	})

	t.Run("OlderSchema", func(t *testing.T) {
		dir := t.TempDir()
		withMigrations(t, 1, func() { open(t, dir).Close() })
		if _, err := OpenReadOnly(ctx, dir); !errors.Is(err, ErrSchemaVersion) || !strings.Contains(err.Error(), "older than this binary's") {
			t.Fatalf("a database not yet migrated: %v, want ErrSchemaVersion", err)
		}
	})

	t.Run("EmptyFile", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "voicegate.db"), nil, 0o600)
		if _, err := OpenReadOnly(ctx, dir); !errors.Is(err, ErrSchemaVersion) {
			t.Fatalf("an empty file: %v, want ErrSchemaVersion", err)
		}
	})

	t.Run("NotADatabase", func(t *testing.T) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "voicegate.db"), bytes.Repeat([]byte("not a database "), 512), 0o600)
		var ie *IntegrityError
		if _, err := OpenReadOnly(ctx, dir); !errors.As(err, &ie) || !ie.NotDatabase {
			t.Fatalf("a file that is not a database: %v, want *IntegrityError", err)
		}
	})
}
