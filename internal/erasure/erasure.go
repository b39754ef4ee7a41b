// Package erasure provides the per-call secrets that make a purge final:
// every record's envelope is bound to a random secret of its call, kept in
// a small database of its own (erasure.db in data_dir), outside the records'
// database. Erasing a call deletes its secret, so its records can never be
// opened again — not from the database, and not from a copy of it taken
// before the purge, even with the keyring. The file runs with
// secure_delete (a deleted secret's bytes are zeroed in its page) and a
// write-ahead log that every erasure checkpoints and truncates at once (so
// no copy of the page with the secret is left in it), synchronous=FULL (a
// secret is on disk before the record bound to it is written), and is
// backed up apart from the database, like the keyring.
package erasure

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/voicegate/voicegate/internal/records"
	_ "modernc.org/sqlite" // the "sqlite" driver
)

// ErrErased is a call whose secret was erased by a purge. It Is
// records.ErrCallErased.
var ErrErased = fmt.Errorf("%w: its secret was destroyed", records.ErrCallErased)

// ErrMissing is a call with no secret that was not erased: never seen, or
// forgotten by retention once its records were deleted — or erasure.db was
// restored from a backup older than the call. It Is records.ErrSecretMissing.
var ErrMissing = fmt.Errorf("%w in %s", records.ErrSecretMissing, FileName)

// Secrets is a store of per-call secrets: this package's Store (SQLite,
// erasure.db in data_dir) or PostgreSQL's (postgres.Erasure, shared by
// replicas). Both pass the suite in erasuretest.
type Secrets interface {
	records.CallSecrets
	// Close stops the store's background work and waits for it.
	Close() error
}

var _ Secrets = (*Store)(nil)

// Store keeps the per-call secrets. Safe for concurrent use.
type Store struct {
	db *sql.DB // the writer: one connection
	// rdb reads, beside the writer: a call's secret is read for each of
	// its records, and a read must not wait behind another call's
	// first, fsynced insert.
	rdb *sql.DB
	// creates queue new secrets for the batcher, which inserts all those
	// waiting in one transaction (one fsync for many calls: group commit).
	creates chan createReq
	// prepares queue secrets made ahead of a call's first record (see
	// Prepare): no one waits for them.
	prepares chan createReq
	stop     chan struct{}
	batcher  sync.WaitGroup
	// checkpointed is when the batcher last copied the log into the file.
	checkpointed time.Time
}

type createReq struct {
	callID string
	secret []byte
	done   chan error
	// idleSince, for a prepared secret, marks the call idle from then on
	// (see Prepare); zero for a secret made by a record.
	idleSince time.Time
}

// FileName is the store's file in a data directory.
const FileName = "erasure.db"

