// Package actions provides barge-in actions: the configured rules
// (bargein.actions) that turn the barge-in engine's decisions into Live Call
// Control messages — mute the assistant when the caller interrupts, unmute
// it on the caller's final transcript, add a system message when the caller
// corrects something. Messages are sent off the webhook path, in order per
// call, by a fixed group of workers that Close waits for; each one's
// outcome and its decision-to-control latency go into the call's timeline.
package actions

import (
	"context"
	"fmt"
	"hash/maphash"
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

// Workers and queue bound: a call's messages go to one worker (by call
// id), so they are sent in the order they were decided.
const (
	workers    = 8
	queueDepth = 256 // per worker
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
	rules  atomic.Pointer[Rules]
	d      Deps
	seed   maphash.Seed
	queues [workers]chan job
	wg     sync.WaitGroup

	mu     sync.RWMutex
	closed bool
}

// New starts the workers, with no actions: SetActions gives them.
func New(d Deps) *Runner {
	r := &Runner{d: d, seed: maphash.MakeSeed()}
	r.rules.Store(&Rules{})
	for i := range r.queues {
		q := make(chan job, queueDepth)
		r.queues[i] = q
		r.wg.Go(func() {
			for j := range q {
				r.send(j)
			}
		})
	}
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
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.closed {
		return
	}
	q := r.queues[maphash.String(r.seed, callID)%workers]
	for i := range rules {
		ru := &rules[i]
		if !ru.matches(d) {
			continue
		}
		reason := d.Reason()
		if d.Final && !d.Interrupt {
			reason = "the caller's final transcript"
		}
		select {
		case q <- job{callID: callID, url: controlURL, rule: ru, decision: reason, decidedAt: decidedAt}:
		default:
			r.d.Metrics.ControlMessages.WithLabelValues(ru.msg.Type(), "dropped").Inc()
			r.d.Log.Warn("barge-in action dropped: the control queue is full", logkey.CallID, callID, logkey.Action, ru.name)
		}
	}
}

func (ru *rule) matches(d bargein.Decision) bool {
	switch ru.on {
	case bargein.OnInterrupt:
		return d.Interrupt && (len(ru.phrases) == 0 || (d.Code == bargein.CodePhrase && slices.Contains(ru.phrases, d.Phrase)))
	case bargein.OnFinal:
		return d.Final
	}
	return false
}

// sendTimeout bounds one action: the client's attempts and their waits.
const sendTimeout = 10 * time.Second

func (r *Runner) send(j job) {
	ctx, cancel := context.WithTimeout(context.Background(), sendTimeout)
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

// Close stops taking actions and waits for the queued ones to be sent.
func (r *Runner) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	r.mu.Unlock()
	for _, q := range r.queues {
		close(q)
	}
	r.wg.Wait()
}
