package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/knowledge/library"
)

var _ library.Store = (*DB)(nil)

func kbErr(what string, err error) error {
	return fmt.Errorf("%w: %s: %w", library.ErrStore, what, err)
}

// PutDocument implements library.Store.
func (s *DB) PutDocument(ctx context.Context, d library.StoredDocument, ps []library.StoredPassage) (string, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return "", kbErr("add document", err)
	}
	defer tx.Rollback()
	var old string
	err = tx.QueryRowContext(ctx, `SELECT id FROM kb_documents WHERE base = ? AND name_hash = ?`, d.Base, d.NameHash).Scan(&old)
	replaced := err == nil
	if err != nil && err != sql.ErrNoRows {
		return "", kbErr("add document", err)
	}
	if replaced {
		if err := removeDocument(ctx, tx, d.Base, old); err != nil {
			return "", err
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO kb_documents (id, base, name_hash, name, key_id, wrapped_key, added_at, passages, bytes)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, d.ID, d.Base, d.NameHash, d.Name, d.Key.KeyID, d.Key.Sealed, d.AddedAt.UnixMilli(), d.Passages, d.Bytes); err != nil {
		return "", kbErr("add document", err)
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO kb_passages (doc_id, base, seq, terms, length, payload) VALUES (?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return "", kbErr("add document", err)
	}
	defer ins.Close()
	df := map[string]int{}
	total := 0
	for _, p := range ps {
		if _, err := ins.ExecContext(ctx, d.ID, d.Base, p.Seq, strings.Join(p.Terms, " "), len(p.Terms), p.Payload); err != nil {
			return "", kbErr("add passage", err)
		}
		total += len(p.Terms)
		for _, t := range library.Distinct(p.Terms) {
			df[t]++
		}
	}
	// The index in one statement: FTS5 flushes what it holds at each
	// statement's savepoint (a trigger per passage wrote a segment each).
	if _, err := tx.ExecContext(ctx, `INSERT INTO kb_index(rowid, terms) SELECT id, terms FROM kb_passages WHERE doc_id = ?`, d.ID); err != nil {
		return "", kbErr("index document", err)
	}
	if err := addDF(ctx, tx, d.Base, df, 1); err != nil {
		return "", err
	}
	if err := addBase(ctx, tx, d.Base, len(ps), total); err != nil {
		return "", err
	}
	if err := tx.Commit(); err != nil {
		return "", kbErr("add document", err)
	}
	if !replaced {
		old = ""
	}
	return old, nil
}

// addDF adds sign×df to the base's term counts, dropping those at zero
// (one statement: a document may hold a hundred thousand terms).
func addDF(ctx context.Context, tx *sql.Tx, base string, df map[string]int, sign int) error {
	counts := make(map[string]int, len(df))
	for t, n := range df {
		counts[t] = sign * n
	}
	js, err := json.Marshal(counts)
	if err != nil {
		return kbErr("term counts", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO kb_terms (base, term, df) SELECT ?, key, value FROM json_each(?) WHERE true
		ON CONFLICT (base, term) DO UPDATE SET df = df + excluded.df`, base, string(js)); err != nil {
		return kbErr("term counts", err)
	}
	if sign < 0 {
		if _, err := tx.ExecContext(ctx, `DELETE FROM kb_terms WHERE base = ? AND df <= 0`, base); err != nil {
			return kbErr("term counts", err)
		}
	}
	return nil
}

// addBase adds to the base's passage and term counts.
func addBase(ctx context.Context, tx *sql.Tx, base string, passages, terms int) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO kb_bases (base, passages, terms) VALUES (?, ?, ?)
		ON CONFLICT (base) DO UPDATE SET passages = passages + excluded.passages, terms = terms + excluded.terms`, base, passages, terms); err != nil {
		return kbErr("base counts", err)
	}
	return nil
}

// removeDocument deletes a document, its passages (out of the index
// first, in one statement) and its share of the term counts.
func removeDocument(ctx context.Context, tx *sql.Tx, base, id string) error {
	rows, err := tx.QueryContext(ctx, `SELECT terms, length FROM kb_passages WHERE doc_id = ?`, id)
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
	if err := rows.Close(); err != nil {
		return kbErr("remove document", err)
	}
	if err := rows.Err(); err != nil {
		return kbErr("remove document", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO kb_index(kb_index, rowid, terms) SELECT 'delete', id, terms FROM kb_passages WHERE doc_id = ?`, id); err != nil {
		return kbErr("remove document", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM kb_passages WHERE doc_id = ?`, id); err != nil {
		return kbErr("remove document", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM kb_documents WHERE id = ?`, id); err != nil {
		return kbErr("remove document", err)
	}
	if err := addBase(ctx, tx, base, -passages, -total); err != nil {
		return err
	}
	return addDF(ctx, tx, base, df, -1)
}

// RemoveDocument implements library.Store.
func (s *DB) RemoveDocument(ctx context.Context, base, nameHash string) (string, error) {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return "", kbErr("remove document", err)
	}
	defer tx.Rollback()
	var id string
	err = tx.QueryRowContext(ctx, `SELECT id FROM kb_documents WHERE base = ? AND name_hash = ?`, base, nameHash).Scan(&id)
	if err == sql.ErrNoRows {
		return "", nil
	}
	if err != nil {
		return "", kbErr("remove document", err)
	}
	if err := removeDocument(ctx, tx, base, id); err != nil {
		return "", err
	}
	if err := tx.Commit(); err != nil {
		return "", kbErr("remove document", err)
	}
	return id, nil
}

const kbDocumentColumns = `id, base, name_hash, name, key_id, wrapped_key, added_at, passages, bytes`

func scanDocuments(rows *sql.Rows) ([]library.StoredDocument, error) {
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
	rows, err := s.r.QueryContext(ctx, `SELECT `+kbDocumentColumns+` FROM kb_documents WHERE ? = '' OR base = ? ORDER BY base, added_at, id`, base, base)
	if err != nil {
		return nil, kbErr("read documents", err)
	}
	return scanDocuments(rows)
}

// MatchPassages implements library.Store: the passages the FTS5 index
// finds (ranked by FTS5's own bm25 when there are more than limit), and
// the base's counts, read in one transaction.
func (s *DB) MatchPassages(ctx context.Context, base string, terms []string, limit int) (library.Match, error) {
	m := library.Match{DF: make(map[string]int, len(terms))}
	if len(terms) == 0 {
		return m, nil
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return m, kbErr("search", err)
	}
	defer tx.Rollback()
	var total int
	err = tx.QueryRowContext(ctx, `SELECT passages, terms FROM kb_bases WHERE base = ?`, base).Scan(&m.Passages, &total)
	if err != nil && err != sql.ErrNoRows {
		return m, kbErr("search", err)
	}
	if m.Passages > 0 {
		m.MeanTerms = float64(total) / float64(m.Passages)
	}
	if m.Passages == 0 {
		return m, nil
	}
	args := make([]any, 0, len(terms)+1)
	args = append(args, base)
	for _, t := range terms {
		args = append(args, t)
	}
	rows, err := tx.QueryContext(ctx, `SELECT term, df FROM kb_terms WHERE base = ? AND term IN (?`+strings.Repeat(", ?", len(terms)-1)+`)`, args...)
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
	quoted := make([]string, len(terms))
	for i, t := range terms {
		quoted[i] = `"` + t + `"` // terms are letters only
	}
	rows, err = tx.QueryContext(ctx, `SELECT p.doc_id, p.seq, p.terms FROM kb_index JOIN kb_passages p ON p.id = kb_index.rowid
		WHERE kb_index MATCH ? AND p.base = ? ORDER BY kb_index.rank LIMIT ?`, strings.Join(quoted, " OR "), base, limit)
	if err != nil {
		return m, kbErr("search", err)
	}
	defer rows.Close()
	for rows.Next() {
		var c library.Candidate
		if err := rows.Scan(&c.DocID, &c.Seq, &c.Terms); err != nil {
			return m, kbErr("search", err)
		}
		m.Candidates = append(m.Candidates, c)
	}
	if err := rows.Err(); err != nil {
		return m, kbErr("search", err)
	}
	return m, nil
}

// Passages implements library.Store.
func (s *DB) Passages(ctx context.Context, refs []library.PassageRef) ([]library.SealedPassage, error) {
	if len(refs) == 0 {
		return nil, nil
	}
	var q strings.Builder
	q.WriteString(`SELECT p.doc_id, p.seq, d.base, d.key_id, d.wrapped_key, d.name, p.payload FROM kb_passages p JOIN kb_documents d ON d.id = p.doc_id WHERE (p.doc_id, p.seq) IN (VALUES `)
	args := make([]any, 0, 2*len(refs))
	for i, r := range refs {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?)")
		args = append(args, r.DocID, r.Seq)
	}
	q.WriteString(")")
	rows, err := s.r.QueryContext(ctx, q.String(), args...)
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
	rows, err := s.r.QueryContext(ctx, `SELECT key_id, count(*) FROM kb_documents GROUP BY key_id`)
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
	rows, err := s.r.QueryContext(ctx, `SELECT `+kbDocumentColumns+` FROM kb_documents WHERE key_id = ? AND id > ? ORDER BY id LIMIT ?`, keyID, afterID, limit)
	if err != nil {
		return nil, kbErr("read documents", err)
	}
	return scanDocuments(rows)
}

// RewrapDocument implements library.Store.
func (s *DB) RewrapDocument(ctx context.Context, id, oldKeyID string, key envelope.Wrapped) (bool, error) {
	res, err := s.w.ExecContext(ctx, `UPDATE kb_documents SET key_id = ?, wrapped_key = ? WHERE id = ? AND key_id = ?`, key.KeyID, key.Sealed, id, oldKeyID)
	if err != nil {
		return false, kbErr("rewrap document", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, kbErr("rewrap document", err)
	}
	return n == 1, nil
}
