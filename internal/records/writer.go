package records

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/voicegate/voicegate/internal/envelope"
)

// Writer seals records and stores them; it opens them for an operator.
type Writer struct {
	store  Store
	keys   envelope.Keyring
	random io.Reader
	now    func() time.Time
}

// NewWriter returns a writer sealing with keys' current key.
func NewWriter(store Store, keys envelope.Keyring, random io.Reader, now func() time.Time) *Writer {
	return &Writer{store: store, keys: keys, random: random, now: now}
}

// Store returns the store the writer keeps records in.
func (w *Writer) Store() Store { return w.store }

// Keys returns the keyring the writer seals with.
func (w *Writer) Keys() envelope.Keyring { return w.keys }

// put seals payload as a record of call and stores it once per dedup key.
func (w *Writer) put(ctx context.Context, callID string, kind Kind, dedup string, payload []byte) error {
	r := Sealed{ID: NewID(), CallID: callID, Kind: kind, DedupKey: dedup, CreatedAt: w.now()}
	s, err := envelope.Seal(w.keys, w.random, payload, r.AAD())
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
func (w *Writer) Open(r Sealed) ([]byte, error) {
	if r.Key.KeyID == "" {
		return nil, fmt.Errorf("record %s: %w", r.ID, ErrShredded)
	}
	b, err := envelope.Open(w.keys, envelope.Sealed{Key: r.Key, Payload: r.Payload}, r.AAD())
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", r.ID, err)
	}
	return b, nil
}
