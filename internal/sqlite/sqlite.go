// Package sqlite provides the embedded call store on SQLite (pure-Go driver),
// with versioned migrations.
//
// Writes go through one connection, so they queue in Go (fairly, without
// SQLite's sleep-and-retry busy handler) and use statements prepared once;
// reads use a small pool of their own. The database runs in WAL mode with
// automatic checkpoints off: Checkpoint, run in the background, copies the
// log into the database (PASSIVE, so it never blocks a writer), so that no
// webhook waits for a checkpoint's fsync. Under writes that never pause a
// PASSIVE checkpoint never catches up and the log never restarts, so once
// the log is past Config.WALLimitBytes the checkpoint also restarts it,
// queued behind the writes like one more write.
//
// Open refuses, before writing anything, a file that is not a SQLite
// database or fails PRAGMA quick_check.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/periodic"
	"modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

// DB is a calls.Store on one SQLite file.
type DB struct {
	w, r *sql.DB
	ck   *sql.DB // PASSIVE checkpoints, on a connection of their own
	dir  string
	path string
	cfg  Config
	st   stmts
	Now  func() time.Time

	quickCheck           time.Duration
	restarts, restartsKO atomic.Uint64
	// Checkpoint's backoff while a reader holds the log (one caller at a
	// time: RunCheckpoints).
	backoff     time.Duration
	nextRestart time.Time
}

type stmts struct {
	createCall, ensureCall, insertStatus, updateStatus, endCall *sql.Stmt
}

var _ calls.Store = (*DB)(nil)

