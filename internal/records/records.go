// Package records provides the protected call records: what an
// end-of-call report carries and every tool invocation, kept per call with
// their content sealed by envelope encryption (internal/envelope). Only
// what finding and deleting a record needs is stored in clear: its id,
// call id, kind, time, and the wrapped data key.
package records

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/voicegate/voicegate/internal/envelope"
)

// Kind is what a record holds.
type Kind string

const (
	KindEndOfCall Kind = "end_of_call_report"
	KindToolCall  Kind = "tool_call"
)

// Sealed is a record as stored.
type Sealed struct {
	ID     string
	CallID string
	Kind   Kind
	// DedupKey makes a redelivery idempotent: a second record with the
	// same call id, kind and key is not stored again.
	DedupKey  string
	CreatedAt time.Time
	// CallerHash is the keyed hash of the caller's number (see
	// Writer.CallerHash), "" when the call has none: what finds a
	// caller's records without storing the number.
	CallerHash string
	Key        envelope.Wrapped
	Payload    []byte
	// Redacted is the payload with personal data replaced by placeholders,
	// sealed under the record's data key, when redaction is "copy" (else
	// nil): what an analyst is given instead of the original.
	Redacted []byte
}

// AAD is the additional data a record's envelope is bound to: its id, its
// call's, its kind, dedup key and time, so that a payload or key moved to
// another row, or a row relabelled or re-dated, does not open.
func (s Sealed) AAD() []byte {
	aad := fmt.Sprintf("voicegate record\x00%s\x00%s\x00%s\x00%s\x00%d", s.ID, s.CallID, s.Kind, s.DedupKey, s.CreatedAt.UnixMilli())
	if s.CallerHash != "" {
		aad += "\x00" + s.CallerHash // moved to another caller: does not open
	}
	return []byte(aad)
}

// ErrNotFound is a record id the store does not have.
var ErrNotFound = errors.New("record not found")

// ErrShredded is a record whose data key was destroyed (purged).
var ErrShredded = errors.New("record purged: its key was destroyed")

// Store keeps sealed records. Implementations are safe for concurrent use
// and pass the suite in package recordstest, which is this contract:
//
//   - Put stores a record durably when it returns nil, all of it or
//     nothing; it reports false (and stores nothing) when a record with
//     the same call id, kind and dedup key exists.
//   - Get returns ErrNotFound for an unknown id; ForCall returns a call's
//     records oldest first (none: an empty slice).
//   - ShredCall destroys the wrapped data keys of a call's records, their
//     redacted copies and caller hashes, and returns how many records it
//     touched: their payloads can no longer be opened from this store. A
//     shredded record is still listed, with an empty Key. (A copy of the store taken before, opened with a keyring
//     that still holds the key-encryption key, can: erasure that also
//     defeats old backups needs key material kept outside the store.)
//   - KeyUsage counts the records (not shredded) wrapped under each key id.
//   - UnderKey returns up to limit records wrapped under key id whose ids
//     sort after afterID, by id: a rewrap walks them in batches and can
//     resume from the last id it finished.
//   - Rekey replaces a record's wrapped key only while it is still wrapped
//     under old's key id (false otherwise: shredded, or already rekeyed).
//   - CallerCalls returns the ids of the calls with a record (not
//     shredded) of caller hash h, each once, in no particular order.
//   - DeleteBefore deletes up to limit records of kind created before t,
//     oldest first, and returns the call id of each deleted record.
type Store interface {
	PutRecord(ctx context.Context, r Sealed) (stored bool, err error)
	GetRecord(ctx context.Context, id string) (Sealed, error)
	CallRecords(ctx context.Context, callID string) ([]Sealed, error)
	ShredCall(ctx context.Context, callID string) (int, error)
	KeyUsage(ctx context.Context) (map[string]int, error)
	UnderKey(ctx context.Context, keyID, afterID string, limit int) ([]Sealed, error)
	Rekey(ctx context.Context, id string, old, next envelope.Wrapped) (bool, error)
	CallerCalls(ctx context.Context, h string) ([]string, error)
	DeleteBefore(ctx context.Context, kind Kind, t time.Time, limit int) ([]string, error)
}

// NewID returns a random record id.
func NewID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return "rec_" + hex.EncodeToString(b)
}
