package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/knowledge/library"
)

var _ library.Store = (*DB)(nil)

func kbErr(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", library.ErrStore, what, err)
}

// PutDocument implements library.Store.
func (s *DB) PutDocument(ctx context.Context, d library.StoredDocument, ps []library.StoredPassage) (string, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return "", kbErr("add document", err)
	}
	defer tx.Rollback(ctx)
	if err := lockBase(ctx, tx, d.Base); err != nil {
		return "", kbErr("add document", err)
	}
	var old string
	err = tx.QueryRow(ctx, `SELECT id FROM kb_documents WHERE base = $1 AND name_hash = $2`, d.Base, d.NameHash).Scan(&old)
	replaced := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return "", kbErr("add document", err)
	}
	if replaced {
		if err := removeDocument(ctx, tx, d.Base, old); err != nil {
			return "", err
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO kb_documents (id, base, name_hash, name, key_id, wrapped_key, added_at, passages, bytes)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, d.ID, d.Base, d.NameHash, d.Name, d.Key.KeyID, d.Key.Sealed, d.AddedAt.UnixMilli(), d.Passages, d.Bytes); err != nil {
		return "", kbErr("add document", err)
	}
	rows := make([][]any, len(ps))
	df := map[string]int{}
	total := 0
	for i, p := range ps {
		rows[i] = []any{d.ID, d.Base, int32(p.Seq), strings.Join(p.Terms, " "), int32(len(p.Terms)), p.Payload}
		total += len(p.Terms)
		for _, t := range library.Distinct(p.Terms) {
			df[t]++
		}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"kb_passages"}, []string{"doc_id", "base", "seq", "terms", "length", "payload"}, pgx.CopyFromRows(rows)); err != nil {
		return "", kbErr("add passages", err)
	}
	if err := addDF(ctx, tx, d.Base, df, 1); err != nil {
		return "", err
	}
	if err := addBase(ctx, tx, d.Base, len(ps), total); err != nil {
		return "", err
	}
	if err := tx.Commit(ctx); err != nil {
		return "", kbErr("add document", err)
	}
	if !replaced {
		old = ""
	}
	return old, nil
}

// lockBase makes the transaction the only one changing base until it
// ends. Two processes adding the same document wait for each other rather
// than fail on the unique name; and changes of different documents, which
// update the base's term counts (rows shared by many documents, in no
// order two transactions agree on, a replacement's removal and addition
// one after the other) and its passage count, would otherwise deadlock.
// Writes to a base are an operator's kb add and remove: serialising them
// costs nothing a search waits for.
func lockBase(ctx context.Context, tx pgx.Tx, base string) error {
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended('voicegate kb base ' || $1, 0))`, base)
	return err
}

// addDF adds sign×df to the base's term counts, dropping those at zero.
func addDF(ctx context.Context, tx pgx.Tx, base string, df map[string]int, sign int) error {
	terms := make([]string, 0, len(df))
	counts := make([]int32, 0, len(df))
	for t, n := range df {
		terms = append(terms, t)
		counts = append(counts, int32(sign*n))
	}
	if _, err := tx.Exec(ctx, `INSERT INTO kb_terms (base, term, df) SELECT $1, t, n FROM unnest($2::text[], $3::int[]) AS u(t, n)
		ON CONFLICT (base, term) DO UPDATE SET df = kb_terms.df + excluded.df`, base, terms, counts); err != nil {
		return kbErr("term counts", err)
	}
	if sign < 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM kb_terms WHERE base = $1 AND df <= 0`, base); err != nil {
			return kbErr("term counts", err)
		}
	}
	return nil
}

// addBase adds to the base's passage and term counts.
func addBase(ctx context.Context, tx pgx.Tx, base string, passages, terms int) error {
	if _, err := tx.Exec(ctx, `INSERT INTO kb_bases (base, passages, terms) VALUES ($1, $2, $3)
		ON CONFLICT (base) DO UPDATE SET passages = kb_bases.passages + excluded.passages, terms = kb_bases.terms + excluded.terms`, base, passages, terms); err != nil {
		return kbErr("base counts", err)
	}
	return nil
}

