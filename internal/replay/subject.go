package replay

import "context"

// Subject is what a request is about, when its source can tell after
// decoding it and before handling it. A shared Guard uses it to read — and,
// with Observe, to note — the call's state in the same round trip as the
// claim, and to decide whether the answer must be stored before it is sent.
// The in-memory Cache ignores it.
type Subject struct {
	// CallID is the call the request belongs to (empty: none).
	CallID string
	// Observe: the request is an event of the call, to be noted as
	// session.Tracker.Observe(CallID, Status, Initial) would.
	Observe         bool
	Status, Initial string
	// SideEffects: handling the request changes something outside
	// voicegate's bookkeeping (an internal API, a stored record): its
	// answer is stored before it is sent, so that a duplicate is never
	// handled again. Without side effects the answer and the call's
	// changes may be written behind.
	SideEffects bool
}

type subjectKey struct{}
type ticketKey struct{}

// WithSubject attaches the request's subject to ctx, for BeginAt.
func WithSubject(ctx context.Context, s Subject) context.Context {
	return context.WithValue(ctx, subjectKey{}, s)
}

// SubjectOf returns the subject WithSubject attached (ok false: none).
func SubjectOf(ctx context.Context) (Subject, bool) {
	s, ok := ctx.Value(subjectKey{}).(Subject)
	return s, ok
}

// WithTicket attaches the ticket of the request being handled to ctx, so
// that a shared session tracker can use the call state its claim read.
func WithTicket(ctx context.Context, t Ticket) context.Context {
	return context.WithValue(ctx, ticketKey{}, t)
}

// TicketOf returns the ticket WithTicket attached.
func TicketOf(ctx context.Context) (Ticket, bool) {
	t, ok := ctx.Value(ticketKey{}).(Ticket)
	return t, ok
}
