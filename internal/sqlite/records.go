package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/records"
)

var _ records.Store = (*DB)(nil)

// PutRecord implements records.Store.
func (s *DB) PutRecord(ctx context.Context, r records.Sealed) (bool, error) {
	res, err := s.w.ExecContext(ctx, `INSERT INTO records (id, call_id, kind, dedup_key, created_at, caller_hash, key_id, wrapped_key, payload, redacted)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(call_id, kind, dedup_key) DO NOTHING`,
		r.ID, r.CallID, string(r.Kind), r.DedupKey, r.CreatedAt.UnixMilli(), r.CallerHash, r.Key.KeyID, r.Key.Sealed, r.Payload, r.Redacted)
	if err != nil {
		return false, fmt.Errorf("put record: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("put record: %w", err)
	}
	return n == 1, nil
}

const recordColumns = `id, call_id, kind, dedup_key, created_at, caller_hash, key_id, wrapped_key, payload, redacted`

func scanRecord(row interface{ Scan(...any) error }) (records.Sealed, error) {
	var r records.Sealed
	var kind string
	var at int64
	if err := row.Scan(&r.ID, &r.CallID, &kind, &r.DedupKey, &at, &r.CallerHash, &r.Key.KeyID, &r.Key.Sealed, &r.Payload, &r.Redacted); err != nil {
		return records.Sealed{}, err
	}
	r.Kind, r.CreatedAt = records.Kind(kind), time.UnixMilli(at)
	if len(r.Key.Sealed) == 0 {
		r.Key = envelope.Wrapped{}
	}
	return r, nil
}

// GetRecord implements records.Store.
func (s *DB) GetRecord(ctx context.Context, id string) (records.Sealed, error) {
	r, err := scanRecord(s.r.QueryRowContext(ctx, `SELECT `+recordColumns+` FROM records WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, records.ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("read record: %w", err)
	}
	return r, nil
}

// CallRecords implements records.Store.
func (s *DB) CallRecords(ctx context.Context, callID string) ([]records.Sealed, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+recordColumns+` FROM records WHERE call_id = ? ORDER BY created_at, rowid`, callID)
	if err != nil {
		return nil, fmt.Errorf("read records: %w", err)
	}
	defer rows.Close()
	list := []records.Sealed{}
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("read records: %w", err)
		}
		list = append(list, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read records: %w", err)
	}
	return list, nil
}

// ShredCall implements records.Store. The writer runs with secure_delete,
// so SQLite zeroes the bytes a cleared key leaves in its page (older copies
// may linger in the write-ahead log until its next restart).
func (s *DB) ShredCall(ctx context.Context, callID string) (int, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE records SET wrapped_key = NULL, key_id = '', redacted = NULL, caller_hash = ''
		WHERE call_id = ? AND (wrapped_key IS NOT NULL OR redacted IS NOT NULL OR caller_hash <> '')`, callID)
	if err != nil {
		return 0, fmt.Errorf("shred records: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("shred records: %w", err)
	}
	return int(n), nil
}

// KeyUsage implements records.Store.
func (s *DB) KeyUsage(ctx context.Context) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT key_id, count(*) FROM records WHERE wrapped_key IS NOT NULL GROUP BY key_id`)
	if err != nil {
		return nil, fmt.Errorf("key usage: %w", err)
	}
	defer rows.Close()
	usage := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("key usage: %w", err)
		}
		usage[id] = n
	}
	return usage, rows.Err()
}

// UnderKey implements records.Store.
func (s *DB) UnderKey(ctx context.Context, keyID, afterID string, limit int) ([]records.Sealed, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+recordColumns+` FROM records WHERE key_id = ? AND wrapped_key IS NOT NULL AND id > ? ORDER BY id LIMIT ?`, keyID, afterID, limit)
	if err != nil {
		return nil, fmt.Errorf("records under key %s: %w", keyID, err)
	}
	defer rows.Close()
	list := []records.Sealed{}
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("records under key %s: %w", keyID, err)
		}
		list = append(list, r)
	}
	return list, rows.Err()
}

// Rekey implements records.Store.
func (s *DB) Rekey(ctx context.Context, id string, old, next envelope.Wrapped) (bool, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE records SET key_id = ?, wrapped_key = ? WHERE id = ? AND key_id = ? AND wrapped_key IS NOT NULL`,
		next.KeyID, next.Sealed, id, old.KeyID)
	if err != nil {
		return false, fmt.Errorf("rekey record %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// CallerCalls implements records.Store.
func (s *DB) CallerCalls(ctx context.Context, h string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT DISTINCT call_id FROM records WHERE caller_hash = ? AND caller_hash <> ''`, h)
	if err != nil {
		return nil, fmt.Errorf("records of caller: %w", err)
	}
	return scanIDs(rows)
}

// DeleteBefore implements records.Store. With secure_delete, the deleted
// rows' bytes are zeroed in their pages.
func (s *DB) DeleteBefore(ctx context.Context, kind records.Kind, t time.Time, limit int) ([]string, error) {
	rows, err := s.w.QueryContext(ctx, `DELETE FROM records WHERE id IN
		(SELECT id FROM records WHERE kind = ? AND created_at < ? ORDER BY created_at LIMIT ?) RETURNING call_id`,
		string(kind), t.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("delete expired records: %w", err)
	}
	return scanIDs(rows)
}

func scanIDs(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	ids := []string{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