// removeDocument deletes a document, its passages and its share of the
// term counts.
func removeDocument(ctx context.Context, tx pgx.Tx, base, id string) error {
	rows, err := tx.Query(ctx, `SELECT terms, length FROM kb_passages WHERE doc_id = $1`, id)
	if err != nil {
		return kbErr("remove document", err)
	}
	df := map[string]int{}
	passages, total := 0, 0
	for rows.Next() {
		var terms string
		var n int
		if err := rows.Scan(&terms, &n); err != nil {
			rows.Close()
			return kbErr("remove document", err)
		}
		passages, total = passages+1, total+n
		for _, t := range library.Distinct(strings.Fields(terms)) {
			df[t]++
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return kbErr("remove document", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM kb_documents WHERE id = $1`, id); err != nil { // passages cascade
		return kbErr("remove document", err)
	}
	if err := addBase(ctx, tx, base, -passages, -total); err != nil {
		return err
	}
	return addDF(ctx, tx, base, df, -1)
}

// RemoveDocument implements library.Store.
func (s *DB) RemoveDocument(ctx context.Context, base, nameHash string) (string, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return "", kbErr("remove document", err)
	}
	defer tx.Rollback(ctx)
	if err := lockBase(ctx, tx, base); err != nil {
		return "", kbErr("remove document", err)
	}
	var id string
	err = tx.QueryRow(ctx, `SELECT id FROM kb_documents WHERE base = $1 AND name_hash = $2`, base, nameHash).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", kbErr("remove document", err)
	}
	if err := removeDocument(ctx, tx, base, id); err != nil {
		return "", err
	}
	if err := tx.Commit(ctx); err != nil {
		return "", kbErr("remove document", err)
	}
	return id, nil
}

const kbDocumentColumns = `id, base, name_hash, name, key_id, wrapped_key, added_at, passages, bytes`

func scanDocuments(rows pgx.Rows) ([]library.StoredDocument, error) {
	defer rows.Close()
	var out []library.StoredDocument
	for rows.Next() {
		var d library.StoredDocument
		var at int64
		if err := rows.Scan(&d.ID, &d.Base, &d.NameHash, &d.Name, &d.Key.KeyID, &d.Key.Sealed, &at, &d.Passages, &d.Bytes); err != nil {
			return nil, kbErr("read documents", err)
		}
		d.AddedAt = time.UnixMilli(at)
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, kbErr("read documents", err)
	}
	return out, nil
}

// ListDocuments implements library.Store.
func (s *DB) ListDocuments(ctx context.Context, base string) ([]library.StoredDocument, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+kbDocumentColumns+` FROM kb_documents WHERE $1 = '' OR base = $1 ORDER BY base, added_at, id`, base)
	if err != nil {
		return nil, kbErr("read documents", err)
	}
	return scanDocuments(rows)
}

// MatchPassages implements library.Store: the passages the GIN index
// finds (those holding the rarest terms when there are more than limit),
// and the base's counts, read in one repeatable-read transaction.
func (s *DB) MatchPassages(ctx context.Context, base string, terms []string, limit int) (library.Match, error) {
	m := library.Match{DF: make(map[string]int, len(terms))}
	if len(terms) == 0 {
		return m, nil
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return m, kbErr("search", err)
	}
	defer tx.Rollback(ctx)
	var total int64
	err = tx.QueryRow(ctx, `SELECT passages, terms FROM kb_bases WHERE base = $1`, base).Scan(&m.Passages, &total)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return m, kbErr("search", err)
	}
	if m.Passages > 0 {
		m.MeanTerms = float64(total) / float64(m.Passages)
	}
	if m.Passages == 0 {
		return m, nil
	}
	rows, err := tx.Query(ctx, `SELECT term, df FROM kb_terms WHERE base = $1 AND term = ANY($2::text[])`, base, terms)
	if err != nil {
		return m, kbErr("search", err)
	}
	for rows.Next() {
		var t string
		var n int
		if err := rows.Scan(&t, &n); err != nil {
			rows.Close()
			return m, kbErr("search", err)
		}
		m.DF[t] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return m, kbErr("search", err)
	}
	// Up to limit, every passage found is a candidate, in no order (BM25
	// ranks them). Beyond it, the candidates are those holding the rarest
	// terms (the sum of the IDF of the terms each holds), as BM25 would
	// rank them: ts_rank knows no document frequency, and preferred
	// passages repeating the query's common words to the one holding its
	// rare word.
	query := strings.Join(terms, " | ") // terms are letters only
	if m.Candidates, err = candidates(ctx, tx, `SELECT doc_id, seq, terms FROM kb_passages
		WHERE base = $1 AND tsv @@ to_tsquery('simple', $2) LIMIT $3`, base, query, limit+1); err != nil {
		return m, err
	}
	if len(m.Candidates) <= limit {
		return m, nil
	}
	idf := make([]float64, len(terms))
	for i, t := range terms {
		idf[i] = library.IDF(m.Passages, m.DF[t])
	}
	m.Candidates, err = candidates(ctx, tx, `SELECT doc_id, seq, terms FROM kb_passages, to_tsquery('simple', $2) q
		WHERE base = $1 AND tsv @@ q
		ORDER BY (SELECT sum(u.w) FROM unnest($4::text[], $5::float8[]) AS u(t, w) WHERE tsv @@ u.t::tsquery) DESC, ts_rank(tsv, q) DESC
		LIMIT $3`, base, query, limit, terms, idf)
	return m, err
}

func candidates(ctx context.Context, tx pgx.Tx, sql string, args ...any) ([]library.Candidate, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, kbErr("search", err)
	}
	defer rows.Close()
	var out []library.Candidate
	for rows.Next() {
		var c library.Candidate
		if err := rows.Scan(&c.DocID, &c.Seq, &c.Terms); err != nil {
			return nil, kbErr("search", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, kbErr("search", err)
	}
	return out, nil
}

// Passages implements library.Store.
func (s *DB) Passages(ctx context.Context, refs []library.PassageRef) ([]library.SealedPassage, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	ids := make([]string, len(refs))
	seqs := make([]int32, len(refs))
	for i, r := range refs {
		ids[i], seqs[i] = r.DocID, int32(r.Seq)
	}
	rows, err := s.pool.Query(ctx, `SELECT p.doc_id, p.seq, d.base, d.key_id, d.wrapped_key, d.name, p.payload
		FROM unnest($1::text[], $2::int[]) AS r(doc_id, seq)
		JOIN kb_passages p ON p.doc_id = r.doc_id AND p.seq = r.seq
		JOIN kb_documents d ON d.id = p.doc_id`, ids, seqs)
	if err != nil {
		return nil, kbErr("read passages", err)
	}
	defer rows.Close()
	var out []library.SealedPassage
	for rows.Next() {
		var p library.SealedPassage
		if err := rows.Scan(&p.DocID, &p.Seq, &p.Base, &p.Key.KeyID, &p.Key.Sealed, &p.Name, &p.Payload); err != nil {
			return nil, kbErr("read passages", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, kbErr("read passages", err)
	}
	return out, nil
}

// DocumentKeyUsage implements library.Store.
func (s *DB) DocumentKeyUsage(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT key_id, count(*) FROM kb_documents GROUP BY key_id`)
	if err != nil {
		return nil, kbErr("key usage", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, kbErr("key usage", err)
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		return nil, kbErr("key usage", err)
	}
	return out, nil
}

// DocumentsUnderKey implements library.Store.
func (s *DB) DocumentsUnderKey(ctx context.Context, keyID, afterID string, limit int) ([]library.StoredDocument, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+kbDocumentColumns+` FROM kb_documents WHERE key_id = $1 AND id > $2 ORDER BY id LIMIT $3`, keyID, afterID, limit)
	if err != nil {
		return nil, kbErr("read documents", err)
	}
	return scanDocuments(rows)
}

// RewrapDocument implements library.Store.
func (s *DB) RewrapDocument(ctx context.Context, id, oldKeyID string, key envelope.Wrapped) (bool, error) {
	tag, err := s.pool.Exec(ctx, `UPDATE kb_documents SET key_id = $1, wrapped_key = $2 WHERE id = $3 AND key_id = $4`, key.KeyID, key.Sealed, id, oldKeyID)
	if err != nil {
		return false, kbErr("rewrap document", err)
	}
	return tag.RowsAffected() == 1, nil
}
