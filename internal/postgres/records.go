package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/records"
)

var _ records.Store = (*DB)(nil)

// PutRecord implements records.Store.
func (s *DB) PutRecord(ctx context.Context, r records.Sealed) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO records (id, call_id, kind, dedup_key, created_at, caller_hash, key_id, wrapped_key, payload, redacted)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (call_id, kind, dedup_key) DO NOTHING`,
		r.ID, r.CallID, string(r.Kind), r.DedupKey, r.CreatedAt.UnixMilli(), r.CallerHash, r.Key.KeyID, r.Key.Sealed, r.Payload, r.Redacted)
	if err != nil {
		return false, fmt.Errorf("put record: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

const recordColumns = `id, call_id, kind, dedup_key, created_at, caller_hash, key_id, wrapped_key, payload, redacted`

func scanRecord(row pgx.Row) (records.Sealed, error) {
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
	r, err := scanRecord(s.pool.QueryRow(ctx, `SELECT `+recordColumns+` FROM records WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, records.ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("read record: %w", err)
	}
	return r, nil
}

// CallRecords implements records.Store.
func (s *DB) CallRecords(ctx context.Context, callID string) ([]records.Sealed, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+recordColumns+` FROM records WHERE call_id = $1 ORDER BY created_at, seq`, callID)
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

// ShredCall implements records.Store.
func (s *DB) ShredCall(ctx context.Context, callID string) (int, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE records SET wrapped_key = NULL, key_id = '', redacted = NULL, caller_hash = ''
		WHERE call_id = $1 AND (wrapped_key IS NOT NULL OR redacted IS NOT NULL OR caller_hash <> '')`, callID)
	if err != nil {
		return 0, fmt.Errorf("shred records: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// KeyUsage implements records.Store.
func (s *DB) KeyUsage(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT key_id, count(*) FROM records WHERE wrapped_key IS NOT NULL GROUP BY key_id`)
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
	rows, err := s.pool.Query(ctx, `SELECT `+recordColumns+` FROM records WHERE key_id = $1 AND wrapped_key IS NOT NULL AND id > $2 ORDER BY id LIMIT $3`, keyID, afterID, limit)
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
	tag, err := s.pool.Exec(ctx, `UPDATE records SET key_id = $1, wrapped_key = $2 WHERE id = $3 AND key_id = $4 AND wrapped_key IS NOT NULL`,
		next.KeyID, next.Sealed, id, old.KeyID)
	if err != nil {
		return false, fmt.Errorf("rekey record %s: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

// CallerCalls implements records.Store.
func (s *DB) CallerCalls(ctx context.Context, h string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT call_id FROM records WHERE caller_hash = $1 AND caller_hash <> ''`, h)
	if err != nil {
		return nil, fmt.Errorf("records of caller: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("records of caller: %w", err)
	}
	return ids, nil
}

// DeleteBefore implements records.Store. Deleted rows stay in their pages
// until PostgreSQL vacuums them (their content is sealed, and a purge has
// erased their call's secret).
func (s *DB) DeleteBefore(ctx context.Context, kind records.Kind, t time.Time, limit int) ([]string, error) {
	rows, err := s.pool.Query(ctx, `DELETE FROM records WHERE id IN
		(SELECT id FROM records WHERE kind = $1 AND created_at < $2 ORDER BY created_at LIMIT $3) RETURNING call_id`,
		string(kind), t.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("delete expired records: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("delete expired records: %w", err)
	}
	if ids == nil {
		ids = []string{}
	}
	return ids, nil
}
