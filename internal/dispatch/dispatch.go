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
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/bargein"
	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/endpointing"
	"github.com/voicegate/voicegate/internal/knowledge"
	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/metrics"
	"github.com/voicegate/voicegate/internal/pii"
	"github.com/voicegate/voicegate/internal/predial"
	"github.com/voicegate/voicegate/internal/records"
	"github.com/voicegate/voicegate/internal/session"
	"github.com/voicegate/voicegate/internal/state"
	"github.com/voicegate/voicegate/internal/tools"
	"github.com/voicegate/voicegate/internal/twilio"
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
	records   *records.Writer
	tools     tools.Runner
	assistant *AssistantRouter
	routerAPI *assistantAPI
	endpoint  *endpointing.Chooser
	handoffs  *handoffRouter
	transfer  []byte // precomputed transfer-destination-request answer
	log       *slog.Logger
	metrics   *metrics.Metrics
	now       func() time.Time
	// serverTimeout is Vapi's wait for tool answers.
	serverTimeout time.Duration
	allowDryRun   bool
	// bargein is the barge-in engine (nil: off); control acts on its
	// decisions (nil: observe only).
	bargein   *bargein.Engine
	control   Controller
	decisions decisionCounters
	events    *calls.EventWriter
	audit     func(event, subject, detail string)
	predial   *predial.Rules
	callerKey func(string) string
	phone     PhoneController
	knowledge *knowledge.Searcher
	// localSideEffects: Config.LocalSideEffects.
	localSideEffects bool
	memo             ResultMemo
}

