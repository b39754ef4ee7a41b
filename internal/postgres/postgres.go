// Package postgres provides the PostgreSQL calls.Store: the call metadata
// store for deployments whose replicas share one database. It passes the
// same contract suite as the embedded SQLite store (calls/storetest), keeps
// the same semantics (times in milliseconds, a late status never reopens an
// ended call, a second report keeps what the first one told), and migrates
// its schema under an advisory lock, so that several processes starting at
// once apply each migration exactly once.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/voicegate/voicegate/internal/calls"
)

// DB is the PostgreSQL store. It is safe for concurrent use.
type DB struct {
	pool   *pgxpool.Pool
	schema string
	Now    func() time.Time
}

var _ calls.Store = (*DB)(nil)

// Options tune Open.
type Options struct {
	// Schema, when set, is where the tables live (created if missing):
	// tests give each run a schema of its own. Default: the URL's
	// search_path parameter when it names one schema, else the server's
	// search_path (normally public).
	Schema string
	// MaxConns bounds the pool (default 16).
	MaxConns int32
	// Now is the clock of updated_at (default time.Now).
	Now func() time.Time
}

// ConnectTimeout bounds each connection attempt when the URL sets none.
const ConnectTimeout = 5 * time.Second

// Open connects to the database at url, checks that it answers, and applies
// pending migrations. The URL's password never appears in an error.
func Open(ctx context.Context, url string, o Options) (*DB, error) {
	pool, schema, err := connect(ctx, url, o)
	if err != nil {
		return nil, err
	}
	db := &DB{pool: pool, schema: schema, Now: o.Now}
	if db.Now == nil {
		db.Now = time.Now
	}
	if err := db.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return db, nil
}

// connect opens a pool on url (see Open) and checks that it answers; it
// returns the schema the pool's connections use ("" for the server's
// search_path).
func connect(ctx context.Context, url string, o Options) (*pgxpool.Pool, string, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx's error may quote the URL, and a string that is not a URL
		// (key=value) would be echoed whole: say what is wrong without it.
		return nil, "", errors.New("postgres: the URL does not parse (want postgres://user[:password]@host:port/database?sslmode=...)")
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = ConnectTimeout
	}
	cfg.MaxConns = 16
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	}
	if o.Schema == "" {
		// postgres://...?search_path=voicegate puts the tables in that
		// schema, created if missing.
		o.Schema = cfg.ConnConfig.RuntimeParams["search_path"]
	}
	if o.Schema != "" {
		if !ValidSchema(o.Schema) {
			return nil, "", fmt.Errorf("postgres: schema %q: use lower-case letters, digits and _ only", o.Schema)
		}
		cfg.ConnConfig.RuntimeParams["search_path"] = o.Schema
	}
	where := fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, "", fmt.Errorf("postgres at %s: %w", where, err)
	}
	pctx, cancel := context.WithTimeout(ctx, ConnectTimeout+time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, "", fmt.Errorf("postgres at %s is unreachable: %w", where, err)
	}
	return pool, o.Schema, nil
}

