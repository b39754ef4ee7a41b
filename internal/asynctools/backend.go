package asynctools

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
	"github.com/voicegate/voicegate/internal/postgres"
	_ "modernc.org/sqlite" // the "sqlite" driver
)

// backend is the database under a Queue: River's client on it, and this
// package's own table.
type backend struct {
	driver string
	client jobClient
	// exec and queryRow run this package's statements (written with ?
	// placeholders).
	exec     func(ctx context.Context, q string, args ...any) (int64, error)
	queryRow func(ctx context.Context, q string, args ...any) scanner
	// finish runs the statement q and completes the job, in one
	// transaction.
	finish func(ctx context.Context, job *river.Job[jobArgs], q string, args ...any) error
	// takeOver, run before the client starts, makes the jobs a dead
	// process left running available again (SQLite, whose file one process
	// owns; nil on PostgreSQL).
	takeOver func(ctx context.Context) error
	close    func()
	// sever cuts the database off as a killed process's would be (tests).
	sever func()
}

// jobClient is what a Queue uses of a *river.Client[TTx], whatever TTx.
type jobClient interface {
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	StopAndCancel(ctx context.Context) error
}

type scanner interface{ Scan(dest ...any) error }

// errNoRows is returned by a scanner that found no row, whatever the driver.
var errNoRows = errors.New("no rows")

type pgRow struct{ pgx.Row }

func (r pgRow) Scan(dest ...any) error {
	err := r.Row.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return errNoRows
	}
	return err
}

type sqlRow struct{ *sql.Row }

func (r sqlRow) Scan(dest ...any) error {
	err := r.Row.Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return errNoRows
	}
	return err
}

// outcomeTable keeps each job's outcome: the answer (or the decision to give
// up) sealed until delivered, then the emptied row as a tombstone.
const outcomeTable = "voicegate_async_outcome"

// schemaSQLite and schemaPostgres create this package's table (version 1).
// Never edit a shipped version: add statements guarded by a version.
const schemaSQLite = `
CREATE TABLE IF NOT EXISTS voicegate_async_outcome (
	call_id      TEXT NOT NULL,
	tool_call_id TEXT NOT NULL,
	failed       INTEGER NOT NULL,
	sealed       BLOB,
	created_at   INTEGER NOT NULL,
	delivered_at INTEGER,
	PRIMARY KEY (call_id, tool_call_id)
) STRICT;
CREATE INDEX IF NOT EXISTS voicegate_async_outcome_created ON voicegate_async_outcome(created_at);
`

const schemaPostgres = `
CREATE TABLE IF NOT EXISTS voicegate_async_outcome (
	call_id      TEXT NOT NULL,
	tool_call_id TEXT NOT NULL,
	failed       INTEGER NOT NULL,
	sealed       BYTEA,
	created_at   BIGINT NOT NULL,
	delivered_at BIGINT,
	PRIMARY KEY (call_id, tool_call_id)
);
CREATE INDEX IF NOT EXISTS voicegate_async_outcome_created ON voicegate_async_outcome(created_at);
`

// sqliteBusyTimeout is how long a statement waits for another process's
// lock (a backup, a shell) before failing.
const sqliteBusyTimeout = 5 * time.Second

// openSQLite opens (creating it, mode 0600 in a 0700 directory) jobs.db in
// dir on ONE connection, as River on SQLite requires, and migrates it.
func openSQLite(ctx context.Context, dir string, cfg func() *river.Config) (*backend, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("asynctools: create data directory: %w", err)
	}
	path := filepath.Join(dir, JobsFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("asynctools: create %s: %w", JobsFile, err)
	}
	f.Close()
	// synchronous(FULL): an outcome committed before its delivery survives
	// a power cut, not only a killed process. secure_delete: an erased
	// answer (sealed anyway) is overwritten in the file.
	dsn := "file:" + path + "?_pragma=busy_timeout(" + strconv.Itoa(int(sqliteBusyTimeout.Milliseconds())) + ")" +
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=secure_delete(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("asynctools: open %s: %w", JobsFile, err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	driver := riversqlite.New(db)
	m, err := rivermigrate.New(driver, &rivermigrate.Config{Logger: cfg().Logger})
	if err == nil {
		_, err = m.Migrate(ctx, rivermigrate.DirectionUp, nil)
	}
	if err == nil {
		_, err = db.ExecContext(ctx, schemaSQLite)
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("asynctools: migrate %s: %w", JobsFile, err)
	}
	client, err := river.NewClient(driver, cfg())
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("asynctools: %w", err)
	}
	return &backend{
		driver: "sqlite",
		client: client,
		exec: func(ctx context.Context, q string, args ...any) (int64, error) {
			res, err := db.ExecContext(ctx, q, args...)
			if err != nil {
				return 0, err
			}
			return res.RowsAffected()
		},
		queryRow: func(ctx context.Context, q string, args ...any) scanner {
			return sqlRow{db.QueryRowContext(ctx, q, args...)}
		},
		finish: func(ctx context.Context, job *river.Job[jobArgs], q string, args ...any) error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return err
			}
			if _, err := river.JobCompleteTx[*riversqlite.Driver](ctx, tx, job); err != nil && !errors.Is(err, rivertype.ErrNotFound) {
				return err
			}
			return tx.Commit()
		},
		takeOver: func(ctx context.Context) error {
			// jobs.db belongs to the one voicegate process that owns
			// data_dir: a job still "running" when it starts was running
			// in a process that died, and so was the leader it finds.
			if _, err := db.ExecContext(ctx, `UPDATE river_job SET state = 'available' WHERE state = 'running' AND kind = ?`, jobArgs{}.Kind()); err != nil {
				return err
			}
			_, err := db.ExecContext(ctx, `DELETE FROM river_leader`)
			return err
		},
		close: func() { db.Close() },
		sever: func() { db.Close() },
	}, nil
}

