// Package sqlite provides the embedded call store on SQLite (pure-Go driver),
// with versioned migrations.
//
// Writes go through one connection, so they queue in Go (fairly, without
// SQLite's sleep-and-retry busy handler) and use statements prepared once;
// reads use a small pool of their own. The database runs in WAL mode with
// automatic checkpoints off: Checkpoint, run in the background, copies the
// log into the database (PASSIVE, so it never blocks a writer), so that no
// webhook waits for a checkpoint's fsync.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/periodic"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// DB is a calls.Store on one SQLite file.
type DB struct {
	w, r *sql.DB
	ck   *sql.DB // checkpoints, on a connection of their own
	dir  string
	st   stmts
	Now  func() time.Time
}

type stmts struct {
	createCall, ensureCall, insertStatus, updateStatus, endCall *sql.Stmt
}

var _ calls.Store = (*DB)(nil)

// migrations are applied in order; each runs once, in its own transaction.
// Never edit a shipped migration: append a new one.
var migrations = []string{
	1: `
CREATE TABLE calls (
	id               TEXT PRIMARY KEY,
	org_id           TEXT NOT NULL DEFAULT '',
	call_type        TEXT NOT NULL DEFAULT '',
	phone_number_id  TEXT NOT NULL DEFAULT '',
	assistant_id     TEXT NOT NULL DEFAULT '',
	status           TEXT NOT NULL DEFAULT '',
	ended_reason     TEXT NOT NULL DEFAULT '',
	cost             REAL,
	duration_seconds REAL,
	created_at       INTEGER NOT NULL,
	updated_at       INTEGER NOT NULL,
	ended_at         INTEGER
) STRICT;
CREATE TABLE call_status_changes (
	call_id TEXT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
	status  TEXT NOT NULL,
	at      INTEGER NOT NULL
) STRICT;
CREATE INDEX call_status_changes_call ON call_status_changes(call_id, at);
CREATE INDEX calls_created ON calls(created_at);
`,
}

const pragmas = "_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)"

// Open opens (creating if needed, mode 0600 in a 0700 directory) the database
// in dir and applies pending migrations.
func Open(ctx context.Context, dir string) (*DB, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	path := filepath.Join(dir, "voicegate.db")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create database: %w", err)
		}
		f.Close()
	}
	w, err := sql.Open("sqlite", "file:"+path+"?"+pragmas+"&_pragma=wal_autocheckpoint(0)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	r, err := sql.Open("sqlite", "file:"+path+"?"+pragmas+"&mode=ro")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	r.SetMaxOpenConns(4)
	ck, err := sql.Open("sqlite", "file:"+path+"?"+pragmas)
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	ck.SetMaxOpenConns(1)
	s := &DB{w: w, r: r, ck: ck, dir: dir, Now: time.Now}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *DB) prepare(ctx context.Context) error {
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		{&s.st.createCall, `INSERT INTO calls (id, org_id, call_type, phone_number_id, assistant_id, status, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING`},
		{&s.st.ensureCall, `INSERT INTO calls (id, status, created_at, updated_at) VALUES (?, '', ?, ?) ON CONFLICT(id) DO NOTHING`},
		{&s.st.insertStatus, `INSERT INTO call_status_changes (call_id, status, at) VALUES (?, ?, ?)`},
		// A late, out-of-order status never reopens an ended call.
		{&s.st.updateStatus, `UPDATE calls SET status = ?, updated_at = ? WHERE id = ? AND (ended_at IS NULL OR ? = 'ended')`},
		{&s.st.endCall, `INSERT INTO calls (id, status, ended_reason, cost, duration_seconds, created_at, updated_at, ended_at)
			VALUES (?, 'ended', ?, ?, ?, ?, ?, ?)
			ON CONFLICT(id) DO UPDATE SET status = 'ended',
				ended_reason = CASE WHEN excluded.ended_reason <> '' THEN excluded.ended_reason ELSE calls.ended_reason END,
				cost = COALESCE(excluded.cost, calls.cost),
				duration_seconds = COALESCE(excluded.duration_seconds, calls.duration_seconds),
				updated_at = excluded.updated_at,
				ended_at = COALESCE(calls.ended_at, excluded.ended_at)`},
	} {
		st, err := s.w.PrepareContext(ctx, p.q)
		if err != nil {
			return fmt.Errorf("prepare statement: %w", err)
		}
		*p.dst = st
	}
	return nil
}

