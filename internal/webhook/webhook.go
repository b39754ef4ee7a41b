// Package webhook defines what the gateway serves: a Source is one webhook
// provider (Vapi today, Twilio next), described as a value — where it is
// served, how its requests are authenticated and keyed for replay, and how
// an authentic request is handled and answered. The gateway serves a list of
// sources and knows nothing provider-specific; a provider's package builds
// its Source, and the app wires it in.
package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/replay"
)

// Source is one webhook provider.
type Source interface {
	// Name labels the source in logs ("vapi").
	Name() string
	// Path is where the source is served; it changes only with a restart.
	Path() string
	// Types lists the message types the source labels its metrics with
	// (the gateway adds "none", its label for requests refused or replayed
	// before any message is read).
	Types() []string
	// Endpoint returns the configuration a request starts on. A reload
	// swaps it; a request in flight finishes on the one it started with.
	Endpoint() *Endpoint
}

// Endpoint is the part of a source a configuration reload replaces.
type Endpoint struct {
	// MaxBodyBytes caps a request body (over it: 413).
	MaxBodyBytes int64
	// PublicURL is the URL the provider calls, for signatures that cover
	// it (empty: the request's own URL).
	PublicURL string
	// Verifier authenticates the raw request before anything is parsed.
	Verifier auth.Verifier
	// ReplayKey identifies a delivery for replay protection: nil hashes the
	// body; a provider with an idempotency token may use it instead.
	ReplayKey func(r *http.Request, body []byte) replay.Key
	// Handle decodes and handles an authentic body that is not a replay.
	// It never fails: a problem is a Reply with its status.
	Handle func(ctx context.Context, body []byte) Reply
	// SlowRatio is the share of a reply's deadline past which the answer
	// is logged and counted as slow.
	SlowRatio float64
}

// Reply is a source's answer to one request.
type Reply struct {
	Status int
	Body   []byte
	// ContentType is the body's type; empty means application/json.
	ContentType string
	// Type is the message type, for metrics and logs ("unknown" when it
	// could not be told).
	Type string
	// CallID identifies the call in logs, when known.
	CallID string
	// Deadline is how long the provider waits for this answer.
	Deadline time.Duration
}

// ErrorJSON is the body of an error answer: {"error":"msg"}.
func ErrorJSON(msg string) []byte {
	b, _ := json.Marshal(msg)
	return append(append([]byte(`{"error":`), b...), '}')
}
