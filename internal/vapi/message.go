// Package vapi provides the types of Vapi's server-URL protocol: the message
// envelope with every known message type, tolerant decoding of the payload
// variants in circulation, and Vapi's exact response shapes.
package vapi

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Message types voicegate acts on. Others decode and are answered with {}.
const (
	TypeAssistantRequest    = "assistant-request"
	TypeToolCalls           = "tool-calls"
	TypeFunctionCall        = "function-call"
	TypeTransferDestination = "transfer-destination-request"
	TypeHandoffDestination  = "handoff-destination-request"
	TypeEndpointing         = "call.endpointing.request"
	TypeCallDeleted         = "call.deleted"
	TypeCampaignPredial     = "campaign.predial"
	TypeKnowledgeBase       = "knowledge-base-request"
	TypeStatusUpdate        = "status-update"
	TypeEndOfCallReport     = "end-of-call-report"
	TypeHang                = "hang"
	TypeSpeechUpdate        = "speech-update"
	TypeTranscript          = "transcript"
	TypeTranscriptFinal     = `transcript[transcriptType="final"]`
	TypeConversationUpdate  = "conversation-update"
	TypeModelOutput         = "model-output"
	TypeUserInterrupted     = "user-interrupted"
	TypeTransferUpdate      = "transfer-update"
	TypePhoneCallControl    = "phone-call-control"
	TypeLanguageChange      = "language-change-detected"
	TypeVoiceInput          = "voice-input"
	TypeAssistantStarted    = "assistant.started"
	TypeSpeechStarted       = "assistant.speechStarted"
)

// KnownTypes lists every message type named in the protocol reference; it
// keeps metric label values bounded (anything else is counted as "unknown").
var KnownTypes = []string{
	TypeAssistantRequest, TypeToolCalls, TypeFunctionCall, TypeTransferDestination,
	TypeHandoffDestination, TypeKnowledgeBase, TypeStatusUpdate, TypeEndOfCallReport,
	TypeHang, TypeSpeechUpdate, TypeTranscript, TypeTranscriptFinal, TypeConversationUpdate,
	TypeModelOutput, TypeUserInterrupted, TypeTransferUpdate, TypePhoneCallControl,
	TypeLanguageChange, "language-changed", TypeVoiceInput, "voice-request",
	"call.endpointing.request", "chat.created", "chat.deleted", "session.created",
	"session.updated", "session.deleted", "call.deleted", "call.delete.failed",
	"call.artifact.upload", "campaign.predial", TypeAssistantStarted, TypeSpeechStarted,
}

var knownTypeSet = func() map[string]string {
	m := make(map[string]string, len(KnownTypes))
	for _, t := range KnownTypes {
		m[t] = t
	}
	return m
}()

// MetricType maps a message type to a bounded label value.
func MetricType(t string) string {
	if k, ok := knownTypeSet[t]; ok {
		return k
	}
	return "unknown"
}

// Envelope is the body of every request: {"message": {...}}.
type Envelope struct {
	Message *Message `json:"message"`
	// Voicegate is voicegate's own marker ({"dryRun": true}), sent by voicegate
	// simulate beside Vapi's message (never by Vapi). It is as authentic as
	// the rest of the request: an HMAC signature covers it. It is decoded
	// strictly: a marker that does not decode is refused, never ignored
	// (ignoring it would turn a requested dry run into a real call).
	Voicegate json.RawMessage `json:"voicegate"`
}

// ErrBadMarker is a voicegate marker that does not decode.
var ErrBadMarker = errors.New(`invalid "voicegate" marker: want {"dryRun": true|false}`)

// The marker is {"dryRun": true}: a full answer without side effects,
// nothing stored, no internal API called.

