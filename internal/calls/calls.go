// Package calls provides voicegate's call domain: the persisted call record,
// its status history, and the Store interface that the SQLite (and later
// PostgreSQL) packages implement.
package calls

import (
	"context"
	"errors"
	"time"
)

// Record is a call's persisted metadata. It holds no personal data: caller
// and called numbers, transcripts and recordings are not stored here.
type Record struct {
	ID            string
	OrgID         string
	Type          string
	PhoneNumberID string
	AssistantID   string
	Status        string
	EndedReason   string
	Cost          *float64
	Duration      *float64 // seconds
	CreatedAt     time.Time
	UpdatedAt     time.Time
	EndedAt       time.Time // zero while the call is live
}

// StatusChange is one status transition.
type StatusChange struct {
	Status string
	At     time.Time
}

// End is what an end-of-call report (or a status-update "ended") tells.
type End struct {
	Reason   string
	Cost     *float64
	Duration *float64
	At       time.Time
}

// ErrNotFound is returned for an unknown call id.
var ErrNotFound = errors.New("call not found")

// Store persists call metadata. Implementations are safe for concurrent use.
type Store interface {
	// CreateCall records a call the first time it is seen; a second create
	// of the same id is a no-op.
	CreateCall(ctx context.Context, r Record) error
	// RecordStatus appends a transition and makes it the current status,
	// unless the call has already ended.
	RecordStatus(ctx context.Context, callID string, c StatusChange) error
	// EndCall marks the call ended with what the report tells.
	EndCall(ctx context.Context, callID string, e End) error
	// Call returns a call and its status history, or ErrNotFound.
	Call(ctx context.Context, id string) (Record, []StatusChange, error)
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	Close() error
}
