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

var _ audit.SharedStore = (*DB)(nil)

// AuditHead implements audit.SharedStore.
func (s *DB) AuditHead(ctx context.Context) (audit.Head, error) {
	h, err := scanHead(s.pool.QueryRow(ctx, `SELECT seq, hash, base_seq, base_hash, mac FROM audit_head WHERE id = 1`))
	if errors.Is(err, pgx.ErrNoRows) {
		return audit.Head{}, nil
	}
	if err != nil {
		return h, fmt.Errorf("read audit head: %w", err)
	}
	return h, nil
}

func scanHead(row pgx.Row) (audit.Head, error) {
	var h audit.Head
	err := row.Scan(&h.Seq, &h.Hash, &h.BaseSeq, &h.BaseHash, &h.MAC)
	return h, err
}

// AppendAudit implements audit.SharedStore: the head row is locked (FOR
// UPDATE) for the transaction, so appends from every replica run one
// after the other; the entry and the new head commit together.
func (s *DB) AppendAudit(ctx context.Context, fn func(h audit.Head, last audit.Entry, ok bool) (*audit.Entry, audit.Head, error)) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// A removed head row comes back empty (the log then refuses a
		// chain that has entries).
		if _, err := tx.Exec(ctx, `INSERT INTO audit_head (id, seq, base_seq) VALUES (1, 0, 0) ON CONFLICT (id) DO NOTHING`); err != nil {
			return fmt.Errorf("audit head: %w", err)
		}
		h, err := scanHead(tx.QueryRow(ctx, `SELECT seq, hash, base_seq, base_hash, mac FROM audit_head WHERE id = 1 FOR UPDATE`))
		if err != nil {
			return fmt.Errorf("audit head: %w", err)
		}
		last, err := scanAudit(tx.QueryRow(ctx, `SELECT `+auditColumns+` FROM audit_log ORDER BY seq DESC LIMIT 1`))
		ok := err == nil
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("read audit log: %w", err)
		}
		e, nh, err := fn(h, last, ok)
		if err != nil {
			return err
		}
		if e != nil {
			_, err := tx.Exec(ctx, `INSERT INTO audit_log (seq, at, event, subject, detail, actor, prev, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				e.Seq, e.At.UnixMilli(), e.Event, e.Subject, e.Detail, e.Actor, e.Prev, e.Hash)
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "23505" {
				return audit.ErrConflict
			}
			if err != nil {
				return fmt.Errorf("insert audit entry: %w", err)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE audit_head SET seq = $1, hash = $2, base_seq = $3, base_hash = $4, mac = $5 WHERE id = 1`,
			nh.Seq, nh.Hash, nh.BaseSeq, nh.BaseHash, nh.MAC); err != nil {
			return fmt.Errorf("audit head: %w", err)
		}
		return nil
	})
}