// Message is one server message. Fields not relevant to a type are empty.
// The conversation arrays (messages, messagesOpenAIFormatted) are not
// decoded: they are large, arrive on frequent messages, and voicegate does
// not need them (profiling showed copying them cost more than the rest of
// the decoding).
type Message struct {
	// Dropped names the optional fields of an unexpected type or format
	// that decoding left out ("timestamp", "call.status"), each once and
	// all of them, sorted; the message is used without them.
	Dropped []string `json:"-"`

	Type        string       `json:"type"`
	Timestamp   Timestamp    `json:"timestamp"`
	Call        *Call        `json:"call"`
	PhoneNumber *PhoneNumber `json:"phoneNumber"`
	Customer    *Customer    `json:"customer"`

	// status-update, speech-update
	Status      string `json:"status"`
	EndedReason string `json:"endedReason"`
	Role        string `json:"role"`
	Turn        int    `json:"turn"`

	// transcript
	TranscriptType string `json:"transcriptType"`
	Transcript     string `json:"transcript"`
	IsFiltered     bool   `json:"isFiltered"`

	// user-interrupted, model-output
	TurnID string `json:"turnId"`

	// tool-calls and legacy function-call
	ToolCallList         []ToolCall         `json:"toolCallList"`
	ToolWithToolCallList []ToolWithToolCall `json:"toolWithToolCallList"`
	ToolCalls            []ToolCall         `json:"toolCalls"`
	FunctionCall         *FunctionCall      `json:"functionCall"`

	// end-of-call-report (current shape under artifact/analysis, older on
	// message: TotalCost, SummaryText, SuccessEvaluation, RecordingConsent
	// and RecordingURLs read both). Message lists are not
	// decoded: voicegate does not need them, and skipping them avoids
	// copying kilobytes per message. Summary, structured data, transcripts
	// and recording URLs are personal data: kept sealed in the call's
	// records (the whole message, as sent), never logged.
	Artifact        *Artifact   `json:"artifact"`
	Cost            *float64    `json:"cost"`
	Costs           []Cost      `json:"costs"`
	Analysis        *Analysis   `json:"analysis"`
	Compliance      *Compliance `json:"compliance"`
	StartedAt       string      `json:"startedAt"`
	EndedAt         string      `json:"endedAt"`
	DurationSeconds *float64    `json:"durationSeconds"`
	DurationMs      *float64    `json:"durationMs"`
	Summary         string      `json:"summary"`
	RecordingURL    string      `json:"recordingUrl"`
	// StereoRecordingURL is the older report's stereo recording.
	StereoRecordingURL string `json:"stereoRecordingUrl"`

	// phone-call-control, transfer-update, handoff-destination-request
	Request       string          `json:"request"`
	Destination   json.RawMessage `json:"destination"`
	ToAssistant   json.RawMessage `json:"toAssistant"`
	FromAssistant json.RawMessage `json:"fromAssistant"`
	Parameters    json.RawMessage `json:"parameters"`

	// model-output, language-change-detected, voice-input, voice-request,
	// assistant.speechStarted, campaign.predial
	Output     json.RawMessage `json:"output"`
	Language   string          `json:"language"`
	Input      string          `json:"input"`
	Text       string          `json:"text"`
	SampleRate int             `json:"sampleRate"`
	Source     string          `json:"source"`
	CampaignID string          `json:"campaignId"`
	Contact    *Contact        `json:"contact"`

	// chat.* and session.*: what voicegate keeps of them (ids, no text).
	Chat    *ChatRef `json:"chat"`
	Session *ChatRef `json:"session"`

	// DryRun is set from the envelope's marker.
	DryRun bool `json:"-"`
	// Body is the request's raw body, set by the source: valid only while
	// the request is handled (its buffer is reused after).
	Body []byte `json:"-"`
}

// RawMessage returns the raw "message" object of body (for a record of
// everything it carries, as sent).
func RawMessage(body []byte) (json.RawMessage, error) {
	var env struct {
		Message json.RawMessage `json:"message"`
	}
	if err := json.Unmarshal(body, &env); err != nil || len(env.Message) == 0 {
		return nil, ErrNoMessage
	}
	return env.Message, nil
}

// OpenAIMessages returns the message's messagesOpenAIFormatted (not
// decoded with the rest: it is large and rarely needed).
func OpenAIMessages(body []byte) json.RawMessage {
	var env struct {
		Message struct {
			Messages json.RawMessage `json:"messagesOpenAIFormatted"`
		} `json:"message"`
	}
	json.Unmarshal(body, &env) // a malformed list reads as none
	return env.Message.Messages
}

// ChatRef is what voicegate reads of a chat or a session: its ids, never
// its messages.
type ChatRef struct {
	ID          string `json:"id"`
	AssistantID string `json:"assistantId"`
	SessionID   string `json:"sessionId"`
	Status      string `json:"status"`
}

