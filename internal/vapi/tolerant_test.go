package vapi

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestEveryMistypedFieldNamed: a message with several optional fields of
// an unexpected type or format names every one of them in Dropped (each
// once, by its schema path, sorted), not only the first encoding/json
// reports, and keeps what is well typed.
func TestEveryMistypedFieldNamed(t *testing.T) {
	const tc = `"toolCallList":[{"id":"t1","function":{"name":"f","arguments":{}}}]`
	cases := []struct {
		name    string
		fields  string
		dropped []string
		check   func(m *Message) bool
	}{
		{"three on the message", `"call":{"id":"c1","status":7},"customer":"x","turn":"3",` + tc,
			[]string{"call.status", "customer", "turn"},
			func(m *Message) bool { return m.CallID() == "c1" && m.Customer == nil && m.Turn == 0 }},
		{"in several array elements, named once each",
			`"toolCallList":[{"id":5,"function":{"name":"f","arguments":{}}},{"id":"t2","function":{"name":true}},{"id":[1],"function":{"name":"g","arguments":{}}}]`,
			[]string{"toolCallList.function.name", "toolCallList.id"},
			func(m *Message) bool { return len(m.ToolCallList) == 3 && m.ToolCallList[1].ID == "t2" }},
		{"with a malformed timestamp", `"timestamp":"yesterday","call":{"id":"c1","status":7},` + tc,
			[]string{"call.status", "timestamp"},
			func(m *Message) bool { return m.Timestamp.IsZero() && m.CallID() == "c1" }},
		{"keys in another case", `"CALL":{"ID":"c1","STATUS":7},"Turn":"x",` + tc,
			[]string{"call.status", "turn"},
			func(m *Message) bool { return m.CallID() == "c1" }},
		{"a duplicate key: the well-typed one kept", `"turn":"a","turn":2,` + tc,
			[]string{"turn"},
			func(m *Message) bool { return m.Turn == 2 }},
		{"numbers that do not fit", `"turn":1.5,"sampleRate":1e20,"cost":1e400,` + tc,
			[]string{"cost", "sampleRate", "turn"},
			func(m *Message) bool { return m.Turn == 0 && m.SampleRate == 0 && m.Cost == nil }},
		{"arrays and strings for objects", `"phoneNumber":[1],"artifact":"x","functionCall":7,` + tc,
			[]string{"artifact", "functionCall", "phoneNumber"},
			func(m *Message) bool { return m.PhoneNumber == nil && m.Artifact == nil }},
		{"nested", `"call":{"id":"c1","customer":{"number":5},"monitor":{"controlUrl":false,"listenUrl":"wss://l"}},` + tc,
			[]string{"call.customer.number", "call.monitor.controlUrl"},
			func(m *Message) bool { return m.Call.Monitor.ListenURL == "wss://l" }},
		{"raw fields take anything", `"destination":7,"output":"x","parameters":[1],"turn":true,` + tc,
			[]string{"turn"},
			func(m *Message) bool { return string(m.Destination) == "7" }},
		{"unknown members are not looked at", `"somethingNew":{"deep":[1,2,{"x":true}]},"turn":{},` + tc,
			[]string{"turn"}, nil},
		{"one field only", `"turn":"3",` + tc, []string{"turn"}, nil},
		{"none", tc, nil, nil},
		{"escaped keys and spacing", "\"c\\u0061ll\" : { \"id\" : \"c1\" ,\n\t\"status\" :\r\n 7 } , \"turn\":[ 1 ] ,\n" + tc,
			[]string{"call.status", "turn"},
			func(m *Message) bool { return m.CallID() == "c1" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Decode([]byte(" \n {\"message\":{\"type\":\"tool-calls\"," + c.fields + "}}\n "))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(m.Dropped, c.dropped) {
				t.Errorf("dropped %q, want %q", m.Dropped, c.dropped)
			}
			if got := m.Invocations(); len(got) == 0 || got[0].Name != "f" {
				t.Errorf("the tool calls were lost: %+v", got)
			}
			if c.check != nil && !c.check(m) {
				t.Errorf("decoded %+v", m)
			}
		})
	}
}

