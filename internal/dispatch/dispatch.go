// Package dispatch provides the Vapi message dispatcher: given an
// authenticated, decoded message it keeps the call's session and persisted
// record up to date and builds Vapi's exact response for the message type.
package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/metrics"
	"github.com/voicegate/voicegate/internal/session"
	"github.com/voicegate/voicegate/internal/tools"
	"github.com/voicegate/voicegate/internal/vapi"
	"github.com/voicegate/voicegate/internal/webhook"
)

// Deadlines Vapi gives each message (assistant-request is fixed at 7.5 s
// end to end; voicegate answers within 6 s).
const AssistantRequestBudget = 6 * time.Second

var (
	emptyJSON = []byte("{}")
	respEmpty = webhook.Reply{Status: http.StatusOK, Body: emptyJSON}
)

// Dispatcher handles messages. All fields are required unless noted.
type Dispatcher struct {
	sessions  session.Tracker
	store     calls.Store
	tools     tools.Runner
	assistant *AssistantRouter
	transfer  []byte // precomputed transfer-destination-request answer
	log       *slog.Logger
	metrics   *metrics.Metrics
	now       func() time.Time
	// serverTimeout is Vapi's wait for tool answers.
	serverTimeout time.Duration
}

// Deps are the Dispatcher's collaborators.
type Deps struct {
	Sessions session.Tracker
	Store    calls.Store
	Tools    tools.Runner
	Log      *slog.Logger
	Metrics  *metrics.Metrics
	Now      func() time.Time
}

// New builds a Dispatcher for a validated configuration.
func New(cfg Config, d Deps) (*Dispatcher, error) {
	ar, err := NewAssistantRouter(cfg.AssistantRequest)
	if err != nil {
		return nil, err
	}
	tr, err := transferAnswer(cfg.TransferDestination)
	if err != nil {
		return nil, err
	}
	return &Dispatcher{sessions: d.Sessions, store: d.Store, tools: d.Tools, assistant: ar, transfer: tr,
		log: d.Log, metrics: d.Metrics, now: d.Now, serverTimeout: cfg.ServerTimeout}, nil
}

// Deadline returns how long Vapi waits for an answer to a message of type t.
func Deadline(t string, serverTimeout time.Duration) time.Duration {
	if t == vapi.TypeAssistantRequest {
		return AssistantRequestBudget
	}
	return serverTimeout
}

// Handle processes one message. Messages whose answer Vapi waits for run
// under its deadline for them, the database write of a first-seen call
// included; the others need no deadline of their own.
//
// A failure to store what Vapi sent is an error (503, so that Vapi
// retries): voicegate never answers 200 for something it did not keep.
func (d *Dispatcher) Handle(ctx context.Context, m *vapi.Message) (webhook.Reply, error) {
	switch m.Type {
	case vapi.TypeStatusUpdate:
		return d.statusUpdate(ctx, m)
	case vapi.TypeEndOfCallReport:
		return d.endOfCall(ctx, m)
	case vapi.TypeAssistantRequest, vapi.TypeToolCalls, vapi.TypeFunctionCall, vapi.TypeTransferDestination:
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, Deadline(m.Type, d.serverTimeout))
		defer cancel()
	}
	tracked := d.track(ctx, m, "")
	switch m.Type {
	case vapi.TypeAssistantRequest:
		return d.assistantRequest(ctx, m), nil
	case vapi.TypeToolCalls:
		return d.toolCalls(ctx, m)
	case vapi.TypeFunctionCall:
		return d.functionCall(ctx, m)
	case vapi.TypeTransferDestination:
		return webhook.Reply{Status: http.StatusOK, Body: d.transfer}, nil
	case vapi.TypeSpeechUpdate:
		if tracked {
			d.sessions.Speech(m.CallID(), m.Role, m.Status == "started", m.Turn)
		}
	case vapi.TypeUserInterrupted:
		if tracked {
			d.sessions.Interrupted(m.CallID())
		}
	}
	return respEmpty, nil
}

// track notes an event of the call (status, when not empty, becomes its
// status) and, on first sight, records the call. It reports whether the
// call is tracked.
func (d *Dispatcher) track(ctx context.Context, m *vapi.Message, status string) bool {
	var initial string
	if m.Call != nil {
		initial = m.Call.Status
	}
	id := m.CallID()
	if id == "" {
		return false
	}
	first, err := d.sessions.Observe(id, status, initial)
	switch {
	case errors.Is(err, session.ErrEnded):
		return false // a late event of an ended call: answered, not tracked
	case errors.Is(err, session.ErrFull):
		d.metrics.SessionsRejected.Inc()
		d.log.Warn("session table full; call not tracked", logkey.CallID, id)
		return false
	case err != nil:
		d.log.Error("track call", logkey.CallID, id, logkey.Err, err)
		return false
	}
	if first && !d.recordFirstSight(ctx, m) {
		d.sessions.Forget(id) // the next event tries again
	}
	return true
}

// recordFirstSight stores the metadata of a call seen for the first time.
// A failure is logged and counted, and reported so the caller can retry on
// a later event (an end write that follows still creates the row, only
// without the metadata).
func (d *Dispatcher) recordFirstSight(ctx context.Context, m *vapi.Message) bool {
	if err := d.store.CreateCall(ctx, recordOf(m, d.now())); err != nil {
		d.metrics.StoreErrors.WithLabelValues("create_call").Inc()
		d.log.Error("persist call", logkey.CallID, m.CallID(), logkey.Err, err)
		return false
	}
	return true
}

