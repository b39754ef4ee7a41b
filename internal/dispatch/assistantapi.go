package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/tools"
	"github.com/voicegate/voicegate/internal/vapi"
)

// AssistantAPIConfig is vapi.assistant_request.router: an internal API
// that chooses the assistant of each call (called like a tool: only its
// configured URL, headers, a timeout, a size cap). The static routes answer
// when it fails.
type AssistantAPIConfig = tools.Config

// routerToolName names the router API as a tool (in logs and metrics).
const routerToolName = "assistant-router"

// DefaultRouterTimeout bounds the router API: well inside the 6 s budget,
// so that the static routes can still answer.
const DefaultRouterTimeout = 3 * time.Second

// assistantAPI asks the router API which assistant takes a call.
type assistantAPI struct {
	tools *tools.Router
	log   *slog.Logger
}

func newAssistantAPI(c *AssistantAPIConfig, log *slog.Logger, observe tools.Observer) (*assistantAPI, error) {
	if c == nil {
		return nil, nil
	}
	cfg := *c
	cfg.Name = routerToolName
	if cfg.Timeout == 0 {
		cfg.Timeout = confval.Duration(DefaultRouterTimeout)
	}
	cfg.Complete()
	r, err := tools.New([]tools.Config{cfg}, log, observe)
	if err != nil {
		return nil, err
	}
	return &assistantAPI{tools: r, log: log}, nil
}

// routerRequest is what the router API receives: the call's metadata.
type routerRequest struct {
	CallID        string          `json:"callId,omitempty"`
	PhoneNumberID string          `json:"phoneNumberId,omitempty"`
	CalledNumber  string          `json:"calledNumber,omitempty"`
	CallerNumber  string          `json:"callerNumber,omitempty"`
	Customer      json.RawMessage `json:"customer,omitempty"`
}

// answer asks the API; ok is false when it failed or answered something
// Vapi could not use (then the static routes answer).
func (a *assistantAPI) answer(ctx context.Context, m *vapi.Message) ([]byte, Decision, bool) {
	pnID, called, caller := callParties(m)
	req := routerRequest{CallID: m.CallID(), PhoneNumberID: pnID, CalledNumber: called, CallerNumber: caller}
	if m.Customer != nil {
		req.Customer, _ = json.Marshal(m.Customer)
	}
	args, err := json.Marshal(req)
	if err != nil {
		return nil, Decision{}, false
	}
	res := a.tools.Call(ctx, tools.CallInfo{CallID: m.CallID()}, vapi.Invocation{Name: routerToolName, Args: args})
	if res.Error != "" {
		a.log.Warn("assistant router API failed; the static routes answer", logkey.CallID, m.CallID(), logkey.Outcome, res.Outcome)
		return nil, Decision{}, false
	}
	body, label, err := validRouterAnswer([]byte(res.Result))
	if err != nil {
		a.log.Warn("assistant router API answer refused; the static routes answer", logkey.CallID, m.CallID(), logkey.Err, err)
		return nil, Decision{}, false
	}
	return body, Decision{Rule: "router", Assistant: label}, true
}

// validRouterAnswer checks an answer: exactly one of assistantId,
// assistant, squadId, squad, workflowId, workflow, destination (objects where Vapi
// wants objects), or a spoken error alone; it returns the answer as sent
// to Vapi, with only those fields.
func validRouterAnswer(b []byte) ([]byte, string, error) {
	var a vapi.AssistantResponse
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, "", fmt.Errorf("not a JSON object of Vapi's assistant-request answer")
	}
	isObject := func(raw json.RawMessage) bool { return len(raw) > 0 && raw[0] == '{' }
	n, label := 0, ""
	for _, s := range []struct {
		set   bool
		valid bool
		label string
	}{
		{a.AssistantID != "", true, a.AssistantID},
		{len(a.Assistant) > 0, isObject(a.Assistant), "inline"},
		{a.SquadID != "", true, "squad:" + a.SquadID},
		{len(a.Squad) > 0, isObject(a.Squad), "squad:inline"},
		{a.WorkflowID != "", true, "workflow:" + a.WorkflowID},
		{len(a.Workflow) > 0, isObject(a.Workflow), "workflow:inline"},
		{len(a.Destination) > 0, isObject(a.Destination), "transfer"},
	} {
		if !s.set {
			continue
		}
		if !s.valid {
			return nil, "", fmt.Errorf("an inline assistant, squad or destination must be a JSON object")
		}
		n++
		label = s.label
	}
	switch {
	case n == 0 && a.Error != "":
		label = ""
	case n != 1:
		return nil, "", fmt.Errorf("needs exactly one of assistantId, assistant, squadId, squad, workflowId, destination (has %d)", n)
	case len(a.AssistantOverrides) > 0 && !isObject(a.AssistantOverrides),
		len(a.SquadOverrides) > 0 && !isObject(a.SquadOverrides),
		len(a.WorkflowOverrides) > 0 && !isObject(a.WorkflowOverrides):
		return nil, "", fmt.Errorf("assistantOverrides, squadOverrides and workflowOverrides must be JSON objects")
	}
	if n == 1 {
		a.Error = ""
	}
	out, err := json.Marshal(a)
	return out, label, err
}
