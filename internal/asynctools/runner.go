package asynctools

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/tools"
	"github.com/voicegate/voicegate/internal/vapi"
)

// Runner is the tools.Runner of a configuration with async tools: an
// async tool's invocation is checked as a real call would be (known tool,
// arguments against its schema), queued, and answered at once with its
// holding phrase; the others run through the router now. A call the queue
// cannot take is answered with OutcomeQueueError, which the dispatcher
// turns into a 503 so that Vapi retries it (never a 200 for something not
// stored).
type Runner struct {
	Router  *tools.Router
	Queue   *Queue
	Holding map[string]string // async tool -> holding phrase
	Observe tools.Observer
	Log     *slog.Logger
}

var _ tools.Runner = (*Runner)(nil)

// CallAll implements tools.Runner. The async calls are queued first: if
// one cannot be, the message will be answered 503 and sent again, so the
// synchronous ones are not run now (they run on the retry, once).
func (r *Runner) CallAll(ctx context.Context, ci tools.CallInfo, invs []vapi.Invocation) []vapi.ToolResult {
	out := make([]vapi.ToolResult, len(invs))
	if len(invs) == 1 {
		out[0] = r.Call(ctx, ci, invs[0])
		return out
	}
	var wg sync.WaitGroup
	queueFailed := false
	for i := range invs {
		if r.isAsync(invs[i].Name) {
			out[i] = r.Call(ctx, ci, invs[i])
			queueFailed = queueFailed || out[i].Outcome == string(tools.OutcomeQueueError)
		}
	}
	for i := range invs {
		if r.isAsync(invs[i].Name) {
			continue
		}
		if queueFailed {
			out[i] = vapi.ToolResult{ToolCallID: invs[i].ID, Name: invs[i].Name, Outcome: string(tools.OutcomeQueueError),
				Error: "Not run: the message will be sent again."}
			continue
		}
		wg.Go(func() { out[i] = r.Router.Call(ctx, ci, invs[i]) })
	}
	wg.Wait()
	return out
}

func (r *Runner) isAsync(name string) bool {
	_, ok := r.Holding[name]
	return ok && r.Queue.Async(name)
}

// Call implements tools.Runner.
func (r *Runner) Call(ctx context.Context, ci tools.CallInfo, inv vapi.Invocation) vapi.ToolResult {
	if !r.isAsync(inv.Name) {
		return r.Router.Call(ctx, ci, inv)
	}
	holding := r.Holding[inv.Name]
	// What a real call would refuse at once is refused now, so that the
	// model can correct it in this turn.
	check := ci
	check.DryRun = true
	if res := r.Router.Call(ctx, check, inv); res.Error != "" || ci.DryRun {
		return res
	}
	start := time.Now()
	id := inv.ID
	if id == "" {
		// A legacy function call has no id: its redelivery carries the same
		// name and arguments, so it is queued once.
		h := sha256.Sum256([]byte(ci.CallID + "\x00" + inv.Name + "\x00" + string(inv.Args)))
		id = "fc-" + hex.EncodeToString(h[:16])
	}
	res := vapi.ToolResult{ToolCallID: inv.ID, Name: inv.Name}
	err := r.Queue.Enqueue(ctx, Job{CallID: ci.CallID, ToolCallID: id, Tool: inv.Name, Arguments: inv.Args, ControlURL: ci.ControlURL})
	res.Duration = time.Since(start)
	switch {
	case err == nil:
		res.Result, res.Outcome = holding, string(tools.OutcomeQueued)
	case errors.Is(err, ErrInvalidJob):
		res.Error, res.Outcome = fmt.Sprintf("The %s service cannot take this request.", inv.Name), string(tools.OutcomeBadArgs)
	case errors.Is(err, ErrOpen):
		// The call was erased (purged): nothing of it may be kept.
		res.Error, res.Outcome = fmt.Sprintf("The %s service is unavailable for this call.", inv.Name), string(tools.OutcomeUnreachable)
	default:
		r.Log.Error("async tool call not queued", logkey.Tool, inv.Name, logkey.CallID, ci.CallID, logkey.ToolCallID, inv.ID, logkey.Err, err)
		res.Error, res.Outcome = fmt.Sprintf("The %s service is unavailable right now.", inv.Name), string(tools.OutcomeQueueError)
	}
	r.Observe(inv.Name, tools.Outcome(res.Outcome), res.Duration)
	return res
}

// Async reports whether tool is one of the queue's async tools.
func (q *Queue) Async(tool string) bool {
	_, ok := q.tools[tool]
	return ok
}