// ValidSchema accepts lower-case identifiers only: search_path folds
// unquoted names to lower case, so an upper-case schema would be created
// under one name and looked up under another.
func ValidSchema(s string) bool {
	for i, r := range s {
		ok := r == '_' || (r >= 'a' && r <= 'z') || (i > 0 && r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return len(s) > 0 && len(s) <= 63
}

// migrations are applied in order; each runs once, in its own
// transaction, under the advisory lock. Ids compare bytewise (COLLATE "C"),
// as in SQLite, so that List pages the same way on both stores.
var migrations = []string{
	1: `
CREATE TABLE calls (
	id               TEXT COLLATE "C" PRIMARY KEY,
	org_id           TEXT NOT NULL DEFAULT '',
	call_type        TEXT NOT NULL DEFAULT '',
	phone_number_id  TEXT NOT NULL DEFAULT '',
	assistant_id     TEXT NOT NULL DEFAULT '',
	status           TEXT NOT NULL DEFAULT '',
	ended_reason     TEXT NOT NULL DEFAULT '',
	cost             DOUBLE PRECISION,
	duration_seconds DOUBLE PRECISION,
	created_at       BIGINT NOT NULL,
	updated_at       BIGINT NOT NULL,
	ended_at         BIGINT
);
CREATE TABLE call_status_changes (
	seq     BIGSERIAL PRIMARY KEY,
	call_id TEXT COLLATE "C" NOT NULL REFERENCES calls(id) ON DELETE CASCADE,
	status  TEXT NOT NULL,
	at      BIGINT NOT NULL
);
CREATE INDEX call_status_changes_call ON call_status_changes(call_id, at, seq);
CREATE INDEX calls_created_id ON calls(created_at, id);
`,
	// Protected records (internal/records), as in SQLite's migration 3.
	2: `
CREATE TABLE records (
	seq         BIGSERIAL,
	id          TEXT COLLATE "C" PRIMARY KEY,
	call_id     TEXT COLLATE "C" NOT NULL,
	kind        TEXT NOT NULL,
	dedup_key   TEXT NOT NULL,
	created_at  BIGINT NOT NULL,
	key_id      TEXT NOT NULL,
	wrapped_key BYTEA,
	payload     BYTEA NOT NULL,
	UNIQUE (call_id, kind, dedup_key)
);
CREATE INDEX records_call ON records(call_id, created_at, seq);
`,
	// The tamper-evident audit log (internal/audit), as in SQLite's 4.
	3: `
CREATE TABLE audit_log (
	seq     BIGINT PRIMARY KEY,
	at      BIGINT NOT NULL,
	event   TEXT NOT NULL,
	subject TEXT NOT NULL,
	detail  TEXT NOT NULL,
	actor   TEXT NOT NULL,
	prev    BYTEA NOT NULL,
	hash    BYTEA NOT NULL
);
`,
	// As in SQLite's 5: the caller index, the redacted copy, retention.
	4: `
ALTER TABLE records ADD COLUMN caller_hash TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE records ADD COLUMN redacted BYTEA;
CREATE INDEX records_caller ON records(caller_hash) WHERE caller_hash <> '';
CREATE INDEX records_kind_created ON records(kind, created_at);
`,
	// As in SQLite's 6: a call's timeline events.
	5: `
CREATE TABLE call_events (
	seq     BIGSERIAL PRIMARY KEY,
	call_id TEXT COLLATE "C" NOT NULL,
	at      BIGINT NOT NULL,
	kind    TEXT NOT NULL,
	detail  TEXT NOT NULL
);
CREATE INDEX call_events_call ON call_events(call_id, at, seq);
`,
	// As in SQLite's 7: the knowledge bases' documents, the full-text
	// index a GIN index over a tsvector of the passages' terms (keyed
	// hashes of words, read with the 'simple' configuration: no stemming
	// or stop words here, they are applied before hashing).
	6: `
CREATE TABLE kb_documents (
	id          TEXT COLLATE "C" PRIMARY KEY,
	base        TEXT COLLATE "C" NOT NULL,
	name_hash   TEXT COLLATE "C" NOT NULL,
	name        BYTEA NOT NULL,
	key_id      TEXT NOT NULL,
	wrapped_key BYTEA NOT NULL,
	added_at    BIGINT NOT NULL,
	passages    INTEGER NOT NULL,
	bytes       INTEGER NOT NULL,
	UNIQUE (base, name_hash)
);
CREATE INDEX kb_documents_key ON kb_documents(key_id, id);
CREATE TABLE kb_passages (
	id      BIGSERIAL PRIMARY KEY,
	doc_id  TEXT COLLATE "C" NOT NULL REFERENCES kb_documents(id) ON DELETE CASCADE,
	base    TEXT COLLATE "C" NOT NULL,
	seq     INTEGER NOT NULL,
	terms   TEXT NOT NULL,
	length  INTEGER NOT NULL,
	payload BYTEA NOT NULL,
	tsv     tsvector GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, terms)) STORED,
	UNIQUE (doc_id, seq)
);
CREATE INDEX kb_passages_base ON kb_passages(base);
CREATE INDEX kb_passages_tsv ON kb_passages USING GIN (tsv);
CREATE TABLE kb_terms (
	base TEXT COLLATE "C" NOT NULL,
	term TEXT COLLATE "C" NOT NULL,
	df   INTEGER NOT NULL,
	PRIMARY KEY (base, term)
);
CREATE TABLE kb_bases (
	base     TEXT COLLATE "C" PRIMARY KEY,
	passages INTEGER NOT NULL,
	terms    BIGINT NOT NULL
);
`,
	// As in SQLite's 8: campaign pre-dial attempts, shared by replicas.
	7: `
CREATE TABLE predial_attempts (
	number_hash TEXT COLLATE "C" NOT NULL,
	day         TEXT COLLATE "C" NOT NULL,
	count       INTEGER NOT NULL,
	PRIMARY KEY (number_hash, day)
);
CREATE INDEX predial_attempts_day ON predial_attempts(day);
`,
	// As in SQLite's 9: managed webhook secrets, loaders, the rotation,
	// leases.
	8: `
CREATE TABLE webhook_secrets (
	id            TEXT COLLATE "C" PRIMARY KEY,
	generation    BIGINT NOT NULL UNIQUE,
	created_at    BIGINT NOT NULL,
	not_after     BIGINT,
	credential_id TEXT NOT NULL DEFAULT '',
	retired       BOOLEAN NOT NULL DEFAULT false,
	key_id        TEXT NOT NULL,
	wrapped_key   BYTEA,
	payload       BYTEA
);
CREATE TABLE secret_loaders (
	process    TEXT COLLATE "C" PRIMARY KEY,
	generation BIGINT NOT NULL,
	seen_at    BIGINT NOT NULL
);
CREATE TABLE secret_rotation (
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	state TEXT NOT NULL
);
CREATE TABLE leases (
	name   TEXT COLLATE "C" PRIMARY KEY,
	holder TEXT NOT NULL,
	until  BIGINT NOT NULL
);
`,
	// As in SQLite's 10: the Vapi resources voicegate manages as code.
	9: `
CREATE TABLE vapi_resources (
	org          TEXT COLLATE "C" NOT NULL,
	kind         TEXT COLLATE "C" NOT NULL,
	local_id     TEXT COLLATE "C" NOT NULL,
	vapi_id      TEXT NOT NULL,
	last_applied TEXT,
	updated_at   BIGINT NOT NULL,
	PRIMARY KEY (org, kind, local_id)
);
`,
	// The per-call secrets of crypto-erasure (internal/erasure's tables,
	// shared by the replicas instead of each one's erasure.db), and the
	// audit chain's head, updated in the transaction of each append (one
	// row, locked by every appender: the replicas' appends serialised).
	10: erasureTables + `
CREATE TABLE audit_head (
	id        INTEGER PRIMARY KEY CHECK (id = 1),
	seq       BIGINT NOT NULL,
	hash      BYTEA,
	base_seq  BIGINT NOT NULL,
	base_hash BYTEA,
	mac       BYTEA
);
INSERT INTO audit_head (id, seq, base_seq) VALUES (1, 0, 0);
`,
}

// SchemaVersion is the newest migration this binary knows.
func SchemaVersion() int { return len(migrations) - 1 }

// migrate applies the store's pending migrations.
func (s *DB) migrate(ctx context.Context) error {
	return runMigrations(ctx, s.pool, s.schema, "schema_migrations", migrations, s.Now)
}

// lockKey is the advisory lock of a schema's migrations noted in table.
func lockKey(schema, table string) int64 {
	h := fnv.New64a()
	if table == "schema_migrations" {
		h.Write([]byte("voicegate migrations " + schema))
	} else {
		h.Write([]byte("voicegate migrations " + schema + " " + table))
	}
	return int64(h.Sum64())
}

// runMigrations applies list's pending migrations (list[0] unused), each
// in its own transaction, noting each one in table.
func runMigrations(ctx context.Context, pool *pgxpool.Pool, schema, table string, list []string, now func() time.Time) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Release()
	// Several processes may start at once: one migrates, the others wait
	// and then find nothing to do. Everything below runs under the lock
	// (even CREATE ... IF NOT EXISTS races without it).
	key := lockKey(schema, table)
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key)
	if schema != "" {
		if _, err := conn.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()); err != nil {
			return fmt.Errorf("migrate: create schema %s: %w", schema, err)
		}
	}
	tbl := pgx.Identifier{table}.Sanitize()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+tbl+` (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var cur int
	if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM `+tbl).Scan(&cur); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	newest := len(list) - 1
	if cur > newest {
		return fmt.Errorf("migrate: database schema version %d is newer than this binary knows (%d); upgrade voicegate", cur, newest)
	}
	for v := cur + 1; v <= newest; v++ {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return fmt.Errorf("migrate %d: %w", v, err)
		}
		if _, err := tx.Exec(ctx, list[v]); err != nil {
			tx.Rollback(ctx)
			return fmt.Errorf("migrate %d: %w", v, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+tbl+`(version, applied_at) VALUES ($1, $2)`, v, now().UnixMilli()); err != nil {
			tx.Rollback(ctx)
			return fmt.Errorf("migrate %d: %w", v, err)
		}
		if err := tx.Commit(ctx); err != nil {
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
	_, err := s.pool.Exec(ctx, `INSERT INTO calls (id, org_id, call_type, phone_number_id, assistant_id, status, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
		r.ID, r.OrgID, r.Type, r.PhoneNumberID, r.AssistantID, r.Status, created, now)
	if err != nil {
		return fmt.Errorf("create call: %w", err)
	}
	return nil
}

// RecordStatus implements calls.Store.
func (s *DB) RecordStatus(ctx context.Context, callID string, c calls.StatusChange) error {
	now := s.Now().UnixMilli()
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO calls (id, status, created_at, updated_at) VALUES ($1, '', $2, $3) ON CONFLICT (id) DO NOTHING`, callID, now, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO call_status_changes (call_id, status, at) VALUES ($1, $2, $3)`, callID, c.Status, c.At.UnixMilli()); err != nil {
			return err
		}
		// A late, out-of-order status never reopens an ended call.
		_, err := tx.Exec(ctx, `UPDATE calls SET status = $1, updated_at = $2 WHERE id = $3 AND (ended_at IS NULL OR $1 = 'ended')`, c.Status, now, callID)
		return err
	})
	if err != nil {
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
	_, err := s.pool.Exec(ctx, `INSERT INTO calls (id, status, ended_reason, cost, duration_seconds, created_at, updated_at, ended_at)
		VALUES ($1, 'ended', $2, $3, $4, $5, $6, $7)
		ON CONFLICT (id) DO UPDATE SET status = 'ended',
			ended_reason = CASE WHEN excluded.ended_reason <> '' THEN excluded.ended_reason ELSE calls.ended_reason END,
			cost = COALESCE(excluded.cost, calls.cost),
			duration_seconds = COALESCE(excluded.duration_seconds, calls.duration_seconds),
			updated_at = excluded.updated_at,
			ended_at = COALESCE(calls.ended_at, excluded.ended_at)`,
		callID, e.Reason, e.Cost, e.Duration, now, now, at)
	if err != nil {
		return fmt.Errorf("end call: %w", err)
	}
	return nil
}

const callColumns = `id, org_id, call_type, phone_number_id, assistant_id, status, ended_reason, cost, duration_seconds, created_at, updated_at, ended_at`

func scanCall(row pgx.Row) (calls.Record, error) {
	var r calls.Record
	var created, updated int64
	var ended *int64
	if err := row.Scan(&r.ID, &r.OrgID, &r.Type, &r.PhoneNumberID, &r.AssistantID, &r.Status, &r.EndedReason, &r.Cost, &r.Duration, &created, &updated, &ended); err != nil {
		return calls.Record{}, err
	}
	r.CreatedAt, r.UpdatedAt = time.UnixMilli(created), time.UnixMilli(updated)
	if ended != nil {
		r.EndedAt = time.UnixMilli(*ended)
	}
	return r, nil
}

// AddEvents implements calls.Store: one statement for the batch.
func (s *DB) AddEvents(ctx context.Context, evs []calls.CallEvent) error {
	if len(evs) == 0 {
		return nil
	}
	ids, ats, kinds, details := make([]string, len(evs)), make([]int64, len(evs)), make([]string, len(evs)), make([]string, len(evs))
	for i, e := range evs {
		ids[i], ats[i], kinds[i], details[i] = e.CallID, e.At.UnixMilli(), e.Kind, calls.ClipDetail(e.Detail)
	}
	if _, err := s.pool.Exec(ctx, `INSERT INTO call_events (call_id, at, kind, detail) SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[])`, ids, ats, kinds, details); err != nil {
		return fmt.Errorf("add call events: %w", err)
	}
	return nil
}

// Events implements calls.Reader.
func (s *DB) Events(ctx context.Context, id string) ([]calls.Event, error) {
	rows, err := s.pool.Query(ctx, `SELECT at, kind, detail FROM call_events WHERE call_id = $1 ORDER BY at, seq`, id)
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
	r, err := scanCall(s.pool.QueryRow(ctx, `SELECT `+callColumns+` FROM calls WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return r, nil, calls.ErrNotFound
	}
	if err != nil {
		return r, nil, fmt.Errorf("read call: %w", err)
	}
	rows, err := s.pool.Query(ctx, `SELECT status, at FROM call_status_changes WHERE call_id = $1 ORDER BY at, seq`, id)
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

// List implements calls.Store.
func (s *DB) List(ctx context.Context, f calls.ListFilter) ([]calls.Record, error) {
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if b, tieBreak, ok := f.Bound(); ok && tieBreak {
		p := arg(b)
		where = append(where, fmt.Sprintf(`created_at <= %s AND (created_at < %s OR id < %s)`, p, p, arg(f.BeforeID)))
	} else if ok {
		where = append(where, `created_at < `+arg(b))
	}
	if f.Status != "" {
		where = append(where, `status = `+arg(f.Status))
	}
	q := `SELECT ` + callColumns + ` FROM calls`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, ` AND `)
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT ` + arg(f.EffectiveLimit())
	rows, err := s.pool.Query(ctx, q, args...)
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

// Ping implements calls.Store.
func (s *DB) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres ping: %w", err)
	}
	return nil
}

// Close implements calls.Store.
func (s *DB) Close() error {
	s.pool.Close()
	return nil
}