// Deps are the Dispatcher's collaborators.
type Deps struct {
	Sessions session.Tracker
	Store    calls.Store
	// Records keeps the protected call records (nil: none are kept).
	Records *records.Writer
	Tools   tools.Runner
	Log     *slog.Logger
	Metrics *metrics.Metrics
	Now     func() time.Time
	// Bargein is the barge-in engine (nil: off).
	Bargein *bargein.Engine
	// Control runs barge-in actions on live calls (nil: observe only).
	Control Controller
	// Events writes the calls' timeline events.
	Events *calls.EventWriter
	// Audit appends to the tamper-evident audit log (nil: none).
	Audit func(event, subject, detail string)
	// Phone executes phone-call-control (nil: not configured).
	Phone PhoneController
	// Knowledge answers knowledge-base-request (nil: no documents).
	Knowledge *knowledge.Searcher
	// ObserveTool counts the assistant router API's calls (nil: not).
	ObserveTool tools.Observer
	// Predial decides campaign.predial (nil: always eligible).
	Predial *predial.Rules
	// CallerHash names a number in the audit log without the number
	// (nil: not named).
	CallerHash func(number string) string
	// Memo keeps tool results a redelivery reuses (nil: none kept).
	Memo ResultMemo
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
	ep, err := endpointing.New(cfg.Endpointing)
	if err != nil {
		return nil, err
	}
	ho, err := newHandoffRouter(cfg.Handoff)
	if err != nil {
		return nil, err
	}
	api, err := newAssistantAPI(cfg.AssistantRequest.Router, d.Log, d.ObserveTool)
	if err != nil {
		return nil, err
	}
	return &Dispatcher{sessions: d.Sessions, store: d.Store, records: d.Records, tools: d.Tools, assistant: ar, routerAPI: api, endpoint: ep, handoffs: ho, transfer: tr,
		log: d.Log, metrics: d.Metrics, now: d.Now, serverTimeout: cfg.ServerTimeout, allowDryRun: cfg.DryRun, localSideEffects: cfg.LocalSideEffects, memo: d.Memo,
		bargein: d.Bargein, control: d.Control, decisions: newDecisionCounters(d.Metrics), events: d.Events, audit: d.Audit, predial: d.Predial, callerKey: d.CallerHash, phone: d.Phone, knowledge: d.Knowledge}, nil
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
	for _, f := range m.Dropped {
		// A field of an unexpected type or format: left out, the message
		// used without it (field names come from the schema: bounded).
		d.metrics.DroppedFields.WithLabelValues(vapi.MetricType(m.Type), f).Inc()
		d.log.Debug("malformed optional field dropped", logkey.Type, vapi.MetricType(m.Type), logkey.CallID, m.CallID(), logkey.Field, f)
	}
	if m.DryRun {
		return d.dryRun(ctx, m)
	}
	if state.IsLocal(ctx) {
		if err := d.checkLocal(m); err != nil {
			return webhook.Reply{}, err
		}
	}
	switch m.Type {
	case vapi.TypeStatusUpdate:
		return d.statusUpdate(ctx, m)
	case vapi.TypeEndOfCallReport:
		return d.endOfCall(ctx, m)
	case vapi.TypeCallDeleted:
		return d.callDeleted(ctx, m)
	case vapi.TypeCampaignPredial:
		return d.campaignPredial(ctx, m)
	case vapi.TypePhoneCallControl:
		ctx, cancel := context.WithTimeout(ctx, d.serverTimeout)
		defer cancel()
		return d.phoneCallControl(ctx, m)
	case "chat.created", "chat.deleted", "session.created", "session.updated", "session.deleted":
		d.chatEvent(m)
		return respEmpty, nil
	case vapi.TypeAssistantRequest, vapi.TypeToolCalls, vapi.TypeFunctionCall, vapi.TypeTransferDestination, vapi.TypeKnowledgeBase:
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, Deadline(m.Type, d.serverTimeout))
		defer cancel()
	}
	if m.Type == vapi.TypeAssistantRequest {
		// Routed first, so that the call is recorded with its assistant.
		answer, dec := d.routeAssistant(ctx, m)
		d.track(ctx, m, "", &dec)
		return webhook.Reply{Status: http.StatusOK, Body: answer}, nil
	}
	tracked := d.track(ctx, m, "", nil)
	ci := tools.CallInfo{CallID: m.CallID()}
	if m.Call != nil && m.Call.Monitor != nil {
		ci.ControlURL = m.Call.Monitor.ControlURL // an async tool's result goes there
	}
	switch m.Type {
	case vapi.TypeToolCalls:
		return d.toolCalls(ctx, ci, m, tracked)
	case vapi.TypeFunctionCall:
		return d.functionCall(ctx, ci, m, tracked)
	case vapi.TypeTransferDestination:
		return webhook.Reply{Status: http.StatusOK, Body: d.transfer}, nil
	case vapi.TypeEndpointing:
		return d.endpointing(m)
	case vapi.TypeHandoffDestination:
		return d.handoff(m)
	case vapi.TypeKnowledgeBase:
		return d.knowledgeBase(ctx, m)
	}
	if m.Type == vapi.TypeHang {
		d.hang(ctx, m) // counted even for a call not tracked
	}
	if !tracked {
		return respEmpty, nil
	}
	switch m.Type {
	case vapi.TypeSpeechUpdate:
		d.sessions.Speech(ctx, m.CallID(), m.Role, m.Status == "started", m.Turn)
		if d.bargein != nil {
			d.bargeIn(ctx, m)
		}
	case vapi.TypeTranscript, vapi.TypeTranscriptFinal:
		if d.bargein != nil {
			d.bargeIn(ctx, m)
		}
	case vapi.TypeUserInterrupted:
		// Vapi's own view: recorded, never a decision of the engine.
		d.sessions.Interrupted(ctx, m.CallID())
		d.addEvent(ctx, m.CallID(), calls.Event{At: d.eventTime(m), Kind: EventVapi, Detail: "user-interrupted"})
	case vapi.TypeLanguageChange:
		if d.bargein != nil {
			d.languageChange(ctx, m)
		}
	}
	return respEmpty, nil
}

// dryRunHeader marks an answer given without side effects.
var dryRunHeader = http.Header{"X-Voicegate-Dry-Run": {"true"}}

// dryRun answers a message marked by voicegate simulate as a real one
// would be answered — routing, tool lookup and argument validation
// included — without tracking the call, storing anything or calling an
// internal API.
func (d *Dispatcher) dryRun(ctx context.Context, m *vapi.Message) (webhook.Reply, error) {
	if !d.allowDryRun {
		return webhook.Reply{}, &webhook.Error{Status: http.StatusForbidden, Msg: "dry runs are disabled on this server (vapi.dry_run: false)"}
	}
	// A dry run leaves no call record: its trace is this line.
	d.log.Info("dry run", logkey.Type, vapi.MetricType(m.Type), logkey.CallID, m.CallID())
	reply, err := respEmpty, error(nil)
	ci := tools.CallInfo{CallID: m.CallID(), DryRun: true}
	switch m.Type {
	case vapi.TypeAssistantRequest:
		answer, dec := d.assistant.Answer(m)
		d.log.Info("dry run: assistant chosen", logkey.CallID, m.CallID(), logkey.Assistant, dec.Assistant, logkey.Rule, dec.Rule)
		reply = webhook.Reply{Status: http.StatusOK, Body: answer}
	case vapi.TypeToolCalls:
		reply, err = d.toolCalls(ctx, ci, m, false)
	case vapi.TypeFunctionCall:
		reply, err = d.functionCall(ctx, ci, m, false)
	case vapi.TypeTransferDestination:
		reply = webhook.Reply{Status: http.StatusOK, Body: d.transfer}
	case vapi.TypeEndpointing:
		reply, err = d.endpointing(m)
	case vapi.TypeHandoffDestination:
		reply, err = d.handoff(m)
	case vapi.TypeCampaignPredial:
		reply, err = d.campaignPredialDecision(ctx, m, true)
	}
	reply.Header = dryRunHeader
	return reply, err
}

