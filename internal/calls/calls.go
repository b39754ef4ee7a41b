// Package calls provides voicegate's call domain: the persisted call record,
// its status history, and the Store interface that the SQLite (and later
// PostgreSQL) packages implement.
package calls

import (
	"context"
	"errors"
	"strings"
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

// Event is one entry of a call's timeline beside its status changes: what
// voicegate decided or did during the call (a barge-in decision and its
// reason, a Live Call Control message and its latency). It holds no
// personal data: never a transcript's words, a number or a URL.
type Event struct {
	At time.Time
	// Kind is what the entry is about ("bargein", "control", "vapi").
	Kind string
	// Detail says what happened, in words.
	Detail string
}

// CallEvent is an Event of one call.
type CallEvent struct {
	CallID string
	Event
}

// MaxEventDetail bounds an event's Detail (longer ones are cut).
const MaxEventDetail = 500

// ClipDetail bounds an event's detail to MaxEventDetail bytes, on a
// character boundary (what every store keeps).
func ClipDetail(s string) string {
	if len(s) <= MaxEventDetail {
		return s
	}
	return strings.ToValidUTF8(s[:MaxEventDetail], "")
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

// List limits: a list returns DefaultListLimit calls unless told otherwise,
// and never more than MaxListLimit, however large the store.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// ListFilter selects the calls List returns.
type ListFilter struct {
	// Limit is the most calls returned: DefaultListLimit when zero or
	// negative, MaxListLimit when larger.
	Limit int
	// Before, when not zero, pages back: only calls created before it are
	// returned, and, when BeforeID is also set, calls created at Before
	// whose id sorts before BeforeID. Give the CreatedAt and ID of the last
	// call of a page to get the next one, with no call skipped or repeated.
	Before   time.Time
	BeforeID string
	// Status, when set, returns only calls whose current status is Status.
	Status string
}

// Bound returns the page boundary in the milliseconds stores keep times
// in: calls created before ms, or, when tieBreak, also those created at ms
// whose id sorts before BeforeID. ok is false when the list is not paged.
// "Created before Before" is created_at < Before rounded up to the
// millisecond, and only a whole millisecond has calls created at it.
func (f ListFilter) Bound() (ms int64, tieBreak, ok bool) {
	if f.Before.IsZero() {
		return 0, false, false
	}
	ms = f.Before.UnixMilli()
	exact := time.UnixMilli(ms).Equal(f.Before)
	if !exact && f.Before.After(time.UnixMilli(ms)) {
		ms++
	}
	return ms, f.BeforeID != "" && exact, true
}

// EffectiveLimit returns the number of calls f asks for, within the list limits.
func (f ListFilter) EffectiveLimit() int {
	switch {
	case f.Limit <= 0:
		return DefaultListLimit
	case f.Limit > MaxListLimit:
		return MaxListLimit
	}
	return f.Limit
}

// Reader reads stored calls. Implementations are safe for concurrent use;
// every Store is a Reader, and a read-only view of a store may be one
// without being a Store.
//
//   - Call returns an error wrapping ErrNotFound for an unknown id.
//   - List never returns ErrNotFound: no matching call is an empty slice.
//   - Other errors (a cancelled context's error among them, wrapped) mean
//     the store could not answer.
type Reader interface {
	// Call returns a call and its status history in time order.
	Call(ctx context.Context, id string) (Record, []StatusChange, error)
	// List returns the calls that f selects, newest first (by CreatedAt,
	// then by ID, descending), without their status history.
	List(ctx context.Context, f ListFilter) ([]Record, error)
	// Events returns a call's timeline events in time order (none for an
	// unknown call).
	Events(ctx context.Context, id string) ([]Event, error)
}

// Store persists call metadata. Implementations are safe for concurrent use
// and pass the suite in package storetest, which is this contract:
//
//   - Writes are durable when they return nil; a write that returns an error
//     stored nothing, so the sender can be told to retry.
//   - A write under a cancelled or expired context fails with an error
//     wrapping the context's error.
//   - Reads follow Reader's contract: Call returns an error wrapping
//     ErrNotFound for an unknown id; List returns at most MaxListLimit
//     calls, newest first, and an empty slice when none matches; other
//     errors mean the store could not answer.
//   - Ping fails once the store is closed or unreachable.
type Store interface {
	Reader
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
	// AddEvents appends events to their calls' timelines, all or none.
	AddEvents(ctx context.Context, evs []CallEvent) error
	// Ping reports whether the store is reachable.
	Ping(ctx context.Context) error
	Close() error
}
