package gateway_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/voicegate/voicegate/internal/dispatch"
)

// A message with side effects refused because Redis is unreachable says
// when to retry as the dispatcher decided (dispatch.StateRetryAfter: the
// probe's second plus a margin), not the store's one second.
func TestRedisDownRetryAfterIsTheStates(t *testing.T) {
	px := redisProxy(t)
	e := newEnv(t, redisState(t, "redis://"+px.Addr()+"/0"))
	px.Cut()
	body := msg("tool-calls", "retry-call", `"toolCallList":[{"id":"t-retry","name":"getAppointment","arguments":{}}]`)
	status, retry, ans := e.postFull(body, e.signed(body))
	if want := strconv.Itoa(dispatch.StateRetryAfter); status != http.StatusServiceUnavailable || retry != want {
		t.Fatalf("tool call while Redis is down: %d Retry-After=%q (want 503, %s) %s", status, retry, want, ans)
	}
}
