// Package delivery delivers the results of async tools (internal/asynctools)
// to their calls: through Live Call Control while the call is live — an
// add-message the model answers from, or a say — and always as a protected
// record of the call, so that a result whose call has ended is kept with it.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/voicegate/voicegate/internal/asynctools"
	"github.com/voicegate/voicegate/internal/callcontrol"
	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/records"
	"github.com/voicegate/voicegate/internal/tools"
)

// Sender sends control messages (callcontrol.Client).
type Sender interface {
	Send(ctx context.Context, controlURL string, m callcontrol.Message) (callcontrol.Result, error)
}

// EventAsync is the timeline kind of an async tool's delivery.
const EventAsync = "async"

// Deliverer implements asynctools.Deliverer. All fields are required but
// Records (nil: results are not kept as records).
type Deliverer struct {
	Sender  Sender
	Calls   calls.Reader
	Records *records.Writer
	Events  *calls.EventWriter
	// Mode returns a tool's delivery (tools.DeliveryAddMessage or
	// tools.DeliverySay).
	Mode func(tool string) string
	Log  *slog.Logger
	Now  func() time.Time
}

var _ asynctools.Deliverer = (*Deliverer)(nil)

// Deliver implements asynctools.Deliverer: the result is recorded (once
// per tool call), then sent to the call if it is live. An error makes the
// queue try again: a record that could not be written, a call that could
// not be read, a control message that failed while the call is live.
func (d *Deliverer) Deliver(ctx context.Context, dl asynctools.Delivery) error {
	start := d.Now()
	if d.Records != nil {
		tc := records.ToolCall{ToolCallID: dl.ToolCallID + "#result", Tool: dl.Tool, Outcome: "async_ok", Result: dl.Result}
		if dl.Failed {
			tc.Outcome, tc.Result, tc.Error = "async_failed", "", dl.Result
		}
		err := d.Records.ToolCall(ctx, records.Call{ID: dl.CallID}, tc)
		if errors.Is(err, records.ErrCallErased) {
			// Purged: nothing of the call is kept or said.
			d.Log.Info("async tool result dropped: the call was erased", logkey.CallID, dl.CallID, logkey.Tool, dl.Tool)
			return nil
		}
		if err != nil {
			return fmt.Errorf("record the async result: %w", err)
		}
	}
	rec, _, err := d.Calls.Call(ctx, dl.CallID)
	switch {
	case errors.Is(err, calls.ErrNotFound):
	case err != nil:
		return fmt.Errorf("read the call: %w", err)
	}
	if err != nil || !rec.EndedAt.IsZero() || dl.ControlURL == "" {
		d.event(dl, "result kept with the call (the call is not live)")
		return nil
	}
	mode := d.Mode(dl.Tool)
	msg, err := d.message(mode, dl)
	if err != nil {
		return err
	}
	res, err := d.Sender.Send(ctx, dl.ControlURL, msg)
	var ce *callcontrol.Error
	if errors.As(err, &ce) && ce.Outcome == callcontrol.OutcomeRefusedURL {
		d.Log.Warn("async tool result not sent: control URL refused by call_control.allowed_hosts", logkey.CallID, dl.CallID, logkey.Tool, dl.Tool)
		d.event(dl, "result kept with the call (its control URL is not allowed)")
		return nil
	}
	switch {
	case errors.As(err, &ce) && ce.Uncertain && !msg.Idempotent():
		// Vapi may have spoken it: sending it again could read the result
		// to the caller twice. Not repeated.
		d.Log.Warn("async tool result may not have been delivered: Vapi did not answer; not repeated", logkey.CallID, dl.CallID, logkey.Tool, dl.Tool, logkey.Outcome, string(ce.Outcome))
		d.event(dl, fmt.Sprintf("delivery by %s uncertain (%s after %d attempts): not repeated, the result is kept with the call", mode, res.Outcome, res.Attempts))
		return nil
	case errors.As(err, &ce) && ce.Outcome == callcontrol.OutcomeHTTPError && ce.Status >= 400 && ce.Status < 500:
		// Vapi refused it (the call is over, or the message is not
		// acceptable): another attempt would be refused too.
		d.Log.Warn("async tool result refused by Vapi", logkey.CallID, dl.CallID, logkey.Tool, dl.Tool, logkey.Status, ce.Status)
		d.event(dl, fmt.Sprintf("delivery by %s refused (status %d): the result is kept with the call", mode, ce.Status))
		return nil
	case err != nil:
		d.event(dl, fmt.Sprintf("delivery by %s failed (%s, %d attempts): retried", mode, res.Outcome, res.Attempts))
		return err
	}
	verdict := "result"
	if dl.Failed {
		verdict = "failure"
	}
	d.event(dl, fmt.Sprintf("%s delivered by %s in %.1f ms", verdict, mode, float64(d.Now().Sub(start).Microseconds())/1000))
	return nil
}

// message is the control message of a delivery.
func (d *Deliverer) message(mode string, dl asynctools.Delivery) (callcontrol.Message, error) {
	if mode == tools.DeliverySay {
		return callcontrol.Say(dl.Result, false)
	}
	content := fmt.Sprintf("The result of the %s tool call (%s) is ready: %s", dl.Tool, dl.ToolCallID, dl.Result)
	if dl.Failed {
		content = fmt.Sprintf("The %s tool call (%s) failed. Tell the caller: %s", dl.Tool, dl.ToolCallID, dl.Result)
	}
	return callcontrol.AddMessage("system", content, true)
}

func (d *Deliverer) event(dl asynctools.Delivery, what string) {
	d.Events.Add(dl.CallID, calls.Event{At: d.Now(), Kind: EventAsync, Detail: dl.Tool + ": " + what})
}
