package gateway_test

// Every server message of Vapi's official server SDK, sent through the
// real HTTP handler, and each answer checked against the SDK's response
// shape.
//
// Source of the shapes: @vapi-ai/server-sdk 2.0.1 on npm (read, not
// vendored: `npm install @vapi-ai/server-sdk@2.0.1` in a scratch folder),
// dist/esm/api/types/:
//   - ServerMessageMessage.d.mts, the union of the messages, and each
//     member's ServerMessage<Type>.d.mts (with the *Type.d.mts literals):
//     the messages of testdata/sdk/messages.json, every required field and
//     realistic optional ones (Call, Artifact, Analysis, CampaignContact,
//     Chat, Session, OpenAiMessage, ... from the same folder);
//   - ServerMessageResponseMessageResponse.d.mts, the union of the answers,
//     and ServerMessageResponse<Type>.d.mts: the shapes below.
//
// Where Vapi's documentation allows what the SDK's type does not, the
// shape says so and names the page (a handoff answered with an error
// alone; a transfer message's text also under "message").

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/dispatch"
	"github.com/voicegate/voicegate/internal/knowledge"
	"github.com/voicegate/voicegate/internal/predial"
)

// sdkMessageTypes are the types of the members of the SDK's
// ServerMessageMessage union (ServerMessage*Type.d.mts), the literal
// final-transcript type included.
var sdkMessageTypes = []string{
	"assistant-request", "conversation-update", "end-of-call-report", "handoff-destination-request", "hang",
	"knowledge-base-request", "model-output", "phone-call-control", "speech-update", "status-update", "tool-calls",
	"transfer-destination-request", "transfer-update", "transcript", `transcript[transcriptType="final"]`,
	"user-interrupted", "language-change-detected", "voice-input", "assistant.speechStarted", "voice-request",
	"call.endpointing.request", "chat.created", "chat.deleted", "session.created", "session.updated",
	"session.deleted", "call.deleted", "call.delete.failed", "call.artifact.upload", "campaign.predial",
}

// jsonShape is the SDK's type of a JSON value.
type jsonShape struct {
	kind string // "object", "array", "string", "number", "boolean", "any"
	// fields are an object's declared fields; nil: any members
	// (Record<string, unknown>).
	fields map[string]field
	elem   *jsonShape // an array's elements
	enum   []string   // a string's values
	// check is a rule beyond the types (a union's discriminated fields,
	// what makes an answer usable).
	check func(v map[string]any) error
}

type field struct {
	jsonShape
	required bool
	// docs names where Vapi's documentation allows a field the SDK's type
	// does not declare, or leaving out one it requires: a documented
	// deviation, accepted.
	docs string
}

func str() jsonShape                   { return jsonShape{kind: "string"} }
func num() jsonShape                   { return jsonShape{kind: "number"} }
func boolean() jsonShape               { return jsonShape{kind: "boolean"} }
func anyJSON() jsonShape               { return jsonShape{kind: "any"} }
func record() jsonShape                { return jsonShape{kind: "object"} }
func oneOf(v ...string) jsonShape      { return jsonShape{kind: "string", enum: v} }
func arr(e jsonShape) jsonShape        { return jsonShape{kind: "array", elem: &e} }
func obj(f map[string]field) jsonShape { return jsonShape{kind: "object", fields: f} }
func req(s jsonShape) field            { return field{jsonShape: s, required: true} }
func opt(s jsonShape) field            { return field{jsonShape: s} }

// needs returns a check that the field named by the discriminator's value
// is present (TransferDestinationNumber needs number, ...Sip sipUri).
func needs(disc string, by map[string]string) func(map[string]any) error {
	return func(v map[string]any) error {
		f, ok := by[fmt.Sprint(v[disc])]
		if !ok {
			return nil
		}
		if s, _ := v[f].(string); s == "" {
			return fmt.Errorf("%s %q without %s", disc, v[disc], f)
		}
		return nil
	}
}