// Open opens (creating, mode 0600) the store in data directory dir.
func Open(ctx context.Context, dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("erasure store: %w", err)
	}
	path := filepath.Join(dir, FileName)
	if f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
		f.Close()
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=secure_delete(1)&_pragma=synchronous(FULL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("erasure store: %w", err)
	}
	db.SetMaxOpenConns(1)
	// erased_calls remembers what was erased, so that a live call's next
	// event does not give it a fresh secret (and new, readable records).
	// idle_calls are calls whose records retention deleted, waiting to
	// have their secret forgotten (see Idle).
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS call_secrets (call_id TEXT PRIMARY KEY, secret BLOB NOT NULL) STRICT`,
		`CREATE TABLE IF NOT EXISTS erased_calls (call_id TEXT PRIMARY KEY) STRICT`,
		`CREATE TABLE IF NOT EXISTS idle_calls (call_id TEXT PRIMARY KEY, since INTEGER NOT NULL) STRICT`,
		`CREATE INDEX IF NOT EXISTS idle_calls_since ON idle_calls(since)`,
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			db.Close()
			return nil, fmt.Errorf("erasure store %s: %w", path, err)
		}
	}
	rdb, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("erasure store: %w", err)
	}
	rdb.SetMaxOpenConns(4)
	st := &Store{db: db, rdb: rdb, creates: make(chan createReq), prepares: make(chan createReq, 1024), stop: make(chan struct{})}
	st.batcher.Go(st.insertBatches)
	return st, nil
}

// Prepare makes call id's secret ahead of its first record, in the
// background: voicegate calls it when a call starts, so that the call's
// first tool call or report does not wait for the secret's fsynced insert.
// It never blocks (when the queue is full, the first record makes the
// secret as it would have anyway) and never re-creates an erased call's.
//
// The call is also marked idle as of PrepareGrace from now (so retention
// looks at it after twice its grace, a call lasting at most 12 hours): if
// it never writes a record, its secret is then forgotten.
func (s *Store) Prepare(callID string, now time.Time) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return
	}
	select {
	case s.prepares <- createReq{callID: callID, secret: secret, idleSince: now.Add(PrepareGrace)}:
	default:
	}
}

// PrepareGrace delays a prepared call's idle mark: with retention's own
// 12-hour grace, a call that never wrote a record loses its secret a day
// after it started.
const PrepareGrace = 12 * time.Hour

// maxBatch is how many new secrets one transaction inserts at most.
const maxBatch = 256

// insertBatches inserts the secrets queued in creates, all those waiting
// in one transaction, until Close.
func (s *Store) insertBatches() {
	for {
		var batch []createReq
		select {
		case <-s.stop:
			return
		case r := <-s.creates:
			batch = append(batch, r)
		case r := <-s.prepares:
			batch = append(batch, r)
		}
	more:
		for len(batch) < maxBatch {
			select {
			case r := <-s.creates:
				batch = append(batch, r)
			case r := <-s.prepares:
				batch = append(batch, r)
			default:
				break more
			}
		}
		err := s.insert(batch)
		for _, r := range batch {
			if r.done != nil {
				r.done <- err
			}
		}
		// Copy the log into erasure.db at most once a second, after the
		// waiters are answered: a copy of erasure.db alone (a backup of
		// the file without its -wal) then lacks at most the last second's
		// secrets.
		if time.Since(s.checkpointed) >= time.Second {
			s.db.Exec(`PRAGMA wal_checkpoint(PASSIVE)`)
			s.checkpointed = time.Now()
		}
	}
}

// insert writes a batch of secrets in one transaction: each only if its
// call was not erased meanwhile (checked under the write lock: an erased
// call stays erased), and not over one another writer made first.
func (s *Store) insert(batch []createReq) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("erasure store: %w", err)
	}
	defer tx.Rollback()
	for _, r := range batch {
		res, err := tx.ExecContext(ctx, `INSERT INTO call_secrets (call_id, secret) SELECT ?, ?
			WHERE NOT EXISTS (SELECT 1 FROM erased_calls WHERE call_id = ?) ON CONFLICT(call_id) DO NOTHING`, r.callID, r.secret, r.callID)
		if err != nil {
			return fmt.Errorf("erasure store: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 1 && !r.idleSince.IsZero() {
			// A call that never writes a record must not keep its secret
			// forever: retention forgets it once idle and without records.
			if _, err := tx.ExecContext(ctx, `INSERT INTO idle_calls (call_id, since) VALUES (?, ?) ON CONFLICT(call_id) DO NOTHING`, r.callID, r.idleSince.UnixMilli()); err != nil {
				return fmt.Errorf("erasure store: %w", err)
			}
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("erasure store: %w", err)
	}
	return nil
}

// Secret returns call id's secret, creating it when create is set. A call
// erased by a purge is ErrErased (never re-created: it stays erased); one
// with no secret otherwise is ErrMissing (create unset).
func (s *Store) Secret(ctx context.Context, callID string, create bool) ([]byte, error) {
	var secret []byte
	err := s.rdb.QueryRowContext(ctx, `SELECT secret FROM call_secrets WHERE call_id = ?`, callID).Scan(&secret)
	if err == nil {
		return secret, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("erasure store: %w", err)
	}
	var erased int
	if err := s.rdb.QueryRowContext(ctx, `SELECT count(*) FROM erased_calls WHERE call_id = ?`, callID).Scan(&erased); err != nil {
		return nil, fmt.Errorf("erasure store: %w", err)
	}
	if erased > 0 {
		return nil, ErrErased // an erased call stays erased
	}
	if !create {
		return nil, ErrMissing
	}
	secret = make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	// Durable (synchronous=FULL) before it is returned: a record bound to
	// it is written next. Calls starting at once share one commit.
	r := createReq{callID: callID, secret: secret, done: make(chan error, 1)}
	select {
	case s.creates <- r:
	case <-s.stop:
		return nil, errors.New("erasure store: closed")
	case <-ctx.Done():
		return nil, fmt.Errorf("erasure store: %w", ctx.Err())
	}
	select {
	case err := <-r.done: // done is buffered: the batcher never waits for us
		if err != nil {
			return nil, err
		}
	case <-ctx.Done():
		return nil, fmt.Errorf("erasure store: %w", ctx.Err())
	}
	// Another writer may have created it first, or the call was erased
	// meanwhile: read what is stored (even if ctx ends now: it is there).
	return s.Secret(context.WithoutCancel(ctx), callID, false)
}

// Erase destroys call id's secret; it reports whether there was one.
func (s *Store) Erase(ctx context.Context, callID string) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("erasure store: %w", err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `DELETE FROM call_secrets WHERE call_id = ?`, callID)
	if err != nil {
		return false, fmt.Errorf("erasure store: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO erased_calls (call_id) VALUES (?) ON CONFLICT(call_id) DO NOTHING`, callID); err != nil {
		return false, fmt.Errorf("erasure store: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("erasure store: %w", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, s.scrub(ctx)
}

// scrub copies the write-ahead log into the database and truncates it:
// the page versions that still held an erased secret are overwritten (by
// secure_delete's zeroed page) or cut off. It waits for readers of other
// processes up to the busy timeout, and fails if the log could not be
// emptied: the erasure is then not final yet, and is reported so.
func (s *Store) scrub(ctx context.Context) error {
	var busy, logged, done int
	if err := s.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logged, &done); err != nil {
		return fmt.Errorf("erasure store: checkpoint: %w", err)
	}
	if busy != 0 {
		return errors.New("erasure store: the write-ahead log could not be emptied (another process is reading): run the purge again")
	}
	return nil
}