// migrations are applied in order; each runs once, in its own transaction.
// Never edit a shipped migration: append a new one.
var migrations = []string{
	1: `
CREATE TABLE calls (
	id               TEXT PRIMARY KEY,
	org_id           TEXT NOT NULL DEFAULT '',
	call_type        TEXT NOT NULL DEFAULT '',
	phone_number_id  TEXT NOT NULL DEFAULT '',
	assistant_id     TEXT NOT NULL DEFAULT '',
	status           TEXT NOT NULL DEFAULT '',
	ended_reason     TEXT NOT NULL DEFAULT '',
	cost             REAL,
	duration_seconds REAL,
	created_at       INTEGER NOT NULL,
	updated_at       INTEGER NOT NULL,
	ended_at         INTEGER
) STRICT;
CREATE TABLE call_status_changes (
	call_id TEXT NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
	status  TEXT NOT NULL,
	at      INTEGER NOT NULL
) STRICT;
CREATE INDEX call_status_changes_call ON call_status_changes(call_id, at);
CREATE INDEX calls_created ON calls(created_at);
`,
	// List pages newest first by (created_at, id): this one index gives
	// the order, the page boundary and the tie-break, so a page reads its
	// own rows and sorts nothing. It replaces calls_created, so a write
	// still maintains one index on the calls table.
	2: `
CREATE INDEX calls_created_id ON calls(created_at, id);
DROP INDEX calls_created;
`,
	// Protected records (internal/records): the content sealed, only what
	// finds and deletes a record in clear. A call's records are not tied
	// to the calls table: a record may be written before the call is.
	3: `
CREATE TABLE records (
	id          TEXT PRIMARY KEY,
	call_id     TEXT NOT NULL,
	kind        TEXT NOT NULL,
	dedup_key   TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	key_id      TEXT NOT NULL,
	wrapped_key BLOB,
	payload     BLOB NOT NULL,
	UNIQUE (call_id, kind, dedup_key)
) STRICT;
CREATE INDEX records_call ON records(call_id, created_at);
`,
	// The tamper-evident audit log (internal/audit).
	4: `
CREATE TABLE audit_log (
	seq     INTEGER PRIMARY KEY,
	at      INTEGER NOT NULL,
	event   TEXT NOT NULL,
	subject TEXT NOT NULL,
	detail  TEXT NOT NULL,
	actor   TEXT NOT NULL,
	prev    BLOB NOT NULL,
	hash    BLOB NOT NULL
) STRICT;
`,
	// Records found by the keyed hash of their caller's number, a
	// redacted copy for analytics, and retention by kind and age.
	5: `
ALTER TABLE records ADD COLUMN caller_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE records ADD COLUMN redacted BLOB;
CREATE INDEX records_caller ON records(caller_hash) WHERE caller_hash <> '';
CREATE INDEX records_kind_created ON records(kind, created_at);
`,
	// A call's timeline events (barge-in decisions, call control): no
	// personal data, kept like the status changes.
	6: `
CREATE TABLE call_events (
	call_id TEXT NOT NULL,
	at      INTEGER NOT NULL,
	kind    TEXT NOT NULL,
	detail  TEXT NOT NULL
) STRICT;
CREATE INDEX call_events_call ON call_events(call_id, at);
`,
	// The knowledge bases' documents (internal/knowledge/library): names
	// and passages sealed, the full-text index over keyed hashes of their
	// words (an FTS5 table kept by triggers), and how many passages of a
	// base hold each term, for BM25.
	7: `
CREATE TABLE kb_documents (
	id          TEXT PRIMARY KEY,
	base        TEXT NOT NULL,
	name_hash   TEXT NOT NULL,
	name        BLOB NOT NULL,
	key_id      TEXT NOT NULL,
	wrapped_key BLOB NOT NULL,
	added_at    INTEGER NOT NULL,
	passages    INTEGER NOT NULL,
	bytes       INTEGER NOT NULL,
	UNIQUE (base, name_hash)
) STRICT;
CREATE INDEX kb_documents_key ON kb_documents(key_id, id);
CREATE TABLE kb_passages (
	id      INTEGER PRIMARY KEY,
	doc_id  TEXT NOT NULL REFERENCES kb_documents(id) ON DELETE CASCADE,
	base    TEXT NOT NULL,
	seq     INTEGER NOT NULL,
	terms   TEXT NOT NULL,
	length  INTEGER NOT NULL,
	payload BLOB NOT NULL,
	UNIQUE (doc_id, seq)
) STRICT;
CREATE INDEX kb_passages_base ON kb_passages(base);
CREATE VIRTUAL TABLE kb_index USING fts5(terms, content='kb_passages', content_rowid='id', tokenize='ascii');
CREATE TRIGGER kb_passages_insert AFTER INSERT ON kb_passages BEGIN
	INSERT INTO kb_index(rowid, terms) VALUES (new.id, new.terms);
END;
CREATE TRIGGER kb_passages_delete AFTER DELETE ON kb_passages BEGIN
	INSERT INTO kb_index(kb_index, rowid, terms) VALUES ('delete', old.id, old.terms);
END;
CREATE TABLE kb_terms (
	base TEXT NOT NULL,
	term TEXT NOT NULL,
	df   INTEGER NOT NULL,
	PRIMARY KEY (base, term)
) STRICT, WITHOUT ROWID;
CREATE TABLE kb_bases (
	base     TEXT PRIMARY KEY,
	passages INTEGER NOT NULL,
	terms    INTEGER NOT NULL
) STRICT;
`,
	// Campaign pre-dial attempts per number (keyed hash) and UTC day, so
	// that a restart does not reset max_attempts_per_day.
	8: `
CREATE TABLE predial_attempts (
	number_hash TEXT NOT NULL,
	day         TEXT NOT NULL,
	count       INTEGER NOT NULL,
	PRIMARY KEY (number_hash, day)
) STRICT, WITHOUT ROWID;
CREATE INDEX predial_attempts_day ON predial_attempts(day);
`,
	// Managed webhook secrets (internal/secrets): sealed with the records'
	// keyring; the processes that loaded them; the rotation's progress;
	// leases for work one process does at a time.
	9: `
CREATE TABLE webhook_secrets (
	id            TEXT PRIMARY KEY,
	generation    INTEGER NOT NULL UNIQUE,
	created_at    INTEGER NOT NULL,
	not_after     INTEGER,
	credential_id TEXT NOT NULL DEFAULT '',
	retired       INTEGER NOT NULL DEFAULT 0,
	key_id        TEXT NOT NULL,
	wrapped_key   BLOB,
	payload       BLOB
) STRICT;
CREATE TABLE secret_loaders (
	process    TEXT PRIMARY KEY,
	generation INTEGER NOT NULL,
	seen_at    INTEGER NOT NULL
) STRICT;
CREATE TABLE secret_rotation (
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	state TEXT NOT NULL
) STRICT;
CREATE TABLE leases (
	name   TEXT PRIMARY KEY,
	holder TEXT NOT NULL,
	until  INTEGER NOT NULL
) STRICT;
`,
	// The knowledge bases' full-text index is written by one statement
	// per document (knowledge.go), not by triggers: a trigger ran in each
	// passage's statement, whose savepoint made FTS5 flush a segment per
	// passage and merge them, holding the write lock for seconds. The
	// optimize merges the segments written so.
	10: `
DROP TRIGGER IF EXISTS kb_passages_insert;
DROP TRIGGER IF EXISTS kb_passages_delete;
INSERT INTO kb_index(kb_index) VALUES('optimize');
`,
	// Vapi resources voicegate manages as code (internal/gitops): per org
	// folder, kind and file, the Vapi id and what was last applied (JSON,
	// NULL until voicegate applies it).
	11: `
CREATE TABLE vapi_resources (
	org          TEXT NOT NULL,
	kind         TEXT NOT NULL,
	local_id     TEXT NOT NULL,
	vapi_id      TEXT NOT NULL,
	last_applied TEXT,
	updated_at   INTEGER NOT NULL,
	PRIMARY KEY (org, kind, local_id)
) STRICT;
`,
}