// Checkpoint copies the write-ahead log into the database without waiting
// for (or blocking) readers and writers.
func (s *DB) Checkpoint(ctx context.Context) error {
	if _, err := s.ck.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// RunCheckpoints checkpoints every interval until ctx ends.
func (s *DB) RunCheckpoints(ctx context.Context, every time.Duration, onErr func(error)) {
	periodic.Run(ctx, every, func() {
		if err := s.Checkpoint(ctx); err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
	})
}

// SchemaVersion returns the highest applied migration.
func (s *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.w.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

func (s *DB) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	cur, err := s.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	if cur > len(migrations)-1 {
		return fmt.Errorf("migrate: database schema version %d is newer than this binary knows (%d); upgrade voicegate", cur, len(migrations)-1)
	}
	for v := cur + 1; v < len(migrations); v++ {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, applied_at) VALUES (?, ?)`, v, s.Now().UnixMilli()); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %d: %w", v, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate %d: %w", v, err)
		}
	}
	return nil
}

// CreateCall implements calls.Store.
func (s *DB) CreateCall(ctx context.Context, r calls.Record) error {
	now := s.Now().UnixMilli()
	created := now
	if !r.CreatedAt.IsZero() {
		created = r.CreatedAt.UnixMilli()
	}
	if _, err := s.st.createCall.ExecContext(ctx, r.ID, r.OrgID, r.Type, r.PhoneNumberID, r.AssistantID, r.Status, created, now); err != nil {
		return fmt.Errorf("create call: %w", err)
	}
	return nil
}

// RecordStatus implements calls.Store.
func (s *DB) RecordStatus(ctx context.Context, callID string, c calls.StatusChange) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record status: %w", err)
	}
	defer tx.Rollback()
	now := s.Now().UnixMilli()
	if _, err := tx.StmtContext(ctx, s.st.ensureCall).ExecContext(ctx, callID, now, now); err != nil {
		return fmt.Errorf("record status: %w", err)
	}
	if _, err := tx.StmtContext(ctx, s.st.insertStatus).ExecContext(ctx, callID, c.Status, c.At.UnixMilli()); err != nil {
		return fmt.Errorf("record status: %w", err)
	}
	if _, err := tx.StmtContext(ctx, s.st.updateStatus).ExecContext(ctx, c.Status, now, callID, c.Status); err != nil {
		return fmt.Errorf("record status: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record status: %w", err)
	}
	return nil
}

// EndCall implements calls.Store.
func (s *DB) EndCall(ctx context.Context, callID string, e calls.End) error {
	now := s.Now().UnixMilli()
	at := now
	if !e.At.IsZero() {
		at = e.At.UnixMilli()
	}
	if _, err := s.st.endCall.ExecContext(ctx, callID, e.Reason, e.Cost, e.Duration, now, now, at); err != nil {
		return fmt.Errorf("end call: %w", err)
	}
	return nil
}

// Call implements calls.Store.
func (s *DB) Call(ctx context.Context, id string) (calls.Record, []calls.StatusChange, error) {
	var r calls.Record
	var created, updated int64
	var ended sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT id, org_id, call_type, phone_number_id, assistant_id, status, ended_reason, cost, duration_seconds, created_at, updated_at, ended_at FROM calls WHERE id = ?`, id).
		Scan(&r.ID, &r.OrgID, &r.Type, &r.PhoneNumberID, &r.AssistantID, &r.Status, &r.EndedReason, &r.Cost, &r.Duration, &created, &updated, &ended)
	if errors.Is(err, sql.ErrNoRows) {
		return r, nil, calls.ErrNotFound
	}
	if err != nil {
		return r, nil, fmt.Errorf("read call: %w", err)
	}
	r.CreatedAt, r.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	if ended.Valid {
		r.EndedAt = time.UnixMilli(ended.Int64)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT status, at FROM call_status_changes WHERE call_id = ? ORDER BY at, rowid`, id)
	if err != nil {
		return r, nil, fmt.Errorf("read call status: %w", err)
	}
	defer rows.Close()
	var hist []calls.StatusChange
	for rows.Next() {
		var c calls.StatusChange
		var at int64
		if err := rows.Scan(&c.Status, &at); err != nil {
			return r, nil, fmt.Errorf("read call status: %w", err)
		}
		c.At = time.UnixMilli(at)
		hist = append(hist, c)
	}
	return r, hist, rows.Err()
}

// Ping implements calls.Store: the writer must answer, since that is the
// connection every acknowledged write needs.
func (s *DB) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// Close implements calls.Store.
func (s *DB) Close() error {
	for _, st := range []*sql.Stmt{s.st.createCall, s.st.ensureCall, s.st.insertStatus, s.st.updateStatus, s.st.endCall} {
		if st != nil {
			st.Close()
		}
	}
	err := s.w.Close()
	for _, db := range []*sql.DB{s.r, s.ck} {
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
