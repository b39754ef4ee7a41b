package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/voicegate/voicegate/internal/audit"
	sqlite3 "modernc.org/sqlite/lib"
)

var _ audit.Store = (*DB)(nil)

// InsertAudit implements audit.Store.
func (s *DB) InsertAudit(ctx context.Context, e audit.Entry) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO audit_log (seq, at, event, subject, detail, actor, prev, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Seq, e.At.UnixMilli(), e.Event, e.Subject, e.Detail, e.Actor, e.Prev, e.Hash)
	if sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT {
		return audit.ErrConflict // the sequence number is the primary key: the only constraint
	}
	if err != nil {
		return fmt.Errorf("insert audit entry: %w", err)
	}
	return nil
}

const auditColumns = `seq, at, event, subject, detail, actor, prev, hash`

func scanAudit(row interface{ Scan(...any) error }) (audit.Entry, error) {
	var e audit.Entry
	var at int64
	if err := row.Scan(&e.Seq, &at, &e.Event, &e.Subject, &e.Detail, &e.Actor, &e.Prev, &e.Hash); err != nil {
		return e, err
	}
	e.At = time.UnixMilli(at)
	return e, nil
}

// LastAudit implements audit.Store. It reads on the writer, so that an
// append follows the newest entry this process wrote.
func (s *DB) LastAudit(ctx context.Context) (audit.Entry, bool, error) {
	e, err := scanAudit(s.w.QueryRowContext(ctx, `SELECT `+auditColumns+` FROM audit_log ORDER BY seq DESC LIMIT 1`))
	if errors.Is(err, sql.ErrNoRows) {
		return e, false, nil
	}
	if err != nil {
		return e, false, fmt.Errorf("read audit log: %w", err)
	}
	return e, true, nil
}

// AuditRange implements audit.Store.
func (s *DB) AuditRange(ctx context.Context, afterSeq int64, limit int) ([]audit.Entry, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+auditColumns+` FROM audit_log WHERE seq > ? ORDER BY seq LIMIT ?`, afterSeq, limit)
	if err != nil {
		return nil, fmt.Errorf("read audit log: %w", err)
	}
	defer rows.Close()
	var out []audit.Entry
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, fmt.Errorf("read audit log: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
