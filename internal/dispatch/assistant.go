package dispatch

import (
	"encoding/json"
	"fmt"

	"github.com/voicegate/voicegate/internal/vapi"
)

// AssistantRouter answers assistant-request from configured routes. Every
// answer is serialised once at start-up, so answering costs a lookup.
type AssistantRouter struct {
	routes []route
	def    *route
	errAns *route
}

type route struct {
	phoneNumberID, called, caller string
	answer                        []byte
	decision                      Decision
}

// Decision is which answer an assistant-request got, for the call's log
// line and record.
type Decision struct {
	// Rule is the configuration that answered: "routes[N]", "default", or
	// "error_message" when none did.
	Rule string
	// Assistant names what the call was given: an assistant id,
	// "squad:ID", "inline" or "inline:NAME" for an assistant defined in the
	// answer, "transfer" for a destination; empty for the spoken error.
	Assistant string
}

// label names an answer's assistant for Decision.Assistant.
func (a AssistantAnswer) label() string {
	switch {
	case a.AssistantID != "":
		return a.AssistantID
	case a.SquadID != "":
		return "squad:" + a.SquadID
	case a.Assistant != nil:
		if name, ok := a.Assistant["name"].(string); ok && name != "" {
			return "inline:" + name
		}
		return "inline"
	case a.Destination != nil:
		return "transfer"
	}
	return ""
}

// NewAssistantRouter prepares the answers of a validated configuration.
func NewAssistantRouter(c AssistantRequestConfig) (*AssistantRouter, error) {
	r := &AssistantRouter{}
	var err error
	errAns, err := json.Marshal(vapi.AssistantResponse{Error: c.ErrorMessage})
	if err != nil {
		return nil, err
	}
	r.errAns = &route{answer: errAns, decision: Decision{Rule: "error_message"}}
	for i, rt := range c.Routes {
		b, err := answerJSON(rt.AssistantAnswer)
		if err != nil {
			return nil, fmt.Errorf("assistant route %d: %w", i, err)
		}
		r.routes = append(r.routes, route{phoneNumberID: rt.PhoneNumberID, called: rt.CalledNumber, caller: rt.CallerNumber, answer: b,
			decision: Decision{Rule: fmt.Sprintf("routes[%d]", i), Assistant: rt.label()}})
	}
	if c.Default != nil {
		b, err := answerJSON(*c.Default)
		if err != nil {
			return nil, fmt.Errorf("assistant default: %w", err)
		}
		r.def = &route{answer: b, decision: Decision{Rule: "default", Assistant: c.Default.label()}}
	}
	return r, nil
}

func answerJSON(a AssistantAnswer) ([]byte, error) {
	resp := vapi.AssistantResponse{AssistantID: a.AssistantID, SquadID: a.SquadID}
	raw := func(v map[string]any) (json.RawMessage, error) {
		if v == nil {
			return nil, nil
		}
		return json.Marshal(v)
	}
	var err error
	if resp.Assistant, err = raw(a.Assistant); err != nil {
		return nil, err
	}
	if resp.Destination, err = raw(a.Destination); err != nil {
		return nil, err
	}
	if resp.AssistantOverrides, err = raw(a.AssistantOverrides); err != nil {
		return nil, err
	}
	return json.Marshal(resp)
}

// Answer returns the JSON answer for m — the first route whose every set
// field matches, else the default, else the spoken error — and which it was.
func (r *AssistantRouter) Answer(m *vapi.Message) ([]byte, Decision) {
	pnID, called, caller := callParties(m)
	for i := range r.routes {
		rt := &r.routes[i]
		if rt.phoneNumberID != "" && rt.phoneNumberID != pnID {
			continue
		}
		if rt.called != "" && rt.called != called {
			continue
		}
		if rt.caller != "" && rt.caller != caller {
			continue
		}
		return rt.answer, rt.decision
	}
	if r.def != nil {
		return r.def.answer, r.def.decision
	}
	return r.errAns.answer, r.errAns.decision
}

// callParties extracts the phone number id, the called number and the
// caller's number from wherever the message carries them.
func callParties(m *vapi.Message) (pnID, called, caller string) {
	if m.PhoneNumber != nil {
		pnID, called = m.PhoneNumber.ID, m.PhoneNumber.E164()
	}
	if m.Customer != nil {
		caller = m.Customer.Number
	}
	if c := m.Call; c != nil {
		if pnID == "" {
			pnID = c.PhoneNumberID
		}
		if called == "" {
			called = c.PhoneNumber.E164()
		}
		if caller == "" && c.Customer != nil {
			caller = c.Customer.Number
		}
	}
	return
}
