// Package actions provides barge-in actions: the configured rules
// (bargein.actions) that turn the barge-in engine's decisions into Live Call
// Control messages — mute the assistant when the caller interrupts, unmute
// it on the caller's final transcript, add a system message when the caller
// corrects something. Messages are sent off the webhook path, in order per
// call and concurrently across calls (a slow control URL holds up only its
// own call), by goroutines that Close waits for (bounded); each one's
// outcome and its decision-to-control latency go into the call's timeline.
package actions

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voicegate/voicegate/internal/bargein"
	"github.com/voicegate/voicegate/internal/callcontrol"
	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/metrics"
)

// Sender sends control messages (callcontrol.Client).
type Sender interface {
	CheckURL(raw string) error
	Send(ctx context.Context, controlURL string, m callcontrol.Message) (callcontrol.Result, error)
}

// EventControl is the timeline kind of a control message.
const EventControl = "control"

// Bounds: messages queued in all, sent at once, and how long Close lets
// the queued ones go before it cancels them.
const (
	maxQueued   = 4096
	maxSending  = 64
	closeGrace  = 5 * time.Second
	sendTimeout = 10 * time.Second // one action: the client's attempts and waits
)

// rule is a configured action with its message built once.
type rule struct {
	on      string
	phrases []string // normalised; empty: any interrupt
	name    string   // the action ("mute-assistant", "say", ...)
	msg     callcontrol.Message
}

type job struct {
	callID, url string
	rule        *rule
	decision    string // the decision's reason, for the timeline
	decidedAt   time.Time
}

// Deps are a Runner's collaborators.
type Deps struct {
	Sender  Sender
	Events  *calls.EventWriter // the call's timeline
	Metrics *metrics.Metrics
	Log     *slog.Logger
	Now     func() time.Time
}

// Runner runs the actions. React never blocks; Close stops the workers
// after the messages already queued.
type Runner struct {
	rules atomic.Pointer[Rules]
	d     Deps
	// ctx ends when Close gives up waiting; sending bounds the sends in
	// flight.
	ctx     context.Context
	cancel  context.CancelFunc
	sending chan struct{}
	wg      sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	queued  int
	pending map[string][]job // per call, in decision order; a call is here while its sender runs
}

// New returns a runner with no actions (Use gives them).
func New(d Deps) *Runner {
	r := &Runner{d: d, sending: make(chan struct{}, maxSending), pending: map[string][]job{}}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	r.rules.Store(&Rules{})
	return r
}

// Rules are compiled actions, ready for Use.
type Rules struct{ list []rule }

// Len is the number of actions.
func (rs *Rules) Len() int { return len(rs.list) }

// Use replaces the actions (at start and on a reload; messages already
// queued are still sent).
func (r *Runner) Use(rs *Rules) { r.rules.Store(rs) }

// Compile builds the actions of a validated configuration.
func Compile(acts []bargein.Action) (*Rules, error) {
	var rules []rule
	for i, a := range acts {
		ru := rule{on: a.On, name: a.Do}
		for _, p := range a.Phrases {
			ru.phrases = append(ru.phrases, normPhrase(p))
		}
		var err error
		switch a.Do {
		case bargein.DoMute, bargein.DoUnmute:
			ru.msg, err = callcontrol.Control(a.Do)
		case bargein.DoSay:
			ru.msg, err = callcontrol.Say(a.Content, false)
		case bargein.DoAddMessage:
			role := a.Role
			if role == "" {
				role = "system"
			}
			ru.msg, err = callcontrol.AddMessage(role, a.Content, a.TriggerResponse == nil || *a.TriggerResponse)
		case bargein.DoEndCall:
			ru.msg = callcontrol.EndCall()
		default:
			err = fmt.Errorf("unknown action %q", a.Do)
		}
		if err != nil {
			return nil, fmt.Errorf("bargein.actions[%d]: %w", i, err)
		}
		rules = append(rules, ru)
	}
	return &Rules{list: rules}, nil
}