// Open opens (creating if needed, mode 0600 in a 0700 directory) the database
// in dir, checks it with PRAGMA quick_check and applies pending migrations.
// It returns an *IntegrityError, having written nothing, for a file that is
// not a SQLite database or is damaged, and an error listing the problems of
// an invalid cfg (see Config.Validate).
func Open(ctx context.Context, dir string, cfg Config) (*DB, error) {
	if probs := cfg.Validate(); len(probs) > 0 {
		return nil, fmt.Errorf("storage configuration: %s", strings.Join(probs, "; "))
	}
	if cfg.busyTimeout <= 0 {
		cfg.busyTimeout = defaultBusyTimeout
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	path := filepath.Join(dir, "voicegate.db")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create database: %w", err)
		}
		f.Close()
	}
	// journal_size_limit cuts a log that restarts back to the limit.
	pragmas := fmt.Sprintf("_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_pragma=journal_size_limit(%d)",
		cfg.busyTimeout.Milliseconds(), cfg.WALLimitBytes)
	w, err := sql.Open("sqlite", "file:"+path+"?"+pragmas+"&_pragma=wal_autocheckpoint(0)&_pragma=secure_delete(1)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	r, err := sql.Open("sqlite", "file:"+path+"?"+pragmas+"&mode=ro")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	r.SetMaxOpenConns(4)
	ck, err := sql.Open("sqlite", "file:"+path+"?"+pragmas)
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open database: %w", err)
	}
	ck.SetMaxOpenConns(1)
	s := &DB{w: w, r: r, ck: ck, dir: dir, path: path, cfg: cfg, Now: time.Now}
	// Processes opening one new database at once race to switch it to WAL,
	// which SQLite answers SQLITE_BUSY without waiting: retried for the
	// busy timeout.
	for deadline := time.Now().Add(cfg.busyTimeout); ; {
		err := s.checkIntegrity(ctx)
		if err == nil {
			err = s.migrate(ctx)
		}
		if err == nil {
			break
		}
		if !isBusy(err) || time.Now().After(deadline) {
			s.Close()
			return nil, err
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.prepare(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

func (s *DB) prepare(ctx context.Context) error {
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		{&s.st.createCall, `INSERT INTO calls (id, org_id, call_type, phone_number_id, assistant_id, status, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING`},
		{&s.st.ensureCall, `INSERT INTO calls (id, status, created_at, updated_at) VALUES (?, '', ?, ?) ON CONFLICT(id) DO NOTHING`},
		{&s.st.insertStatus, `INSERT INTO call_status_changes (call_id, status, at) VALUES (?, ?, ?)`},
		// A late, out-of-order status never reopens an ended call.
		{&s.st.updateStatus, `UPDATE calls SET status = ?, updated_at = ? WHERE id = ? AND (ended_at IS NULL OR ? = 'ended')`},
		{&s.st.endCall, `INSERT INTO calls (id, status, ended_reason, cost, duration_seconds, created_at, updated_at, ended_at)
			VALUES (?, 'ended', ?, ?, ?, ?, ?, ?)
			ON CONFLICT(id) DO UPDATE SET status = 'ended',
				ended_reason = CASE WHEN excluded.ended_reason <> '' THEN excluded.ended_reason ELSE calls.ended_reason END,
				cost = COALESCE(excluded.cost, calls.cost),
				duration_seconds = COALESCE(excluded.duration_seconds, calls.duration_seconds),
				updated_at = excluded.updated_at,
				ended_at = COALESCE(calls.ended_at, excluded.ended_at)`},
	} {
		st, err := s.w.PrepareContext(ctx, p.q)
		if err != nil {
			return fmt.Errorf("prepare statement: %w", err)
		}
		*p.dst = st
	}
	return nil
}

// ErrCheckpointBusy is wrapped by Checkpoint's error when the log was over
// its limit but could not be restarted because a reader (a long read, or
// another process) was still using it. The next checkpoint tries again.
var ErrCheckpointBusy = errors.New("write-ahead log in use")

// restartBusyTimeout bounds how long a restart of the log waits for readers
// to leave it. Writes queue behind the restart, so it is short.
const restartBusyTimeout = 100 * time.Millisecond

// Checkpoint copies the write-ahead log into the database without waiting
// for (or blocking) readers and writers. If the log file is then still
// larger than Config.WALLimitBytes, it restarts the log and empties the file
// (PRAGMA wal_checkpoint(TRUNCATE)), which copies what the first pass could
// not while writes wait, as they would for one more write. It returns an
// error wrapping ErrCheckpointBusy when that restart could not finish.
func (s *DB) Checkpoint(ctx context.Context) error {
	var busy, logFrames, copied int
	if err := s.ck.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &logFrames, &copied); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	size := s.WALSize()
	if size <= s.cfg.WALLimitBytes {
		// Back under the limit (a writer restarted the log once the reader
		// left): the next episode starts from the shortest backoff.
		s.backoff, s.nextRestart = 0, time.Time{}
		return nil
	}
	now := s.Now()
	if now.Before(s.nextRestart) {
		return nil // backing off: a reader held the log at the last try
	}
	busy, logFrames, copied, err := s.restartLog(ctx)
	if err != nil {
		return fmt.Errorf("checkpoint: restart log: %w", err)
	}
	if busy != 0 {
		// Each try holds writers back for up to restartBusyTimeout: while
		// a reader keeps the log (a backup, a shell in a transaction), try
		// less and less often.
		s.backoff = min(max(2*s.backoff, minRestartBackoff), maxRestartBackoff)
		s.nextRestart = now.Add(s.backoff)
		s.restartsKO.Add(1)
		return fmt.Errorf("checkpoint: restart %d-byte log (limit %d; %d of %d frames copied; next try in %s): %w",
			size, s.cfg.WALLimitBytes, copied, logFrames, s.backoff, ErrCheckpointBusy)
	}
	s.backoff, s.nextRestart = 0, time.Time{}
	s.restarts.Add(1)
	return nil
}

// The wait between tries to restart a log that a reader holds.
const (
	minRestartBackoff = 200 * time.Millisecond
	maxRestartBackoff = 10 * time.Second
)

// restartLog runs a TRUNCATE checkpoint on the writer's connection, so that
// it waits its turn in Go like a write (rather than polling SQLite's write
// lock against a stream of writes), with a short busy timeout for readers.
// busy is 1 when it could not finish.
func (s *DB) restartLog(ctx context.Context) (busy, logFrames, copied int, err error) {
	conn, err := s.w.Conn(ctx)
	if err != nil {
		return 0, 0, 0, err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, fmt.Sprintf(`PRAGMA busy_timeout = %d`, restartBusyTimeout.Milliseconds())); err != nil {
		return 0, 0, 0, err
	}
	err = conn.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &copied)
	if isBusy(err) {
		busy, err = 1, nil
	}
	// Writes get their own busy timeout back; a connection that cannot be
	// reset is discarded instead.
	if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf(`PRAGMA busy_timeout = %d`, s.cfg.busyTimeout.Milliseconds())); rerr != nil {
		conn.Raw(func(any) error { return driver.ErrBadConn })
		if err == nil {
			err = rerr
		}
	}
	return busy, logFrames, copied, err
}