// openPostgres connects to url and migrates River's tables and this
// package's under an advisory lock, so that processes starting at once
// migrate once. The URL's password never appears in an error.
func openPostgres(ctx context.Context, url string, cfg func() *river.Config, crashable bool) (*backend, error) {
	pc, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("asynctools: the postgres URL does not parse (want postgres://user[:password]@host:port/database?sslmode=...)")
	}
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	pc.MaxConns = max(pc.MaxConns, 8)
	schema := pc.ConnConfig.RuntimeParams["search_path"]
	if schema != "" && !postgres.ValidSchema(schema) {
		return nil, fmt.Errorf("asynctools: schema %q: use lower-case letters, digits and _ only", schema)
	}
	var sv *severable
	if crashable {
		sv = &severable{}
		pc.ConnConfig.DialFunc = sv.dial
	}
	where := fmt.Sprintf("%s:%d/%s", pc.ConnConfig.Host, pc.ConnConfig.Port, pc.ConnConfig.Database)
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("asynctools: postgres at %s: %w", where, err)
	}
	if err := migratePostgres(ctx, pool, schema, cfg().Logger); err != nil {
		pool.Close()
		return nil, fmt.Errorf("asynctools: postgres at %s: migrate: %w", where, err)
	}
	driver := riverpgxv5.New(pool)
	client, err := river.NewClient(driver, cfg())
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("asynctools: %w", err)
	}
	b := &backend{
		driver: "postgres",
		client: client,
		exec: func(ctx context.Context, q string, args ...any) (int64, error) {
			tag, err := pool.Exec(ctx, rebind(q), args...)
			return tag.RowsAffected(), err
		},
		queryRow: func(ctx context.Context, q string, args ...any) scanner {
			return pgRow{pool.QueryRow(ctx, rebind(q), args...)}
		},
		finish: func(ctx context.Context, job *river.Job[jobArgs], q string, args ...any) error {
			tx, err := pool.Begin(ctx)
			if err != nil {
				return err
			}
			defer tx.Rollback(context.WithoutCancel(ctx))
			if _, err := tx.Exec(ctx, rebind(q), args...); err != nil {
				return err
			}
			if _, err := river.JobCompleteTx[*riverpgxv5.Driver](ctx, tx, job); err != nil && !errors.Is(err, rivertype.ErrNotFound) {
				return err
			}
			return tx.Commit(ctx)
		},
		close: pool.Close,
	}
	if sv != nil {
		b.sever = sv.sever
	}
	return b, nil
}

// migratePostgres runs River's migrations and this package's under a
// session advisory lock held on a connection of its own (River's
// migrations run on others of the pool: some cannot share a transaction).
func migratePostgres(ctx context.Context, pool *pgxpool.Pool, schema string, log *slog.Logger) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	h := fnv.New64a()
	h.Write([]byte("voicegate/asynctools/migrate\x00" + schema))
	key := int64(h.Sum64())
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key)
	if schema != "" {
		if _, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
			return fmt.Errorf("create schema %s: %w", schema, err)
		}
	}
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: log})
	if err != nil {
		return err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, schemaPostgres)
	return err
}

// rebind turns ? placeholders into PostgreSQL's $n (no statement here has
// a ? in a literal).
func rebind(q string) string {
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// severable dials PostgreSQL and can cut every connection it made and
// refuse new ones: what the database sees of a killed process (tests).
type severable struct {
	mu    sync.Mutex
	conns []net.Conn
	cut   bool
}

func (s *severable) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cut {
		return nil, errors.New("severed")
	}
	c, err := (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext(ctx, network, addr)
	if err == nil {
		s.conns = append(s.conns, c)
	}
	return c, err
}

func (s *severable) sever() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cut = true
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}
