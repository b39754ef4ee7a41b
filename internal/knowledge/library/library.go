// Package library is the local document store of the knowledge bases:
// documents (Markdown or plain text) cut into passages, each sealed with
// the records' keyring under its document's data key, and indexed for
// full-text search in the call store's database (SQLite FTS5 or
// PostgreSQL) by keyed hashes of their stemmed words — the database holds
// no word of a document in clear. A search ranks the passages holding the
// query's words by BM25, computed here the same way on both databases.
package library

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/envelope"
)

// Deps are what a library is made of.
type Deps struct {
	Store Store
	// Keys seals the documents (the records' keyring).
	Keys envelope.Keyring
	// LookupKey is the keyring's lookup key: the index and name keys are
	// derived from it, so they survive key rotation.
	LookupKey []byte
	// Erasure keeps a secret per document outside the database
	// (internal/erasure, as for call records); every document's data key
	// is bound to it and a removal destroys it, so no copy of the
	// database — a backup, a dead row, the WAL — opened with the keyring
	// gives a removed document back. Nil: no such binding (tests).
	Erasure Erasure
	Random  io.Reader        // nil: crypto/rand
	Now     func() time.Time // nil: time.Now
}

// Erasure is the store of per-document secrets (internal/erasure).
type Erasure interface {
	// Secret returns id's secret, creating it when create is set; an
	// error once it was erased.
	Secret(ctx context.Context, id string, create bool) ([]byte, error)
	// Erase destroys id's secret for good.
	Erase(ctx context.Context, id string) (bool, error)
}

// erasureID names a document in the erasure store.
func erasureID(docID string) string { return "kb:" + docID }

// Library adds, lists, removes and searches documents.
type Library struct {
	store   Store
	erasure Erasure
	keys    envelope.Keyring
	terms   Terms
	nameKey []byte
	random  io.Reader
	now     func() time.Time
}