// Contact is a campaign's contact (what voicegate reads of it).
type Contact struct {
	Number   string `json:"number"`
	TimeZone string `json:"timeZone"`
}

// Call is the call object Vapi attaches to messages.
type Call struct {
	ID            string `json:"id"`
	OrgID         string `json:"orgId"`
	Type          string `json:"type"`
	Status        string `json:"status"`
	PhoneNumberID string `json:"phoneNumberId"`
	AssistantID   string `json:"assistantId"`
	SquadID       string `json:"squadId"`
	// The carrier of a phone call and its id there (Twilio's CallSid).
	PhoneCallProvider   string       `json:"phoneCallProvider"`
	PhoneCallProviderID string       `json:"phoneCallProviderId"`
	Customer            *Customer    `json:"customer"`
	PhoneNumber         *PhoneNumber `json:"phoneNumber"`
	Monitor             *Monitor     `json:"monitor"`
}

// Monitor holds the Live Call Control URLs of a call.
type Monitor struct {
	ListenURL  string `json:"listenUrl"`
	ControlURL string `json:"controlUrl"`
}

// PhoneNumber is the Vapi phone number a call arrived on.
type PhoneNumber struct {
	ID     string `json:"id"`
	Number string `json:"number"`
	// TwilioPhoneNumber is the number of call.phoneNumber, which Vapi's
	// SDK types as an imported Twilio number (ImportTwilioPhoneNumberDto).
	TwilioPhoneNumber string `json:"twilioPhoneNumber"`
}

// E164 returns the number, as either shape names it.
func (p *PhoneNumber) E164() string {
	if p == nil {
		return ""
	}
	return cmp.Or(p.Number, p.TwilioPhoneNumber)
}

// Customer is the other party of a call.
type Customer struct {
	Number string `json:"number"`
}

// Artifact carries end-of-call material (the parts voicegate reads).
type Artifact struct {
	Transcript         string     `json:"transcript"`
	RecordingURL       string     `json:"recordingUrl"`
	StereoRecordingURL string     `json:"stereoRecordingUrl"`
	Recording          *Recording `json:"recording"`
}

// Recording is an end-of-call report's artifact.recording: where Vapi
// keeps the call's recordings.
type Recording struct {
	StereoURL string         `json:"stereoUrl"`
	VideoURL  string         `json:"videoUrl"`
	Mono      *MonoRecording `json:"mono"`
}

// MonoRecording is a recording's mono tracks.
type MonoRecording struct {
	CombinedURL  string `json:"combinedUrl"`
	AssistantURL string `json:"assistantUrl"`
	CustomerURL  string `json:"customerUrl"`
}

// Cost is one item of an end-of-call report's costs: what one part of
// the call (transport, transcriber, model, voice, vapi, analysis, ...)
// cost, in USD.
type Cost struct {
	Type string   `json:"type"`
	Cost *float64 `json:"cost"`
}

// Analysis is an end-of-call report's analysis. Summary and StructuredData
// are personal data.
type Analysis struct {
	Summary        string                     `json:"summary"`
	StructuredData map[string]json.RawMessage `json:"structuredData"`
	// SuccessEvaluation is the call's evaluation by the assistant's rubric
	// ("true", "8", "Excellent", ...).
	SuccessEvaluation string `json:"successEvaluation"`
}

// Compliance is an end-of-call report's compliance section.
type Compliance struct {
	RecordingConsent *RecordingConsent `json:"recordingConsent"`
}

// RecordingConsent is how the caller consented to the recording
// ("stay-on-line", "verbal") and when.
type RecordingConsent struct {
	Type      string `json:"type"`
	GrantedAt string `json:"grantedAt"`
}

// TotalCost returns what the call cost: the report's cost, else the sum of
// its costs items (when any has one).
func (m *Message) TotalCost() (float64, bool) {
	if m.Cost != nil {
		return *m.Cost, true
	}
	var sum float64
	found := false
	for _, c := range m.Costs {
		if c.Cost != nil {
			sum, found = sum+*c.Cost, true
		}
	}
	return sum, found
}