// transferDestination is TransferDestinationNumber | TransferDestinationSip
// (| TransferDestinationAssistant when assistant is allowed), as the
// answers' destination unions declare them.
func transferDestination(types ...string) jsonShape {
	s := obj(map[string]field{
		"type": req(oneOf(types...)),
		// TransferDestinationNumber
		"number": opt(str()), "extension": opt(str()), "numberE164CheckEnabled": opt(boolean()),
		// TransferDestinationSip
		"sipUri": opt(str()), "sipHeaders": opt(record()),
		// TransferDestinationAssistant
		"assistantName": opt(str()), "transferMode": opt(str()),
		// all
		"message": opt(anyJSON()), "callerId": opt(str()), "transferPlan": opt(record()), "name": opt(str()), "description": opt(str()),
	})
	s.check = needs("type", map[string]string{"number": "number", "sip": "sipUri", "assistant": "assistantName"})
	return s
}

// nonEmpty reports whether v[k] is a non-empty string.
func nonEmpty(v map[string]any, k string) bool { s, _ := v[k].(string); return s != "" }

// sdkResponses are the SDK's answer shapes by message type
// (ServerMessageResponse*.d.mts); "" is a message with no answer of its
// own: {}.
var sdkResponses = map[string]jsonShape{
	// ServerMessageResponseAssistantRequest
	"assistant-request": func() jsonShape {
		s := obj(map[string]field{
			"destination": opt(transferDestination("number", "sip")),
			"assistantId": opt(str()), "assistant": opt(record()), "assistantOverrides": opt(record()),
			"squadId": opt(str()), "squad": opt(record()), "squadOverrides": opt(record()),
			"workflowId": opt(str()), "workflow": opt(record()), "workflowOverrides": opt(record()),
			"error": opt(str()),
		})
		s.check = func(v map[string]any) error {
			// An empty error is spoken as "Unknown Error"; no choice at all
			// ends the call.
			if _, ok := v["error"]; ok && !nonEmpty(v, "error") {
				return fmt.Errorf("an empty error")
			}
			for _, k := range []string{"error", "destination", "assistantId", "assistant", "squadId", "squad", "workflowId", "workflow"} {
				if v[k] != nil {
					return nil
				}
			}
			return fmt.Errorf("neither a choice nor an error")
		}
		return s
	}(),
	// ServerMessageResponseHandoffDestinationRequest
	"handoff-destination-request": func() jsonShape {
		d := req(record())
		d.docs = "required by the SDK's type; VapiAI/docs fern/squads/handoff/destinations.mdx: \"If the handoff should not execute, either respond with an empty destination, or provide a custom error\", shown as {\"error\": ...} alone"
		s := obj(map[string]field{"result": opt(str()), "destination": d, "error": opt(str())})
		s.check = func(v map[string]any) error {
			if dest, _ := v["destination"].(map[string]any); len(dest) > 0 || nonEmpty(v, "error") {
				return nil
			}
			return fmt.Errorf("neither a destination nor an error")
		}
		return s
	}(),
	// ServerMessageResponseKnowledgeBaseRequest (KnowledgeBaseResponseDocument, CustomMessage)
	"knowledge-base-request": obj(map[string]field{
		"documents": opt(arr(obj(map[string]field{"content": req(str()), "similarity": req(num()), "uuid": opt(str())}))),
		"message":   opt(obj(map[string]field{"type": req(oneOf("custom-message")), "content": opt(str()), "contents": opt(arr(anyJSON()))})),
	}),
	// ServerMessageResponseToolCalls (ToolCallResult)
	"tool-calls": obj(map[string]field{
		"results": opt(arr(func() jsonShape {
			s := obj(map[string]field{
				"message": opt(anyJSON()), "name": req(str()), "toolCallId": req(str()),
				"result": opt(str()), "error": opt(str()), "metadata": opt(record()),
			})
			s.check = func(v map[string]any) error {
				_, r := v["result"]
				_, e := v["error"]
				if r == e {
					return fmt.Errorf("not exactly one of result and error")
				}
				if s := fmt.Sprint(v["result"], v["error"]); strings.ContainsAny(s, "\r\n") {
					return fmt.Errorf("a result on several lines")
				}
				return nil
			}
			return s
		}())),
		"error": opt(str()),
	}),
	// ServerMessageResponseTransferDestinationRequest
	"transfer-destination-request": func() jsonShape {
		text := opt(str())
		text.docs = "not in the SDK's ToolMessageStart (its text is content); https://docs.vapi.ai/server-url/events names it message: both are sent"
		s := obj(map[string]field{
			"destination": opt(transferDestination("assistant", "number", "sip")),
			"message": opt(obj(map[string]field{
				"type": req(oneOf("request-start", "request-complete", "request-failed", "request-response-delayed")),
				// ToolMessageStart, ...Complete, ...Failed, ...Delayed
				"content": opt(str()), "contents": opt(arr(anyJSON())), "blocking": opt(boolean()), "conditions": opt(arr(anyJSON())),
				"role": opt(str()), "endCallAfterSpokenEnabled": opt(boolean()), "timingMilliseconds": opt(num()),
				"message": text,
			})),
			"error": opt(str()),
		})
		s.check = func(v map[string]any) error {
			if v["destination"] == nil && !nonEmpty(v, "error") {
				return fmt.Errorf("neither a destination nor an error")
			}
			return nil
		}
		return s
	}(),
	// ServerMessageResponseCallEndpointingRequest
	"call.endpointing.request": func() jsonShape {
		s := obj(map[string]field{"timeoutSeconds": req(num())})
		s.check = func(v map[string]any) error {
			if t, _ := v["timeoutSeconds"].(float64); t < 0 || t > 15 {
				return fmt.Errorf("timeoutSeconds %v outside 0-15", t)
			}
			return nil
		}
		return s
	}(),
	// ServerMessageResponseCampaignPredial: anything else is a pre-dial
	// failure and the call is not placed.
	"campaign.predial": obj(map[string]field{"eligible": req(boolean())}),
	// No answer of its own (ServerMessageResponseVoiceRequest documents
	// raw PCM, which voicegate does not produce yet: {}).
	"": obj(map[string]field{}),
}

