// Package writertest sets up, for tests, a records.Writer over the real
// parts serve uses: a SQLite database, a keyring file and an erasure store
// in one data directory.
package writertest

import (
	"context"
	"crypto/rand"
	"path/filepath"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/erasure"
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

// SQLite opens the parts in data directory dir. now is the keyring's and
// the writer's clock (nil: time.Now); redaction is the writer's mode.
func SQLite(t testing.TB, dir string, now func() time.Time, redaction records.Redaction) Parts {
	t.Helper()
	if now == nil {
		now = time.Now
	}
	ctx := context.Background()
	db, err := sqlite.Open(ctx, dir, sqlite.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	kr, err := envelope.LoadFile(filepath.Join(dir, "keyring.json"), rand.Reader, now)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	secrets, err := erasure.Open(ctx, dir)
	if err != nil {
		db.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { secrets.Close() })
	w := records.NewWriter(records.Deps{Store: db, Keys: kr, Secrets: secrets, LookupKey: kr.LookupKey(), Redaction: redaction, Random: rand.Reader, Now: now})
	return Parts{DB: db, Keys: kr, Secrets: secrets, Writer: w}
}
