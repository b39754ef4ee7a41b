package vapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "vapi", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type inv struct{ ID, Name, Args string }

func invs(m *Message) []inv {
	var out []inv
	for _, i := range m.Invocations() {
		a := string(i.Args)
		if i.ArgsErr != nil {
			a = "ERR"
		}
		out = append(out, inv{i.ID, i.Name, a})
	}
	return out
}

func TestToolCallShapes(t *testing.T) {
	cases := []struct {
		file string
		want []inv
	}{
		{"tool-calls-events.json", []inv{{"abc123", "sendEmail", `{ "emailAddress": "john@example.com", "message": "Hi!" }`}}},
		{"tool-calls-v4k.json", []inv{{"call_fzEwCjWnJsuwoeGQGbITcnpw", "WeatherLookupService0--getWeatherOutside", `{}`}}},
		{"tool-calls-oas-string-args.json", []inv{
			{"t1", "getAppointment", `{"date":"2026-12-01"}`},
			{"t2", "get_weather", `{"location": "San Francisco"}`},
			{"t3", "noArgs", `{}`},
		}},
		{"tool-calls-with-list-only.json", []inv{{"w1", "lookup", `{"q": 1}`}, {"w2", "other", `{"x":true}`}}},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			m, err := Decode(fixture(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if m.Type != TypeToolCalls {
				t.Fatalf("type %q", m.Type)
			}
			if got := invs(m); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("invocations\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestNormalizeArgs(t *testing.T) {
	cases := []struct{ in, want string }{
		{``, `{}`}, {`null`, `{}`}, {`{"a":1}`, `{"a":1}`}, {`"{\"a\":1}"`, `{"a":1}`}, {`""`, `{}`},
		{`"not json"`, "ERR"}, {`[1,2]`, "ERR"}, {`"[1]"`, "ERR"}, {`42`, "ERR"},
	}
	for _, tc := range cases {
		got, err := NormalizeArgs(json.RawMessage(tc.in))
		s := string(got)
		if err != nil {
			s = "ERR"
		}
		if s != tc.want {
			t.Errorf("NormalizeArgs(%s) = %s, want %s", tc.in, s, tc.want)
		}
	}
}

func TestTimestampVariants(t *testing.T) {
	m, err := Decode(fixture(t, "tool-calls-v4k.json"))
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2024, 7, 4, 5, 39, 10, 225e6, time.UTC); !m.Timestamp.Equal(want) {
		t.Fatalf("ISO timestamp = %v, want %v", m.Timestamp.Time, want)
	}
	m, err = Decode(fixture(t, "tool-calls-oas-string-args.json"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Timestamp.UnixMilli() != 1678901234567 {
		t.Fatalf("ms timestamp = %d", m.Timestamp.UnixMilli())
	}
	for raw, want := range map[string]int64{
		`"2025-07-08T09:43:15.250"`:     1751967795250, // no zone: UTC
		`"2025-07-08 09:43:15"`:         1751967795000,
		`"2025-07-08 11:43:15.5+02:00"`: 1751967795500,
		`"2025-07-08T09:43:15.250Z"`:    1751967795250,
		`"1751967795250"`:               1751967795250,
	} {
		m, err := Decode([]byte(`{"message":{"type":"hang","timestamp":` + raw + `}}`))
		if err != nil || m.Timestamp.UnixMilli() != want {
			t.Errorf("timestamp %s: %v %v, want %d ms", raw, m, err, want)
		}
	}
	// A timestamp that is neither is dropped and noted, never a reason to
	// refuse the message.
	for _, raw := range []string{`"yesterday"`, `true`, `{"at":1}`, `[1]`, `"2025-13-45 99:99:99"`} {
		m, err := Decode([]byte(`{"message":{"type":"tool-calls","timestamp":` + raw + `,"toolCallList":[{"id":"t1","function":{"name":"f","arguments":{}}}]}}`))
		if err != nil || !m.Timestamp.IsZero() || strings.Join(m.Dropped, ",") != "timestamp" || len(m.Invocations()) != 1 {
			t.Errorf("timestamp %s: %v %+v", raw, err, m)
		}
	}
}

func TestCallPartiesAndEndOfCall(t *testing.T) {
	m, err := Decode(fixture(t, "tool-calls-v4k.json"))
	if err != nil {
		t.Fatal(err)
	}
	if m.CallID() != "6b38c32e-0000-4000-8000-000000000001" || m.Call.PhoneNumberID == "" || m.Customer.Number != "+14566836490" || m.PhoneNumber.Number != "+15550001111" {
		t.Fatalf("call fields not decoded: %+v", m.Call)
	}
	cur, err := Decode(fixture(t, "end-of-call-report-current.json"))
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := cur.Duration(); !ok || d != 90.5 {
		t.Fatalf("duration from startedAt/endedAt = %v %v, want 90.5", d, ok)
	}
	if cur.Cost == nil || *cur.Cost != 0.12 || cur.EndedReason != "hangup" || !strings.Contains(cur.Artifact.Transcript, "weather") {
		t.Fatalf("current report not decoded: %+v", cur)
	}
	old, err := Decode(fixture(t, "end-of-call-report-legacy.json"))
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := old.Duration(); !ok || d != 42 {
		t.Fatalf("legacy durationSeconds = %v", d)
	}
	if old.Transcript == "" || old.Summary != "short" || old.RecordingURL == "" {
		t.Fatalf("legacy report fields on message not decoded: %+v", old)
	}
}

func TestLiteralFinalTranscriptAndLegacyFunctionCall(t *testing.T) {
	m, err := Decode(fixture(t, "transcript-final-literal.json"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Type != TypeTranscriptFinal || MetricType(m.Type) != TypeTranscriptFinal || m.Transcript != "Email please." {
		t.Fatalf("literal type not kept: %q", m.Type)
	}
	f, err := Decode(fixture(t, "function-call-legacy.json"))
	if err != nil {
		t.Fatal(err)
	}
	if f.FunctionCall == nil || f.FunctionCall.Name != "queryDatabase" || string(f.FunctionCall.Parameters) != `{"query": "balance"}` {
		t.Fatalf("function call: %+v", f.FunctionCall)
	}
}

func TestDecodeErrors(t *testing.T) {
	cases := []struct{ body, want string }{
		{`{"message": {"type": "status-update",`, "invalid JSON"},
		{`not json`, "invalid JSON at byte"},
		{``, "invalid JSON"},
		{`[]`, "expected an object"},
		{`{}`, `no "message"`},
		{`{"message": null}`, `no "message"`},
		{`{"message": {}}`, `no "type"`},
		{`{"message": {"type": 7}}`, `no "type"`},
	}
	for _, tc := range cases {
		_, err := Decode([]byte(tc.body))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Decode(%q) error %v, want it to mention %q", tc.body, err, tc.want)
		}
	}
	// A drifting field type does not reject an otherwise usable message.
	m, err := Decode([]byte(`{"message":{"type":"speech-update","turn":"two","status":"started","call":{"id":"c"}}}`))
	if err != nil || m.Status != "started" || m.CallID() != "c" {
		t.Fatalf("tolerant decode: %v %+v", err, m)
	}
}

func TestMetricTypeBounded(t *testing.T) {
	if MetricType("x-"+strings.Repeat("a", 100)) != "unknown" || MetricType(TypeToolCalls) != TypeToolCalls {
		t.Fatal("metric label values must stay bounded")
	}
}

func FuzzDecode(f *testing.F) {
	for _, name := range []string{"tool-calls-events.json", "tool-calls-v4k.json", "tool-calls-oas-string-args.json", "tool-calls-with-list-only.json",
		"function-call-legacy.json", "end-of-call-report-current.json", "end-of-call-report-legacy.json", "transcript-final-literal.json"} {
		f.Add(fixture(f, name))
	}
	f.Add([]byte(`{"message":{"type":"tool-calls","toolCallList":[{"function":{"arguments":"\"{\\\"a\\\":1}\""}}]}}`))
	f.Add([]byte(`{"message":{"type":"tool-calls","CALL":{"status":7,"customer":{"number":5}},"turn":"x","toolCallList":[{"id":5},{"id":"t"}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			if m != nil {
				t.Fatal("error with a message")
			}
			return
		}
		if m.Type == "" {
			t.Fatal("decoded a message without a type")
		}
		for _, f := range m.Dropped {
			// Metric label values: a schema path, or "other".
			if f != "other" && knownFields[strings.ToLower(f)] != f {
				t.Fatalf("dropped field %q is not a schema path", f)
			}
		}
		for _, i := range m.Invocations() {
			if i.ArgsErr == nil && (len(i.Args) == 0 || i.Args[0] != '{' || !json.Valid(i.Args)) {
				t.Fatalf("arguments %q are not a JSON object", i.Args)
			}
		}
		m.Duration()
	})
}

func TestOtherMessageFields(t *testing.T) {
	cases := []struct {
		body  string
		check func(m *Message) bool
	}{
		{`{"message":{"type":"language-change-detected","language":"es"}}`, func(m *Message) bool { return m.Language == "es" }},
		{`{"message":{"type":"voice-input","input":"Hello, world!"}}`, func(m *Message) bool { return m.Input == "Hello, world!" }},
		{`{"message":{"type":"voice-request","text":"Hi","sampleRate":24000}}`, func(m *Message) bool { return m.Text == "Hi" && m.SampleRate == 24000 }},
		{`{"message":{"type":"phone-call-control","request":"forward","destination":{"type":"sip","sipUri":"sip:agent@example.com"}}}`,
			func(m *Message) bool {
				return m.Request == "forward" && strings.Contains(string(m.Destination), "sip:agent")
			}},
		{`{"message":{"type":"model-output","output":{"x":1},"turnId":"abc-123"}}`, func(m *Message) bool { return m.TurnID == "abc-123" && string(m.Output) == `{"x":1}` }},
		{`{"message":{"type":"user-interrupted","turnId":"abc-123"}}`, func(m *Message) bool { return m.TurnID == "abc-123" }},
		{`{"message":{"type":"assistant.speechStarted","text":"Hello world","turn":2,"source":"model","timing":{}}}`, func(m *Message) bool { return m.Text == "Hello world" && m.Turn == 2 && m.Source == "model" }},
		{`{"message":{"type":"campaign.predial","campaignId":"c1","contact":{"number":"+1"}}}`, func(m *Message) bool { return m.CampaignID == "c1" && m.Contact != nil && m.Contact.Number == "+1" }},
		{`{"message":{"type":"handoff-destination-request","parameters":{"to":"billing"}}}`, func(m *Message) bool { return string(m.Parameters) == `{"to":"billing"}` }},
	}
	for _, tc := range cases {
		m, err := Decode([]byte(tc.body))
		if err != nil || !tc.check(m) {
			t.Errorf("%s: %v %+v", tc.body, err, m)
		}
	}
}

// TestImplausibleTimestampsDropped: NaN, 1e300 and far-off dates were stored
// as the minimum 64-bit time; they are dropped (the receiver's clock is used).
func TestImplausibleTimestampsDropped(t *testing.T) {
	for _, ts := range []string{`"NaN"`, `1e300`, `-1e300`, `"1e300"`, `"Infinity"`, `-5`, `"9999-01-01T00:00:00Z"`, `"1970-01-01T00:00:00Z"`, `9.3e18`} {
		m, err := Decode([]byte(`{"message":{"type":"status-update","status":"ended","timestamp":` + ts + `,"call":{"id":"c"}}}`))
		if err != nil {
			t.Fatalf("%s: %v", ts, err)
		}
		if !m.Timestamp.IsZero() {
			t.Errorf("timestamp %s decoded as %v, want dropped", ts, m.Timestamp.Time)
		}
	}
}

// TestDryRunMarker: only voicegate's own envelope key marks a dry run; a
// field of that name inside Vapi's message does not.
func TestDryRunMarker(t *testing.T) {
	for body, want := range map[string]bool{
		`{"message":{"type":"status-update"},"voicegate":{"dryRun":true}}`:  true,
		`{"message":{"type":"status-update"},"voicegate":{"dryRun":false}}`: false,
		`{"message":{"type":"status-update"}}`:                              false,
		`{"message":{"type":"status-update","DryRun":true,"dryRun":true}}`:  false,
		`{"message":{"type":"status-update"},"voicegate":null}`:             false,
	} {
		m, err := Decode([]byte(body))
		if err != nil || m.DryRun != want {
			t.Errorf("%s: dry run %v (%v), want %v", body, m != nil && m.DryRun, err, want)
		}
	}
}

// TestDecodeErrorsNeverEchoValues: a decoding error is sent back to the
// caller and kept by the replay cache; it names fields, never their values.
func TestDecodeErrorsNeverEchoValues(t *testing.T) {
	for _, body := range []string{
		`{"message":{"type":"status-update","timestamp":"SECRET-PII-+15551234567"}}`,
		`{"message":{"type":"status-update","timestamp":{"SECRET-PII-+15551234567":1}}}`,
		`{"message":{"type":"status-update","call":"SECRET-PII-+15551234567"}}`,
		`{"message":"SECRET-PII-+15551234567"}`,
	} {
		_, err := Decode([]byte(body))
		if err != nil && strings.Contains(err.Error(), "SECRET") {
			t.Errorf("%s: error echoes the value: %v", body, err)
		}
	}
}

// TestMalformedDryRunMarkerIsRefused: a marker that does not decode is an
// error, never read as "not a dry run" (which would have real effects).
func TestMalformedDryRunMarkerIsRefused(t *testing.T) {
	for _, body := range []string{
		`{"message":{"type":"tool-calls"},"voicegate":{"dryRun":"true"}}`,
		`{"message":{"type":"tool-calls"},"voicegate":{"dryrun":true}}`,
		`{"message":{"type":"tool-calls"},"voicegate":true}`,
		`{"message":{"type":"tool-calls"},"voicegate":[1]}`,
	} {
		if _, err := Decode([]byte(body)); !errors.Is(err, ErrBadMarker) {
			t.Errorf("%s: %v, want ErrBadMarker", body, err)
		}
	}
}

// TestOptionalFieldOfAnotherTypeIsDropped: a field of an unexpected type
// is dropped and named; the rest of the message is used. Only a body that
// is not JSON, or a message without a usable type, is refused.
func TestOptionalFieldOfAnotherTypeIsDropped(t *testing.T) {
	for body, dropped := range map[string]string{
		`{"message":{"type":"tool-calls","call":{"id":"c1","status":7},"toolCallList":[{"id":"t1","function":{"name":"f","arguments":{}}}]}}`:     "call.status",
		`{"message":{"type":"tool-calls","call":{"id":"c1"},"customer":"x","toolCallList":[{"id":"t1","function":{"name":"f","arguments":{}}}]}}`: "customer",
		`{"message":{"type":"tool-calls","turn":"3","toolCallList":[{"id":"t1","function":{"name":"f","arguments":{}}}]}}`:                        "turn",
	} {
		m, err := Decode([]byte(body))
		if err != nil || strings.Join(m.Dropped, ",") != dropped || len(m.Invocations()) != 1 || m.Invocations()[0].Name != "f" {
			t.Errorf("%s: %v %+v", body, err, m)
		}
	}
	for _, body := range []string{`not json`, `{"message":{"type":5}}`, `{"message":"tool-calls"}`, `{"message":{}}`} {
		if _, err := Decode([]byte(body)); err == nil {
			t.Errorf("%s: decoded", body)
		}
	}
}

// FuzzFieldTypeMutation: any field of a valid tool-calls message, other
// than its type and the tool calls themselves, replaced by a value of
// another type, still yields the same tool calls.
func FuzzFieldTypeMutation(f *testing.F) {
	base := fixture(f, "tool-calls-v4k.json")
	want, err := Decode(base)
	if err != nil {
		f.Fatal(err)
	}
	var paths []string
	var doc any
	json.Unmarshal(base, &doc)
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok {
			for k, c := range m {
				p := prefix + "/" + k
				paths = append(paths, p)
				walk(p, c)
			}
		}
	}
	walk("", doc)
	slices.Sort(paths)
	for i := range 8 {
		f.Add(uint16(i*7), uint8(i))
	}
	replacements := []any{true, 12.5, "text", []any{1, "a"}, map[string]any{"at": 1}, nil, "2025-07-08 09:43:15", -1}
	f.Fuzz(func(t *testing.T, pi uint16, ri uint8) {
		path := paths[int(pi)%len(paths)]
		if path == "/message" || path == "/message/type" || strings.HasPrefix(path, "/message/toolCallList") || strings.HasPrefix(path, "/message/toolCalls") || strings.HasPrefix(path, "/message/toolWithToolCallList") {
			return
		}
		var d any
		json.Unmarshal(base, &d)
		parts := strings.Split(path, "/")[1:]
		m := d.(map[string]any)
		for _, p := range parts[:len(parts)-1] {
			m = m[p].(map[string]any)
		}
		m[parts[len(parts)-1]] = replacements[int(ri)%len(replacements)]
		body, _ := json.Marshal(d)
		got, err := Decode(body)
		if err != nil {
			t.Fatalf("%s = %v: %v", path, replacements[int(ri)%len(replacements)], err)
		}
		if fmt.Sprint(got.Invocations()) != fmt.Sprint(want.Invocations()) {
			t.Fatalf("%s mutated: invocations %v, want %v", path, got.Invocations(), want.Invocations())
		}
	})
}

// TestToolCallsWithoutType: Vapi's server SDK (2.0.1) makes "type"
// optional on ServerMessageToolCalls alone; a message without a type but
// with tool calls is a tool-calls message (answered, not refused), and one
// without either still has no usable type.
func TestToolCallsWithoutType(t *testing.T) {
	for _, body := range []string{
		`{"message":{"toolCallList":[{"id":"t1","type":"function","function":{"name":"f","arguments":"{}"}}],"toolWithToolCallList":[]}}`,
		`{"message":{"toolWithToolCallList":[{"type":"function","toolCall":{"id":"t1","type":"function","function":{"name":"f","arguments":"{}"}}}]}}`,
		`{"message":{"type":7,"toolCallList":[{"id":"t1","function":{"name":"f"}}]}}`,
	} {
		m, err := Decode([]byte(body))
		if err != nil || m.Type != TypeToolCalls || len(m.Invocations()) != 1 || m.Invocations()[0].Name != "f" {
			t.Errorf("%s: %v %+v", body, err, m)
		}
	}
	for _, body := range []string{`{"message":{"call":{"id":"c"}}}`, `{"message":{"toolCallList":[]}}`} {
		if _, err := Decode([]byte(body)); !errors.Is(err, ErrNoType) {
			t.Errorf("%s: %v, want ErrNoType", body, err)
		}
	}
}
