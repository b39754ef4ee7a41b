package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/voicegate/voicegate/internal/records"
)

// erasureTables are internal/erasure's tables: a call's secret, the
// tombstones of erased calls (a live call's next event must not give it a
// fresh secret, and new readable records), and the calls whose records
// retention deleted, waiting to have their secret forgotten. IF NOT
// EXISTS: the same statements create them in a database of their own
// (storage.erasure_postgres_url), which may be the store's own.
const erasureTables = `
CREATE TABLE IF NOT EXISTS call_secrets (call_id TEXT COLLATE "C" PRIMARY KEY, secret BYTEA NOT NULL);
CREATE TABLE IF NOT EXISTS erased_calls (call_id TEXT COLLATE "C" PRIMARY KEY);
CREATE TABLE IF NOT EXISTS idle_calls (call_id TEXT COLLATE "C" PRIMARY KEY, since BIGINT NOT NULL);
CREATE INDEX IF NOT EXISTS idle_calls_since ON idle_calls(since, call_id);
`

// erasureMigrations are those of a database that holds only the secrets
// (OpenErasure), noted in erasure_migrations.
var erasureMigrations = []string{1: erasureTables}

// Erasure is the PostgreSQL store of per-call secrets (internal/erasure's
// contract, erasuretest): every replica reads and erases the same secrets,
// so a record sealed by one can be opened by another, and an erasure by
// one holds for all. It is safe for concurrent use.
//
// What PostgreSQL cannot do that the SQLite store does: zero a deleted
// secret's bytes. A deleted row stays in its table's pages until VACUUM
// reuses them, in the write-ahead log until it is recycled, and in every
// base backup and archived WAL segment until they expire. An erasure is
// final once those older than it are gone (see docs/replicas.md); a
// database of its own with short backup retention (OpenErasure,
// storage.erasure_postgres_url) shortens that.
type Erasure struct {
	pool   *pgxpool.Pool
	schema string
	own    bool // the pool is the store's own (OpenErasure): Close closes it
	// prepares queue secrets made ahead of a call's first record (see
	// Prepare); one goroutine inserts them, all those waiting in one
	// transaction, in order.
	prepares chan prepared
	stop     chan struct{}
	stopOnce sync.Once
	worker   sync.WaitGroup
}

type prepared struct {
	callID    string
	secret    []byte
	idleSince time.Time
}

// ErrErasedCall is a call whose secret was erased. It Is
// records.ErrCallErased.
var ErrErasedCall = fmt.Errorf("%w: its secret was destroyed", records.ErrCallErased)

// ErrNoSecret is a call with no secret that was not erased. It Is
// records.ErrSecretMissing.
var ErrNoSecret = fmt.Errorf("%w in the PostgreSQL erasure store", records.ErrSecretMissing)

var errErasureClosed = errors.New("erasure store: closed")

// Erasure returns the per-call secrets kept in the store's own database
// (migration 10's tables). Its Close stops its background work but leaves
// the store open.
func (s *DB) Erasure() *Erasure {
	return newErasure(s.pool, s.schema, false)
}

