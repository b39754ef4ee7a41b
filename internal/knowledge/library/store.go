package library

import (
	"context"
	"errors"
	"time"

	"github.com/voicegate/voicegate/internal/envelope"
)

// Store keeps the documents of the local knowledge bases, in the call
// store's database: SQLite (FTS5) and PostgreSQL (tsvector and GIN) both
// implement it and pass the suite in librarytest. It holds no word of a
// document in clear: names and passages are sealed, the full-text index
// holds keyed hashes of words (Terms).
type Store interface {
	// PutDocument stores d with its passages in one transaction,
	// replacing the document of the same base and name hash (its id
	// returned; "" when there was none).
	PutDocument(ctx context.Context, d StoredDocument, passages []StoredPassage) (replacedID string, err error)
	// ListDocuments returns the documents of base ("": of every base),
	// by base then time added.
	ListDocuments(ctx context.Context, base string) ([]StoredDocument, error)
	// RemoveDocument deletes the document of base and name hash, with its
	// passages and their index entries, and returns its id ("" when
	// there is none).
	RemoveDocument(ctx context.Context, base, nameHash string) (id string, err error)
	// MatchPassages returns the passages of base holding any of terms
	// (at most limit, the best by the database's own ranking when there
	// are more), with what BM25 needs: how many passages base has, their
	// mean length in terms, and how many passages hold each term.
	MatchPassages(ctx context.Context, base string, terms []string, limit int) (Match, error)
	// Passages returns the sealed passages named, with their document's
	// wrapped key; a passage that no longer exists is left out.
	Passages(ctx context.Context, refs []PassageRef) ([]SealedPassage, error)
	// DocumentKeyUsage counts the documents whose data key each key id
	// wraps.
	DocumentKeyUsage(ctx context.Context) (map[string]int, error)
	// DocumentsUnderKey pages the documents whose data key is wrapped by
	// keyID, by id after afterID.
	DocumentsUnderKey(ctx context.Context, keyID, afterID string, limit int) ([]StoredDocument, error)
	// RewrapDocument replaces a document's wrapped key if it is still
	// wrapped by oldKeyID (false: it was changed or removed meanwhile).
	RewrapDocument(ctx context.Context, id, oldKeyID string, key envelope.Wrapped) (bool, error)
}

// ErrStore is wrapped by a store's failures (not found is not one).
var ErrStore = errors.New("knowledge store")

// StoredDocument is a document as stored: its name sealed under its data
// key, found by the name's keyed hash.
type StoredDocument struct {
	ID       string
	Base     string
	NameHash string
	Name     []byte // sealed
	Key      envelope.Wrapped
	AddedAt  time.Time
	Passages int
	Bytes    int
}

// StoredPassage is one passage as stored: its content sealed under its
// document's data key, its terms for the full-text index (sorted).
type StoredPassage struct {
	Seq     int
	Terms   []string
	Payload []byte
}

// PassageRef names a passage.
type PassageRef struct {
	DocID string
	Seq   int
}

// Candidate is a passage that holds a query term, with all its terms
// (space separated, sorted: not in the text's order).
type Candidate struct {
	PassageRef
	Terms string
}

// Match is what MatchPassages found.
type Match struct {
	// Passages is how many passages the base has; MeanTerms their mean
	// length in terms.
	Passages  int
	MeanTerms float64
	// DF is how many passages of the base hold each query term.
	DF         map[string]int
	Candidates []Candidate
}

// SealedPassage is a passage to open: its payload and its document's
// data key and name.
type SealedPassage struct {
	PassageRef
	Base    string
	Key     envelope.Wrapped
	Name    []byte
	Payload []byte
}