// SummaryText returns the report's summary: analysis.summary, else the
// older report's summary on the message. Personal data.
func (m *Message) SummaryText() string {
	if m.Analysis != nil && m.Analysis.Summary != "" {
		return m.Analysis.Summary
	}
	return m.Summary
}

// SuccessEvaluation returns the report's analysis.successEvaluation, or "".
func (m *Message) SuccessEvaluation() string {
	if m.Analysis != nil {
		return m.Analysis.SuccessEvaluation
	}
	return ""
}

// RecordingConsent returns the report's compliance.recordingConsent, or nil.
func (m *Message) RecordingConsent() *RecordingConsent {
	if m.Compliance != nil {
		return m.Compliance.RecordingConsent
	}
	return nil
}

// RecordingURLs returns the report's mono (combined) and stereo recording
// URLs from whichever shape carries them: artifact.recording, else
// artifact.recordingUrl and stereoRecordingUrl, else the older report's
// recordingUrl and stereoRecordingUrl on the message. Personal data.
func (m *Message) RecordingURLs() (mono, stereo string) {
	if a := m.Artifact; a != nil {
		if r := a.Recording; r != nil {
			stereo = r.StereoURL
			if r.Mono != nil {
				mono = r.Mono.CombinedURL
			}
		}
		mono, stereo = cmp.Or(mono, a.RecordingURL), cmp.Or(stereo, a.StereoRecordingURL)
	}
	return cmp.Or(mono, m.RecordingURL), cmp.Or(stereo, m.StereoRecordingURL)
}

// FunctionCall is the legacy function-call payload.
type FunctionCall struct {
	Name       string          `json:"name"`
	Parameters json.RawMessage `json:"parameters"`
}

// ToolCall is one tool call in any of the shapes in circulation: {id, name,
// parameters}, {id, name, arguments}, or {id, type, function: {name,
// arguments|parameters}}.
type ToolCall struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	Arguments  json.RawMessage `json:"arguments"`
	Parameters json.RawMessage `json:"parameters"`
	Function   *Function       `json:"function"`
}

// Function is the OpenAI-style function part of a tool call.
type Function struct {
	Name       string          `json:"name"`
	Arguments  json.RawMessage `json:"arguments"`
	Parameters json.RawMessage `json:"parameters"`
}

// ToolWithToolCall is an item of toolWithToolCallList.
type ToolWithToolCall struct {
	Name     string    `json:"name"`
	Function *Function `json:"function"`
	ToolCall *ToolCall `json:"toolCall"`
}

// Invocation is a tool call normalised from any shape.
type Invocation struct {
	ID   string
	Name string
	// Args is a JSON object (or null); a JSON-string encoding is undone.
	Args json.RawMessage
	// ArgsErr is set when the arguments are not valid JSON; the tool is then
	// answered with an error the model can act on.
	ArgsErr error
}

// Invocations returns the message's tool calls in call order, whichever list
// and item shape the sender used.
func (m *Message) Invocations() []Invocation {
	list := m.ToolCallList
	if len(list) == 0 {
		list = m.ToolCalls
	}
	if len(list) > 0 {
		out := make([]Invocation, 0, len(list))
		for i := range list {
			out = append(out, list[i].invocation(""))
		}
		return out
	}
	out := make([]Invocation, 0, len(m.ToolWithToolCallList))
	for _, tw := range m.ToolWithToolCallList {
		if tw.ToolCall == nil {
			continue
		}
		name := tw.Name
		if name == "" && tw.Function != nil {
			name = tw.Function.Name
		}
		out = append(out, tw.ToolCall.invocation(name))
	}
	return out
}

func (tc *ToolCall) invocation(fallbackName string) Invocation {
	inv := Invocation{ID: tc.ID, Name: tc.Name}
	raw := tc.Arguments
	if len(raw) == 0 {
		raw = tc.Parameters
	}
	if f := tc.Function; f != nil {
		if inv.Name == "" {
			inv.Name = f.Name
		}
		if len(raw) == 0 {
			raw = f.Arguments
		}
		if len(raw) == 0 {
			raw = f.Parameters
		}
	}
	if inv.Name == "" {
		inv.Name = fallbackName
	}
	inv.Args, inv.ArgsErr = NormalizeArgs(raw)
	return inv
}

