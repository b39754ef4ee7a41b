package asynctools

import (
	"context"
	"errors"
	"net/http"

	"github.com/voicegate/voicegate/internal/tools"
	"github.com/voicegate/voicegate/internal/vapi"
)

// RouterExecutor runs a job's attempt through the tool router: the tool's
// configured URL, headers, schema, timeout and concurrency cap, with
// X-Voicegate-Call-Id, X-Voicegate-Tool-Call-Id and Idempotency-Key.
type RouterExecutor struct {
	Router *tools.Router
}

var _ Executor = RouterExecutor{}

// Execute implements Executor. The error is the router's message, safe to
// log (it never quotes the internal API's answer or URL). Timeouts, refused
// connections, a busy tool and the HTTP statuses 408, 425, 429 and 5xx are
// retryable; invalid arguments, an answer too large and other statuses
// are not.
func (e RouterExecutor) Execute(ctx context.Context, j Job, idempotencyKey string) (string, bool, error) {
	args, argsErr := vapi.NormalizeArgs(j.Arguments)
	res := e.Router.Call(ctx, tools.CallInfo{CallID: j.CallID, IdempotencyKey: idempotencyKey},
		vapi.Invocation{ID: j.ToolCallID, Name: j.Tool, Args: args, ArgsErr: argsErr})
	if res.Error == "" {
		return res.Result, false, nil
	}
	return "", retryable(tools.Outcome(res.Outcome), res.Status), errors.New(res.Error)
}

func retryable(o tools.Outcome, status int) bool {
	switch o {
	case tools.OutcomeTimeout, tools.OutcomeUnreachable, tools.OutcomeBusy:
		return true
	case tools.OutcomeHTTPError:
		return status >= 500 || status == http.StatusRequestTimeout || status == http.StatusTooEarly || status == http.StatusTooManyRequests
	}
	return false
}
