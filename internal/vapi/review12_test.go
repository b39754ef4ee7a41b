package vapi

import (
	"fmt"
	"strings"
	"testing"
)

// TestReview12DroppedFieldLabelsBounded: Message.Dropped becomes the
// field label of voicegate_dropped_fields_total. A sender must not be able
// to mint new label values: not by array index, not by spelling a key in
// another case (encoding/json matches keys case-insensitively). Passes
// with Go's default encoding/json; fails with GOEXPERIMENT=jsonv2, where
// UnmarshalTypeError.Field is built from the input's JSON pointer
// ("toolCallList.7.id", "CaLL.status").
func TestReview12DroppedFieldLabelsBounded(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 10; i++ {
		var calls []string
		for j := 0; j < i; j++ {
			calls = append(calls, `{"id":"ok","function":{"name":"f","arguments":{}}}`)
		}
		calls = append(calls, `{"id":5,"function":{"name":"f","arguments":{}}}`)
		body := fmt.Sprintf(`{"message":{"type":"tool-calls","toolCallList":[%s]}}`, strings.Join(calls, ","))
		m, err := Decode([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range m.Dropped {
			seen[f] = true
		}
	}
	for _, key := range []string{"call", "Call", "CALL", "cAlL", "caLL"} {
		m, err := Decode([]byte(`{"message":{"type":"status-update","` + key + `":{"id":"c1","status":7}}}`))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range m.Dropped {
			seen[f] = true
		}
	}
	if len(seen) > 2 {
		t.Fatalf("a sender minted %d distinct field labels: %v", len(seen), seen)
	}
}
