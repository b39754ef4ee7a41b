package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// TakeAttempt implements predial.AttemptStore: one atomic statement, so
// that replicas never count past max between them.
func (s *DB) TakeAttempt(ctx context.Context, h, day string, max int) (bool, error) {
	var n int
	err := s.pool.QueryRow(ctx, `INSERT INTO predial_attempts (number_hash, day, count) VALUES ($1, $2, 1)
		ON CONFLICT (number_hash, day) DO UPDATE SET count = predial_attempts.count + 1 WHERE predial_attempts.count < $3 RETURNING count`, h, day, max).Scan(&n)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("pre-dial attempts: %w", err)
	}
	return n <= max, nil
}

// ForgetAttemptsBefore implements predial.AttemptStore.
func (s *DB) ForgetAttemptsBefore(ctx context.Context, day string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM predial_attempts WHERE day < $1`, day); err != nil {
		return fmt.Errorf("pre-dial attempts: %w", err)
	}
	return nil
}
