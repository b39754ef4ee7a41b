// Package librarytest opens, for tests, a knowledge-base library on each
// store that implements library.Store — SQLite and PostgreSQL — with a
// keyring file in the test's directory, so that one suite runs on both.
package librarytest

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/erasure"
	"github.com/voicegate/voicegate/internal/knowledge/library"
	"github.com/voicegate/voicegate/internal/postgres"
	"github.com/voicegate/voicegate/internal/postgres/pgtest"
	"github.com/voicegate/voicegate/internal/sqlite"
)

// Parts are a library and what it is made of.
type Parts struct {
	Store   library.Store
	Keys    *envelope.Local
	Erasure *erasure.Store
	Library *library.Library
	// Dir is the data directory (SQLite's database is in it).
	Dir string
}

// Backend is a store the suite runs on.
type Backend struct {
	Name string
	// Open opens a fresh library; now is the keyring's clock (nil:
	// time.Now).
	Open func(t testing.TB, now func() time.Time) Parts
}

// Backends are SQLite and PostgreSQL (a fresh schema per call; under
// CI=true an unreachable server fails the test).
func Backends() []Backend {
	return []Backend{
		{"sqlite", func(t testing.TB, now func() time.Time) Parts {
			dir := t.TempDir()
			db, err := sqlite.Open(context.Background(), dir, sqlite.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return parts(t, db, dir, now)
		}},
		{"postgres", func(t testing.TB, now func() time.Time) Parts {
			db, err := postgres.Open(context.Background(), pgtest.BaseURL(), postgres.Options{Schema: pgtest.Schema(t)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			return parts(t, db, t.TempDir(), now)
		}},
	}
}

func parts(t testing.TB, st library.Store, dir string, now func() time.Time) Parts {
	t.Helper()
	if now == nil {
		now = time.Now
	}
	kr, err := envelope.LoadFile(filepath.Join(dir, "keyring.json"), rand.Reader, now)
	if err != nil {
		t.Fatal(err)
	}
	er, err := erasure.Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { er.Close() })
	return Parts{Store: st, Keys: kr, Dir: dir, Erasure: er,
		Library: library.New(library.Deps{Store: st, Keys: kr, LookupKey: kr.LookupKey(), Erasure: er, Now: now})}
}
