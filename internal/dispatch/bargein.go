package dispatch

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/voicegate/voicegate/internal/bargein"
	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/metrics"
	"github.com/voicegate/voicegate/internal/session"
	"github.com/voicegate/voicegate/internal/vapi"
)

// Controller acts on live calls through Live Call Control (internal/actions
// provides it).
type Controller interface {
	// Allowed reports whether a control URL taken from an authenticated
	// message may be used (the configured host allowlist).
	Allowed(controlURL string) bool
	// React runs the configured barge-in actions for decision d of call
	// callID, decided at decidedAt, without blocking the webhook.
	React(callID, controlURL string, d bargein.Decision, decidedAt time.Time)
}

// Timeline event kinds.
const (
	EventBargein = "bargein"
	EventVapi    = "vapi"
)

// decisionCounters are the barge-in decision counters, resolved once.
type decisionCounters map[bargein.Code][2]prometheus.Counter // [none, interrupt]

func newDecisionCounters(m *metrics.Metrics) decisionCounters {
	dc := make(decisionCounters, len(bargein.Codes))
	for _, c := range bargein.Codes {
		dc[c] = [2]prometheus.Counter{m.BargeinDecisions.WithLabelValues("none", string(c)), m.BargeinDecisions.WithLabelValues("interrupt", string(c))}
	}
	return dc
}

func (dc decisionCounters) count(d bargein.Decision) {
	i := 0
	if d.Interrupt {
		i = 1
	}
	if c, ok := dc[d.Code]; ok {
		c[i].Inc()
	}
}

// bargeIn runs the engine on a speech or transcript event of tracked call
// m: the decision is counted, kept in the call's timeline when it judges
// the caller's words over the assistant, and handed to the configured
// actions. A timeline write that fails is logged and counted; the message
// is still answered 200 (the timeline is voicegate's observation, not
// something Vapi sent).
func (d *Dispatcher) bargeIn(ctx context.Context, m *vapi.Message) {
	id := m.CallID()
	ev := bargein.Event{Type: m.Type, Role: m.Role, Status: m.Status, TranscriptType: m.TranscriptType, Transcript: m.Transcript}
	if !m.Timestamp.IsZero() {
		ev.Timestamp, ev.TimeKnown = m.Timestamp.UnixMicro(), true
	}
	var lang string
	if m.Call != nil && d.bargein != nil {
		lang = d.bargein.AssistantLanguage(m.Call.AssistantID)
	}
	var dec bargein.Decision
	var controlURL string
	if !d.sessions.Update(ctx, id, func(s *session.State) {
		if s.Bargein.Language == "" {
			s.Bargein.Language = lang
		}
		dec = d.bargein.Decide(&s.Bargein, ev)
		controlURL = s.ControlURL
	}) {
		return
	}
	decidedAt := d.now()
	d.decisions.count(dec)
	if d.bargein.Keep(dec) {
		verdict := "none: "
		if dec.Interrupt {
			verdict = "interrupt: "
		}
		// At the message's own time, like the status changes beside it.
		d.addEvent(ctx, id, calls.Event{At: d.eventTime(m), Kind: EventBargein, Detail: verdict + dec.Reason()})
	}
	if d.control == nil || (!dec.Interrupt && !dec.Final) {
		return
	}
	if controlURL == "" {
		// Checked against the allowlist once per call, then kept, for
		// later messages that do not carry it.
		if controlURL = d.controlURL(m); controlURL != "" {
			d.sessions.Update(ctx, id, func(s *session.State) { s.ControlURL = controlURL })
		}
	}
	if controlURL == "" {
		d.log.Warn("barge-in action skipped: the call has no usable control URL", logkey.CallID, id)
		return
	}
	d.control.React(id, controlURL, dec, decidedAt)
}

// controlURL returns m's control URL when the allowlist accepts it; a
// refused one is logged by host only (the URL is a capability).
func (d *Dispatcher) controlURL(m *vapi.Message) string {
	if m.Call == nil || m.Call.Monitor == nil || m.Call.Monitor.ControlURL == "" {
		return ""
	}
	u := m.Call.Monitor.ControlURL
	if !d.control.Allowed(u) {
		d.log.Warn("control URL refused by call_control.allowed_hosts", logkey.CallID, m.CallID())
		return ""
	}
	return u
}

// languageChange switches a call's barge-in language to the detected one,
// when it is configured (another keeps the call's language).
func (d *Dispatcher) languageChange(ctx context.Context, m *vapi.Message) {
	lang := d.bargein.Language(m.Language)
	if lang == "" {
		return
	}
	if d.sessions.Update(ctx, m.CallID(), func(s *session.State) { s.Bargein.Language = lang }) {
		d.addEvent(ctx, m.CallID(), calls.Event{At: d.eventTime(m), Kind: EventBargein, Detail: "language: " + lang})
	}
}

// addEvent appends to a call's timeline, off the request path (a write
// that fails is logged and counted by the writer).
func (d *Dispatcher) addEvent(_ context.Context, id string, e calls.Event) {
	d.events.Add(id, e)
}