// WALSize returns the size of the write-ahead log file in bytes (0 when
// there is none).
func (s *DB) WALSize() int64 {
	fi, err := os.Stat(s.path + "-wal")
	if err != nil {
		return 0
	}
	return fi.Size()
}

// CheckpointStats counts the log restarts since Open.
type CheckpointStats struct {
	// Restarts is how many checkpoints found the log over its limit and
	// restarted it.
	Restarts uint64
	// RestartsBusy is how many found it over its limit but could not
	// (ErrCheckpointBusy), leaving it to the next checkpoint.
	RestartsBusy uint64
}

// CheckpointStats returns the log restart counters.
func (s *DB) CheckpointStats() CheckpointStats {
	return CheckpointStats{Restarts: s.restarts.Load(), RestartsBusy: s.restartsKO.Load()}
}

// RunCheckpoints runs Checkpoint every interval (Config.CheckpointInterval
// when every is 0) until ctx ends, passing errors to onErr: each one, except
// that a reader holding the log is reported once until the log restarts.
func (s *DB) RunCheckpoints(ctx context.Context, every time.Duration, onErr func(error)) {
	if every <= 0 {
		every = s.cfg.CheckpointInterval.D()
	}
	busy := false // reported once per episode of a reader holding the log
	periodic.Run(ctx, every, func() {
		err := s.Checkpoint(ctx)
		if errors.Is(err, ErrCheckpointBusy) {
			if busy {
				return
			}
			busy = true
		} else if err == nil && busy && s.backoff == 0 {
			busy = false
		}
		if err != nil && ctx.Err() == nil && onErr != nil {
			onErr(err)
		}
	})
}