// conform returns where v departs from s (path-qualified).
func conform(path string, v any, s jsonShape) []string {
	var probs []string
	bad := func(f string, a ...any) { probs = append(probs, path+": "+fmt.Sprintf(f, a...)) }
	switch s.kind {
	case "any":
	case "string":
		x, ok := v.(string)
		if !ok {
			bad("want a string, got %T", v)
		} else if len(s.enum) > 0 && !slices.Contains(s.enum, x) {
			bad("%q is not one of %q", x, s.enum)
		}
	case "number":
		if _, ok := v.(float64); !ok {
			bad("want a number, got %T", v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			bad("want a boolean, got %T", v)
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			bad("want an array, got %T", v)
			break
		}
		for i, e := range a {
			probs = append(probs, conform(fmt.Sprintf("%s[%d]", path, i), e, *s.elem)...)
		}
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			bad("want an object, got %T", v)
			break
		}
		if s.fields != nil {
			for k, x := range m {
				f, ok := s.fields[k]
				if !ok {
					bad("%q is not a field of the SDK's type", k)
					continue
				}
				if x == nil {
					bad("%q is null", k)
					continue
				}
				probs = append(probs, conform(path+"."+k, x, f.jsonShape)...)
			}
			for k, f := range s.fields {
				if _, ok := m[k]; f.required && !ok && f.docs == "" {
					bad("the SDK's type requires %q", k)
				}
			}
		}
		if s.check != nil {
			if err := s.check(m); err != nil {
				bad("%v", err)
			}
		}
	}
	return probs
}

