package dispatch

import (
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/vapi"
)

func TestDeadline(t *testing.T) {
	if Deadline(vapi.TypeAssistantRequest, 20*time.Second) != 6*time.Second || Deadline(vapi.TypeToolCalls, 20*time.Second) != 20*time.Second {
		t.Fatal("assistant-request has a fixed 6 s budget; everything else Vapi's server timeout")
	}
}

func TestAssistantRouterOrderAndMatching(t *testing.T) {
	r, err := NewAssistantRouter(AssistantRequestConfig{
		Routes: []AssistantRoute{
			{PhoneNumberID: "pn1", CallerNumber: "+1999", AssistantAnswer: AssistantAnswer{AssistantID: "vip"}},
			{PhoneNumberID: "pn1", AssistantAnswer: AssistantAnswer{AssistantID: "support"}},
			{CalledNumber: "+1555", AssistantAnswer: AssistantAnswer{SquadID: "squad"}},
		},
		ErrorMessage: "Sorry.",
	})
	if err != nil {
		t.Fatal(err)
	}
	msg := func(pn, called, caller string) *vapi.Message {
		return &vapi.Message{Type: vapi.TypeAssistantRequest, Call: &vapi.Call{ID: "c", PhoneNumberID: pn,
			PhoneNumber: &vapi.PhoneNumber{Number: called}, Customer: &vapi.Customer{Number: caller}}}
	}
	cases := []struct {
		m    *vapi.Message
		want string
		dec  Decision
	}{
		{msg("pn1", "", "+1999"), `{"assistantId":"vip"}`, Decision{"routes[0]", "vip"}},                                          // first match wins
		{msg("pn1", "", "+1000"), `{"assistantId":"support"}`, Decision{"routes[1]", "support"}},                                  // every set field must match
		{msg("pn2", "+1555", ""), `{"squadId":"squad"}`, Decision{"routes[2]", "squad:squad"}},                                    // called number from the call object
		{msg("pn2", "+1666", "+1999"), `{"error":"Sorry."}`, Decision{"error_message", ""}},                                       // no route, no default
		{&vapi.Message{Type: vapi.TypeAssistantRequest}, `{"error":"Sorry."}`, Decision{"error_message", ""}},                     // no call at all
		{&vapi.Message{PhoneNumber: &vapi.PhoneNumber{ID: "pn1"}}, `{"assistantId":"support"}`, Decision{"routes[1]", "support"}}, // message-level phone number
	}
	for i, tc := range cases {
		got, dec := r.Answer(tc.m)
		if string(got) != tc.want || dec != tc.dec {
			t.Errorf("case %d: %s %+v, want %s %+v", i, got, dec, tc.want, tc.dec)
		}
	}
	def, err := NewAssistantRouter(AssistantRequestConfig{Default: &AssistantAnswer{Assistant: map[string]any{"name": "Front desk"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, dec := def.Answer(msg("pn9", "", "")); dec != (Decision{"default", "inline:Front desk"}) {
		t.Errorf("default inline assistant: %+v", dec)
	}
}

func TestHandoffConfigValidate(t *testing.T) {
	dest := map[string]any{"type": "assistant", "assistantId": "a"}
	for name, c := range map[string]struct {
		cfg  HandoffConfig
		want string
	}{
		"defaults":       {DefaultHandoffConfig(), ""},
		"a route":        {HandoffConfig{ErrorMessage: "x", Routes: []HandoffRoute{{Name: "billing", Destination: dest}}}, ""},
		"no error":       {HandoffConfig{ErrorMessage: " "}, "error_message: "},
		"no criterion":   {HandoffConfig{ErrorMessage: "x", Routes: []HandoffRoute{{Destination: dest}}}, "routes[0]: "},
		"no type":        {HandoffConfig{ErrorMessage: "x", Routes: []HandoffRoute{{Name: "b", Destination: map[string]any{"assistantId": "a"}}}}, "routes[0].destination: "},
		"no destination": {HandoffConfig{ErrorMessage: "x", Routes: []HandoffRoute{{Name: "b"}}}, "routes[0].destination: "},
	} {
		got := strings.Join(c.cfg.Validate(), "\n")
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("%s: %q, want %q", name, got, c.want)
		}
	}
}
