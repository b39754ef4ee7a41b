package asynctools

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"
	"github.com/voicegate/voicegate/internal/logkey"
)

// worker is River's worker of async tool jobs.
type worker struct {
	river.WorkerDefaults[jobArgs]
	q *Queue
}

// Timeout bounds a job: one attempt, one delivery, its database work.
func (w *worker) Timeout(job *river.Job[jobArgs]) time.Duration {
	if s, ok := w.q.tools[job.Args.Tool]; ok {
		return w.q.timeoutOf(s)
	}
	return w.q.jobTimeout
}

// NextRetry waits BackoffBase·2^(attempt-1), at most BackoffMax.
func (w *worker) NextRetry(job *river.Job[jobArgs]) time.Time {
	return time.Now().Add(w.q.backoff(job.Attempt))
}

// Work runs one attempt of a job; see the package documentation.
func (w *worker) Work(ctx context.Context, job *river.Job[jobArgs]) error {
	return w.q.work(ctx, job)
}

// outcome is a job's stored outcome.
type outcome struct {
	failed    bool
	result    string
	delivered bool
}

// The errors River records for a failed attempt: fixed strings, as River
// keeps them in the job's row and logs them; the details go to our log.
var (
	errAttempt  = errors.New("internal API attempt failed")
	errDelivery = errors.New("delivery failed")
)

func (q *Queue) work(ctx context.Context, job *river.Job[jobArgs]) error {
	a := job.Args
	log := q.log.With(logkey.Tool, a.Tool, logkey.CallID, a.CallID, logkey.ToolCallID, a.ToolCallID, "attempt", job.Attempt)
	j := Job{CallID: a.CallID, ToolCallID: a.ToolCallID, Tool: a.Tool}
	var sp sealedPart
	plain, err := q.o.Sealer.Open(a.CallID, a.Sealed, argsAAD(a.CallID, a.ToolCallID))
	if err != nil && !errors.Is(err, ErrOpen) {
		// The call's secret could not be read now: try again later.
		log.Warn("async tool job's arguments not opened", logkey.Err, err)
		return fmt.Errorf("open arguments: %w", errAttempt)
	}
	if err == nil {
		err = json.Unmarshal(plain, &sp)
	}
	argsOK := err == nil
	if !argsOK {
		// The key is gone or the row was altered: the call cannot be made,
		// and its result can only be kept with the call.
		log.Error("async tool job's sealed arguments do not open; giving up", logkey.Err, err)
	}
	j.Arguments, j.ControlURL = sp.Arguments, sp.ControlURL

	o, found, err := q.loadOutcome(ctx, a)
	if err != nil {
		log.Warn("async tool outcome not read", logkey.Err, err)
		return fmt.Errorf("read outcome: %w", errAttempt)
	}
	if !found {
		if o, err = q.attempt(ctx, job, j, argsOK, log); err != nil {
			return err
		}
		if err := q.saveOutcome(ctx, a, o); err != nil {
			log.Warn("async tool outcome not stored", logkey.Err, err)
			return fmt.Errorf("store outcome: %w", errAttempt)
		}
		// What is stored is what is delivered, should another attempt have
		// stored first.
		if o, found, err = q.loadOutcome(ctx, a); err != nil || !found {
			log.Warn("async tool outcome not read back", logkey.Err, err)
			return fmt.Errorf("read outcome: %w", errAttempt)
		}
	}
	if !o.delivered {
		if h := q.o.hooks.afterOutcome; h != nil && h(ctx, j) {
			return errors.New("test: died before delivering")
		}
		d := Delivery{CallID: a.CallID, ToolCallID: a.ToolCallID, Tool: a.Tool, ControlURL: j.ControlURL, Result: o.result, Failed: o.failed}
		dctx, cancel := context.WithTimeout(ctx, q.o.DeliveryTimeout)
		err := q.o.Deliverer.Deliver(dctx, d)
		cancel()
		if err != nil {
			q.o.Observer(a.Tool, EventDeliveryFailed)
			if job.Attempt >= job.MaxAttempts {
				// River discards the job now: nothing will deliver the
				// answer, so it is erased.
				log.Error("async tool result not delivered; giving up and erasing it", logkey.Err, err)
				if _, cerr := q.b.exec(context.WithoutCancel(ctx), `UPDATE `+outcomeTable+` SET sealed = NULL WHERE call_id = ? AND tool_call_id = ?`, a.CallID, a.ToolCallID); cerr != nil {
					log.Error("undeliverable async tool result not erased", logkey.Err, cerr)
				}
				q.o.Observer(a.Tool, EventDropped)
			} else {
				log.Warn("async tool result not delivered; retrying", logkey.Err, err)
			}
			return errDelivery
		}
	}
	if err := q.b.finish(ctx, job, `UPDATE `+outcomeTable+` SET sealed = NULL, delivered_at = ? WHERE call_id = ? AND tool_call_id = ? AND delivered_at IS NULL`,
		q.o.Now().UnixMilli(), a.CallID, a.ToolCallID); err != nil {
		// The next attempt delivers again: the window the package
		// documentation describes.
		log.Error("async tool delivered but not marked delivered", logkey.Err, err)
		return fmt.Errorf("mark delivered: %w", errDelivery)
	}
	if !o.delivered {
		if o.failed {
			q.o.Observer(a.Tool, EventDiscarded)
		} else {
			q.o.Observer(a.Tool, EventCompleted)
		}
	}
	return nil
}

