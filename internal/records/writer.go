package records

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/voicegate/voicegate/internal/envelope"
)

// CallSecrets keep a random secret per call outside the records'
// database (internal/erasure): every record's envelope is bound to it, so
// erasing it makes the call's records unrecoverable even from an older copy
// of the database opened with the keyring.
type CallSecrets interface {
	// Secret returns the call's secret, creating it when create is set;
	// an error that Is ErrCallErased when the call was erased (never
	// re-created: an erased call stays erased).
	Secret(ctx context.Context, callID string, create bool) ([]byte, error)
	// Erase destroys it.
	Erase(ctx context.Context, callID string) (bool, error)
}

// ErrCallErased is a call whose secret was destroyed by a purge.
var ErrCallErased = errors.New("call erased")

// Writer seals records and stores them; it opens them for an operator.
type Writer struct {
	store   Store
	keys    envelope.Keyring
	secrets CallSecrets
	random  io.Reader
	now     func() time.Time
}

// NewWriter returns a writer sealing with keys' current key, each record
// bound to its call's secret.
func NewWriter(store Store, keys envelope.Keyring, secrets CallSecrets, random io.Reader, now func() time.Time) *Writer {
	return &Writer{store: store, keys: keys, secrets: secrets, random: random, now: now}
}

// aad is what a record's envelope is bound to: its own fields and its
// call's secret.
func aad(r Sealed, secret []byte) []byte { return append(r.AAD(), secret...) }

// Store returns the store the writer keeps records in.
func (w *Writer) Store() Store { return w.store }

// put seals payload as a record of call and stores it once per dedup key.
func (w *Writer) put(ctx context.Context, callID string, kind Kind, dedup string, payload []byte) error {
	r := Sealed{ID: NewID(), CallID: callID, Kind: kind, DedupKey: dedup, CreatedAt: w.now()}
	secret, err := w.secrets.Secret(ctx, callID, true)
	if errors.Is(err, ErrCallErased) {
		return nil // the call was erased: nothing more of it is kept
	}
	if err != nil {
		return fmt.Errorf("record %s: %w", kind, err)
	}
	s, err := envelope.Seal(w.keys, w.random, payload, aad(r, secret))
	if err != nil {
		return fmt.Errorf("record %s: %w", kind, err)
	}
	r.Key, r.Payload = s.Key, s.Payload
	if _, err := w.store.PutRecord(ctx, r); err != nil {
		return fmt.Errorf("record %s: %w", kind, err)
	}
	return nil
}

// EndOfCall stores what an end-of-call report carries (its whole message
// object, as sent): one record per call, however often it is delivered.
func (w *Writer) EndOfCall(ctx context.Context, callID string, message json.RawMessage) error {
	return w.put(ctx, callID, KindEndOfCall, "end-of-call-report", message)
}

// ToolCall is one tool invocation as recorded.
type ToolCall struct {
	ToolCallID string          `json:"tool_call_id"`
	Tool       string          `json:"tool"`
	Arguments  json.RawMessage `json:"arguments,omitempty"`
	Result     string          `json:"result,omitempty"`
	Error      string          `json:"error,omitempty"`
	Outcome    string          `json:"outcome"`
	DurationMS float64         `json:"duration_ms"`
}

// ToolCall stores one tool invocation: once per tool call id.
func (w *Writer) ToolCall(ctx context.Context, callID string, tc ToolCall) error {
	b, err := json.Marshal(tc)
	if err != nil {
		return fmt.Errorf("record tool call: %w", err)
	}
	return w.put(ctx, callID, KindToolCall, tc.ToolCallID, b)
}

// Open decrypts a stored record.
func (w *Writer) Open(ctx context.Context, r Sealed) ([]byte, error) {
	if r.Key.KeyID == "" {
		return nil, fmt.Errorf("record %s: %w", r.ID, ErrShredded)
	}
	secret, err := w.secrets.Secret(ctx, r.CallID, false)
	if errors.Is(err, ErrCallErased) {
		return nil, fmt.Errorf("record %s: %w", r.ID, ErrShredded)
	}
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", r.ID, err)
	}
	b, err := envelope.Open(w.keys, envelope.Sealed{Key: r.Key, Payload: r.Payload}, aad(r, secret))
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", r.ID, err)
	}
	return b, nil
}

// RewrapBatch is how many records a rewrap reads at a time.
const RewrapBatch = 500

// Rewrap re-wraps the data key of every record not under the current key
// with the current key, leaving payloads untouched. It is resumable: an
// interrupted run leaves each record under its old key or its new one, and
// the next run carries on with those still under an old key. progress, if
// set, is called after each batch with the count so far.
func (w *Writer) Rewrap(ctx context.Context, progress func(done int)) (int, error) {
	usage, err := w.store.KeyUsage(ctx)
	if err != nil {
		return 0, err
	}
	cur := w.keys.Current()
	done := 0
	for id := range usage {
		if id == cur {
			continue
		}
		after := ""
		for {
			batch, err := w.store.UnderKey(ctx, id, after, RewrapBatch)
			if err != nil {
				return done, err
			}
			if len(batch) == 0 {
				break
			}
			for _, r := range batch {
				if err := ctx.Err(); err != nil {
					return done, err
				}
				secret, err := w.secrets.Secret(ctx, r.CallID, false)
				if errors.Is(err, ErrCallErased) {
					after = r.ID // erased: nothing left to rewrap
					continue
				}
				if err != nil {
					return done, err
				}
				next, err := envelope.Rewrap(w.keys, r.Key, aad(r, secret))
				if err != nil {
					return done, fmt.Errorf("record %s: %w", r.ID, err)
				}
				ok, err := w.store.Rekey(ctx, r.ID, r.Key, next)
				if err != nil {
					return done, err
				}
				if ok {
					done++
				}
				after = r.ID
			}
			if progress != nil {
				progress(done)
			}
		}
	}
	return done, nil
}

// ErrKeyInUse is a key some records are still wrapped under.
var ErrKeyInUse = errors.New("key still in use")

// CheckRetire says whether key id may be retired: no record may still be
// wrapped under it.
func (w *Writer) CheckRetire(ctx context.Context, id string) error {
	usage, err := w.store.KeyUsage(ctx)
	if err != nil {
		return err
	}
	if n := usage[id]; n > 0 {
		return fmt.Errorf("key %s still wraps %d record(s): run voicegate keys rewrap first: %w", id, n, ErrKeyInUse)
	}
	return nil
}

// Purge erases a call: its secret is destroyed (its records can no longer
// be opened from any copy of the database) and so are its records'
// wrapped keys. It returns how many records it touched.
func (w *Writer) Purge(ctx context.Context, callID string) (int, error) {
	if _, err := w.secrets.Erase(ctx, callID); err != nil {
		return 0, err
	}
	return w.store.ShredCall(ctx, callID)
}