func normPhrase(p string) string {
	w := bargein.Words(p)
	out := ""
	for i, s := range w {
		if i > 0 {
			out += " "
		}
		out += s
	}
	return out
}

// Allowed implements dispatch.Controller.
func (r *Runner) Allowed(controlURL string) bool { return r.d.Sender.CheckURL(controlURL) == nil }

// React implements dispatch.Controller: the rules that d matches are
// queued for call callID. A full queue drops the message, logged and
// counted (outcome dropped) — the webhook is never held up.
func (r *Runner) React(callID, controlURL string, d bargein.Decision, decidedAt time.Time) {
	rules := r.rules.Load().list
	if len(rules) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	for i := range rules {
		ru := &rules[i]
		if !ru.matches(d) {
			continue
		}
		reason := d.Reason()
		if d.Final && !d.Interrupt {
			reason = "the caller's final transcript"
		}
		if r.queued >= maxQueued {
			r.d.Metrics.ControlMessages.WithLabelValues(ru.msg.Type(), "dropped").Inc()
			r.d.Log.Warn("barge-in action dropped: the control queue is full", logkey.CallID, callID, logkey.Action, ru.name)
			continue
		}
		r.queued++
		q, busy := r.pending[callID]
		r.pending[callID] = append(q, job{callID: callID, url: controlURL, rule: ru, decision: reason, decidedAt: decidedAt})
		if !busy {
			r.wg.Go(func() { r.drain(callID) })
		}
	}
}

// drain sends call id's queued messages, one at a time, until none is
// left.
func (r *Runner) drain(id string) {
	for {
		r.mu.Lock()
		q := r.pending[id]
		if len(q) == 0 {
			delete(r.pending, id)
			r.mu.Unlock()
			return
		}
		j := q[0]
		r.mu.Unlock()
		select {
		case r.sending <- struct{}{}:
			r.send(j)
			<-r.sending
		case <-r.ctx.Done():
			r.d.Log.Warn("barge-in action dropped: shutting down", logkey.CallID, id, logkey.Action, j.rule.name)
		}
		r.mu.Lock()
		r.pending[id] = r.pending[id][1:]
		r.queued--
		r.mu.Unlock()
	}
}

func (ru *rule) matches(d bargein.Decision) bool {
	switch ru.on {
	case bargein.OnInterrupt:
		return d.Interrupt && (len(ru.phrases) == 0 || slices.ContainsFunc(ru.phrases, d.HasPhrase))
	case bargein.OnFinal:
		return d.Final
	}
	return false
}

func (r *Runner) send(j job) {
	ctx, cancel := context.WithTimeout(r.ctx, sendTimeout)
	defer cancel()
	res, err := r.d.Sender.Send(ctx, j.url, j.rule.msg)
	now := r.d.Now()
	lat := now.Sub(j.decidedAt)
	detail := fmt.Sprintf("%s sent in %.1f ms after the decision (%s)", j.rule.name, float64(lat.Microseconds())/1000, j.decision)
	if err != nil {
		detail = fmt.Sprintf("%s failed after %.1f ms (%s, %d attempts) for the decision (%s)", j.rule.name, float64(lat.Microseconds())/1000, res.Outcome, res.Attempts, j.decision)
		r.d.Log.Warn("barge-in action failed", logkey.CallID, j.callID, logkey.Action, j.rule.name, logkey.Err, err)
	} else {
		r.d.Metrics.ControlLatency.WithLabelValues(j.rule.msg.Type()).Observe(lat.Seconds())
	}
	r.d.Events.Add(j.callID, calls.Event{At: now, Kind: EventControl, Detail: detail})
}

// Close stops taking actions and waits for the queued ones to be sent, for
// closeGrace at most; then what is left is cancelled.
func (r *Runner) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	r.mu.Unlock()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(closeGrace):
		r.cancel()
		<-done
	}
	r.cancel()
}