// track notes an event of the call (status, when not empty, becomes its
// status) and, on first sight, records the call — with the assistant the
// routing chose, when dec is set — and logs its start. It reports whether
// the call is tracked.
func (d *Dispatcher) track(ctx context.Context, m *vapi.Message, status string, dec *Decision) bool {
	var initial string
	if m.Call != nil {
		initial = m.Call.Status
	}
	id := m.CallID()
	if id == "" {
		return false
	}
	first, err := d.sessions.Observe(ctx, id, status, initial)
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
	if first {
		if !d.recordFirstSight(ctx, m, dec) {
			d.sessions.Forget(ctx, id) // the next event tries again (and logs the start then)
			return true
		}
		d.logStart(m, dec)
	}
	return true
}

// logStart writes the call's first line: its kind, number and assistant —
// the one routing chose (and by which rule), or the one Vapi set.
func (d *Dispatcher) logStart(m *vapi.Message, dec *Decision) {
	r := recordOf(m, time.Time{}, dec)
	rule := "set by Vapi"
	if dec != nil {
		rule = dec.Rule
	}
	d.log.Info("call started", logkey.CallID, r.ID, logkey.CallType, r.Type, logkey.PhoneNumberID, r.PhoneNumberID,
		logkey.Assistant, r.AssistantID, logkey.Rule, rule)
}

// ended notes that call id ended: the session ends, and the call's last
// line is logged — once, by whichever of the status update and the report
// ends a live call, or by the report of a call never seen before.
func (d *Dispatcher) ended(ctx context.Context, m *vapi.Message, id string, neverSeen bool) {
	last, live := d.sessions.End(ctx, id)
	if !live && !neverSeen {
		return
	}
	attrs := []any{logkey.CallID, id, logkey.EndedReason, m.EndedReason}
	if dur, ok := m.Duration(); ok {
		attrs = append(attrs, logkey.DurationS, dur)
	} else if live {
		attrs = append(attrs, logkey.DurationS, d.now().Sub(last.Started).Round(time.Millisecond).Seconds())
	}
	attrs = append(attrs, logkey.ToolCalls, toolCounts(last.ToolCalls), logkey.Interruptions, last.Interruptions)
	d.log.Info("call ended", attrs...)
}

// ExpiredReason is the ended_reason of a call whose session expired: no
// end event came within sessions.ttl (a lost report, or a status update
// that was never sent).
const ExpiredReason = "expired: no end event within sessions.ttl"

// LogExpired writes the last line of a call whose session expired, so
// that every call that started also ends in the log.
func LogExpired(log *slog.Logger, id string, last session.State, now time.Time) {
	log.Info("call ended", logkey.CallID, id, logkey.EndedReason, ExpiredReason,
		logkey.DurationS, now.Sub(last.Started).Round(time.Millisecond).Seconds(),
		logkey.ToolCalls, toolCounts(last.ToolCalls), logkey.Interruptions, last.Interruptions)
}

// toolCounts renders tool calls by outcome as "ok=2 http_error=1", in a
// fixed order; "none" when there were none.
func toolCounts(c map[string]int) string {
	if len(c) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", k, c[k])
	}
	return b.String()
}

// recordFirstSight stores the metadata of a call seen for the first time.
// A failure is logged and counted, and reported so the caller can retry on
// a later event (an end write that follows still creates the row, only
// without the metadata).
func (d *Dispatcher) recordFirstSight(ctx context.Context, m *vapi.Message, dec *Decision) bool {
	if d.records != nil {
		d.records.Prepare(m.CallID()) // its records' secret, off this request's path
	}
	if err := d.store.CreateCall(ctx, recordOf(m, d.now(), dec)); err != nil {
		d.metrics.StoreErrors.WithLabelValues("create_call").Inc()
		d.log.Error("persist call", logkey.CallID, m.CallID(), logkey.Err, err)
		return false
	}
	return true
}

