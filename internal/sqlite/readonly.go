package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/voicegate/voicegate/internal/calls"
	sqlite3 "modernc.org/sqlite/lib"
)

// ErrNoDatabase is wrapped by OpenReadOnly's error when the directory holds
// no database.
var ErrNoDatabase = errors.New("no database")

// ErrSchemaVersion is wrapped by OpenReadOnly's error when the database's
// schema is not the one this binary reads: written by a newer voicegate, or
// by an older one and not yet migrated.
var ErrSchemaVersion = errors.New("unexpected database schema version")

// ReadOnlyDB reads the calls stored in a data directory without writing to
// it, so that it is safe to use while voicegate serve runs on the same
// directory, in another process: in WAL mode readers neither wait for the
// writer nor hold it back, and a read-only connection cannot checkpoint,
// restart the log or migrate. It reads a consistent snapshot per query.
//
// Opened while serve is stopped, it creates the shared-memory and log files
// that WAL mode reads through (voicegate.db-shm, an empty voicegate.db-wal,
// with the database file's mode, and its owner when run as root) and, being
// read-only, cannot remove them: they are harmless, and the next serve uses
// and removes them.
type ReadOnlyDB struct {
	r    *sql.DB
	path string
}

var _ calls.Reader = (*ReadOnlyDB)(nil)

// OpenReadOnly opens the database in dir read-only. It creates nothing: it
// returns an error wrapping ErrNoDatabase when dir holds no database, an
// error wrapping ErrSchemaVersion when the database's schema version is not
// the latest this binary knows (upgrade voicegate, or let voicegate serve
// migrate it), and an *IntegrityError for a file that is not a SQLite
// database. It runs no integrity check (that reads the whole file; serve
// runs it at start-up) and no migration.
func OpenReadOnly(ctx context.Context, dir string) (*ReadOnlyDB, error) {
	path := filepath.Join(dir, "voicegate.db")
	if fi, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w in %s: has voicegate served with this data_dir?", ErrNoDatabase, dir)
	} else if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("open database: %s is not a file", path)
	}
	// mode=ro opens the file read-only (so nothing can be written, even by
	// mistake); query_only refuses writes at the statement level as well.
	// A reader waits for a lock only while another connection recovers
	// the log: busy_timeout bounds that.
	r, err := sql.Open("sqlite", fmt.Sprintf("file:%s?mode=ro&_pragma=busy_timeout(%d)&_pragma=query_only(1)", path, defaultBusyTimeout.Milliseconds()))
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	r.SetMaxOpenConns(2)
	v := &ReadOnlyDB{r: r, path: path}
	if err := v.checkVersion(ctx); err != nil {
		r.Close()
		return nil, err
	}
	return v, nil
}

// checkVersion refuses a schema other than the latest migration: List and
// Call read the tables and indexes the migrations make.
func (v *ReadOnlyDB) checkVersion(ctx context.Context) error {
	want := len(migrations) - 1
	var tables int
	err := v.r.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`).Scan(&tables)
	switch c := sqliteCode(err); {
	case c == sqlite3.SQLITE_NOTADB:
		return &IntegrityError{Path: v.path, NotDatabase: true, Err: err}
	case c == sqlite3.SQLITE_CORRUPT:
		return &IntegrityError{Path: v.path, Err: err}
	case err != nil:
		return fmt.Errorf("read database %s: %w", v.path, err)
	}
	have := 0
	if tables > 0 {
		if err := v.r.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
			return fmt.Errorf("read schema version of %s: %w", v.path, err)
		}
	}
	switch {
	case have > want:
		return fmt.Errorf("%w: database %s has schema version %d, newer than this binary knows (%d); use a newer voicegate", ErrSchemaVersion, v.path, have, want)
	case have < want:
		return fmt.Errorf("%w: database %s has schema version %d, older than this binary's (%d); voicegate serve migrates it when it starts", ErrSchemaVersion, v.path, have, want)
	}
	return nil
}

// Call implements calls.Reader.
func (v *ReadOnlyDB) Call(ctx context.Context, id string) (calls.Record, []calls.StatusChange, error) {
	return readCall(ctx, v.r, id)
}

// Events implements calls.Reader.
func (v *ReadOnlyDB) Events(ctx context.Context, id string) ([]calls.Event, error) {
	return readEvents(ctx, v.r, id)
}

// List implements calls.Reader.
func (v *ReadOnlyDB) List(ctx context.Context, f calls.ListFilter) ([]calls.Record, error) {
	return listCalls(ctx, v.r, f)
}

// Close closes the connections.
func (v *ReadOnlyDB) Close() error { return v.r.Close() }