// TestMistypedFieldsMatchEncodingJSON: the second pass names exactly the
// field encoding/json reports when a message has a single mistyped field,
// for a value of each JSON type in every field voicegate decodes (so the
// two never disagree on what was dropped).
func TestMistypedFieldsMatchEncodingJSON(t *testing.T) {
	values := []string{`true`, `7`, `1.5`, `"s"`, `[1]`, `{"a":1}`}
	var paths []string
	for p := range knownFields {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	checked := 0
	for _, p := range paths {
		for _, v := range values {
			// Build {"message":{"a":[{"b":v}]}} for the path a.b (a a list).
			parts := strings.Split(knownFields[p], ".")
			lists := make([]bool, len(parts))
			typ := reflect.TypeFor[Message]()
			for i, part := range parts {
				fields := jsonFields(typ)
				fi, _ := matchField(fields, part)
				typ = fields[fi].typ
				for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
					lists[i] = lists[i] || typ.Kind() == reflect.Slice
					typ = typ.Elem()
				}
			}
			doc := v
			for i := len(parts) - 1; i >= 0; i-- {
				if lists[i] && i < len(parts)-1 {
					doc = "[" + doc + "]"
				}
				doc = `{"` + parts[i] + `":` + doc + `}`
			}
			body := []byte(`{"message":` + doc + `}`)
			var env Envelope
			err := json.Unmarshal(body, &env)
			var want []string
			if te := (*json.UnmarshalTypeError)(nil); err != nil {
				if !asTypeError(err, &te) {
					continue // an array where encoding/json stops: not a dropped field
				}
				want = []string{strings.TrimPrefix(te.Field, "message.")}
			}
			var got []string
			var into Envelope
			for _, f := range dropMistyped(body, reflect.ValueOf(&into).Elem()) {
				got = append(got, strings.TrimPrefix(f, "message."))
			}
			if !slices.Equal(got, want) {
				t.Errorf("%s = %s: the second pass names %q, encoding/json %q", knownFields[p], v, got, want)
			}
			checked++
		}
	}
	if checked < 100 {
		t.Fatalf("only %d cases checked", checked)
	}
}

func asTypeError(err error, te **json.UnmarshalTypeError) bool {
	t, ok := err.(*json.UnmarshalTypeError)
	*te = t
	return ok
}

// FuzzMistypedFieldsAllNamed: two fields of a valid tool-calls message
// (neither inside the other) replaced by values of other types: the same
// tool calls come out, and the fields named dropped are those named when
// each is replaced alone, together — the second mistyped field is never
// hidden by the first.
func FuzzMistypedFieldsAllNamed(f *testing.F) {
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
				if p != "/message" && p != "/message/type" && !strings.HasPrefix(p, "/message/toolCall") && !strings.HasPrefix(p, "/message/toolWithToolCallList") {
					paths = append(paths, p)
				}
				walk(p, c)
			}
		}
	}
	walk("", doc)
	slices.Sort(paths)
	replacements := []any{true, 12.5, "text", []any{1, "a"}, map[string]any{"at": 1}, nil, "2025-07-08 09:43:15", -1}
	for i := range 16 {
		f.Add(uint16(i*5), uint8(i), uint16(i*11+3), uint8(i+3))
	}
	mutate := func(muts map[string]any) *Message {
		var d any
		json.Unmarshal(base, &d)
		for path, v := range muts {
			parts := strings.Split(path, "/")[1:]
			m := d.(map[string]any)
			for _, p := range parts[:len(parts)-1] {
				m = m[p].(map[string]any)
			}
			m[parts[len(parts)-1]] = v
		}
		body, _ := json.Marshal(d)
		got, err := Decode(body)
		if err != nil {
			f.Fatalf("%v: %v", muts, err)
		}
		return got
	}
	f.Fuzz(func(t *testing.T, pa uint16, ra uint8, pb uint16, rb uint8) {
		a, b := paths[int(pa)%len(paths)], paths[int(pb)%len(paths)]
		if strings.HasPrefix(a+"/", b+"/") || strings.HasPrefix(b+"/", a+"/") {
			return
		}
		va, vb := replacements[int(ra)%len(replacements)], replacements[int(rb)%len(replacements)]
		both := mutate(map[string]any{a: va, b: vb})
		if fmt.Sprint(both.Invocations()) != fmt.Sprint(want.Invocations()) {
			t.Fatalf("%s, %s mutated: invocations %v, want %v", a, b, both.Invocations(), want.Invocations())
		}
		union := append(mutate(map[string]any{a: va}).Dropped, mutate(map[string]any{b: vb}).Dropped...)
		slices.Sort(union)
		union = slices.Compact(union)
		if !slices.Equal(both.Dropped, union) {
			t.Fatalf("%s = %v and %s = %v: dropped %q, want %q", a, va, b, vb, both.Dropped, union)
		}
	})
}
