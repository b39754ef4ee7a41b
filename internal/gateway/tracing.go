package gateway

import (
	"context"
	"net/http"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/tracing"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// The webhook's spans (tracing on; see internal/tracing): the request's
// server span, and as its children authentication, the replay guard's
// begin and finish, and whatever the source's handler starts (tool calls,
// storage). With tracing off (g.tracing nil) none of these does anything.

// startRequest starts the request's server span and returns the request
// carrying it; nil span when tracing is off.
func (g *Gateway) startRequest(r *http.Request, s *served) (*http.Request, trace.Span) {
	if g.tracing == nil {
		return r, nil
	}
	ctx, span := g.tracing.StartWebhook(r, s.src.Path(), s.src.Name())
	return r.WithContext(ctx), span
}

// endRequest records the answer on the request's span and ends it.
func endRequest(span trace.Span, status int, msgType, callID, outcome string) {
	if span == nil {
		return
	}
	if msgType == "" {
		msgType = "none" // refused before any message was read, as in the metrics
	}
	tracing.EndWebhook(span, status, msgType, callID, outcome)
}

// panicked marks the request's span failed by a panic (ended by its defer).
func panicked(span trace.Span) {
	if span != nil {
		span.SetStatus(codes.Error, "panic")
		span.End()
	}
}

// step is one child span of a webhook's span (zero: tracing off).
type step struct{ span trace.Span }

// step starts a child span of r's request span.
func (g *Gateway) step(r *http.Request, name string) (context.Context, step) {
	if g.tracing == nil {
		return r.Context(), step{}
	}
	ctx, span := tracing.Start(r.Context(), name, trace.SpanKindInternal)
	return ctx, step{span}
}

// authenticated ends the authentication span, with the failure's reason.
func (s step) authenticated(err error) {
	if s.span == nil {
		return
	}
	if err != nil {
		s.span.SetAttributes(tracing.AttrReason.String(string(auth.ReasonOf(err))))
		s.span.SetStatus(codes.Error, "unauthorized")
	}
	s.span.End()
}

// begun ends the replay guard's begin span: replayed, handled on this
// replica's memory (the shared state unreachable), or failed (a duplicate
// in progress).
func (s step) begun(replayed, local bool, err error) {
	if s.span == nil {
		return
	}
	s.span.SetAttributes(tracing.AttrReplayed.Bool(replayed), tracing.AttrStateLocal.Bool(local))
	tracing.End(s.span, err)
}

// finished ends the replay guard's finish span.
func (s step) finished() {
	if s.span != nil {
		s.span.End()
	}
}
