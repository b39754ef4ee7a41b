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
	"fmt"
	"net/http"
	"time"

	"github.com/voicegate/voicegate/internal/allowlist"
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
	// AllowFrom is the addresses the source accepts requests from (nil:
	// any); anyone else gets 403 before the body is read.
	AllowFrom *allowlist.List
	// PublicURL is the URL the provider calls, for signatures that cover
	// it (empty: the request's own URL).
	PublicURL string
	// Verifier authenticates the raw request before anything is parsed.
	Verifier auth.Verifier
	// AuthFailureStatus answers a request that fails authentication
	// (0: 401; Twilio's convention is 403).
	AuthFailureStatus int
	// ReplayKey identifies a delivery for replay protection: nil hashes the
	// body; a provider with an idempotency token may use it instead.
	ReplayKey func(r *http.Request, body []byte) replay.Key
	// Handle decodes and handles an authentic body that is not a replay.
	// A failure is returned as an error, never written: the gateway turns
	// it into the status, body, outcome metric and log line (an *Error
	// chooses the status and what the caller is told; any other error is
	// a 500 "internal error").
	Handle func(ctx context.Context, body []byte) (Reply, error)
	// EncodeError renders an error answer — the gateway's refusals (401,
	// 413, 503, ...) and the source's errors — in the provider's format.
	// Nil renders JSON, {"error":"msg"}.
	EncodeError func(status int, msg string) (contentType string, body []byte)
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
	// Type is the message type, for metrics and logs: one of the source's
	// Types (a source labels what it cannot read "none", and a type it does
	// not know as it chooses: Vapi's "unknown").
	Type string
	// CallID identifies the call in logs, when known.
	CallID string
	// Deadline is how long the provider waits for this answer.
	Deadline time.Duration
	// Header holds extra response headers (nil: none). They are not kept
	// by the replay cache: a replayed answer has only its body and type.
	Header http.Header
}

// Error is a request a source could not answer normally. The gateway
// answers it with Status and Msg (rendered by the endpoint's EncodeError)
// and logs it with Err, its cause.
type Error struct {
	Status int
	// Msg is what the caller is told: no body content, secret or personal
	// data.
	Msg string
	// Type and CallID identify the message in metrics and logs, when known.
	Type   string
	CallID string
	// Deadline is how long the provider waited for this answer, when
	// known: a slow error is logged and counted as slow like any answer.
	Deadline time.Duration
	// Err is the cause, for the log only (may be nil).
	Err error
	// RetryAfter, when positive, is sent as Retry-After (seconds): the
	// failure is passing and a retry should succeed.
	RetryAfter int
}

func (e *Error) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("%d %s", e.Status, e.Msg)
	}
	return fmt.Sprintf("%d %s: %v", e.Status, e.Msg, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// BadRequest is a 400 telling the caller msg.
func BadRequest(msg string, cause error) *Error {
	return &Error{Status: http.StatusBadRequest, Msg: msg, Err: cause}
}

// EncodeJSONError is the default EncodeError: {"error":"msg"}.
func EncodeJSONError(status int, msg string) (string, []byte) {
	return "application/json", ErrorJSON(msg)
}

// ErrorJSON is the body of an error answer: {"error":"msg"}.
func ErrorJSON(msg string) []byte {
	b, _ := json.Marshal(msg)
	return append(append([]byte(`{"error":`), b...), '}')
}
