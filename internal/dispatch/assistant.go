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
	def    []byte
	errAns []byte
}

type route struct {
	phoneNumberID, called, caller string
	answer                        []byte
}

// NewAssistantRouter prepares the answers of a validated configuration.
func NewAssistantRouter(c AssistantRequestConfig) (*AssistantRouter, error) {
	r := &AssistantRouter{}
	var err error
	if r.errAns, err = json.Marshal(vapi.AssistantResponse{Error: c.ErrorMessage}); err != nil {
		return nil, err
	}
	for i, rt := range c.Routes {
		b, err := answerJSON(rt.AssistantAnswer)
		if err != nil {
			return nil, fmt.Errorf("assistant route %d: %w", i, err)
		}
		r.routes = append(r.routes, route{phoneNumberID: rt.PhoneNumberID, called: rt.CalledNumber, caller: rt.CallerNumber, answer: b})
	}
	if c.Default != nil {
		if r.def, err = answerJSON(*c.Default); err != nil {
			return nil, fmt.Errorf("assistant default: %w", err)
		}
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

// Answer returns the JSON answer for m: the first route whose every set field
// matches, else the default, else the spoken error.
func (r *AssistantRouter) Answer(m *vapi.Message) []byte {
	pnID, called, caller := callParties(m)
	for _, rt := range r.routes {
		if rt.phoneNumberID != "" && rt.phoneNumberID != pnID {
			continue
		}
		if rt.called != "" && rt.called != called {
			continue
		}
		if rt.caller != "" && rt.caller != caller {
			continue
		}
		return rt.answer
	}
	if r.def != nil {
		return r.def
	}
	return r.errAns
}

// callParties extracts the phone number id, the called number and the
// caller's number from wherever the message carries them.
func callParties(m *vapi.Message) (pnID, called, caller string) {
	if m.PhoneNumber != nil {
		pnID, called = m.PhoneNumber.ID, m.PhoneNumber.Number
	}
	if m.Customer != nil {
		caller = m.Customer.Number
	}
	if c := m.Call; c != nil {
		if pnID == "" {
			pnID = c.PhoneNumberID
		}
		if called == "" && c.PhoneNumber != nil {
			called = c.PhoneNumber.Number
		}
		if caller == "" && c.Customer != nil {
			caller = c.Customer.Number
		}
	}
	return
}
