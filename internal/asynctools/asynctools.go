// Package asynctools runs async tools durably: Vapi waits a bounded time for
// a tool's answer, so a tool configured with async: true is answered at once
// with its holding phrase, and the call to the internal API is queued
// (River, on SQLite or PostgreSQL), retried with backoff until the tool's
// deadline or max_attempts, and its result — or, when it could not be had,
// FailureResult — handed to a Deliverer, which speaks it into the live call
// or keeps it with the ended one.
//
// # Once, across crashes
//
// A job's two side effects are the internal API request and the delivery.
// Each is made at most once per job in every crash but two short windows,
// and each carries a key that lets its receiver absorb a repeat:
//
//  1. The worker asks the database for the job's outcome first. Only when
//     there is none does it call the internal API (Executor), with an
//     Idempotency-Key header that is the same on every attempt and after
//     every restart (IdempotencyKey). The outcome — the answer, or the
//     decision to give up — is stored, sealed, in this package's table in
//     the same database before anything is delivered. A rerun after a
//     crash finds it and does not call the internal API again.
//     Window: a crash after the request reached the internal API and
//     before the outcome is committed. The rerun sends the request again,
//     with the same Idempotency-Key.
//  2. The outcome is delivered (Deliverer), then marked delivered in the
//     same transaction as River's completion of the job (JobCompleteTx).
//     A rerun that finds the mark delivers nothing.
//     Window: a crash after Deliver returned and before that transaction
//     commits. The rerun delivers again; Delivery.ToolCallID identifies the
//     repeat to a Deliverer that wants to drop it.
//
// A job whose process died stays "running" in River until it is rescued:
// on SQLite (jobs.db, which belongs to the one process that owns data_dir)
// Start makes such jobs available at once and clears the dead process's
// leadership; on PostgreSQL, whose database replicas share, River's leader
// rescues jobs running for longer than Options.RescueAfter (a new leader is
// elected once the dead one's lease expires, about 15 s).
//
// # Personal data
//
// Arguments and the control URL are sealed (Sealer) into the job; only the
// call id, tool call id, tool name, deadline and attempt bound are in
// clear. The stored answer is sealed too and erased when delivered. River
// keeps finished jobs for Options.Retention (1 minute by default); the
// outcome row, emptied, is kept for Options.DedupRetention to refuse a
// redelivered webhook's tool call after River forgot the job.
package asynctools

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/url"
	"time"

	"github.com/voicegate/voicegate/internal/storage"
	"github.com/voicegate/voicegate/internal/tools"
)

// Job is one async tool call to run.
type Job struct {
	// CallID is the Vapi call's id.
	CallID string
	// ToolCallID is Vapi's id of the tool call: with CallID, the job's
	// identity (an Enqueue of the same pair again does nothing).
	ToolCallID string
	// Tool is the tool's configured name.
	Tool string
	// Arguments are the tool call's arguments, a JSON object. Sealed at
	// rest.
	Arguments json.RawMessage
	// ControlURL is the call's Live Call Control URL (may be empty). Sealed
	// at rest: it lets its holder speak into the call.
	ControlURL string
}

// Delivery is a job's result for the call.
type Delivery struct {
	CallID, ToolCallID, Tool string
	// ControlURL is the job's ControlURL ("" when it had none, or when the
	// job's sealed data could not be opened).
	ControlURL string
	// Result is the internal API's answer (one line, as tools.ResultString
	// makes it), or FailureResult when Failed.
	Result string
	// Failed: the answer could not be had (attempts or deadline exhausted,
	// or an error that retrying cannot fix).
	Failed bool
}

// FailureResult is delivered when a job gives up.
const FailureResult = "Sorry, I couldn't get that information."

// Executor makes one attempt of a job against the internal API.
type Executor interface {
	// Execute returns the answer, or an error; retryable says whether
	// another attempt may succeed (a timeout, a 503) or not (a 400). The
	// error is logged, never stored. idempotencyKey is the same on every
	// attempt of the job, including after a restart.
	Execute(ctx context.Context, job Job, idempotencyKey string) (result string, retryable bool, err error)
}

// Deliverer hands a job's result to the call: spoken into the live call
// (Live Call Control), or kept with the ended call.
type Deliverer interface {
	// Deliver returns an error when the result did not reach the call; the
	// job then retries the delivery (not the internal API). A crash between
	// a successful Deliver and the job's completion repeats it once more:
	// d.ToolCallID tells a repeat apart.
	Deliver(ctx context.Context, d Delivery) error
}

// Event is what an Observer is told about.
type Event string

// Events.
const (
	// EventEnqueued: a job was queued.
	EventEnqueued Event = "enqueued"
	// EventDuplicate: Enqueue of a tool call already queued or done.
	EventDuplicate Event = "duplicate"
	// EventRetried: an attempt failed and another is scheduled.
	EventRetried Event = "retried"
	// EventCompleted: the answer was delivered.
	EventCompleted Event = "completed"
	// EventDiscarded: the job gave up on the internal API (attempts,
	// deadline, or an error retrying cannot fix) and FailureResult was
	// delivered.
	EventDiscarded Event = "discarded"
	// EventDeliveryFailed: one delivery attempt failed.
	EventDeliveryFailed Event = "delivery_failed"
	// EventDropped: the job ended without any delivery (every delivery
	// attempt failed); its result was erased.
	EventDropped Event = "dropped"
)

