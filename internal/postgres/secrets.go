package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/secrets"
)

var _ secrets.Store = (*DB)(nil)

func secErr(what string, err error) error { return fmt.Errorf("webhook secrets: %s: %w", what, err) }

// AddSecret implements secrets.Store.
func (s *DB) AddSecret(ctx context.Context, w secrets.Stored) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO webhook_secrets (id, generation, created_at, credential_id, key_id, wrapped_key, payload)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (generation) DO NOTHING`, w.ID, w.Generation, w.CreatedAt.UnixMilli(), w.CredentialID, w.Key.KeyID, w.Key.Sealed, w.Payload)
	if err != nil {
		return false, secErr("add", err)
	}
	return tag.RowsAffected() == 1, nil
}

// ListSecrets implements secrets.Store.
func (s *DB) ListSecrets(ctx context.Context) ([]secrets.Stored, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, generation, created_at, not_after, credential_id, key_id, wrapped_key, payload
		FROM webhook_secrets WHERE NOT retired ORDER BY generation`)
	if err != nil {
		return nil, secErr("list", err)
	}
	defer rows.Close()
	var out []secrets.Stored
	for rows.Next() {
		var w secrets.Stored
		var created int64
		var notAfter *int64
		if err := rows.Scan(&w.ID, &w.Generation, &created, &notAfter, &w.CredentialID, &w.Key.KeyID, &w.Key.Sealed, &w.Payload); err != nil {
			return nil, secErr("list", err)
		}
		w.CreatedAt = time.UnixMilli(created)
		if notAfter != nil {
			w.NotAfter = time.UnixMilli(*notAfter)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, secErr("list", err)
	}
	return out, nil
}

func (s *DB) updateSecret(ctx context.Context, what, q string, args ...any) error {
	tag, err := s.pool.Exec(ctx, q, args...)
	if err != nil {
		return secErr(what, err)
	}
	if tag.RowsAffected() == 0 {
		return secErr(what, secrets.ErrNotFound)
	}
	return nil
}

// SetSecretNotAfter implements secrets.Store.
func (s *DB) SetSecretNotAfter(ctx context.Context, id string, t time.Time) error {
	return s.updateSecret(ctx, "set not_after", `UPDATE webhook_secrets SET not_after = $1 WHERE id = $2 AND NOT retired`, t.UnixMilli(), id)
}

// SetSecretCredential implements secrets.Store.
func (s *DB) SetSecretCredential(ctx context.Context, id, credentialID string) error {
	return s.updateSecret(ctx, "set credential", `UPDATE webhook_secrets SET credential_id = $1 WHERE id = $2 AND NOT retired`, credentialID, id)
}

// RetireSecret implements secrets.Store.
func (s *DB) RetireSecret(ctx context.Context, id string) error {
	return s.updateSecret(ctx, "retire", `UPDATE webhook_secrets SET retired = true, wrapped_key = NULL, payload = NULL, key_id = '' WHERE id = $1`, id)
}

// RewrapSecret implements secrets.Store.
func (s *DB) RewrapSecret(ctx context.Context, id, oldKeyID string, key envelope.Wrapped) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE webhook_secrets SET key_id = $1, wrapped_key = $2 WHERE id = $3 AND key_id = $4 AND NOT retired`, key.KeyID, key.Sealed, id, oldKeyID)
	if err != nil {
		return false, secErr("rewrap", err)
	}
	return tag.RowsAffected() == 1, nil
}

// ReportLoaded implements secrets.Store.
func (s *DB) ReportLoaded(ctx context.Context, process string, generation int64, at time.Time) error {
	if _, err := s.pool.Exec(ctx, `INSERT INTO secret_loaders (process, generation, seen_at) VALUES ($1, $2, $3)
		ON CONFLICT (process) DO UPDATE SET generation = excluded.generation, seen_at = excluded.seen_at`, process, generation, at.UnixMilli()); err != nil {
		return secErr("report", err)
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM secret_loaders WHERE seen_at < $1`, at.Add(-24*time.Hour).UnixMilli()); err != nil {
		return secErr("report", err)
	}
	return nil
}

// Loaders implements secrets.Store.
func (s *DB) Loaders(ctx context.Context) ([]secrets.Loader, error) {
	rows, err := s.pool.Query(ctx, `SELECT process, generation, seen_at FROM secret_loaders ORDER BY process`)
	if err != nil {
		return nil, secErr("loaders", err)
	}
	defer rows.Close()
	var out []secrets.Loader
	for rows.Next() {
		var l secrets.Loader
		var at int64
		if err := rows.Scan(&l.Process, &l.Generation, &at); err != nil {
			return nil, secErr("loaders", err)
		}
		l.SeenAt = time.UnixMilli(at)
		out = append(out, l)
	}
	return out, rows.Err()
}

// Rotation implements secrets.Store.
func (s *DB) Rotation(ctx context.Context) (secrets.Rotation, error) {
	var state string
	err := s.pool.QueryRow(ctx, `SELECT state FROM secret_rotation WHERE id = 1`).Scan(&state)
	if errors.Is(err, pgx.ErrNoRows) {
		return secrets.Rotation{}, nil
	}
	if err != nil {
		return secrets.Rotation{}, secErr("rotation", err)
	}
	var r secrets.Rotation
	if err := json.Unmarshal([]byte(state), &r); err != nil {
		return secrets.Rotation{}, secErr("rotation", err)
	}
	return r, nil
}

// PutRotation implements secrets.Store.
func (s *DB) PutRotation(ctx context.Context, r secrets.Rotation) error {
	b, _ := json.Marshal(r)
	if _, err := s.pool.Exec(ctx, `INSERT INTO secret_rotation (id, state) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET state = excluded.state`, string(b)); err != nil {
		return secErr("rotation", err)
	}
	return nil
}

// TakeLease implements secrets.Store.
func (s *DB) TakeLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error) {
	tag, err := s.pool.Exec(ctx, `INSERT INTO leases (name, holder, until) VALUES ($1, $2, $3)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until WHERE leases.until < $4 OR leases.holder = excluded.holder`,
		name, holder, until.UnixMilli(), now.UnixMilli())
	if err != nil {
		return false, secErr("lease", err)
	}
	return tag.RowsAffected() == 1, nil
}

// ReleaseLease implements secrets.Store.
func (s *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM leases WHERE name = $1 AND holder = $2`, name, holder); err != nil {
		return secErr("lease", err)
	}
	return nil
}