// NormalizeArgs turns arguments given as an object, null, absent, or a JSON
// string holding an object into a JSON object.
func NormalizeArgs(raw json.RawMessage) (json.RawMessage, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return json.RawMessage("{}"), nil
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, fmt.Errorf("arguments are not valid JSON: %w", err)
		}
		s2 := bytes.TrimSpace([]byte(s))
		if len(s2) == 0 {
			return json.RawMessage("{}"), nil
		}
		if !json.Valid(s2) {
			return nil, errors.New("arguments string does not hold valid JSON")
		}
		raw = s2
	}
	if raw[0] != '{' {
		return nil, errors.New("arguments must be a JSON object")
	}
	return raw, nil
}

// CallID returns the id of the call the message belongs to, or "".
func (m *Message) CallID() string {
	if m.Call != nil {
		return m.Call.ID
	}
	return ""
}

// CustomerNumber returns the number of the call's other party (the
// caller of an inbound call), or "".
func (m *Message) CustomerNumber() string {
	if m.Customer != nil && m.Customer.Number != "" {
		return m.Customer.Number
	}
	if m.Call != nil && m.Call.Customer != nil {
		return m.Call.Customer.Number
	}
	return ""
}

// Timestamp accepts Vapi's two encodings: milliseconds since the epoch as a
// number, or an ISO 8601 string.
type Timestamp struct {
	time.Time
	// Malformed: the field was there but is neither (true, {"at":1},
	// "yesterday"): dropped, the time stays zero.
	Malformed bool
}

// UnmarshalJSON implements json.Unmarshaler. It never fails: a value that
// is neither encoding is dropped (Malformed), and a value outside
// 2000–2200 (NaN, infinities, 1e300, year 9999) too, so that the
// receiver's clock is used instead, never a wrapped-around 64-bit time. A
// malformed optional field never makes a message unusable.
func (t *Timestamp) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	if b[0] == '"' {
		var s string
		if json.Unmarshal(b, &s) != nil {
			t.Malformed = true
			return nil
		}
		if s == "" {
			return nil
		}
		// ISO 8601 with a zone, or without one (UTC), as the barge-in
		// policy reads timestamps.
		if v, ok := ParseISO(s); ok {
			t.Time = plausible(v)
			return nil
		}
		if n, err := strconv.ParseFloat(s, 64); err == nil {
			t.Time = fromMillis(n)
			return nil
		}
		t.Malformed = true
		return nil
	}
	n, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		t.Malformed = true
		return nil
	}
	t.Time = fromMillis(n)
	return nil
}

// knownFields are the dotted paths of Message's JSON fields, lower-cased
// (array elements have no index), built once from the struct tags.
var knownFields = func() map[string]string {
	out := map[string]string{}
	var walk func(prefix string, t reflect.Type, depth int)
	walk = func(prefix string, t reflect.Type, depth int) {
		for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct || depth > 4 {
			return
		}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			p := prefix + name
			out[strings.ToLower(p)] = p
			walk(p+".", f.Type, depth+1)
		}
	}
	walk("", reflect.TypeOf(Message{}), 0)
	return out
}()

// fieldLabel is a dropped field's name as a bounded label: the schema's
// spelling of the path (array indexes dropped, case folded, as
// encoding/json matches keys), or "other".
func fieldLabel(path string) string {
	var parts []string
	for _, p := range strings.Split(path, ".") {
		if p != "" && strings.Trim(p, "0123456789") != "" {
			parts = append(parts, p)
		}
	}
	if f, ok := knownFields[strings.ToLower(strings.Join(parts, "."))]; ok {
		return f
	}
	return "other"
}

