package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// TakeAttempt implements predial.AttemptStore: one atomic statement, so
// that concurrent requests never count past max.
func (s *DB) TakeAttempt(ctx context.Context, h, day string, max int) (bool, error) {
	var n int
	err := s.w.QueryRowContext(ctx, `INSERT INTO predial_attempts (number_hash, day, count) VALUES (?, ?, 1)
		ON CONFLICT (number_hash, day) DO UPDATE SET count = count + 1 WHERE count < ? RETURNING count`, h, day, max).Scan(&n)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("pre-dial attempts: %w", err)
	}
	return n <= max, nil
}

// ForgetAttemptsBefore implements predial.AttemptStore.
func (s *DB) ForgetAttemptsBefore(ctx context.Context, day string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM predial_attempts WHERE day < ?`, day); err != nil {
		return fmt.Errorf("pre-dial attempts: %w", err)
	}
	return nil
}
