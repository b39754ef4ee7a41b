package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/voicegate/voicegate/internal/gitops"
)

var _ gitops.Store = (*DB)(nil)

// VapiResources implements gitops.Store.
func (s *DB) VapiResources(ctx context.Context, org string) ([]gitops.Entry, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT kind, local_id, vapi_id, last_applied, updated_at FROM vapi_resources
		WHERE org = ? ORDER BY kind, local_id`, org)
	if err != nil {
		return nil, fmt.Errorf("vapi resources: %w", err)
	}
	defer rows.Close()
	var out []gitops.Entry
	for rows.Next() {
		e := gitops.Entry{Org: org}
		var applied sql.NullString
		var at int64
		if err := rows.Scan(&e.Kind, &e.LocalID, &e.VapiID, &applied, &at); err != nil {
			return nil, fmt.Errorf("vapi resources: %w", err)
		}
		if applied.Valid {
			e.LastApplied = []byte(applied.String)
		}
		e.UpdatedAt = time.UnixMilli(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("vapi resources: %w", err)
	}
	return out, nil
}

// PutVapiResource implements gitops.Store.
func (s *DB) PutVapiResource(ctx context.Context, e gitops.Entry) error {
	var applied any
	if e.LastApplied != nil {
		applied = string(e.LastApplied)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO vapi_resources (org, kind, local_id, vapi_id, last_applied, updated_at) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (org, kind, local_id) DO UPDATE SET vapi_id = excluded.vapi_id, last_applied = excluded.last_applied, updated_at = excluded.updated_at`,
		e.Org, e.Kind, e.LocalID, e.VapiID, applied, e.UpdatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("vapi resources: %w", err)
	}
	return nil
}

// DeleteVapiResource implements gitops.Store.
func (s *DB) DeleteVapiResource(ctx context.Context, org, kind, localID string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM vapi_resources WHERE org = ? AND kind = ? AND local_id = ?`, org, kind, localID); err != nil {
		return fmt.Errorf("vapi resources: %w", err)
	}
	return nil
}