// ParseISO reads an ISO 8601 time as Vapi and the barge-in policy write
// it: T or space between date and time, fractional seconds, a zone of Z,
// ±hh:mm, ±hhmm or ±hh, or none (UTC).
func ParseISO(s string) (time.Time, bool) {
	for _, layout := range isoLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// isoLayouts are the ISO 8601 forms a timestamp string may take.
var isoLayouts = func() []string {
	var out []string
	for _, sep := range []string{"T", " "} {
		for _, zone := range []string{"Z07:00", "Z0700", "Z07", ""} {
			out = append(out, "2006-01-02"+sep+"15:04:05.999999999"+zone)
		}
	}
	return out
}()

var (
	minTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// fromMillis converts milliseconds since the epoch, dropping values that
// are not finite or not plausible before converting (a float beyond the
// int64 range converts to an unspecified value).
func fromMillis(n float64) time.Time {
	if !(n >= float64(minTime.UnixMilli()) && n <= float64(maxTime.UnixMilli())) { // NaN fails both
		return time.Time{}
	}
	return time.UnixMilli(int64(n))
}

func plausible(v time.Time) time.Time {
	if v.Before(minTime) || v.After(maxTime) {
		return time.Time{}
	}
	return v
}

// ErrNoMessage is returned for valid JSON without a "message" object.
var ErrNoMessage = errors.New(`body has no "message" object`)

// ErrNoType is returned for a message without a "type".
var ErrNoType = errors.New(`message has no "type"`)

// Decode parses a request body. The error text is safe to return to the
// sender: it names the problem, never echoes the body.
func Decode(body []byte) (*Message, error) {
	var env Envelope
	if err := json.Unmarshal(body, &env); err != nil {
		// A field of an unexpected type (Vapi's payloads drift) does not
		// make the message unusable: encoding/json fills everything else,
		// and the field is noted as dropped. encoding/json names the
		// first such field only: a second pass names them all.
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) || env.Message == nil {
			return nil, describeJSONError(err)
		}
		m := env.Message
		for _, f := range dropMistyped(body, reflect.ValueOf(&env).Elem()) {
			if f, ok := strings.CutPrefix(f, "message."); ok {
				m.Dropped = append(m.Dropped, fieldLabel(f))
			}
		}
		env.Message = m // a later "message" key that is not an object: the one decoded stands
		if f, ok := strings.CutPrefix(te.Field, "message."); ok {
			env.Message.Dropped = append(env.Message.Dropped, fieldLabel(f)) // named above too, unless the pass missed it
		}
	}
	if env.Message == nil {
		return nil, ErrNoMessage
	}
	if env.Message.Timestamp.Malformed {
		env.Message.Dropped = append(env.Message.Dropped, "timestamp")
	}
	if len(env.Message.Dropped) > 1 {
		slices.Sort(env.Message.Dropped)
		env.Message.Dropped = slices.Compact(env.Message.Dropped)
	}
	if env.Message.Type == "" && (len(env.Message.ToolCallList) > 0 || len(env.Message.ToolWithToolCallList) > 0) {
		// The one message whose type Vapi's SDK makes optional
		// (ServerMessageToolCalls in @vapi-ai/server-sdk 2.0.1): its
		// tool calls are answered, not refused.
		env.Message.Type = TypeToolCalls
	}
	if env.Message.Type == "" {
		return nil, ErrNoType
	}
	if len(env.Voicegate) > 0 && string(env.Voicegate) != "null" {
		// Exact keys and types (encoding/json would match "dryrun" too).
		var fields map[string]json.RawMessage
		if json.Unmarshal(env.Voicegate, &fields) != nil || fields == nil {
			return nil, ErrBadMarker
		}
		for k, v := range fields {
			switch {
			case k == "dryRun" && string(v) == "true":
				env.Message.DryRun = true
			case k == "dryRun" && string(v) == "false":
			default:
				return nil, ErrBadMarker
			}
		}
	}
	return env.Message, nil
}

func describeJSONError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Errorf("invalid JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		if te.Field != "" {
			return fmt.Errorf("invalid JSON: field %s has the wrong type (%s)", te.Field, te.Value)
		}
		return fmt.Errorf("invalid JSON: expected an object")
	}
	if err.Error() == "unexpected end of JSON input" {
		return errors.New("invalid JSON: unexpected end of input")
	}
	return fmt.Errorf("invalid JSON: %v", err)
}

// Duration returns the call's duration from the report, if known.
func (m *Message) Duration() (float64, bool) {
	switch {
	case m.DurationSeconds != nil:
		return *m.DurationSeconds, true
	case m.DurationMs != nil:
		return *m.DurationMs / 1000, true
	}
	s, err1 := time.Parse(time.RFC3339Nano, m.StartedAt)
	e, err2 := time.Parse(time.RFC3339Nano, m.EndedAt)
	if err1 == nil && err2 == nil && !e.Before(s) {
		return e.Sub(s).Seconds(), true
	}
	return 0, false
}