// New returns the library of d.
func New(d Deps) *Library {
	if d.Random == nil {
		d.Random = rand.Reader
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Library{
		store:   d.Store,
		erasure: d.Erasure,
		keys:    d.Keys,
		terms:   NewTerms(derive(d.LookupKey, indexLabel)),
		nameKey: derive(d.LookupKey, "voicegate knowledge names v1"),
		random:  d.Random,
		now:     d.Now,
	}
}

// indexLabel derives the index key from the lookup key.
const indexLabel = "voicegate knowledge index v1"

func derive(key []byte, label string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// Search tuning.
const (
	// MaxQueryTerms is how many distinct words of a query are searched
	// (the last ones: the query is the latest user turns, oldest first,
	// and the caller's question is in the latest): a caller's two turns,
	// not a transcript.
	MaxQueryTerms = 48
	// CandidateLimit is how many matching passages are ranked; beyond
	// it, the database's own ranking chooses which.
	CandidateLimit = 1000
	// BM25's parameters, the usual ones.
	bm25K1 = 1.2
	bm25B  = 0.75
	// similarityHalf is the BM25 score answered as similarity 0.5: a
	// score s is s/(s+similarityHalf).
	similarityHalf = 5.0
	// RewrapBatch is how many documents a rewrap reads at a time.
	RewrapBatch = 500
)

// keyAAD is what a document's data key is wrapped bound to: the
// document, its base, and its erasure secret.
func (l *Library) keyAAD(ctx context.Context, docID, base string, create bool) ([]byte, error) {
	aad := nameAAD(docID, base)
	if l.erasure == nil {
		return aad, nil
	}
	secret, err := l.erasure.Secret(ctx, erasureID(docID), create)
	if err != nil {
		return nil, fmt.Errorf("document %s: its erasure secret: %w", docID, err)
	}
	return append(aad, secret...), nil
}

// erase destroys the secrets of documents no longer stored.
func (l *Library) erase(ctx context.Context, docID string) error {
	if l.erasure == nil || docID == "" {
		return nil
	}
	if _, err := l.erasure.Erase(ctx, erasureID(docID)); err != nil {
		return fmt.Errorf("document %s removed, but its erasure secret was not destroyed (run the removal again): %w", docID, err)
	}
	return nil
}

func nameAAD(docID, base string) []byte {
	return []byte("voicegate kb document\x00" + base + "\x00" + docID)
}

func (l *Library) nameHash(base, name string) string {
	m := hmac.New(sha256.New, l.nameKey)
	m.Write([]byte(base + "\x00" + name))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

func passageAAD(docID, base string, seq int) []byte {
	return []byte("voicegate kb passage\x00" + base + "\x00" + docID + "\x00" + strconv.Itoa(seq))
}

// IDF is BM25's inverse document frequency of a term held by df of a
// base's passages (a store uses it to choose the candidates, when there
// are more than it returns, the way the library ranks them).
func IDF(passages, df int) float64 {
	return math.Log(1 + (float64(passages)-float64(df)+0.5)/(float64(df)+0.5))
}

// Added is what Add did.
type Added struct {
	ID       string
	Passages int
	Bytes    int
	Replaced bool
}

// Add stores document name (a file's base name) of base, in language
// lang, replacing the one of that name; its text is read as format f.
func (l *Library) Add(ctx context.Context, base, lang, name string, doc []byte, f Format) (Added, error) {
	secs, err := Split(doc, f)
	if err != nil {
		return Added{}, fmt.Errorf("%s: %w", name, err)
	}
	if len(secs) == 0 {
		return Added{}, fmt.Errorf("%s: no text", name)
	}
	id := newID()
	aad := nameAAD(id, base)
	kaad, err := l.keyAAD(ctx, id, base, true)
	if err != nil {
		return Added{}, err
	}
	dek, wrapped, err := envelope.NewDataKey(l.keys, l.random, kaad)
	if err != nil {
		return Added{}, err
	}
	defer clear(dek)
	d := StoredDocument{ID: id, Base: base, NameHash: l.nameHash(base, name), Key: wrapped, AddedAt: l.now(), Passages: len(secs)}
	if d.Name, err = envelope.SealUnder(dek, l.random, []byte(name), append(aad, "\x00name"...)); err != nil {
		return Added{}, err
	}
	ps := make([]StoredPassage, len(secs))
	for i, s := range secs {
		c := s.Content()
		d.Bytes += len(c)
		p, err := envelope.SealUnder(dek, l.random, []byte(c), passageAAD(id, base, i))
		if err != nil {
			return Added{}, err
		}
		// Sorted: BM25 needs which terms a passage holds and how often,
		// not their order, which would make the index the text under a
		// word-substitution cipher (read with bigram statistics, or with
		// one known document).
		terms := l.terms.Of(Words(lang, c))
		slices.Sort(terms)
		ps[i] = StoredPassage{Seq: i, Terms: terms, Payload: p}
	}
	replaced, err := l.store.PutDocument(ctx, d, ps)
	if err != nil {
		l.erase(context.WithoutCancel(ctx), id) // never stored: its secret is of no use
		return Added{}, err
	}
	if err := l.erase(ctx, replaced); err != nil {
		return Added{}, err
	}
	return Added{ID: id, Passages: len(ps), Bytes: d.Bytes, Replaced: replaced != ""}, nil
}

// Entry is a document as listed.
type Entry struct {
	Base     string
	Name     string
	ID       string
	AddedAt  time.Time
	Passages int
	Bytes    int
}

// List returns the documents of base ("": every base).
func (l *Library) List(ctx context.Context, base string) ([]Entry, error) {
	docs, err := l.store.ListDocuments(ctx, base)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(docs))
	for _, d := range docs {
		name, err := l.openName(ctx, d.ID, d.Base, d.Key, d.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, Entry{Base: d.Base, Name: name, ID: d.ID, AddedAt: d.AddedAt, Passages: d.Passages, Bytes: d.Bytes})
	}
	return out, nil
}

func (l *Library) openName(ctx context.Context, id, base string, key envelope.Wrapped, sealed []byte) (string, error) {
	aad := nameAAD(id, base)
	kaad, err := l.keyAAD(ctx, id, base, false)
	if err != nil {
		return "", err
	}
	dek, err := l.keys.Unwrap(key, kaad)
	if err != nil {
		return "", fmt.Errorf("document %s: %w", id, err)
	}
	defer clear(dek)
	b, err := envelope.OpenUnder(dek, sealed, append(aad, "\x00name"...))
	if err != nil {
		return "", fmt.Errorf("document %s: name: %w", id, err)
	}
	return string(b), nil
}

// Remove deletes document name of base and destroys its erasure secret;
// false when there is none.
func (l *Library) Remove(ctx context.Context, base, name string) (bool, error) {
	id, err := l.store.RemoveDocument(ctx, base, l.nameHash(base, name))
	if err != nil || id == "" {
		return false, err
	}
	return true, l.erase(ctx, id)
}

// Result is a passage found.
type Result struct {
	Content    string
	Similarity float64
	// UUID names the passage (stable while its document is not
	// replaced).
	UUID     string
	Document string
	Passage  int
	Score    float64
}

// Search returns the passages of base most relevant to query (in
// language lang), at most limit, best first; none when no word of the
// query is in any passage.
func (l *Library) Search(ctx context.Context, base, lang, query string, limit int) ([]Result, error) {
	words := Words(lang, query)
	terms := lastDistinct(l.terms.Of(words), MaxQueryTerms)
	if len(terms) == 0 || limit <= 0 {
		return nil, nil
	}
	m, err := l.store.MatchPassages(ctx, base, terms, CandidateLimit)
	if err != nil {
		return nil, err
	}
	type scored struct {
		ref   PassageRef
		terms string
		score float64
	}
	idf := make(map[string]float64, len(terms))
	for _, t := range terms {
		idf[t] = IDF(m.Passages, m.DF[t])
	}
	mean := m.MeanTerms
	if mean <= 0 {
		mean = 1
	}
	ranked := make([]scored, 0, len(m.Candidates))
	tf := make(map[string]int, len(terms))
	for _, c := range m.Candidates {
		clear(tf)
		n := 0
		for _, t := range strings.Fields(c.Terms) {
			n++
			if _, ok := idf[t]; ok {
				tf[t]++
			}
		}
		s := 0.0
		for _, t := range terms { // in order: the same sum everywhere
			if f := tf[t]; f > 0 {
				ff := float64(f)
				s += idf[t] * ff * (bm25K1 + 1) / (ff + bm25K1*(1-bm25B+bm25B*float64(n)/mean))
			}
		}
		if s > 0 {
			ranked = append(ranked, scored{c.PassageRef, c.Terms, s})
		}
	}
	sort.Slice(ranked, func(i, j int) bool {
		a, b := ranked[i], ranked[j]
		if a.score != b.score {
			return a.score > b.score
		}
		if a.terms != b.terms { // ties in an order that does not depend on random ids
			return a.terms < b.terms
		}
		if a.ref.DocID != b.ref.DocID {
			return a.ref.DocID < b.ref.DocID
		}
		return a.ref.Seq < b.ref.Seq
	})
	if len(ranked) > limit {
		ranked = ranked[:limit]
	}
	if len(ranked) == 0 {
		return nil, nil
	}
	refs := make([]PassageRef, len(ranked))
	for i, r := range ranked {
		refs[i] = r.ref
	}
	sealed, err := l.store.Passages(ctx, refs)
	if err != nil {
		return nil, err
	}
	byRef := make(map[PassageRef]SealedPassage, len(sealed))
	for _, p := range sealed {
		byRef[p.PassageRef] = p
	}
	deks := map[string][]byte{}
	defer func() {
		for _, k := range deks {
			clear(k)
		}
	}()
	names := map[string]string{}
	out := make([]Result, 0, len(ranked))
	for _, r := range ranked {
		p, ok := byRef[r.ref]
		if !ok {
			continue // removed meanwhile
		}
		if p.Base != base {
			// The passage opens (it is bound to its own base), but the
			// index put it in this one: never answer it here.
			return nil, fmt.Errorf("document %s: indexed in base %s but sealed in another", p.DocID, base)
		}
		aad := nameAAD(p.DocID, p.Base)
		dek, ok := deks[p.DocID]
		if !ok {
			kaad, err := l.keyAAD(ctx, p.DocID, p.Base, false)
			if err != nil {
				return nil, err
			}
			if dek, err = l.keys.Unwrap(p.Key, kaad); err != nil {
				return nil, fmt.Errorf("document %s: %w", p.DocID, err)
			}
			deks[p.DocID] = dek
			b, err := envelope.OpenUnder(dek, p.Name, append(aad, "\x00name"...))
			if err != nil {
				return nil, fmt.Errorf("document %s: name: %w", p.DocID, err)
			}
			names[p.DocID] = string(b)
		}
		c, err := envelope.OpenUnder(dek, p.Payload, passageAAD(p.DocID, p.Base, p.Seq))
		if err != nil {
			return nil, fmt.Errorf("document %s passage %d: %w", p.DocID, p.Seq, err)
		}
		out = append(out, Result{
			Content:    string(c),
			Similarity: r.score / (r.score + similarityHalf),
			UUID:       passageUUID(p.DocID, p.Seq),
			Document:   names[p.DocID],
			Passage:    p.Seq,
			Score:      r.score,
		})
	}
	return out, nil
}

// lastDistinct returns the last max distinct terms, in the order of
// their last occurrence.
func lastDistinct(terms []string, max int) []string {
	seen := make(map[string]bool, len(terms))
	var out []string
	for i := len(terms) - 1; i >= 0 && len(out) < max; i-- {
		if t := terms[i]; !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	slices.Reverse(out)
	return out
}

// passageUUID is a passage's name in UUID form (version 8: derived).
func passageUUID(docID string, seq int) string {
	h := sha256.Sum256([]byte(docID + "\x00" + strconv.Itoa(seq)))
	h[6] = h[6]&0x0f | 0x80
	h[8] = h[8]&0x3f | 0x80
	x := hex.EncodeToString(h[:16])
	return x[0:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:32]
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "doc_" + hex.EncodeToString(b)
}

// Rewrap re-wraps every document's data key not under the keyring's
// current key (resumable, like the records' rewrap); progress, if set, is
// called after each batch.
func (l *Library) Rewrap(ctx context.Context, progress func(done int)) (int, error) {
	usage, err := l.store.DocumentKeyUsage(ctx)
	if err != nil {
		return 0, err
	}
	cur := l.keys.Current()
	done := 0
	for id := range usage {
		if id == cur {
			continue
		}
		after := ""
		for {
			batch, err := l.store.DocumentsUnderKey(ctx, id, after, RewrapBatch)
			if err != nil {
				return done, err
			}
			if len(batch) == 0 {
				break
			}
			for _, d := range batch {
				if err := ctx.Err(); err != nil {
					return done, err
				}
				kaad, err := l.keyAAD(ctx, d.ID, d.Base, false)
				if err != nil {
					return done, err
				}
				next, err := envelope.Rewrap(l.keys, d.Key, kaad)
				if err != nil {
					return done, fmt.Errorf("document %s: %w", d.ID, err)
				}
				ok, err := l.store.RewrapDocument(ctx, d.ID, d.Key.KeyID, next)
				if err != nil {
					return done, err
				}
				if ok {
					done++
				}
				after = d.ID
			}
			if progress != nil {
				progress(done)
			}
		}
	}
	return done, nil
}

// ErrKeyInUse is a key some documents are still wrapped under.
var ErrKeyInUse = errors.New("key still in use")

// CheckRetire says whether key id may be retired: no document's data key
// may still be wrapped under it.
func (l *Library) CheckRetire(ctx context.Context, id string) error {
	usage, err := l.store.DocumentKeyUsage(ctx)
	if err != nil {
		return err
	}
	if n := usage[id]; n > 0 {
		return fmt.Errorf("key %s still wraps %d knowledge-base document(s): run voicegate keys rewrap first: %w", id, n, ErrKeyInUse)
	}
	return nil
}
