package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/voicegate/voicegate/internal/audit"
)

var _ audit.Store = (*DB)(nil)

// InsertAudit implements audit.Store.
func (s *DB) InsertAudit(ctx context.Context, e audit.Entry) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO audit_log (seq, at, event, subject, detail, actor, prev, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		e.Seq, e.At.UnixMilli(), e.Event, e.Subject, e.Detail, e.Actor, e.Prev, e.Hash)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" { // unique_violation
		return audit.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("insert audit entry: %w", err)
	}
	return nil
}

const auditColumns = `seq, at, event, subject, detail, actor, prev, hash`

func scanAudit(row pgx.Row) (audit.Entry, error) {
	var e audit.Entry
	var at int64
	if err := row.Scan(&e.Seq, &at, &e.Event, &e.Subject, &e.Detail, &e.Actor, &e.Prev, &e.Hash); err != nil {
		return e, err
	}
	e.At = time.UnixMilli(at)
	return e, nil
}

// LastAudit implements audit.Store.
func (s *DB) LastAudit(ctx context.Context) (audit.Entry, bool, error) {
	e, err := scanAudit(s.pool.QueryRow(ctx, `SELECT `+auditColumns+` FROM audit_log ORDER BY seq DESC LIMIT 1`))
	if errors.Is(err, pgx.ErrNoRows) {
		return e, false, nil
	}
	if err != nil {
		return e, false, fmt.Errorf("read audit log: %w", err)
	}
	return e, true, nil
}

// AuditRange implements audit.Store.
func (s *DB) AuditRange(ctx context.Context, afterSeq int64, limit int) ([]audit.Entry, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+auditColumns+` FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2`, afterSeq, limit)
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
