package postgres

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/audit"
	"github.com/voicegate/voicegate/internal/audit/audittest"
	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/calls/storetest"
	"github.com/voicegate/voicegate/internal/postgres/pgtest"
	"github.com/voicegate/voicegate/internal/records"
	"github.com/voicegate/voicegate/internal/records/recordstest"
)

func testURL() string { return pgtest.BaseURL() }

func need(t testing.TB) string { pgtest.Need(t); return testURL() }

func schema(t testing.TB, _ string) string { return pgtest.Schema(t) }

func open(t testing.TB) *DB {
	t.Helper()
	db, err := Open(context.Background(), pgtest.URL(t), Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// TestStoreContract: PostgreSQL meets calls.Store's contract, alone and
// behind the write-outcome monitor, exactly as SQLite does.
func TestStoreContract(t *testing.T) {
	t.Run("PostgreSQL", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) calls.Store { return open(t) })
	})
	t.Run("Monitored", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) calls.Store { return calls.Monitored(open(t), time.Now, time.Minute) })
	})
}

// TestConcurrentStartsMigrateOnce: several processes opening the same
// database at once apply each migration exactly once (the advisory lock).
func TestConcurrentStartsMigrateOnce(t *testing.T) {
	u := need(t)
	sc := schema(t, u)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			db, err := Open(context.Background(), u, Options{Schema: sc, MaxConns: 2})
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
		t.Errorf("concurrent open: %v", err)
	}
	db, err := Open(context.Background(), u, Options{Schema: sc})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n, v int
	if err := db.pool.QueryRow(context.Background(), `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &v); err != nil || n != SchemaVersion() || v != SchemaVersion() {
		t.Fatalf("%d migrations recorded, newest %d (%v); want each of %d once", n, v, err, SchemaVersion())
	}
}

// TestNewerSchemaIsRefused: a database migrated by a newer voicegate is
// refused rather than used.
func TestNewerSchemaIsRefused(t *testing.T) {
	db := open(t)
	if _, err := db.pool.Exec(context.Background(), `INSERT INTO schema_migrations(version, applied_at) VALUES (99, 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err := Open(context.Background(), testURL(), Options{Schema: db.schema})
	if err == nil || !strings.Contains(err.Error(), "newer than this binary knows") {
		t.Fatalf("want a refusal, got %v", err)
	}
}

// TestUnreachableOrBadURLIsClearAndKeepsThePassword: nothing listens on
// port 1; the error says where, and never prints the password.
func TestUnreachableOrBadURLIsClearAndKeepsThePassword(t *testing.T) {
	for u, want := range map[string]string{
		"postgres://vg:s3cr3t-pw@127.0.0.1:1/test?sslmode=disable&connect_timeout=2": "postgres at 127.0.0.1:1/test is unreachable",
		"postgres://vg:s3cr3t-pw@127.0.0.1:notaport/test":                            "does not parse",
	} {
		_, err := Open(context.Background(), u, Options{})
		if err == nil {
			t.Fatalf("%s: opened", u)
		}
		if strings.Contains(err.Error(), "s3cr3t-pw") {
			t.Errorf("the error prints the password: %v", err)
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// TestRecordsContract: PostgreSQL meets records.Store's contract, as
// SQLite does.
func TestRecordsContract(t *testing.T) {
	recordstest.Run(t, func(t *testing.T) records.Store {
		db := open(t)
		t.Cleanup(func() { db.Close() })
		return db
	})
}

// TestAuditContract: PostgreSQL keeps the audit chain as SQLite does.
func TestAuditContract(t *testing.T) {
	audittest.Run(t, func(t *testing.T) audittest.Env {
		db := open(t)
		t.Cleanup(func() { db.Close() })
		return audittest.Env{Store: db, Exec: execer(db)}
	})
}

// execer runs SQL with ? placeholders on db.
func execer(db *DB) func(q string, args ...any) error {
	return func(q string, args ...any) error {
		for i := 1; strings.Contains(q, "?"); i++ {
			q = strings.Replace(q, "?", fmt.Sprintf("$%d", i), 1)
		}
		_, err := db.pool.Exec(context.Background(), q, args...)
		return err
	}
}

// TestSharedAuditContract: several replicas (each its own pool) append to
// one chain, serialised by the head row; tampering is caught.
func TestSharedAuditContract(t *testing.T) {
	audittest.RunShared(t, func(t *testing.T) audittest.SharedEnv {
		u := pgtest.URL(t)
		first := func(t *testing.T) *DB {
			db, err := Open(context.Background(), u, Options{MaxConns: 4})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return db
		}
		db := first(t)
		return audittest.SharedEnv{
			Open: func(t *testing.T) audit.SharedStore { return first(t) },
			Exec: execer(db),
		}
	})
}