func recordOf(m *vapi.Message, now time.Time) calls.Record {
	c := m.Call
	r := calls.Record{ID: c.ID, OrgID: c.OrgID, Type: c.Type, PhoneNumberID: c.PhoneNumberID, AssistantID: c.AssistantID, Status: c.Status, CreatedAt: now}
	if r.PhoneNumberID == "" && m.PhoneNumber != nil {
		r.PhoneNumberID = m.PhoneNumber.ID
	}
	return r
}

func (d *Dispatcher) eventTime(m *vapi.Message) time.Time {
	if !m.Timestamp.IsZero() {
		return m.Timestamp.Time
	}
	return d.now()
}

// errNotStored is the answer when what Vapi sent could not be stored.
func errNotStored(id, op string, err error) error {
	return &webhook.Error{Status: http.StatusServiceUnavailable, Msg: "temporarily unavailable, retry",
		CallID: id, Err: fmt.Errorf("%s: %w", op, err)}
}

func (d *Dispatcher) statusUpdate(ctx context.Context, m *vapi.Message) (webhook.Reply, error) {
	id := m.CallID()
	if id == "" || m.Status == "" {
		return respEmpty, nil
	}
	at := d.eventTime(m)
	if m.Status != "ended" {
		d.track(ctx, m, m.Status)
	} else if !d.sessions.Seen(id) {
		d.recordFirstSight(ctx, m) // the first event of this call is its end
	}
	if err := d.store.RecordStatus(ctx, id, calls.StatusChange{Status: m.Status, At: at}); err != nil {
		d.metrics.StoreErrors.WithLabelValues("record_status").Inc()
		return webhook.Reply{}, errNotStored(id, "persist status", err)
	}
	if m.Status == "ended" {
		if err := d.store.EndCall(ctx, id, calls.End{Reason: m.EndedReason, At: at}); err != nil {
			d.metrics.StoreErrors.WithLabelValues("end_call").Inc()
			return webhook.Reply{}, errNotStored(id, "persist end", err)
		}
		d.sessions.End(id)
	}
	return respEmpty, nil
}

func (d *Dispatcher) endOfCall(ctx context.Context, m *vapi.Message) (webhook.Reply, error) {
	id := m.CallID()
	if id == "" {
		return respEmpty, nil
	}
	if !d.sessions.Seen(id) {
		d.recordFirstSight(ctx, m) // the report is the first event of this call
	}
	e := calls.End{Reason: m.EndedReason, Cost: m.Cost, At: d.eventTime(m)}
	if dur, ok := m.Duration(); ok {
		e.Duration = &dur
	}
	if err := d.store.EndCall(ctx, id, e); err != nil {
		d.metrics.StoreErrors.WithLabelValues("end_call").Inc()
		return webhook.Reply{}, errNotStored(id, "persist end of call", err)
	}
	d.sessions.End(id)
	return respEmpty, nil
}

func (d *Dispatcher) toolCalls(ctx context.Context, m *vapi.Message) (webhook.Reply, error) {
	invs := m.Invocations()
	res := d.tools.CallAll(ctx, tools.CallInfo{CallID: m.CallID()}, invs)
	return jsonResponse(vapi.ToolCallsResponse{Results: res})
}

func (d *Dispatcher) functionCall(ctx context.Context, m *vapi.Message) (webhook.Reply, error) {
	if m.FunctionCall == nil || m.FunctionCall.Name == "" {
		return jsonResponse(vapi.FunctionCallResponse{Result: "Error: the function call has no name."})
	}
	inv := vapi.Invocation{Name: m.FunctionCall.Name}
	inv.Args, inv.ArgsErr = vapi.NormalizeArgs(m.FunctionCall.Parameters)
	r := d.tools.Call(ctx, tools.CallInfo{CallID: m.CallID()}, inv)
	if r.Error != "" {
		return jsonResponse(vapi.FunctionCallResponse{Result: r.Error})
	}
	return jsonResponse(vapi.FunctionCallResponse{Result: r.Result})
}

func (d *Dispatcher) assistantRequest(ctx context.Context, m *vapi.Message) webhook.Reply {
	return webhook.Reply{Status: http.StatusOK, Body: d.assistant.Answer(m)}
}

func jsonResponse(v any) (webhook.Reply, error) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only plain strings and raw JSON validated at start-up are
		// marshalled: the gateway answers 500.
		return webhook.Reply{}, fmt.Errorf("encode answer: %w", err)
	}
	return webhook.Reply{Status: http.StatusOK, Body: b}, nil
}

func transferAnswer(t *TransferConfig) ([]byte, error) {
	if t == nil {
		return json.Marshal(vapi.TransferResponse{Error: "Sorry, I cannot transfer this call right now."})
	}
	dest, err := json.Marshal(t.Destination)
	if err != nil {
		return nil, err
	}
	r := vapi.TransferResponse{Destination: dest}
	if t.Message != "" {
		r.Message = &vapi.TransferMessage{Type: "request-start", Message: t.Message, Content: t.Message}
	}
	return json.Marshal(r)
}