// MarkIdle notes that retention deleted call id's last record at since:
// its secret is forgotten by a later Forget once the call stayed without
// records long enough (a call still going on may write more).
func (s *Store) MarkIdle(ctx context.Context, callID string, since time.Time) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO idle_calls (call_id, since) VALUES (?, ?) ON CONFLICT(call_id) DO NOTHING`, callID, since.UnixMilli()); err != nil {
		return fmt.Errorf("erasure store: %w", err)
	}
	return nil
}

// Idle returns up to limit calls marked idle before t.
func (s *Store) Idle(ctx context.Context, before time.Time, limit int) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT call_id FROM idle_calls WHERE since < ? ORDER BY since, call_id LIMIT ?`, before.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("erasure store: %w", err)
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("erasure store: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}

// Forget destroys call id's secret and its idle mark when forget is set
// (it then reports whether there was a secret), else only the mark (the
// call has records again). Unlike Erase, it leaves no tombstone: a later
// record of the call gets a fresh secret.
func (s *Store) Forget(ctx context.Context, callID string, forget bool) (bool, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("erasure store: %w", err)
	}
	defer tx.Rollback()
	var n int64
	if forget {
		res, err := tx.ExecContext(ctx, `DELETE FROM call_secrets WHERE call_id = ?`, callID)
		if err != nil {
			return false, fmt.Errorf("erasure store: %w", err)
		}
		n, _ = res.RowsAffected()
	} else if _, err := tx.ExecContext(ctx, `DELETE FROM idle_calls WHERE call_id = ?`, callID); err != nil {
		return false, fmt.Errorf("erasure store: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("erasure store: %w", err)
	}
	if !forget {
		return false, nil
	}
	// The idle mark goes only once the log no longer holds the secret: a
	// scrub that could not finish is tried again by the next Forget.
	if err := s.scrub(ctx); err != nil {
		return n == 1, err
	}
	if _, err := s.db.ExecContext(ctx, `DELETE FROM idle_calls WHERE call_id = ?`, callID); err != nil {
		return n == 1, fmt.Errorf("erasure store: %w", err)
	}
	return n == 1, nil
}

// Exists reports whether data directory dir has an erasure store.
func Exists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, FileName))
	return err == nil
}

// Row is one call's entry, as Export reads it: its secret (nil when it
// was erased), whether it was erased, and since when it is idle (zero:
// not idle).
type Row struct {
	CallID    string
	Secret    []byte
	Erased    bool
	IdleSince time.Time
}

// Export calls fn with every call the store knows: to move the secrets
// into another store (PostgreSQL's, when replicas come to share them). It
// stops at fn's first error.
func (s *Store) Export(ctx context.Context, fn func(Row) error) error {
	rows, err := s.rdb.QueryContext(ctx, `SELECT c.call_id, s.secret, e.call_id IS NOT NULL, i.since FROM
		(SELECT call_id FROM call_secrets UNION SELECT call_id FROM erased_calls UNION SELECT call_id FROM idle_calls) c
		LEFT JOIN call_secrets s ON s.call_id = c.call_id
		LEFT JOIN erased_calls e ON e.call_id = c.call_id
		LEFT JOIN idle_calls i ON i.call_id = c.call_id ORDER BY c.call_id`)
	if err != nil {
		return fmt.Errorf("erasure store: %w", err)
	}
	defer rows.Close()
	var all []Row
	for rows.Next() {
		var r Row
		var since sql.NullInt64
		if err := rows.Scan(&r.CallID, &r.Secret, &r.Erased, &since); err != nil {
			return fmt.Errorf("erasure store: %w", err)
		}
		if since.Valid {
			r.IdleSince = time.UnixMilli(since.Int64)
		}
		all = append(all, r)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("erasure store: %w", err)
	}
	rows.Close()
	for _, r := range all {
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// Remove deletes the store's files from data directory dir (the
// database, its log and shared memory), once its secrets were moved
// elsewhere: a copy left behind would keep a later-erased call readable.
// The store must be closed.
func Remove(dir string) error {
	for _, name := range []string{FileName, FileName + "-wal", FileName + "-shm"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("erasure store: %w", err)
		}
	}
	return nil
}

// Close closes the store (SQLite checkpoints and removes the log when the
// last connection closes).
func (s *Store) Close() error {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.batcher.Wait()
	s.rdb.Close()
	return s.db.Close()
}
