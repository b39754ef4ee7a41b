package dispatch

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/vapi"
	"github.com/voicegate/voicegate/internal/webhook"
)

// HandoffConfig routes handoff-destination-request (the "vapi.handoff"
// section): the first route whose criteria all match answers with its
// destination; none matching is a spoken error.
type HandoffConfig struct {
	Routes []HandoffRoute `yaml:"routes"`
	// ErrorMessage is what the assistant says when no route matches.
	ErrorMessage string `yaml:"error_message"`
}

// HandoffRoute is one handoff route. Name, FromAssistant and SquadID are
// criteria (an empty one matches anything; at least one is set);
// Destination is Vapi's handoff destination, answered as is.
type HandoffRoute struct {
	// Name is the destination the model asked for (the handoff tool's
	// "destination" argument), compared without case.
	Name string `yaml:"name"`
	// FromAssistant is the call's current assistant id.
	FromAssistant string `yaml:"from_assistant"`
	// SquadID is the call's squad id.
	SquadID     string         `yaml:"squad_id"`
	Destination map[string]any `yaml:"destination"`
}

// DefaultHandoffConfig has no routes: every handoff gets the error.
func DefaultHandoffConfig() HandoffConfig {
	return HandoffConfig{ErrorMessage: "Sorry, I cannot hand this call over right now."}
}

// Validate returns the section's problems, each starting with its field.
func (c HandoffConfig) Validate() []string {
	var probs []string
	if strings.TrimSpace(c.ErrorMessage) == "" {
		probs = append(probs, "error_message: must not be empty (Vapi speaks an empty error as \"Unknown Error\")")
	}
	for i, r := range c.Routes {
		p := fmt.Sprintf("routes[%d].", i)
		if r.Name == "" && r.FromAssistant == "" && r.SquadID == "" {
			probs = append(probs, p[:len(p)-1]+": needs at least one of name, from_assistant, squad_id")
		}
		if t, _ := r.Destination["type"].(string); t == "" {
			probs = append(probs, p+"destination: needs a type (assistant, ...), as Vapi's handoff destinations have")
		} else if _, err := json.Marshal(r.Destination); err != nil {
			probs = append(probs, p+"destination: "+err.Error())
		}
	}
	return probs
}

// handoffRouter holds the routes with their answers serialised once.
type handoffRouter struct {
	routes []HandoffRoute
	// answers[i] is route i's answer; noMatch the error answer.
	answers [][]byte
	noMatch []byte
}

func newHandoffRouter(c HandoffConfig) (*handoffRouter, error) {
	if c.ErrorMessage == "" {
		c = DefaultHandoffConfig()
	}
	h := &handoffRouter{routes: c.Routes}
	for _, r := range c.Routes {
		dest, err := json.Marshal(r.Destination)
		if err != nil {
			return nil, err
		}
		b, err := json.Marshal(vapi.HandoffResponse{Destination: dest})
		if err != nil {
			return nil, err
		}
		h.answers = append(h.answers, b)
	}
	var err error
	h.noMatch, err = json.Marshal(vapi.HandoffResponse{Error: c.ErrorMessage})
	return h, err
}

// answer picks the route for m: the destination name the model asked for
// (parameters.destination), the call's assistant and squad.
func (h *handoffRouter) answer(m *vapi.Message) ([]byte, int) {
	var params struct {
		Destination string `json:"destination"`
	}
	json.Unmarshal(m.Parameters, &params) // none, or not an object: no name
	var assistant, squad string
	if m.Call != nil {
		assistant, squad = m.Call.AssistantID, m.Call.SquadID
	}
	for i, r := range h.routes {
		if (r.Name == "" || strings.EqualFold(r.Name, strings.TrimSpace(params.Destination))) &&
			(r.FromAssistant == "" || r.FromAssistant == assistant) && (r.SquadID == "" || r.SquadID == squad) {
			return h.answers[i], i
		}
	}
	return h.noMatch, -1
}

// handoff answers handoff-destination-request.
func (d *Dispatcher) handoff(m *vapi.Message) (webhook.Reply, error) {
	body, route := d.handoffs.answer(m)
	d.log.Info("handoff", logkey.CallID, m.CallID(), logkey.Rule, route)
	return webhook.Reply{Status: http.StatusOK, Body: body}, nil
}
