package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/voicegate/voicegate/internal/gitops"
)

var _ gitops.Store = (*DB)(nil)

// VapiResources implements gitops.Store.
func (s *DB) VapiResources(ctx context.Context, org string) ([]gitops.Entry, error) {
	rows, err := s.pool.Query(ctx, `SELECT kind, local_id, vapi_id, last_applied, updated_at FROM vapi_resources
		WHERE org = $1 ORDER BY kind, local_id`, org)
	if err != nil {
		return nil, fmt.Errorf("vapi resources: %w", err)
	}
	defer rows.Close()
	var out []gitops.Entry
	for rows.Next() {
		e := gitops.Entry{Org: org}
		var applied *string
		var at int64
		if err := rows.Scan(&e.Kind, &e.LocalID, &e.VapiID, &applied, &at); err != nil {
			return nil, fmt.Errorf("vapi resources: %w", err)
		}
		if applied != nil {
			e.LastApplied = []byte(*applied)
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
	var applied *string
	if e.LastApplied != nil {
		a := string(e.LastApplied)
		applied = &a
	}
	_, err := s.pool.Exec(ctx, `INSERT INTO vapi_resources (org, kind, local_id, vapi_id, last_applied, updated_at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (org, kind, local_id) DO UPDATE SET vapi_id = excluded.vapi_id, last_applied = excluded.last_applied, updated_at = excluded.updated_at`,
		e.Org, e.Kind, e.LocalID, e.VapiID, applied, e.UpdatedAt.UnixMilli())
	if err != nil {
		return fmt.Errorf("vapi resources: %w", err)
	}
	return nil
}

// DeleteVapiResource implements gitops.Store.
func (s *DB) DeleteVapiResource(ctx context.Context, org, kind, localID string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM vapi_resources WHERE org = $1 AND kind = $2 AND local_id = $3`, org, kind, localID); err != nil {
		return fmt.Errorf("vapi resources: %w", err)
	}
	return nil
}
