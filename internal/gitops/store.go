package gitops

import (
	"context"
	"time"
)

// Entry is what voicegate keeps of one resource it manages: its Vapi id
// and what it last applied.
type Entry struct {
	// Org is the org folder's name.
	Org string
	// Kind is the kind's folder ("assistants").
	Kind string
	// LocalID is the resource's id in the files ("support").
	LocalID string
	// VapiID is its id in Vapi.
	VapiID string
	// LastApplied is the object voicegate last applied, as JSON (with
	// references resolved to Vapi ids): the base of the three-way merge.
	// Nil when voicegate has not applied it yet (a resource found through
	// the state file or by name).
	LastApplied []byte
	UpdatedAt   time.Time
}

// Store keeps the entries in the call store's database: SQLite and
// PostgreSQL implement it and pass gitopstest's suite.
type Store interface {
	// VapiResources returns the entries of an org, by kind and id.
	VapiResources(ctx context.Context, org string) ([]Entry, error)
	// PutVapiResource adds or replaces the entry of (Org, Kind, LocalID).
	PutVapiResource(ctx context.Context, e Entry) error
	// DeleteVapiResource removes an entry (none is no error).
	DeleteVapiResource(ctx context.Context, org, kind, localID string) error
}