// contains reports whether got holds want: every member of an object,
// every element of an array (same length), equal scalars.
func contains(got, want any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			if !contains(g[k], wv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !contains(g[i], w[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(got, want)
}

type sdkRow struct {
	Name     string         `json:"name"`
	Response string         `json:"response"`
	Status   int            `json:"status"`
	Bare     bool           `json:"bare"`
	Contains any            `json:"contains"`
	Message  map[string]any `json:"message"`
}

// TestSDKServerMessages: every message type of the SDK's union, in the
// SDK's shape, is answered through the real handler with the status and,
// for each type whose answer the SDK defines, an answer of the SDK's shape
// (field names and JSON types, required fields, the discriminated
// destination fields) — and what the row expects of it.
func TestSDKServerMessages(t *testing.T) {
	var fixture struct {
		Common   map[string]any `json:"common"`
		Messages []sdkRow       `json:"messages"`
	}
	b, err := os.ReadFile("testdata/sdk/messages.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &fixture); err != nil {
		t.Fatal(err)
	}
	search := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"documents":[{"content":"Appointments can be moved up to 24 hours before.","similarity":0.91,"uuid":"kb-7"}]}`)
	}))
	t.Cleanup(search.Close)
	dnc := t.TempDir() + "/dnc.txt"
	if err := os.WriteFile(dnc, []byte("+12125550100\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, func(c *config.Config) {
		c.Vapi.MaxBodyBytes = 64 << 10 // SDK-shaped messages carry the whole call
		c.Vapi.Handoff.Routes = []dispatch.HandoffRoute{{Name: "billing", Destination: map[string]any{"type": "assistant", "assistantName": "Billing"}}}
		c.Vapi.KnowledgeBase.Bases = map[string]knowledge.Base{"search": {SearchAPI: &config.ToolConfig{URL: search.URL + "/search"}}}
		c.Vapi.KnowledgeBase.MaxDocuments = 1
		c.Vapi.Predial = predial.Config{DoNotCallFile: dnc}
		if err := c.Check(config.Options{}); err != nil {
			t.Fatal(err)
		}
	})
	seenTypes := map[string]bool{}
	seenAnswers := map[string]bool{}
	for i, row := range fixture.Messages {
		t.Run(row.Name, func(t *testing.T) {
			msg := map[string]any{}
			if !row.Bare {
				for k, v := range clone(fixture.Common) {
					msg[k] = v
				}
			}
			for k, v := range clone(row.Message) {
				if base, ok := msg[k].(map[string]any); ok && k == "call" {
					for ck, cv := range v.(map[string]any) {
						base[ck] = cv
					}
					continue
				}
				msg[k] = v
			}
			if c, ok := msg["call"].(map[string]any); ok {
				c["id"] = fmt.Sprintf("sdk-%02d", i)
			}
			msg["timestamp"] = 1772460000000 + int64(i)*1000
			body, _ := json.Marshal(map[string]any{"message": msg})
			typ, _ := msg["type"].(string)
			if typ == "" {
				typ = "tool-calls" // optional on ServerMessageToolCalls alone
			}
			seenTypes[typ] = true

			status, out := e.send(string(body))
			want := row.Status
			if want == 0 {
				want = http.StatusOK
			}
			if status != want {
				t.Fatalf("status %d, want %d: %s", status, want, out)
			}
			shape, ok := sdkResponses[row.Response]
			if !ok {
				t.Fatalf("no SDK shape %q", row.Response)
			}
			if row.Response != "" {
				seenAnswers[row.Response] = true
				if row.Response != typ {
					t.Fatalf("a %s answered as a %s", typ, row.Response)
				}
			} else if out != "{}" {
				t.Fatalf("answer %s, want {}", out)
			}
			var got any
			if err := json.Unmarshal([]byte(out), &got); err != nil {
				t.Fatalf("answer %s: %v", out, err)
			}
			for _, p := range conform("answer", got, shape) {
				t.Errorf("%s\n  in %s", p, out)
			}
			if row.Contains != nil && !contains(got, row.Contains) {
				want, _ := json.Marshal(row.Contains)
				t.Errorf("answer %s does not hold %s", out, want)
			}
			if typ == "tool-calls" {
				// Each tool call answered, by its id, in call order.
				var ids []string
				for _, tc := range msg["toolCallList"].([]any) {
					ids = append(ids, tc.(map[string]any)["id"].(string))
				}
				var answered []string
				for _, r := range got.(map[string]any)["results"].([]any) {
					answered = append(answered, r.(map[string]any)["toolCallId"].(string))
				}
				if !slices.Equal(ids, answered) {
					t.Errorf("results for %q, want %q", answered, ids)
				}
			}
		})
	}
	for _, typ := range sdkMessageTypes {
		if !seenTypes[typ] {
			t.Errorf("no row for the SDK's %s", typ)
		}
	}
	for typ := range seenTypes {
		if !slices.Contains(sdkMessageTypes, typ) {
			t.Errorf("a row for %s, which is not in the SDK's union", typ)
		}
	}
	for answer := range sdkResponses {
		if answer != "" && !seenAnswers[answer] {
			t.Errorf("no row checks the SDK's answer to %s", answer)
		}
	}
	if logs := e.logs.String(); strings.Contains(logs, "Jane Roe") || strings.Contains(logs, "5550123") || strings.Contains(logs, "move my appointment") || strings.Contains(logs, "moved her appointment") {
		t.Fatalf("personal data from a message reached the log:\n%s", tail(logs, 3000))
	}
}

// clone deep-copies a decoded JSON object.
func clone(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}
