package gateway_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestEveryDroppedFieldCounted: a message with several optional fields of
// an unexpected type is answered, and each of those fields is counted once
// in voicegate_dropped_fields_total by its schema path — not only the
// first one encoding/json reports. No value reaches the log.
func TestEveryDroppedFieldCounted(t *testing.T) {
	e := newEnv(t, nil)
	for i := range 2 { // a new body each time (the same one would be a replay)
		body := fmt.Sprintf(`{"message":{"type":"tool-calls","timestamp":true,"turn":"SECRET-TURN-%d","customer":"SECRET-CUSTOMER",`+
			`"call":{"id":"df%d","status":7,"customer":{"number":15557654321}},`+
			`"toolCallList":[{"id":"tc%d","type":"function","function":{"name":"getAppointment","arguments":{}}},{"id":42,"type":"function","function":{"name":"getAppointment","arguments":{}}}]}}`, i, i, i)
		code, out := e.send(body)
		if code != http.StatusOK || !strings.Contains(out, fmt.Sprintf(`"toolCallId":"tc%d"`, i)) {
			t.Fatalf("%d %s", code, out)
		}
	}
	for _, field := range []string{"timestamp", "turn", "customer", "call.status", "call.customer.number", "toolCallList.id"} {
		if got := e.metric(`voicegate_dropped_fields_total{field="` + field + `",type="tool-calls"}`); got != "2" {
			t.Errorf("dropped %s counted %q, want 2 (once per message)", field, got)
		}
	}
	if logs := e.logs.String(); strings.Contains(logs, "SECRET") || strings.Contains(logs, "5557654321") {
		t.Fatalf("a dropped field's value reached the log:\n%s", tail(logs, 2000))
	}
}