// OpenErasure opens a store of per-call secrets in a database of their
// own (storage.erasure_postgres_url): only the secrets' tables are created
// there. The URL's password never appears in an error.
func OpenErasure(ctx context.Context, url string, o Options) (*Erasure, error) {
	if o.MaxConns == 0 {
		o.MaxConns = 8
	}
	pool, schema, err := connect(ctx, url, o)
	if err != nil {
		return nil, fmt.Errorf("erasure store: %w", err)
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	if err := runMigrations(ctx, pool, schema, "erasure_migrations", erasureMigrations, now); err != nil {
		pool.Close()
		return nil, fmt.Errorf("erasure store: %w", err)
	}
	return newErasure(pool, schema, true), nil
}

func newErasure(pool *pgxpool.Pool, schema string, own bool) *Erasure {
	e := &Erasure{pool: pool, schema: schema, own: own, prepares: make(chan prepared, 1024), stop: make(chan struct{})}
	e.worker.Go(e.insertPrepared)
	return e
}

// lock is the transaction-scoped advisory lock of one call's secret: its
// creation and its erasure exclude each other, so that a secret is never
// created beside a tombstone.
func (e *Erasure) lock(callID string) int64 {
	h := fnv.New64a()
	h.Write([]byte("voicegate erasure " + e.schema + "\x00" + callID))
	return int64(h.Sum64())
}

func (e *Erasure) closed() bool {
	select {
	case <-e.stop:
		return true
	default:
		return false
	}
}

// insertSecret inserts call id's secret unless the call was erased or has
// one; with idleSince set, a secret it did insert marks the call idle.
const insertSecret = `WITH ins AS (
	INSERT INTO call_secrets (call_id, secret) SELECT $1::text, $2::bytea
	WHERE NOT EXISTS (SELECT 1 FROM erased_calls WHERE call_id = $1::text)
	ON CONFLICT (call_id) DO NOTHING RETURNING call_id)
INSERT INTO idle_calls (call_id, since) SELECT call_id, $3::bigint FROM ins WHERE $3::bigint > 0
ON CONFLICT (call_id) DO NOTHING`

// Prepare implements records.CallSecrets: it never blocks (when the
// queue is full, the first record makes the secret) and never re-creates
// an erased call's.
func (e *Erasure) Prepare(callID string, now time.Time) {
	if e.closed() {
		return
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return
	}
	select {
	case e.prepares <- prepared{callID: callID, secret: secret, idleSince: now.Add(PrepareGrace)}:
	default:
	}
}

// PrepareGrace is internal/erasure's PrepareGrace (a call that never
// writes a record loses its secret a day after it started).
const PrepareGrace = 12 * time.Hour

// insertPrepared inserts the prepared secrets until Close.
func (e *Erasure) insertPrepared() {
	for {
		var batch []prepared
		select {
		case <-e.stop:
			return
		case p := <-e.prepares:
			batch = append(batch, p)
		}
	more:
		for len(batch) < 256 {
			select {
			case p := <-e.prepares:
				batch = append(batch, p)
			default:
				break more
			}
		}
		// A failed batch is dropped: each call's first record makes its
		// secret then, as it would have without Prepare.
		e.insertBatch(batch)
	}
}

func (e *Erasure) insertBatch(batch []prepared) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Locks in one order: two replicas' batches never deadlock.
	slices.SortFunc(batch, func(a, b prepared) int { return cmpInt64(e.lock(a.callID), e.lock(b.callID)) })
	return pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, p := range batch {
			b.Queue(`SELECT pg_advisory_xact_lock($1)`, e.lock(p.callID))
			b.Queue(insertSecret, p.callID, p.secret, p.idleSince.UnixMilli())
		}
		return tx.SendBatch(ctx, b).Close()
	})
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// read returns call id's secret (nil: none) and whether it was erased.
func (e *Erasure) read(ctx context.Context, callID string) ([]byte, bool, error) {
	var secret []byte
	var erased bool
	err := e.pool.QueryRow(ctx, `SELECT (SELECT secret FROM call_secrets WHERE call_id = $1),
		EXISTS (SELECT 1 FROM erased_calls WHERE call_id = $1)`, callID).Scan(&secret, &erased)
	if err != nil {
		return nil, false, fmt.Errorf("erasure store: %w", err)
	}
	return secret, erased, nil
}

// Secret implements records.CallSecrets: ErrErasedCall for an erased call
// (never re-created), ErrNoSecret for one without a secret when create is
// unset. A created secret is committed before it is returned.
func (e *Erasure) Secret(ctx context.Context, callID string, create bool) ([]byte, error) {
	if e.closed() {
		return nil, errErasureClosed
	}
	secret, erased, err := e.read(ctx, callID)
	switch {
	case err != nil:
		return nil, err
	case erased:
		return nil, ErrErasedCall
	case secret != nil:
		return secret, nil
	case !create:
		return nil, ErrNoSecret
	}
	secret = make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	err = pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, e.lock(callID)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, insertSecret, callID, secret, int64(0))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("erasure store: %w", err)
	}
	// Another replica may have created it first, or erased the call:
	// read what is stored (even if ctx ends now: it is there).
	return e.Secret(context.WithoutCancel(ctx), callID, false)
}