func sqliteCode(err error) int {
	var serr *sqlite.Error
	if errors.As(err, &serr) {
		return serr.Code() & 0xff // the primary result code
	}
	return 0
}

func isBusy(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
}

// SchemaVersion returns the highest applied migration.
func (s *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.w.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, err
}

func (s *DB) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	cur, err := s.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	if cur > len(migrations)-1 {
		return fmt.Errorf("migrate: database schema version %d is newer than this binary knows (%d); upgrade voicegate", cur, len(migrations)-1)
	}
	for v := cur + 1; v < len(migrations); v++ {
		// The writer's transactions take the write lock at BEGIN
		// (_txlock=immediate): the version read inside is final, so that
		// processes starting at once apply each migration once.
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate %d: %w", v, err)
		}
		var done int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&done); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %d: %w", v, err)
		}
		if done >= v {
			tx.Rollback() // another process applied it meanwhile
			continue
		}
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %d: %w", v, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations(version, applied_at) VALUES (?, ?)`, v, s.Now().UnixMilli()); err != nil {
			tx.Rollback()
			return fmt.Errorf("migrate %d: %w", v, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate %d: %w", v, err)
		}
	}
	return nil
}

// CreateCall implements calls.Store.
func (s *DB) CreateCall(ctx context.Context, r calls.Record) error {
	now := s.Now().UnixMilli()
	created := now
	if !r.CreatedAt.IsZero() {
		created = r.CreatedAt.UnixMilli()
	}
	if _, err := s.st.createCall.ExecContext(ctx, r.ID, r.OrgID, r.Type, r.PhoneNumberID, r.AssistantID, r.Status, created, now); err != nil {
		return fmt.Errorf("create call: %w", err)
	}
	return nil
}

