package callcontrol

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// TestMessageJSON sends each message type to the local control server and
// compares the JSON it received with the shapes of vapi.md §9, field names
// exact.
func TestMessageJSON(t *testing.T) {
	tests := []struct {
		name       string
		msg        func() (Message, error)
		want       string
		idempotent bool
	}{
		{"say", func() (Message, error) {
			return Say("Welcome to Vapi, this message was injected during the call.", false)
		}, `{"type":"say","content":"Welcome to Vapi, this message was injected during the call.","endCallAfterSpoken":false}`, false},
		{"say end call after spoken", func() (Message, error) { return Say("Goodbye <now> & thanks", true) },
			`{"type":"say","content":"Goodbye <now> & thanks","endCallAfterSpoken":true}`, false},
		{"say interrupting", func() (Message, error) { return Say("Sorry to interrupt.", false, InterruptAssistant(true)) },
			`{"type":"say","content":"Sorry to interrupt.","endCallAfterSpoken":false,"interruptAssistantEnabled":true}`, false},
		{"say not interrupting, explicit", func() (Message, error) { return Say("Hi.", false, InterruptAssistant(false)) },
			`{"type":"say","content":"Hi.","endCallAfterSpoken":false,"interruptAssistantEnabled":false}`, false},
		{"add-message", func() (Message, error) { return AddMessage(RoleSystem, "New message added to conversation", true) },
			`{"type":"add-message","message":{"role":"system","content":"New message added to conversation"},"triggerResponseEnabled":true}`, false},
		{"add-message silent", func() (Message, error) { return AddMessage(RoleUser, "note", false) },
			`{"type":"add-message","message":{"role":"user","content":"note"},"triggerResponseEnabled":false}`, false},
		{"mute-assistant", func() (Message, error) { return Control(MuteAssistant) }, `{"type":"control","control":"mute-assistant"}`, true},
		{"unmute-assistant", func() (Message, error) { return Control(UnmuteAssistant) }, `{"type":"control","control":"unmute-assistant"}`, true},
		{"mute-customer", func() (Message, error) { return Control(MuteCustomer) }, `{"type":"control","control":"mute-customer"}`, true},
		{"unmute-customer", func() (Message, error) { return Control(UnmuteCustomer) }, `{"type":"control","control":"unmute-customer"}`, true},
		{"say-first-message", func() (Message, error) { return Control(SayFirstMessage) }, `{"type":"control","control":"say-first-message"}`, false},
		{"end-call", func() (Message, error) { return EndCall(), nil }, `{"type":"end-call"}`, true},
		{"transfer number", func() (Message, error) {
			return Transfer(json.RawMessage(`{ "type": "number", "number": "+1234567890" }`), "Transferring your call now")
		}, `{"type":"transfer","destination":{"type":"number","number":"+1234567890"},"content":"Transferring your call now"}`, false},
		{"transfer sip", func() (Message, error) {
			return Transfer(json.RawMessage(`{"type":"sip","sipUri":"sip:+transferPhoneNumber@sip.telnyx.com"}`), "Testing transfer call.")
		}, `{"type":"transfer","destination":{"type":"sip","sipUri":"sip:+transferPhoneNumber@sip.telnyx.com"},"content":"Testing transfer call."}`, false},
		{"transfer without content", func() (Message, error) {
			return Transfer(json.RawMessage(`{"type":"number","number":"+1234567890"}`), "")
		},
			`{"type":"transfer","destination":{"type":"number","number":"+1234567890"}}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newControlServer(t, nil)
			c := mustNew(t, testConfig(srv), Deps{})
			m := must(tc.msg())
			if m.Idempotent() != tc.idempotent {
				t.Errorf("Idempotent() = %v, want %v", m.Idempotent(), tc.idempotent)
			}
			res, err := c.Send(t.Context(), srv.controlURL(), m)
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != OutcomeOK || res.Attempts != 1 || res.Status != 200 {
				t.Errorf("result = %+v, want ok, 1 attempt, 200", res)
			}
			reqs := srv.requests()
			if len(reqs) != 1 {
				t.Fatalf("server got %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.method != "POST" || r.path != "/"+callID+"/control" || r.contentType != "application/json" {
				t.Errorf("request = %s %s %q, want POST /<call>/control application/json", r.method, r.path, r.contentType)
			}
			var got, want map[string]any
			if err := json.Unmarshal(r.body, &got); err != nil {
				t.Fatalf("body %s: %v", r.body, err)
			}
			if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("body\n got %s\nwant %s", r.body, tc.want)
			}
		})
	}
}

// TestSayKeepsHTMLCharacters: the content reaches Vapi as written, not
// with "<" escaped as \u003c (which Vapi would decode, but which a text to
// speech pipeline quoting the raw JSON would not).
func TestSayKeepsHTMLCharacters(t *testing.T) {
	m := must(Say("a <b> & c", false))
	if want := `{"type":"say","content":"a <b> & c","endCallAfterSpoken":false}`; string(m.body) != want {
		t.Errorf("body = %s, want %s", m.body, want)
	}
}

func TestInvalidMessages(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"say empty", second(Say("", false)), "content is empty"},
		{"say too long", second(Say(strings.Repeat("a", MaxContentBytes+1), false)), "content is over"},
		{"say not UTF-8", second(Say("a\xff", false)), "not UTF-8"},
		{"add-message role", second(AddMessage("tool", "x", true)), `role "tool"`},
		{"add-message empty role", second(AddMessage("", "x", true)), `role ""`},
		{"add-message empty", second(AddMessage(RoleSystem, "", true)), "content is empty"},
		{"control unknown", second(Control("hang-up")), `control "hang-up"`},
		{"control case", second(Control("Mute-Assistant")), "is not one of"},
		{"transfer not JSON", second(Transfer(json.RawMessage(`{"type":`), "x")), "not a JSON object"},
		{"transfer array", second(Transfer(json.RawMessage(`[{"type":"number"}]`), "x")), "not a JSON object"},
		{"transfer string", second(Transfer(json.RawMessage(`"+1234567890"`), "x")), "not a JSON object"},
		{"transfer nil", second(Transfer(nil, "x")), "not a JSON object"},
		{"transfer no type", second(Transfer(json.RawMessage(`{"number":"+1234567890"}`), "x")), `no "type"`},
		{"transfer type not string", second(Transfer(json.RawMessage(`{"type":1}`), "x")), "not a JSON object"},
		{"transfer content not UTF-8", second(Transfer(json.RawMessage(`{"type":"number"}`), "\xff")), "not UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, ErrInvalidMessage) {
				t.Fatalf("err = %v, want ErrInvalidMessage", tc.err)
			}
			if !strings.Contains(tc.err.Error(), tc.want) {
				t.Errorf("err = %q, want it to contain %q", tc.err, tc.want)
			}
		})
	}
	srv := newControlServer(t, nil)
	c := mustNew(t, testConfig(srv), Deps{})
	if _, err := c.Send(t.Context(), srv.controlURL(), Message{}); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("Send(zero Message) = %v, want ErrInvalidMessage", err)
	}
	if n := len(srv.requests()); n != 0 {
		t.Errorf("server got %d requests, want 0", n)
	}
}

func second(_ Message, err error) error { return err }

// TestMessageNeverPrintsContent: a Message logged or printed by mistake
// shows its type only.
func TestMessageNeverPrintsContent(t *testing.T) {
	m := must(Say("my card is 4111 1111 1111 1111", false))
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		if s := fmt.Sprintf(f, m); strings.Contains(s, "4111") || strings.Contains(s, "52 49 49 49") || strings.Contains(s, "34313131") || !strings.Contains(s, "say") {
			t.Errorf("%s printed the content: %s", f, s)
		}
	}
}