// Erase implements records.CallSecrets: it deletes the secret and leaves
// a tombstone, in one transaction; it reports whether there was a secret.
func (e *Erasure) Erase(ctx context.Context, callID string) (bool, error) {
	if e.closed() {
		return false, errErasureClosed
	}
	var n int64
	err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, e.lock(callID)); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM call_secrets WHERE call_id = $1`, callID)
		if err != nil {
			return err
		}
		n = tag.RowsAffected()
		_, err = tx.Exec(ctx, `INSERT INTO erased_calls (call_id) VALUES ($1) ON CONFLICT (call_id) DO NOTHING`, callID)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("erasure store: %w", err)
	}
	return n == 1, nil
}

// MarkIdle implements records.CallSecrets (a second mark keeps the first).
func (e *Erasure) MarkIdle(ctx context.Context, callID string, since time.Time) error {
	if _, err := e.pool.Exec(ctx, `INSERT INTO idle_calls (call_id, since) VALUES ($1, $2) ON CONFLICT (call_id) DO NOTHING`, callID, since.UnixMilli()); err != nil {
		return fmt.Errorf("erasure store: %w", err)
	}
	return nil
}

// Idle implements records.CallSecrets: up to limit calls marked idle
// before t, the oldest first.
func (e *Erasure) Idle(ctx context.Context, before time.Time, limit int) ([]string, error) {
	rows, err := e.pool.Query(ctx, `SELECT call_id FROM idle_calls WHERE since < $1 ORDER BY since, call_id LIMIT $2`, before.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("erasure store: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("erasure store: %w", err)
	}
	return ids, nil
}

// Forget implements records.CallSecrets: the secret (when forget is set)
// and the idle mark go, leaving no tombstone.
func (e *Erasure) Forget(ctx context.Context, callID string, forget bool) (bool, error) {
	var n int64
	err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		if forget {
			tag, err := tx.Exec(ctx, `DELETE FROM call_secrets WHERE call_id = $1`, callID)
			if err != nil {
				return err
			}
			n = tag.RowsAffected()
		}
		_, err := tx.Exec(ctx, `DELETE FROM idle_calls WHERE call_id = $1`, callID)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("erasure store: %w", err)
	}
	return n == 1, nil
}

// Empty reports whether the store has never known a call: no secret, no
// tombstone, no idle mark. Records beside an empty store were sealed with
// secrets kept elsewhere (another erasure store): serve refuses to start
// rather than make them unreadable.
func (e *Erasure) Empty(ctx context.Context) (bool, error) {
	var found bool
	err := e.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM call_secrets) OR EXISTS (SELECT 1 FROM erased_calls) OR EXISTS (SELECT 1 FROM idle_calls)`).Scan(&found)
	if err != nil {
		return false, fmt.Errorf("erasure store: %w", err)
	}
	return !found, nil
}

// Restore adds one call of another erasure store (the move of a
// replica's erasure.db into PostgreSQL): its secret unless the call was
// erased here or there, its tombstone, its idle mark. What is already here
// wins; restoring twice changes nothing.
func (e *Erasure) Restore(ctx context.Context, callID string, secret []byte, erased bool, idleSince time.Time) error {
	err := pgx.BeginFunc(ctx, e.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, e.lock(callID)); err != nil {
			return err
		}
		if erased {
			if _, err := tx.Exec(ctx, `DELETE FROM call_secrets WHERE call_id = $1`, callID); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO erased_calls (call_id) VALUES ($1) ON CONFLICT (call_id) DO NOTHING`, callID); err != nil {
				return err
			}
		} else if secret != nil {
			if _, err := tx.Exec(ctx, insertSecret, callID, secret, int64(0)); err != nil {
				return err
			}
		}
		if !idleSince.IsZero() {
			if _, err := tx.Exec(ctx, `INSERT INTO idle_calls (call_id, since) VALUES ($1, $2) ON CONFLICT (call_id) DO NOTHING`, callID, idleSince.UnixMilli()); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("erasure store: %w", err)
	}
	return nil
}

// Close stops the background inserts and waits for them; it closes the
// pool when it is the store's own (OpenErasure).
func (e *Erasure) Close() error {
	e.stopOnce.Do(func() { close(e.stop) })
	e.worker.Wait()
	if e.own {
		e.pool.Close()
	}
	return nil
}
