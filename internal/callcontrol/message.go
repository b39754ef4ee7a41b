package callcontrol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// ErrInvalidMessage is wrapped by the errors of the message constructors,
// and returned by Send for a zero Message.
var ErrInvalidMessage = errors.New("invalid control message")

// Message types, as Vapi names them.
const (
	TypeSay        = "say"
	TypeAddMessage = "add-message"
	TypeControl    = "control"
	TypeEndCall    = "end-call"
	TypeTransfer   = "transfer"
)

// Control actions (the "control" field of a control message).
const (
	MuteAssistant   = "mute-assistant"
	UnmuteAssistant = "unmute-assistant"
	MuteCustomer    = "mute-customer"
	UnmuteCustomer  = "unmute-customer"
	SayFirstMessage = "say-first-message"
)

// MaxContentBytes bounds a message's content and a transfer's destination:
// a sanity limit of voicegate's (Vapi documents none), far above anything
// a call speaks or an assistant needs.
const MaxContentBytes = 32 << 10

// Message is one Live Call Control message, built by Say, AddMessage,
// Control, EndCall or Transfer: its JSON body, marshalled once, and
// whether sending it twice is harmless. It holds the content but never
// prints it. The zero Message is invalid.
type Message struct {
	typ        string
	body       []byte
	idempotent bool
}

// Type returns the message's type ("say", "control", ...).
func (m Message) Type() string { return m.typ }

// Idempotent reports whether the message may be sent again when it is
// unknown whether Vapi acted on it: control and end-call may (muting twice
// mutes; ending an ended call does nothing); say, add-message and transfer
// may not (the caller would hear the words twice).
func (m Message) Idempotent() bool { return m.idempotent }

// String names the message's type only, never its content.
func (m Message) String() string { return "callcontrol." + m.typ + " message" }

// GoString is String: %#v must not print the content either.
func (m Message) GoString() string { return m.String() }

// Format prints String whatever the verb (%d would print the body's bytes).
func (m Message) Format(f fmt.State, _ rune) { io.WriteString(f, m.String()) }

// SayOption sets an optional field of a say message.
type SayOption func(*sayBody)

// InterruptAssistant sets interruptAssistantEnabled: whether the message
// interrupts the assistant if it is speaking (Vapi's default: false, the
// message waits).
func InterruptAssistant(enabled bool) SayOption {
	return func(b *sayBody) { b.Interrupt = &enabled }
}

type sayBody struct {
	Type               string `json:"type"`
	Content            string `json:"content"`
	EndCallAfterSpoken bool   `json:"endCallAfterSpoken"`
	Interrupt          *bool  `json:"interruptAssistantEnabled,omitempty"`
}

// Say speaks content in the call:
// {"type":"say","content":...,"endCallAfterSpoken":...}; with
// endCallAfterSpoken the call ends once it is spoken. Not idempotent. The
// error wraps ErrInvalidMessage when content is empty, too long or not
// UTF-8.
func Say(content string, endCallAfterSpoken bool, opts ...SayOption) (Message, error) {
	if err := checkContent("content", content); err != nil {
		return Message{}, err
	}
	b := sayBody{Type: TypeSay, Content: content, EndCallAfterSpoken: endCallAfterSpoken}
	for _, o := range opts {
		o(&b)
	}
	return build(TypeSay, false, b)
}

// Message roles AddMessage accepts.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

type addBody struct {
	Type    string `json:"type"`
	Message struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	} `json:"message"`
	TriggerResponse bool `json:"triggerResponseEnabled"`
}

// AddMessage adds a message to the conversation:
// {"type":"add-message","message":{"role":...,"content":...},"triggerResponseEnabled":...}.
// role is system, user or assistant; with triggerResponse false the
// message is inserted silently, otherwise the assistant answers it. Not
// idempotent. The error wraps ErrInvalidMessage.
func AddMessage(role, content string, triggerResponse bool) (Message, error) {
	switch role {
	case RoleSystem, RoleUser, RoleAssistant:
	default:
		return Message{}, fmt.Errorf("%w: role %q is not one of system, user, assistant", ErrInvalidMessage, truncate(role, 32))
	}
	if err := checkContent("content", content); err != nil {
		return Message{}, err
	}
	b := addBody{Type: TypeAddMessage, TriggerResponse: triggerResponse}
	b.Message.Role, b.Message.Content = role, content
	return build(TypeAddMessage, false, b)
}

// Control sends a control action: {"type":"control","control":action},
// action one of MuteAssistant, UnmuteAssistant, MuteCustomer,
// UnmuteCustomer, SayFirstMessage. Idempotent, except say-first-message
// (which speaks). The error wraps ErrInvalidMessage for another action.
func Control(action string) (Message, error) {
	switch action {
	case MuteAssistant, UnmuteAssistant, MuteCustomer, UnmuteCustomer, SayFirstMessage:
	default:
		return Message{}, fmt.Errorf("%w: control %q is not one of mute-assistant, unmute-assistant, mute-customer, unmute-customer, say-first-message", ErrInvalidMessage, truncate(action, 32))
	}
	return build(TypeControl, action != SayFirstMessage, struct {
		Type    string `json:"type"`
		Control string `json:"control"`
	}{TypeControl, action})
}

// EndCall ends the call: {"type":"end-call"}. Idempotent.
func EndCall() Message {
	return Message{typ: TypeEndCall, body: []byte(`{"type":"end-call"}`), idempotent: true}
}

// Transfer transfers the call:
// {"type":"transfer","destination":destination,"content":content}.
// destination is Vapi's destination object, sent as given (compacted),
// such as {"type":"number","number":"+1234567890"} or
// {"type":"sip","sipUri":"sip:..."}; it must be a JSON object with a
// string "type". content, what the caller hears first, is omitted when
// empty. Not idempotent. The error wraps ErrInvalidMessage.
func Transfer(destination json.RawMessage, content string) (Message, error) {
	if len(destination) > MaxContentBytes {
		return Message{}, fmt.Errorf("%w: destination is over %d bytes", ErrInvalidMessage, MaxContentBytes)
	}
	var d struct {
		Type string `json:"type"`
	}
	if t := bytes.TrimSpace(destination); len(t) == 0 || t[0] != '{' || json.Unmarshal(t, &d) != nil {
		return Message{}, fmt.Errorf("%w: destination is not a JSON object", ErrInvalidMessage)
	}
	if d.Type == "" {
		return Message{}, fmt.Errorf("%w: destination has no \"type\" (such as number, sip)", ErrInvalidMessage)
	}
	if content != "" {
		if err := checkContent("content", content); err != nil {
			return Message{}, err
		}
	}
	return build(TypeTransfer, false, struct {
		Type        string          `json:"type"`
		Destination json.RawMessage `json:"destination"`
		Content     string          `json:"content,omitempty"`
	}{TypeTransfer, destination, content})
}

func checkContent(field, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: %s is empty", ErrInvalidMessage, field)
	case len(s) > MaxContentBytes:
		return fmt.Errorf("%w: %s is over %d bytes", ErrInvalidMessage, field, MaxContentBytes)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s is not UTF-8", ErrInvalidMessage, field)
	}
	return nil
}

func build(typ string, idempotent bool, v any) (Message, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Vapi reads the text as written: "<" stays "<", not "\u003c".
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return Message{}, fmt.Errorf("%w: %s: %v", ErrInvalidMessage, typ, err)
	}
	return Message{typ: typ, body: bytes.TrimRight(buf.Bytes(), "\n"), idempotent: idempotent}, nil
}

// truncate cuts s to at most n bytes, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