// RecordStatus implements calls.Store.
func (s *DB) RecordStatus(ctx context.Context, callID string, c calls.StatusChange) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record status: %w", err)
	}
	defer tx.Rollback()
	now := s.Now().UnixMilli()
	if _, err := tx.StmtContext(ctx, s.st.ensureCall).ExecContext(ctx, callID, now, now); err != nil {
		return fmt.Errorf("record status: %w", err)
	}
	if _, err := tx.StmtContext(ctx, s.st.insertStatus).ExecContext(ctx, callID, c.Status, c.At.UnixMilli()); err != nil {
		return fmt.Errorf("record status: %w", err)
	}
	if _, err := tx.StmtContext(ctx, s.st.updateStatus).ExecContext(ctx, c.Status, now, callID, c.Status); err != nil {
		return fmt.Errorf("record status: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record status: %w", err)
	}
	return nil
}

// EndCall implements calls.Store.
func (s *DB) EndCall(ctx context.Context, callID string, e calls.End) error {
	now := s.Now().UnixMilli()
	at := now
	if !e.At.IsZero() {
		at = e.At.UnixMilli()
	}
	if _, err := s.st.endCall.ExecContext(ctx, callID, e.Reason, e.Cost, e.Duration, now, now, at); err != nil {
		return fmt.Errorf("end call: %w", err)
	}
	return nil
}

// AddEvents implements calls.Store.
func (s *DB) AddEvents(ctx context.Context, evs []calls.CallEvent) error {
	if len(evs) == 0 {
		return nil
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("add call events: %w", err)
	}
	defer tx.Rollback()
	// Prepared here, not at open: the statements prepared there stay
	// within the first schema version (tests open older schemas).
	st, err := tx.PrepareContext(ctx, `INSERT INTO call_events (call_id, at, kind, detail) VALUES (?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("add call events: %w", err)
	}
	defer st.Close()
	for _, e := range evs {
		if _, err := st.ExecContext(ctx, e.CallID, e.At.UnixMilli(), e.Kind, calls.ClipDetail(e.Detail)); err != nil {
			return fmt.Errorf("add call events: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("add call events: %w", err)
	}
	return nil
}

// Events implements calls.Reader.
func (s *DB) Events(ctx context.Context, id string) ([]calls.Event, error) {
	return readEvents(ctx, s.r, id)
}

// readEvents is Events on the connections db.
func readEvents(ctx context.Context, db *sql.DB, id string) ([]calls.Event, error) {
	rows, err := db.QueryContext(ctx, `SELECT at, kind, detail FROM call_events WHERE call_id = ? ORDER BY at, rowid`, id)
	if err != nil {
		return nil, fmt.Errorf("read call events: %w", err)
	}
	defer rows.Close()
	var out []calls.Event
	for rows.Next() {
		var e calls.Event
		var at int64
		if err := rows.Scan(&at, &e.Kind, &e.Detail); err != nil {
			return nil, fmt.Errorf("read call events: %w", err)
		}
		e.At = time.UnixMilli(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read call events: %w", err)
	}
	return out, nil
}

// Call implements calls.Store.
func (s *DB) Call(ctx context.Context, id string) (calls.Record, []calls.StatusChange, error) {
	return readCall(ctx, s.r, id)
}

// List implements calls.Store.
func (s *DB) List(ctx context.Context, f calls.ListFilter) ([]calls.Record, error) {
	return listCalls(ctx, s.r, f)
}

const callColumns = `id, org_id, call_type, phone_number_id, assistant_id, status, ended_reason, cost, duration_seconds, created_at, updated_at, ended_at`

// scanCall reads one row of callColumns.
func scanCall(row interface{ Scan(...any) error }) (calls.Record, error) {
	var r calls.Record
	var created, updated int64
	var ended sql.NullInt64
	if err := row.Scan(&r.ID, &r.OrgID, &r.Type, &r.PhoneNumberID, &r.AssistantID, &r.Status, &r.EndedReason, &r.Cost, &r.Duration, &created, &updated, &ended); err != nil {
		return calls.Record{}, err
	}
	r.CreatedAt, r.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	if ended.Valid {
		r.EndedAt = time.UnixMilli(ended.Int64)
	}
	return r, nil
}

// readCall is Call on the connections db (the store's readers, or a
// read-only view's).
func readCall(ctx context.Context, db *sql.DB, id string) (calls.Record, []calls.StatusChange, error) {
	r, err := scanCall(db.QueryRowContext(ctx, `SELECT `+callColumns+` FROM calls WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return r, nil, calls.ErrNotFound
	}
	if err != nil {
		return r, nil, fmt.Errorf("read call: %w", err)
	}
	rows, err := db.QueryContext(ctx, `SELECT status, at FROM call_status_changes WHERE call_id = ? ORDER BY at, rowid`, id)
	if err != nil {
		return r, nil, fmt.Errorf("read call status: %w", err)
	}
	defer rows.Close()
	var hist []calls.StatusChange
	for rows.Next() {
		var c calls.StatusChange
		var at int64
		if err := rows.Scan(&c.Status, &at); err != nil {
			return r, nil, fmt.Errorf("read call status: %w", err)
		}
		c.At = time.UnixMilli(at)
		hist = append(hist, c)
	}
	if err := rows.Err(); err != nil {
		return r, nil, fmt.Errorf("read call status: %w", err)
	}
	return r, hist, nil
}