// Observer is told about each event of a job (metrics). It must not block.
type Observer func(tool string, e Event)

// IdempotencyKey is the Idempotency-Key of a job's requests to the internal
// API: derived from the call and tool call ids, so the same on every attempt
// and after every restart, and opaque.
func IdempotencyKey(callID, toolCallID string) string {
	return tools.IdempotencyKey(callID, toolCallID)
}

// Backend is the database of the queue.
type Backend struct {
	// Driver is storage.DriverSQLite (jobs.db in DataDir) or
	// storage.DriverPostgres (PostgresURL; River's tables and this package's
	// in the URL's search_path schema).
	Driver      string
	DataDir     string
	PostgresURL string
}

// JobsFile is the SQLite database's file name in the data directory.
const JobsFile = "jobs.db"

// Defaults of Options.
const (
	DefaultWorkers         = 16
	DefaultRetention       = time.Minute
	DefaultDedupRetention  = 24 * time.Hour
	DefaultDeliveryTimeout = 10 * time.Second
	DefaultBackoffBase     = time.Second
	DefaultBackoffMax      = time.Minute
	DefaultPollInterval    = 500 * time.Millisecond
	// DeliveryAttempts are the attempts a job may still make, after the
	// last one its tool allows, to deliver its outcome.
	DeliveryAttempts = 5
	// rescueMargin is added to the longest job timeout for the default
	// RescueAfter.
	rescueMargin = 5 * time.Second
	// jobSlack bounds a job's own database work (beyond the tool's timeout
	// and the delivery timeout) in its River timeout.
	jobSlack = 5 * time.Second
)

// Options configure a Queue. Executor, Deliverer and Sealer are required.
type Options struct {
	// Tools are the tool entries (completed and validated); the async ones
	// can be enqueued, with their timeout, deadline and max_attempts.
	Tools     []tools.Config
	Executor  Executor
	Deliverer Deliverer
	Sealer    Sealer
	// Observer is told about each job event (nil: nobody).
	Observer Observer
	// Logger (nil: discard).
	Logger *slog.Logger

	// Workers is how many jobs run at once (default DefaultWorkers).
	Workers int
	// Retention is how long River keeps finished jobs (default
	// DefaultRetention): their args are sealed, but short is better.
	Retention time.Duration
	// DedupRetention is how long a job's emptied outcome row refuses the
	// same tool call again (default DefaultDedupRetention); more than the
	// longest tool deadline.
	DedupRetention time.Duration
	// DeliveryTimeout bounds one Deliver (default DefaultDeliveryTimeout).
	DeliveryTimeout time.Duration
	// RescueAfter is how long a job may be running before River takes it
	// for dead (its process killed) and runs it again; more than the
	// longest job timeout (a tool's timeout + DeliveryTimeout + 5 s), which
	// plus 5 s is the default.
	RescueAfter time.Duration
	// BackoffBase and BackoffMax shape the wait before attempt n+1:
	// BackoffBase·2^(n-1), at most BackoffMax (defaults 1 s and 1 min).
	BackoffBase, BackoffMax time.Duration
	// PollInterval is how often idle workers look for due jobs (default
	// DefaultPollInterval).
	PollInterval time.Duration
	// Now is the clock of deadlines (default time.Now).
	Now func() time.Time

	hooks testHooks
}

// testHooks let tests stop a job at a chosen point (a simulated crash).
type testHooks struct {
	// afterOutcome runs once the outcome is stored, before delivering;
	// true: the process "died" there (the job returns without delivering).
	afterOutcome func(ctx context.Context, j Job) (died bool)
	// riverTestOnly sets River's TestOnly (no start-up stagger).
	riverTestOnly bool
	// crashable lets crash cut a PostgreSQL queue off its database.
	crashable bool
}

// Errors.
var (
	// ErrNotAsync: Enqueue of a tool that is not configured async.
	ErrNotAsync = errors.New("asynctools: not an async tool")
	// ErrInvalidJob: Enqueue of a job without call id or tool call id.
	ErrInvalidJob = errors.New("asynctools: job needs a call id and a tool call id")
)

func (b Backend) validate() error {
	switch b.Driver {
	case storage.DriverSQLite, "":
		if b.DataDir == "" {
			return errors.New("asynctools: sqlite needs a data directory")
		}
	case storage.DriverPostgres:
		// Never echoed: it may hold a password.
		u, err := url.Parse(b.PostgresURL)
		if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
			return errors.New("asynctools: the postgres URL does not parse (want postgres://user[:password]@host:port/database?sslmode=...)")
		}
	default:
		return errors.New("asynctools: driver " + b.Driver + " is not sqlite or postgres")
	}
	return nil
}
