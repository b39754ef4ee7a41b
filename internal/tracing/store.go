package tracing

import (
	"context"

	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/records"
	"go.opentelemetry.io/otel/trace"
)

// Store wraps the call store the dispatcher writes through: each write
// under a traced request is a client span ("store.create_call", ...). Reads
// and writes outside a trace pass straight through.
type Store struct {
	calls.Store
}

var _ calls.Store = Store{}

// storeSpan starts a write's span, tagged with its operation.
func storeSpan(ctx context.Context, op string) (context.Context, trace.Span) {
	ctx, span := Start(ctx, "store."+op, trace.SpanKindClient)
	if span.IsRecording() {
		span.SetAttributes(AttrOperation.String(op))
	}
	return ctx, span
}

// CreateCall implements calls.Store.
func (s Store) CreateCall(ctx context.Context, r calls.Record) error {
	ctx, span := storeSpan(ctx, "create_call")
	err := s.Store.CreateCall(ctx, r)
	End(span, err)
	return err
}

// RecordStatus implements calls.Store.
func (s Store) RecordStatus(ctx context.Context, callID string, c calls.StatusChange) error {
	ctx, span := storeSpan(ctx, "record_status")
	err := s.Store.RecordStatus(ctx, callID, c)
	End(span, err)
	return err
}

// EndCall implements calls.Store.
func (s Store) EndCall(ctx context.Context, callID string, e calls.End) error {
	ctx, span := storeSpan(ctx, "end_call")
	err := s.Store.EndCall(ctx, callID, e)
	End(span, err)
	return err
}

// Records wraps the protected records' store: each record written under a
// traced request is a span ("store.put_record"), and so is a call's
// purge ("store.shred_call").
type Records struct {
	records.Store
}

var _ records.Store = Records{}

// PutRecord implements records.Store.
func (s Records) PutRecord(ctx context.Context, r records.Sealed) (bool, error) {
	ctx, span := storeSpan(ctx, "put_record")
	stored, err := s.Store.PutRecord(ctx, r)
	if span.IsRecording() {
		span.SetAttributes(AttrStored.Bool(stored))
	}
	End(span, err)
	return stored, err
}

// ShredCall implements records.Store.
func (s Records) ShredCall(ctx context.Context, callID string) (int, error) {
	ctx, span := storeSpan(ctx, "shred_call")
	n, err := s.Store.ShredCall(ctx, callID)
	End(span, err)
	return n, err
}
