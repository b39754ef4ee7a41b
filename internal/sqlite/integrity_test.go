package sqlite

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/calls"
)

// mustDatabaseWithRows creates a database in dir holding n calls, all of it
// copied into the main file (the WAL emptied), and closes it.
func mustDatabaseWithRows(t *testing.T, dir string, n int) string {
	t.Helper()
	ctx := context.Background()
	db := open(t, dir)
	for i := range n {
		if err := db.CreateCall(ctx, calls.Record{ID: fmt.Sprintf("call-%05d", i), OrgID: "org", Type: "inboundPhoneCall", Status: "queued"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.w.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "voicegate.db")
}

func TestOpenRefusesCorruptDatabase(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := mustDatabaseWithRows(t, dir, 3000)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	pages := fi.Size() / page
	if pages < 30 {
		t.Fatalf("database has only %d pages", pages)
	}
	// Garbage over the middle third of the file: table and index pages, not
	// the header or the schema (page 1) nor the migration table.
	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, page)
	for p := pages / 3; p < 2*pages/3; p++ {
		for i := range garbage {
			garbage[i] = byte(rng.Uint32())
		}
		if _, err := f.WriteAt(garbage, p*page); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := Open(context.Background(), dir, DefaultConfig())
	if err == nil {
		db.Close()
		t.Fatal("Open accepted a database with corrupt pages")
	}
	t.Log(err)
	for _, want := range []string{path, "failed its integrity check", "quick_check", "restore it from a backup or move it aside"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	var ie *IntegrityError
	if !errors.As(err, &ie) || ie.NotDatabase || len(ie.Problems) == 0 || len(ie.Problems) > maxIntegrityProblems {
		t.Errorf("want an *IntegrityError listing quick_check's first findings, got %#v", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans lines: %q", err)
	}
}

func TestOpenRefusesNonDatabase(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "voicegate.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("this is a text file, not a database\n", 200)), 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := Open(context.Background(), dir, DefaultConfig())
	if err == nil {
		db.Close()
		t.Fatal("Open accepted a file that is not a database")
	}
	t.Log(err)
	for _, want := range []string{path, "is not a SQLite database", "restore it from a backup or move it aside"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if ie := (*IntegrityError)(nil); !errors.As(err, &ie) || !ie.NotDatabase {
		t.Errorf("want an *IntegrityError for a file that is not a database, got %#v", err)
	}
	if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b), "this is a text file") {
		t.Error("Open wrote to a file that is not a database")
	}
}