func recordOf(m *vapi.Message, now time.Time, dec *Decision) calls.Record {
	c := m.Call
	r := calls.Record{ID: c.ID, OrgID: c.OrgID, Type: c.Type, PhoneNumberID: c.PhoneNumberID, AssistantID: c.AssistantID, Status: c.Status, CreatedAt: now}
	if r.PhoneNumberID == "" && m.PhoneNumber != nil {
		r.PhoneNumberID = m.PhoneNumber.ID
	}
	if dec != nil && dec.Assistant != "" {
		r.AssistantID = dec.Assistant
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
	neverSeen := false
	if m.Status != "ended" {
		d.track(ctx, m, m.Status, nil)
	} else if neverSeen = !d.sessions.Seen(ctx, id); neverSeen {
		d.recordFirstSight(ctx, m, nil) // the first event of this call is its end
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
		d.ended(ctx, m, id, neverSeen)
	}
	return respEmpty, nil
}

func (d *Dispatcher) endOfCall(ctx context.Context, m *vapi.Message) (webhook.Reply, error) {
	id := m.CallID()
	if id == "" {
		return respEmpty, nil
	}
	// The protected record first: if it cannot be written the report is
	// answered 503, and its redelivery (if Vapi's backoffPlan retries)
	// writes it once.
	if d.records != nil {
		raw, err := vapi.RawMessage(m.Body)
		if err == nil {
			err = d.records.EndOfCall(ctx, records.Call{ID: id, Caller: m.CustomerNumber()}, raw)
		}
		if err != nil {
			d.metrics.StoreErrors.WithLabelValues("put_record").Inc()
			return webhook.Reply{}, errNotStored(id, "persist end-of-call record", err)
		}
	}
	neverSeen := !d.sessions.Seen(ctx, id)
	if neverSeen {
		d.recordFirstSight(ctx, m, nil) // the report is the first event of this call
	}
	e := calls.End{Reason: m.EndedReason, At: d.eventTime(m)}
	if cost, ok := m.TotalCost(); ok {
		e.Cost = &cost
	}
	if dur, ok := m.Duration(); ok {
		e.Duration = &dur
	}
	if err := d.store.EndCall(ctx, id, e); err != nil {
		d.metrics.StoreErrors.WithLabelValues("end_call").Inc()
		return webhook.Reply{}, errNotStored(id, "persist end of call", err)
	}
	d.reportEvent(ctx, id, m)
	d.ended(ctx, m, id, neverSeen)
	return respEmpty, nil
}

// maxEvaluation bounds a success evaluation kept as metadata.
const maxEvaluation = 32

// reportEvent keeps in the call's timeline what its end-of-call report
// tells that is not personal data: the success evaluation — a rubric's
// verdict ("true", "8", "Excellent"); one longer than maxEvaluation, on
// several lines or holding a number, address or date the PII scanner
// finds is only noted, since a custom rubric may write prose about the
// caller — and the kind of recording consent. The summary, structured
// data, transcript and recording URLs stay in the sealed record.
func (d *Dispatcher) reportEvent(ctx context.Context, id string, m *vapi.Message) {
	var parts []string
	if ev := strings.TrimSpace(m.SuccessEvaluation()); ev != "" {
		if len(ev) > maxEvaluation || strings.ContainsAny(ev, "\r\n") || len(pii.Find(ev)) > 0 {
			parts = append(parts, "successEvaluation=(in the sealed record)")
		} else {
			parts = append(parts, "successEvaluation="+strconv.Quote(clip(ev, maxEvaluation)))
		}
	}
	if rc := m.RecordingConsent(); rc != nil && rc.Type != "" {
		parts = append(parts, "recordingConsent="+strconv.Quote(clip(rc.Type, 32)))
	}
	if len(parts) > 0 && d.events != nil {
		d.addEvent(ctx, id, calls.Event{At: d.eventTime(m), Kind: EventVapi, Detail: "end-of-call-report " + strings.Join(parts, " ")})
	}
}

// toolCalls runs the message's tool calls; a tracked call counts them by
// outcome for its end line.
func (d *Dispatcher) toolCalls(ctx context.Context, ci tools.CallInfo, m *vapi.Message, tracked bool) (webhook.Reply, error) {
	invs := m.Invocations()
	if tracked {
		d.inFlight(ctx, ci.CallID, invs, 1)
	}
	res := d.callAll(ctx, ci, invs)
	if tracked {
		d.inFlight(ctx, ci.CallID, invs, -1)
		for i := range res {
			d.sessions.ToolCall(ctx, ci.CallID, res[i].Outcome)
		}
	}
	if err := notQueued(ci.CallID, res); err != nil {
		return webhook.Reply{}, err
	}
	if err := d.recordTools(ctx, ci, m, invs, res); err != nil {
		d.keep(ctx, ci, res)
		return webhook.Reply{}, err
	}
	return jsonResponse(vapi.ToolCallsResponse{Results: res})
}

// callAll runs invs, except those whose result the memo kept from an
// earlier delivery that could not be answered.
func (d *Dispatcher) callAll(ctx context.Context, ci tools.CallInfo, invs []vapi.Invocation) []vapi.ToolResult {
	if d.memo == nil || ci.DryRun || ci.CallID == "" {
		return d.tools.CallAll(ctx, ci, invs)
	}
	ids := make([]string, 0, len(invs))
	for _, inv := range invs {
		if inv.ID != "" {
			ids = append(ids, inv.ID)
		}
	}
	kept, err := d.memo.Recall(ctx, ci.CallID, ids)
	if err != nil {
		// Not known: the tools run (their Idempotency-Key lets the
		// internal API recognise a repeat).
		d.log.Warn("tool results memo unreachable", logkey.CallID, ci.CallID, logkey.Err, err)
	}
	if len(kept) == 0 {
		return d.tools.CallAll(ctx, ci, invs)
	}
	res := make([]vapi.ToolResult, len(invs))
	var run []vapi.Invocation
	var at []int
	for i, inv := range invs {
		if r, ok := kept[inv.ID]; ok && inv.ID != "" {
			res[i] = r
			continue
		}
		run, at = append(run, inv), append(at, i)
	}
	d.log.Info("tool results reused from an unanswered delivery", logkey.CallID, ci.CallID, logkey.Count, len(invs)-len(run))
	if len(run) > 0 {
		for j, r := range d.tools.CallAll(ctx, ci, run) {
			res[at[j]] = r
		}
	}
	return res
}

// keep lets the redelivery of a tool-calls message that could not be
// answered reuse what the internal APIs already did.
func (d *Dispatcher) keep(ctx context.Context, ci tools.CallInfo, res []vapi.ToolResult) {
	if d.memo == nil || ci.DryRun || ci.CallID == "" {
		return
	}
	if err := d.memo.Keep(ctx, ci.CallID, res); err != nil {
		d.log.Warn("tool results memo unreachable: a redelivery calls the tools again", logkey.CallID, ci.CallID, logkey.Err, err)
	}
}

// recordTools keeps a protected record of each tool invocation, before the
// answer: a record that cannot be written is a 503 (the tools' internal
// APIs see the redelivery's X-Voicegate-Tool-Call-Id again). A dry run
// keeps none.
func (d *Dispatcher) recordTools(ctx context.Context, ci tools.CallInfo, m *vapi.Message, invs []vapi.Invocation, res []vapi.ToolResult) error {
	if d.records == nil || ci.DryRun || ci.CallID == "" {
		return nil
	}
	call := records.Call{ID: ci.CallID, Caller: m.CustomerNumber()}
	for i := range res {
		tc := records.ToolCall{ToolCallID: res[i].ToolCallID, Tool: res[i].Name, Result: res[i].Result, Error: res[i].Error,
			Outcome: res[i].Outcome, DurationMS: float64(res[i].Duration.Microseconds()) / 1000}
		if i < len(invs) {
			tc.Arguments = invs[i].Args
		}
		if tc.ToolCallID == "" {
			tc.ToolCallID = d.invocationKey(m, i, tc)
		}
		if err := d.records.ToolCall(ctx, call, tc); err != nil {
			d.metrics.StoreErrors.WithLabelValues("put_record").Inc()
			return errNotStored(ci.CallID, "persist tool record", err)
		}
	}
	return nil
}

func (d *Dispatcher) functionCall(ctx context.Context, ci tools.CallInfo, m *vapi.Message, tracked bool) (webhook.Reply, error) {
	if m.FunctionCall == nil || m.FunctionCall.Name == "" {
		return jsonResponse(vapi.FunctionCallResponse{Result: "Error: the function call has no name."})
	}
	inv := vapi.Invocation{Name: m.FunctionCall.Name}
	inv.Args, inv.ArgsErr = vapi.NormalizeArgs(m.FunctionCall.Parameters)
	if tracked {
		d.inFlight(ctx, ci.CallID, []vapi.Invocation{inv}, 1)
	}
	r := d.tools.Call(ctx, ci, inv)
	if tracked {
		d.inFlight(ctx, ci.CallID, []vapi.Invocation{inv}, -1)
		d.sessions.ToolCall(ctx, ci.CallID, r.Outcome)
	}
	if err := notQueued(ci.CallID, []vapi.ToolResult{r}); err != nil {
		return webhook.Reply{}, err
	}
	if err := d.recordTools(ctx, ci, m, []vapi.Invocation{inv}, []vapi.ToolResult{r}); err != nil {
		return webhook.Reply{}, err
	}
	if r.Error != "" {
		return jsonResponse(vapi.FunctionCallResponse{Result: r.Error})
	}
	return jsonResponse(vapi.FunctionCallResponse{Result: r.Result})
}

// callDeleted erases what voicegate keeps of a call Vapi deleted: its
// records are crypto-shredded (the call's secret destroyed, as records
// purge does; its queued async jobs can no longer open their arguments)
// and the call stops being tracked. The call's metadata and timeline hold
// no personal data and stay. A purge that fails is a 503, so that Vapi
// sends the message again.
func (d *Dispatcher) callDeleted(ctx context.Context, m *vapi.Message) (webhook.Reply, error) {
	id := m.CallID()
	if id == "" {
		return respEmpty, nil
	}
	d.sessions.End(ctx, id)
	if d.records == nil {
		return respEmpty, nil
	}
	if d.audit != nil {
		d.audit("records.purge", id, "call.deleted by Vapi: destroying the call's record keys")
	}
	n, err := d.records.Purge(ctx, id)
	if err != nil {
		d.metrics.StoreErrors.WithLabelValues("purge_call").Inc()
		return webhook.Reply{}, errNotStored(id, "erase deleted call", err)
	}
	d.log.Info("call deleted by Vapi: records erased", logkey.CallID, id, logkey.Count, n)
	return respEmpty, nil
}

// knowledgeBase answers knowledge-base-request with the documents of the
// knowledge base of the call's assistant ({"documents": []} without one,
// or when its search fails: the assistant goes on without them).
func (d *Dispatcher) knowledgeBase(ctx context.Context, m *vapi.Message) (webhook.Reply, error) {
	resp := knowledge.Response{Documents: []knowledge.Document{}}
	if d.knowledge != nil {
		var assistant string
		if m.Call != nil {
			assistant = m.Call.AssistantID
		}
		resp = d.knowledge.Answer(ctx, m.CallID(), assistant, vapi.OpenAIMessages(m.Body))
	}
	return jsonResponse(resp)
}

// routeAssistant answers assistant-request: the router API when one is
// configured and answers usably, else the static routes.
func (d *Dispatcher) routeAssistant(ctx context.Context, m *vapi.Message) ([]byte, Decision) {
	if d.routerAPI != nil {
		if b, dec, ok := d.routerAPI.answer(ctx, m); ok {
			return b, dec
		}
	}
	return d.assistant.Answer(m)
}

// PhoneController acts on a phone call at its carrier (twilio.REST).
type PhoneController interface {
	Forward(ctx context.Context, sid, twiml string) error
	HangUp(ctx context.Context, sid string) error
}

// phoneCallControl executes what Vapi delegated (with phone-call-control
// enabled Vapi no longer transfers or hangs up itself): forward the call
// to the destination, or hang up, through the carrier's API. A carrier
// that fails is a 503, so that Vapi sends the message again; a request
// that cannot be executed (no carrier call id, an unusable destination)
// is logged and answered, since a retry would fail the same way.
func (d *Dispatcher) phoneCallControl(ctx context.Context, m *vapi.Message) (webhook.Reply, error) {
	id := m.CallID()
	notDone := func(why string) (webhook.Reply, error) {
		// Not executed, and a retry would not change that: answered, and
		// audited (the caller was neither forwarded nor hung up).
		d.log.Warn("phone-call-control not executed", logkey.CallID, id, logkey.Request, clip(m.Request, 32), logkey.Reason, why)
		if d.audit != nil {
			d.audit("phone-call-control", id, clip(m.Request, 32)+": not executed: "+why)
		}
		return respEmpty, nil
	}
	if d.phone == nil {
		return notDone("vapi.phone_call_control is not configured")
	}
	var sid string
	if m.Call != nil && (m.Call.PhoneCallProvider == "" || m.Call.PhoneCallProvider == "twilio") && twilio.IsCallSid(m.Call.PhoneCallProviderID) {
		sid = m.Call.PhoneCallProviderID
	}
	var err error
	what := m.Request
	switch m.Request {
	case "forward":
		var twiml string
		if twiml, err = twilio.ForwardTwiML(m.Destination); err != nil {
			return notDone(err.Error())
		}
		what = "forward to a " + destinationType(m.Destination)
		if sid != "" {
			err = d.phone.Forward(ctx, sid, twiml)
		}
	case "hang-up":
		if sid != "" {
			err = d.phone.HangUp(ctx, sid)
		}
	default:
		return notDone("unknown request")
	}
	if sid == "" {
		return notDone("the call has no Twilio call id")
	}
	var perm *twilio.PermanentError
	if errors.As(err, &perm) {
		return notDone(err.Error()) // Twilio refused it (the call is over): a retry would be refused too
	}
	outcome := "ok"
	if err != nil {
		outcome = "failed: " + err.Error()
	}
	if d.audit != nil {
		d.audit("phone-call-control", id, what+": "+outcome)
	}
	if err != nil {
		return webhook.Reply{}, &webhook.Error{Status: http.StatusServiceUnavailable, Msg: "temporarily unavailable, retry", CallID: id, Err: err}
	}
	d.log.Info("phone-call-control executed", logkey.CallID, id, logkey.Request, m.Request)
	return respEmpty, nil
}

func destinationType(raw json.RawMessage) string {
	var d struct {
		Type string `json:"type"`
	}
	json.Unmarshal(raw, &d)
	return clip(d.Type, 16)
}

// campaignPredial answers campaign.predial with {"eligible": bool}: the
// configured rules' decision (eligible when none refuses), audited with
// the rule and the number's keyed hash (never the number).
// When the day's attempts cannot be counted (the database is down) it
// answers 503, never an eligibility it could not check: Vapi records a
// pre-dial failure and the call is not placed.
func (d *Dispatcher) campaignPredial(ctx context.Context, m *vapi.Message) (webhook.Reply, error) {
	return d.campaignPredialDecision(ctx, m, false)
}

// campaignPredialDecision decides; a dry run (peek) counts no attempt and
// is not audited.
func (d *Dispatcher) campaignPredialDecision(ctx context.Context, m *vapi.Message, peek bool) (webhook.Reply, error) {
	dec := predial.Decision{Eligible: true, Rule: "none", Detail: "no rules configured"}
	var c predial.Contact
	if m.Contact != nil {
		c = predial.Contact{Number: m.Contact.Number, TimeZone: m.Contact.TimeZone}
	}
	switch {
	case d.predial != nil && peek:
		dec = d.predial.Peek(c)
	case d.predial != nil:
		var err error
		if dec, err = d.predial.Decide(ctx, c); err != nil {
			d.metrics.StoreErrors.WithLabelValues("predial_attempt").Inc()
			return webhook.Reply{}, errNotStored(m.CallID(), "campaign pre-dial", err)
		}
	}
	if d.audit != nil && !peek {
		subject := ""
		if d.callerKey != nil && c.Number != "" {
			subject = d.callerKey(c.Number)
		}
		d.audit("campaign.predial", subject, fmt.Sprintf("campaign %s: eligible=%t by rule %s (%s)", m.CampaignID, dec.Eligible, dec.Rule, dec.Detail))
	}
	d.log.Info("campaign pre-dial", logkey.Rule, dec.Rule, logkey.Outcome, strconv.FormatBool(dec.Eligible))
	return jsonResponse(vapi.PredialResponse{Eligible: dec.Eligible})
}

// chatEvent records a chat or session event in the timeline of the chat
// ("chat:ID") or session ("session:ID") — ids and status only, never text
// — so that voicegate calls show lists it like a call's.
func (d *Dispatcher) chatEvent(m *vapi.Message) {
	kind, ref := "chat", m.Chat
	if strings.HasPrefix(m.Type, "session.") {
		kind, ref = "session", m.Session
	}
	if ref == nil || ref.ID == "" || d.events == nil {
		return
	}
	detail := m.Type
	for _, kv := range [][2]string{{"assistant", ref.AssistantID}, {"session", ref.SessionID}, {"status", ref.Status}} {
		if kv[1] != "" {
			detail += " " + kv[0] + "=" + clip(kv[1], 64)
		}
	}
	d.addEvent(context.Background(), kind+":"+clip(ref.ID, 128), calls.Event{At: d.eventTime(m), Kind: kind, Detail: detail})
}

// clip keeps the first max bytes of s, control characters replaced.
func clip(s string, max int) string {
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "")
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// endpointing answers call.endpointing.request: {"timeoutSeconds": n},
// chosen from what the assistant last asked (always answered: the default
// when no rule matches or the conversation cannot be read).
func (d *Dispatcher) endpointing(m *vapi.Message) (webhook.Reply, error) {
	var assistant string
	if m.Call != nil {
		assistant = m.Call.AssistantID
	}
	secs, rule := d.endpoint.Choose(assistant, vapi.OpenAIMessages(m.Body))
	d.log.Debug("endpointing", logkey.CallID, m.CallID(), logkey.Rule, rule, logkey.TimeoutMS, secs*1000)
	return jsonResponse(vapi.EndpointingResponse{TimeoutSeconds: secs})
}

// notQueued is the answer when an async tool's call could not be queued:
// a 503, so that Vapi sends the message again (the calls already queued
// are not queued twice).
func notQueued(id string, res []vapi.ToolResult) error {
	for i := range res {
		if res[i].Outcome == string(tools.OutcomeQueueError) {
			return errNotStored(id, "queue async tool call", errors.New(res[i].Name+": the queue's database failed"))
		}
	}
	return nil
}

// inFlight counts a call's tool calls under way (delta 1 when they
// start, -1 when they end), for the log line of a hang.
func (d *Dispatcher) inFlight(ctx context.Context, id string, invs []vapi.Invocation, delta int) {
	d.sessions.Update(ctx, id, func(s *session.State) {
		for i := range invs {
			name := invs[i].Name
			if len(name) > 64 {
				name = name[:64]
			}
			if s.InFlight == nil {
				s.InFlight = make(map[string]int, 2)
			}
			if s.InFlight[name] += delta; s.InFlight[name] <= 0 {
				delete(s.InFlight, name)
			}
		}
	})
}

// hang logs Vapi's hang message (the assistant stalled) with the tool
// calls of the call under way, and counts it.
func (d *Dispatcher) hang(ctx context.Context, m *vapi.Message) {
	d.metrics.Hangs.Inc()
	inFlight := "none"
	d.sessions.Update(ctx, m.CallID(), func(s *session.State) { inFlight = toolCounts(s.InFlight) })
	d.log.Warn("hang: the assistant stalled", logkey.CallID, m.CallID(), logkey.ToolsInFlight, inFlight)
}

// invocationKey identifies an invocation that has no tool call id (a
// legacy function call) for its record: a redelivery of the message
// carries the same timestamp, name and arguments, so it is recorded once.
// The key is keyed-hashed (its arguments are personal data). Without a
// timestamp there is nothing stable to go by: a random key.
func (d *Dispatcher) invocationKey(m *vapi.Message, i int, tc records.ToolCall) string {
	if m.Timestamp.IsZero() {
		return fmt.Sprintf("%s#%d", records.NewID(), i)
	}
	return d.records.DedupKey("message", strconv.FormatInt(m.Timestamp.UnixMilli(), 10), strconv.Itoa(i), tc.Tool, string(tc.Arguments))
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

// StateRetryAfter is the Retry-After, in seconds, of a message refused
// because the shared state was unreachable (the probe finds Redis back
// within a second of its return).
const StateRetryAfter = 2

// sideEffects reports whether a message of type t changes something
// outside voicegate's own bookkeeping (an internal API, a stored record,
// a count, a call, an erasure): a second execution would be visible.
func sideEffects(t string) bool {
	switch t {
	case vapi.TypeToolCalls, vapi.TypeFunctionCall, vapi.TypeEndOfCallReport, vapi.TypeCampaignPredial,
		vapi.TypePhoneCallControl, vapi.TypeCallDeleted:
		return true
	}
	return false
}

// checkLocal decides a message checked against this replica's memory
// only (Redis unreachable): one without side effects is handled; one with
// side effects is refused with 503 and Retry-After, so that Vapi retries
// it once Redis is back, unless state.on_unavailable is local.
func (d *Dispatcher) checkLocal(m *vapi.Message) error {
	if !sideEffects(m.Type) || d.localSideEffects {
		d.metrics.StateLocal.WithLabelValues("handled").Inc()
		return nil
	}
	d.metrics.StateLocal.WithLabelValues("refused").Inc()
	return &webhook.Error{Status: http.StatusServiceUnavailable, Msg: "shared state unavailable, retry", RetryAfter: StateRetryAfter,
		Err: errors.New("redis unreachable: a message with side effects is not handled on one replica's memory (state.on_unavailable: refuse)")}
}
