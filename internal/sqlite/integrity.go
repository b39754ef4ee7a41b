package sqlite

import (
	"context"
	"fmt"
	"strings"
	"time"

	sqlite3 "modernc.org/sqlite/lib"
)

// IntegrityError is Open's refusal of a database file that is not a SQLite
// database or that PRAGMA quick_check finds damaged. Writes to a damaged
// database can fail at random and can spread the damage, so voicegate does
// not start on one: the operator restores a backup or moves the file aside
// (voicegate then starts with an empty database).
type IntegrityError struct {
	Path string
	// NotDatabase is set when the file is not a SQLite database at all.
	NotDatabase bool
	// Problems are quick_check's first findings, when it could run.
	Problems []string
	// Err is the driver's error, when the check could not run.
	Err error
}

func (e *IntegrityError) Error() string {
	const advice = "restore it from a backup or move it aside; voicegate will not write to a damaged database"
	if e.NotDatabase {
		return fmt.Sprintf("database %s is not a SQLite database (%v): %s", e.Path, e.Err, advice)
	}
	detail := strings.Join(e.Problems, "; ")
	if detail == "" && e.Err != nil {
		detail = e.Err.Error()
	}
	return fmt.Sprintf("database %s failed its integrity check (quick_check: %s): %s", e.Path, detail, advice)
}

// Unwrap returns the driver's error, if any.
func (e *IntegrityError) Unwrap() error { return e.Err }

// maxIntegrityProblems bounds how many findings quick_check reports (and so
// the time it spends on a badly damaged file).
const maxIntegrityProblems = 5

// checkIntegrity runs PRAGMA quick_check: the structure of every page, the
// format of every record, NOT NULL and STRICT column types; not whether
// indexes match their tables (integrity_check does that, at several times
// the cost). It runs before the migrations, so nothing is written to a
// damaged file: the connection's own pragmas only read the header of a
// database already in WAL mode, as every voicegate database is.
func (s *DB) checkIntegrity(ctx context.Context) error {
	start := time.Now()
	probs, err := s.runQuickCheck(ctx)
	s.quickCheck = time.Since(start)
	switch {
	case sqliteCode(err) == sqlite3.SQLITE_NOTADB:
		return &IntegrityError{Path: s.path, NotDatabase: true, Err: err}
	case sqliteCode(err) == sqlite3.SQLITE_CORRUPT:
		return &IntegrityError{Path: s.path, Err: err}
	case err != nil:
		return fmt.Errorf("check database %s: %w", s.path, err)
	case len(probs) != 1 || probs[0] != "ok":
		return &IntegrityError{Path: s.path, Problems: probs}
	}
	return nil
}

func (s *DB) runQuickCheck(ctx context.Context) ([]string, error) {
	rows, err := s.w.QueryContext(ctx, fmt.Sprintf(`PRAGMA quick_check(%d)`, maxIntegrityProblems))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var probs []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		// A finding can span lines, the first naming the schema
		// ("*** in database main ***"): one problem per line, for a
		// one-line error.
		for _, line := range strings.Split(p, "\n") {
			if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "***") && len(probs) < maxIntegrityProblems {
				probs = append(probs, line)
			}
		}
	}
	return probs, rows.Err()
}

// QuickCheckDuration returns how long Open's integrity check took, for the
// start-up log: it reads the whole file.
func (s *DB) QuickCheckDuration() time.Duration { return s.quickCheck }