// listCalls is List on the connections db.
func listCalls(ctx context.Context, db *sql.DB, f calls.ListFilter) ([]calls.Record, error) {
	q, args := listQuery(f)
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list calls: %w", err)
	}
	defer rows.Close()
	list := []calls.Record{}
	for rows.Next() {
		r, err := scanCall(rows)
		if err != nil {
			return nil, fmt.Errorf("list calls: %w", err)
		}
		list = append(list, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list calls: %w", err)
	}
	return list, nil
}

// listQuery returns List's statement for f. The index calls_created_id
// serves its order and page boundary (TestListUsesTheIndex), so a page reads
// Limit rows, and those the status filter skips, however large the table.
func listQuery(f calls.ListFilter) (string, []any) {
	var where []string
	var args []any
	if b, tieBreak, ok := f.Bound(); ok && tieBreak {
		where = append(where, `created_at <= ? AND (created_at < ? OR id < ?)`)
		args = append(args, b, b, f.BeforeID)
	} else if ok {
		where = append(where, `created_at < ?`)
		args = append(args, b)
	}
	if f.Status != "" {
		where = append(where, `status = ?`)
		args = append(args, f.Status)
	}
	q := `SELECT ` + callColumns + ` FROM calls`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	return q, append(args, f.EffectiveLimit())
}

// Ping implements calls.Store: the writer must answer, since that is the
// connection every acknowledged write needs.
func (s *DB) Ping(ctx context.Context) error {
	var one int
	if err := s.r.QueryRowContext(ctx, `SELECT 1`).Scan(&one); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	if err := s.w.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", err)
	}
	return nil
}

// Close implements calls.Store.
func (s *DB) Close() error {
	for _, st := range []*sql.Stmt{s.st.createCall, s.st.ensureCall, s.st.insertStatus, s.st.updateStatus, s.st.endCall} {
		if st != nil {
			st.Close()
		}
	}
	err := s.w.Close()
	for _, db := range []*sql.DB{s.r, s.ck} {
		if cerr := db.Close(); err == nil {
			err = cerr
		}
	}
	return err
}