// attempt calls the internal API once, unless the job is past its deadline,
// and returns the outcome to store, or an error to retry later.
func (q *Queue) attempt(ctx context.Context, job *river.Job[jobArgs], j Job, argsOK bool, log *slog.Logger) (outcome, error) {
	a := job.Args
	failed := outcome{failed: true, result: FailureResult}
	if !argsOK {
		return failed, nil
	}
	if _, ok := q.tools[a.Tool]; !ok {
		log.Error("async tool job for a tool no longer configured async; giving up")
		return failed, nil
	}
	if !q.o.Now().Before(a.Deadline) {
		log.Warn("async tool deadline passed before the attempt; giving up")
		return failed, nil
	}
	start := time.Now()
	res, retryable, err := q.o.Executor.Execute(ctx, j, IdempotencyKey(a.CallID, a.ToolCallID))
	if err == nil {
		return outcome{result: res}, nil
	}
	took := logkey.DurationMS
	if ctx.Err() != nil {
		// Stopping, or the job's own timeout: not the internal API's fault.
		log.Warn("async tool attempt interrupted", logkey.Err, err, took, time.Since(start).Milliseconds())
		return outcome{}, fmt.Errorf("interrupted: %w", errAttempt)
	}
	next := q.backoff(job.Attempt)
	switch {
	case !retryable:
		log.Warn("async tool attempt failed and retrying cannot help; giving up", logkey.Err, err, took, time.Since(start).Milliseconds())
	case job.Attempt >= a.MaxAttempts:
		log.Warn("async tool attempts exhausted; giving up", logkey.Err, err, "max_attempts", a.MaxAttempts)
	case !q.o.Now().Add(next).Before(a.Deadline):
		log.Warn("async tool deadline reached; giving up", logkey.Err, err, logkey.DelayMS, next.Milliseconds())
	default:
		log.Info("async tool attempt failed; retrying", logkey.Err, err, logkey.DelayMS, next.Milliseconds())
		q.o.Observer(a.Tool, EventRetried)
		return outcome{}, errAttempt
	}
	return failed, nil
}

func (q *Queue) loadOutcome(ctx context.Context, a jobArgs) (outcome, bool, error) {
	var failed int
	var sealed []byte
	var delivered *int64
	err := q.b.queryRow(ctx, `SELECT failed, sealed, delivered_at FROM `+outcomeTable+` WHERE call_id = ? AND tool_call_id = ?`,
		a.CallID, a.ToolCallID).Scan(&failed, &sealed, &delivered)
	if errors.Is(err, errNoRows) {
		return outcome{}, false, nil
	}
	if err != nil {
		return outcome{}, false, err
	}
	o := outcome{failed: failed != 0, delivered: delivered != nil}
	if o.delivered {
		return o, true, nil
	}
	if sealed == nil {
		// Erased when the deliveries ran out; a later attempt (River
		// rescued the job) can only say it failed.
		o.failed, o.result = true, FailureResult
		return o, true, nil
	}
	p, err := q.o.Sealer.Open(a.CallID, sealed, resultAAD(a.CallID, a.ToolCallID))
	if err != nil && !errors.Is(err, ErrOpen) {
		return o, false, err
	}
	if err != nil {
		// The key is gone or the row was altered: the answer is lost, and
		// asking again would repeat the request.
		q.log.Error("stored async tool result does not open; delivering the failure", logkey.Tool, a.Tool, logkey.CallID, a.CallID, logkey.ToolCallID, a.ToolCallID, logkey.Err, err)
		o.failed, o.result = true, FailureResult
		return o, true, nil
	}
	o.result = string(p)
	return o, true, nil
}

func (q *Queue) saveOutcome(ctx context.Context, a jobArgs, o outcome) error {
	sealed, err := q.o.Sealer.Seal(a.CallID, []byte(o.result), resultAAD(a.CallID, a.ToolCallID))
	if err != nil {
		return err
	}
	failed := 0
	if o.failed {
		failed = 1
	}
	_, err = q.b.exec(ctx, `INSERT INTO `+outcomeTable+` (call_id, tool_call_id, failed, sealed, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		a.CallID, a.ToolCallID, failed, sealed, q.o.Now().UnixMilli())
	return err
}
