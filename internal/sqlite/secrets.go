package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/secrets"
)

var _ secrets.Store = (*DB)(nil)

func secErr(what string, err error) error { return fmt.Errorf("webhook secrets: %s: %w", what, err) }

// AddSecret implements secrets.Store.
func (s *DB) AddSecret(ctx context.Context, w secrets.Stored) (bool, error) {
	res, err := s.w.ExecContext(ctx, `INSERT INTO webhook_secrets (id, generation, created_at, credential_id, key_id, wrapped_key, payload)
		VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (generation) DO NOTHING`, w.ID, w.Generation, w.CreatedAt.UnixMilli(), w.CredentialID, w.Key.KeyID, w.Key.Sealed, w.Payload)
	if err != nil {
		return false, secErr("add", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, secErr("add", err)
	}
	return n == 1, nil
}

// ListSecrets implements secrets.Store.
func (s *DB) ListSecrets(ctx context.Context) ([]secrets.Stored, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, generation, created_at, not_after, credential_id, key_id, wrapped_key, payload
		FROM webhook_secrets WHERE retired = 0 ORDER BY generation`)
	if err != nil {
		return nil, secErr("list", err)
	}
	defer rows.Close()
	var out []secrets.Stored
	for rows.Next() {
		var w secrets.Stored
		var created int64
		var notAfter sql.NullInt64
		if err := rows.Scan(&w.ID, &w.Generation, &created, &notAfter, &w.CredentialID, &w.Key.KeyID, &w.Key.Sealed, &w.Payload); err != nil {
			return nil, secErr("list", err)
		}
		w.CreatedAt = time.UnixMilli(created)
		if notAfter.Valid {
			w.NotAfter = time.UnixMilli(notAfter.Int64)
		}
		out = append(out, w)
	}
	if err := rows.Err(); err != nil {
		return nil, secErr("list", err)
	}
	return out, nil
}

func (s *DB) updateSecret(ctx context.Context, what, q string, args ...any) error {
	res, err := s.w.ExecContext(ctx, q, args...)
	if err != nil {
		return secErr(what, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return secErr(what, err)
	} else if n == 0 {
		return secErr(what, secrets.ErrNotFound)
	}
	return nil
}

// SetSecretNotAfter implements secrets.Store.
func (s *DB) SetSecretNotAfter(ctx context.Context, id string, t time.Time) error {
	return s.updateSecret(ctx, "set not_after", `UPDATE webhook_secrets SET not_after = ? WHERE id = ? AND retired = 0`, t.UnixMilli(), id)
}

// SetSecretCredential implements secrets.Store.
func (s *DB) SetSecretCredential(ctx context.Context, id, credentialID string) error {
	return s.updateSecret(ctx, "set credential", `UPDATE webhook_secrets SET credential_id = ? WHERE id = ? AND retired = 0`, credentialID, id)
}

// RetireSecret implements secrets.Store.
func (s *DB) RetireSecret(ctx context.Context, id string) error {
	return s.updateSecret(ctx, "retire", `UPDATE webhook_secrets SET retired = 1, wrapped_key = NULL, payload = NULL, key_id = '' WHERE id = ?`, id)
}

// RewrapSecret implements secrets.Store.
func (s *DB) RewrapSecret(ctx context.Context, id, oldKeyID string, key envelope.Wrapped) (bool, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE webhook_secrets SET key_id = ?, wrapped_key = ? WHERE id = ? AND key_id = ? AND retired = 0`, key.KeyID, key.Sealed, id, oldKeyID)
	if err != nil {
		return false, secErr("rewrap", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, secErr("rewrap", err)
	}
	return n == 1, nil
}

// ReportLoaded implements secrets.Store.
func (s *DB) ReportLoaded(ctx context.Context, process string, generation int64, at time.Time) error {
	if _, err := s.w.ExecContext(ctx, `INSERT INTO secret_loaders (process, generation, seen_at) VALUES (?, ?, ?)
		ON CONFLICT (process) DO UPDATE SET generation = excluded.generation, seen_at = excluded.seen_at`, process, generation, at.UnixMilli()); err != nil {
		return secErr("report", err)
	}
	// Processes gone for a day are forgotten.
	if _, err := s.w.ExecContext(ctx, `DELETE FROM secret_loaders WHERE seen_at < ?`, at.Add(-24*time.Hour).UnixMilli()); err != nil {
		return secErr("report", err)
	}
	return nil
}

// Loaders implements secrets.Store.
func (s *DB) Loaders(ctx context.Context) ([]secrets.Loader, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT process, generation, seen_at FROM secret_loaders ORDER BY process`)
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
	err := s.r.QueryRowContext(ctx, `SELECT state FROM secret_rotation WHERE id = 1`).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
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
	if _, err := s.w.ExecContext(ctx, `INSERT INTO secret_rotation (id, state) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state`, string(b)); err != nil {
		return secErr("rotation", err)
	}
	return nil
}

// TakeLease implements secrets.Store.
func (s *DB) TakeLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error) {
	res, err := s.w.ExecContext(ctx, `INSERT INTO leases (name, holder, until) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, until = excluded.until WHERE leases.until < ? OR leases.holder = excluded.holder`,
		name, holder, until.UnixMilli(), now.UnixMilli())
	if err != nil {
		return false, secErr("lease", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, secErr("lease", err)
	}
	return n == 1, nil
}

// ReleaseLease implements secrets.Store.
func (s *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM leases WHERE name = ? AND holder = ?`, name, holder); err != nil {
		return secErr("lease", err)
	}
	return nil
}
