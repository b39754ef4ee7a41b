package secrets

import (
	"context"
	"errors"
	"time"

	"github.com/voicegate/voicegate/internal/envelope"
)

// Store keeps the managed webhook secrets, the processes that loaded them,
// the rotation's progress and short leases, in the call store's database:
// SQLite and PostgreSQL both implement it and pass secretstest's suite.
type Store interface {
	// AddSecret stores s unless a secret of its generation exists
	// (false).
	AddSecret(ctx context.Context, s Stored) (bool, error)
	// ListSecrets returns the secrets not retired, by generation.
	ListSecrets(ctx context.Context) ([]Stored, error)
	// SetSecretNotAfter sets when a secret stops being accepted.
	SetSecretNotAfter(ctx context.Context, id string, t time.Time) error
	// SetSecretCredential records the Vapi credential holding a secret.
	SetSecretCredential(ctx context.Context, id, credentialID string) error
	// RetireSecret destroys a secret's value (its wrapped key and
	// payload): it is never accepted again.
	RetireSecret(ctx context.Context, id string) error
	// RewrapSecret replaces a secret's wrapped key if still under oldKeyID.
	RewrapSecret(ctx context.Context, id, oldKeyID string, key envelope.Wrapped) (bool, error)
	// ReportLoaded records that process has loaded generation at time at.
	ReportLoaded(ctx context.Context, process string, generation int64, at time.Time) error
	// Loaders returns every process's last report.
	Loaders(ctx context.Context) ([]Loader, error)
	// Rotation returns the rotation's progress (zero when none ran).
	Rotation(ctx context.Context) (Rotation, error)
	// PutRotation records the rotation's progress.
	PutRotation(ctx context.Context, r Rotation) error
	// TakeLease gives holder the lease name until until if it is free,
	// expired, or already holder's; false when another holds it.
	TakeLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error)
	// ReleaseLease frees holder's lease.
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Stored is a secret as stored: its value sealed with the records'
// keyring.
type Stored struct {
	ID         string
	Generation int64
	CreatedAt  time.Time
	// NotAfter is when it stops being accepted (zero: no end yet).
	NotAfter     time.Time
	CredentialID string
	Key          envelope.Wrapped
	Payload      []byte
}

// Loader is a process's report of the generation it has loaded.
type Loader struct {
	Process    string
	Generation int64
	SeenAt     time.Time
}

// Rotation is the progress of the current (or last) rotation.
type Rotation struct {
	// Step is the last step done (StepNone when no rotation ran).
	Step Step
	// From and To are the secrets' ids: the one retired, the new one.
	From, To string
	// Grace is how long the old secret stays accepted after the switch.
	Grace time.Duration
	// RetireAt is when the old secret stops being accepted (set at
	// StepSwitched).
	RetireAt  time.Time
	UpdatedAt time.Time
	// Error is the last step's failure ("" when it succeeded).
	Error string
}

// ErrNotFound is a secret that is not stored.
var ErrNotFound = errors.New("no such secret")
