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

// Store persists call metadata. Implementations are safe for concurrent use
// and pass the suite in package storetest, which is this contract:
//
//   - Writes are durable when they return nil; a write that returns an error
//     stored nothing, so the sender can be told to retry.
//   - A write under a cancelled or expired context fails with an error
//     wrapping the context's error.
//   - Call returns an error wrapping ErrNotFound for an unknown id; other
//     errors mean the store could not answer.
//   - Ping fails once the store is closed or unreachable.
type Store interface {
	// CreateCall records a call the first time it is seen; a second create
	// of the same id changes nothing.
	CreateCall(ctx context.Context, r Record) error
	// RecordStatus appends a transition and makes it the current status,
	// unless the call has already ended (then only the history grows).
	RecordStatus(ctx context.Context, callID string, c StatusChange) error
	// EndCall marks the call ended with what the report tells, creating
	// the record if the call was never seen; what a later, emptier report
	// leaves out (cost, reason) is kept.
	EndCall(ctx context.Context, callID string, e End) error
	// Call returns a call and its status history in time order.
	Call(ctx context.Context, id string) (Record, []StatusChange, error)
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	Close() error
}
