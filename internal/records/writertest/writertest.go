// Package writertest sets up, for tests, a records.Writer over the real
// parts serve uses: a SQLite or PostgreSQL database, a keyring file and an
// erasure store in one data directory.
package writertest

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/erasure"
	"github.com/voicegate/voicegate/internal/postgres"
	"github.com/voicegate/voicegate/internal/postgres/pgtest"
	"github.com/voicegate/voicegate/internal/records"
	"github.com/voicegate/voicegate/internal/sqlite"
)

// Parts are what a test writer is made of. The erasure store is closed at
// the end of the test; the database is the test's to close (a test often
// closes it early, to run a command on the directory).
type Parts struct {
	DB      *sqlite.DB
	Keys    *envelope.Local
	Secrets *erasure.Store
	Writer  *records.Writer
}

// Backend is a records store a suite runs on, opened fresh by Open with
// the keyring and erasure store in dir.
type Backend struct {
	Name string
	Open func(t testing.TB, dir string, now func() time.Time, redaction records.Redaction) (records.Store, *envelope.Local, *erasure.Store, *records.Writer)
}

// Backends are SQLite and PostgreSQL (a fresh schema per call; under
// CI=true an unreachable server fails the test).
func Backends() []Backend {
	return []Backend{
		{"sqlite", func(t testing.TB, dir string, now func() time.Time, redaction records.Redaction) (records.Store, *envelope.Local, *erasure.Store, *records.Writer) {
			p := SQLite(t, dir, now, redaction)
			t.Cleanup(func() { p.DB.Close() })
			return p.DB, p.Keys, p.Secrets, p.Writer
		}},
		{"postgres", func(t testing.TB, dir string, now func() time.Time, redaction records.Redaction) (records.Store, *envelope.Local, *erasure.Store, *records.Writer) {
			db, err := postgres.Open(context.Background(), pgtest.BaseURL(), postgres.Options{Schema: pgtest.Schema(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			kr, secrets, w := writer(t, db, dir, now, redaction)
			return db, kr, secrets, w
		}},
	}
}

// SQLite opens the parts in data directory dir. now is the keyring's and
// the writer's clock (nil: time.Now); redaction is the writer's mode.
func SQLite(t testing.TB, dir string, now func() time.Time, redaction records.Redaction) Parts {
	t.Helper()
	if now == nil {
		now = time.Now
	}
	db, err := sqlite.Open(context.Background(), dir, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	kr, secrets, w := writer(t, db, dir, now, redaction)
	return Parts{DB: db, Keys: kr, Secrets: secrets, Writer: w}
}

// writer opens the keyring and erasure store in dir and a writer on st.
func writer(t testing.TB, st records.Store, dir string, now func() time.Time, redaction records.Redaction) (*envelope.Local, *erasure.Store, *records.Writer) {
	t.Helper()
	if now == nil {
		now = time.Now
	}
	kr, err := envelope.LoadFile(filepath.Join(dir, "keyring.json"), rand.Reader, now)
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := erasure.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { secrets.Close() })
	w := records.NewWriter(records.Deps{Store: st, Keys: kr, Secrets: secrets, LookupKey: kr.LookupKey(), Redaction: redaction, Random: rand.Reader, Now: now})
	return kr, secrets, w
}
