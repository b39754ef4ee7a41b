package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/gateway"
)

// dry wraps a message in voicegate simulate's dry-run marker.
func dry(m string) string {
	return strings.TrimSuffix(m, "}") + `,"voicegate":{"dryRun":true}}`
}

// TestDryRunHasNoSideEffects: a message marked dry-run is answered as a
// real one would be — routing, tool lookup, schema validation — with the
// answer marked, while nothing is stored, no session opens and no internal
// API is called.
func TestDryRunHasNoSideEffects(t *testing.T) {
	e := newEnv(t, nil)
	postDry := func(m string) (*http.Response, string) {
		t.Helper()
		body := dry(m)
		req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(body))
		req.Header = e.signed(body)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || resp.Header.Get("X-Voicegate-Dry-Run") != "true" {
			t.Fatalf("%s: %d, dry-run header %q: %s", m[:40], resp.StatusCode, resp.Header.Get("X-Voicegate-Dry-Run"), b)
		}
		return resp, string(b)
	}
	if _, b := postDry(msg("assistant-request", "D1", `"phoneNumber":{"id":"pn-sales"}`)); b != `{"assistantId":"asst-sales"}` {
		t.Fatalf("routing in a dry run: %s", b)
	}
	postDry(msg("status-update", "D1", `"status":"in-progress"`))
	_, b := postDry(msg("tool-calls", "D1", `"toolCallList":[{"id":"t1","name":"getAppointment","arguments":{"date":"2026-12-01"}},{"id":"t2","name":"strict","arguments":{"id":"x"}}]`))
	var r struct {
		Results []struct{ Result, Error string } `json:"results"`
	}
	if err := json.Unmarshal([]byte(b), &r); err != nil || len(r.Results) != 2 ||
		!strings.HasPrefix(r.Results[0].Result, "Dry run: getAppointment was not called") || !strings.Contains(r.Results[1].Error, "Invalid arguments for strict") {
		t.Fatalf("tool calls in a dry run: %s", b)
	}
	postDry(msg("status-update", "D1", `"status":"ended","endedReason":"customer-ended-call"`))
	postDry(msg("end-of-call-report", "D1", `"endedReason":"customer-ended-call","durationSeconds":3`))
	if n := e.hits.Load(); n != 0 {
		t.Errorf("a dry run called the internal API %d times", n)
	}
	if _, _, err := e.app.Store.Call(context.Background(), "D1"); !errors.Is(err, calls.ErrNotFound) {
		t.Errorf("a dry run stored the call: %v", err)
	}
	if e.app.Sessions.Len() != 0 || e.app.Sessions.Seen(context.Background(), "D1") {
		t.Errorf("a dry run opened a session")
	}
	// It leaves no record, but the log has a line for each message.
	if n := strings.Count(e.logs.String(), `"level":"INFO","msg":"dry run"`); n != 5 {
		t.Errorf("%d dry-run lines for 5 dry-run messages", n)
	}
	// The marker is part of the signed body: it cannot be added to a
	// captured request without breaking its signature.
	real := msg("status-update", "D2", `"status":"in-progress"`)
	if s, _ := e.post(dry(real), e.signed(real)); s != 401 {
		t.Fatalf("marker added after signing: %d, want 401", s)
	}
}

// TestCallStartAndEndLines: a call logs one line when it starts (with the
// assistant routing chose and the rule) and one when it ends (duration,
// reason, tool calls by outcome), and the routed assistant is stored.
func TestCallStartAndEndLines(t *testing.T) {
	e := newEnv(t, nil)
	for _, m := range []string{
		msg("assistant-request", "L1", `"phoneNumber":{"id":"pn-sales"}`),
		msg("status-update", "L1", `"status":"in-progress"`),
		msg("tool-calls", "L1", `"toolCallList":[{"id":"t1","name":"getAppointment","arguments":{}},{"id":"t2","name":"strict","arguments":{"id":"x"}}]`),
		msg("tool-calls", "L1", `"toolCallList":[{"id":"t3","name":"getAppointment","arguments":{}}]`),
		msg("status-update", "L1", `"status":"ended","endedReason":"customer-ended-call"`),
		msg("end-of-call-report", "L1", `"endedReason":"customer-ended-call","durationSeconds":12.5`),
	} {
		if s, b := e.send(m); s != 200 {
			t.Fatalf("%d %s", s, b)
		}
	}
	rec, _, err := e.app.Store.Call(context.Background(), "L1")
	if err != nil || rec.AssistantID != "asst-sales" {
		t.Fatalf("stored assistant %q (%v), want the routed asst-sales", rec.AssistantID, err)
	}
	logs := e.logs.String()
	lines := func(msg string) []map[string]any {
		var out []map[string]any
		for _, l := range strings.Split(logs, "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == msg {
				out = append(out, m)
			}
		}
		return out
	}
	start := lines("call started")
	if len(start) != 1 || start[0]["level"] != "INFO" || start[0]["call_id"] != "L1" || start[0]["assistant"] != "asst-sales" || start[0]["rule"] != "routes[0]" {
		t.Fatalf("call started lines: %v", start)
	}
	end := lines("call ended")
	if len(end) != 1 || end[0]["level"] != "INFO" || end[0]["ended_reason"] != "customer-ended-call" ||
		end[0]["tool_calls"] != "invalid_arguments=1 ok=2" || end[0]["duration_s"] == nil {
		t.Fatalf("call ended lines (want exactly one, from the status update): %v", end)
	}
	// A call whose first event is its report still gets its end line.
	if s, _ := e.send(msg("end-of-call-report", "L2", `"endedReason":"silence-timed-out","durationSeconds":4`)); s != 200 {
		t.Fatal(s)
	}
	logs = e.logs.String()
	if end := lines("call ended"); len(end) != 2 || end[1]["call_id"] != "L2" || end[1]["duration_s"] != 4.0 || end[1]["tool_calls"] != "none" {
		t.Fatalf("end line of a call first seen at its report: %v", end)
	}
}

// TestRefusalsLoggedAggregated: every kind of refused request leaves a
// trace at warn — the first of each reason and client at once, the rest
// as a count when the interval closes — and behind a trusted proxy the
// line names the caller, not the load balancer.
func TestRefusalsLoggedAggregated(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Server.TrustedProxies = []string{"127.0.0.0/8"} })
	big := `{"message":{"type":"transcript","x":"` + strings.Repeat("a", 5000) + `"}}`
	for i := 0; i < 3; i++ {
		if s, _ := e.send(big); s != 413 {
			t.Fatalf("oversized: %d", s)
		}
		if s, _ := e.send(`{"message":` + strings.Repeat(" ", i)); s != 400 {
			t.Fatalf("invalid JSON: %d", s)
		}
	}
	// Through the load balancer: the caller is the right-most address the
	// proxy appended; what the client wrote to its left is not trusted.
	h := e.signed(`{"message": 1`)
	h.Set("X-Forwarded-For", "198.51.100.9, 203.0.113.7")
	if s, _ := e.post(`{"message": 1`, h); s != 400 {
		t.Fatal(s)
	}
	logs := e.logs.String()
	for _, want := range []string{
		`"msg":"request refused","reason":"body_too_large","client":"127.0.0.1"`,
		`"msg":"request refused","reason":"invalid_message","client":"127.0.0.1"`,
		`"msg":"request refused","reason":"invalid_message","client":"203.0.113.7","peer":"127.0.0.1"`,
	} {
		if strings.Count(logs, want) != 1 {
			t.Errorf("want exactly one %s in:\n%s", want, tail(logs, 3000))
		}
	}
	e.skew.Store(int64(gateway.RefusalLogInterval + time.Second))
	e.send(big) // the next refusal closes the interval
	if logs := e.logs.String(); !strings.Contains(logs, `"msg":"requests refused","reason":"body_too_large","client":"127.0.0.1","count":2`) {
		t.Fatalf("no aggregated count:\n%s", tail(logs, 3000))
	}
}

// TestSourceErrorGoesThroughTheAdapter: a write that fails is answered 503
// by the one adapter, which also labels the metric with the message's type
// and outcome error, logs one error line with the call, and counts the
// answer as slow when it was (an error is no excuse for a late answer).
func TestSourceErrorGoesThroughTheAdapter(t *testing.T) {
	var store *diskFullStore
	e := newEnvWith(t, func(c *config.Config) { c.Vapi.DeadlineWarnRatio = 1e-9 },
		func(s calls.Store) calls.Store { store = &diskFullStore{Store: s}; return store })
	store.full.Store(true)
	if s, b := e.send(msg("status-update", "E1", `"status":"in-progress"`)); s != 503 || !strings.Contains(b, "retry") {
		t.Fatalf("%d %s", s, b)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, `"level":"ERROR","msg":"webhook not handled","type":"status-update","call_id":"E1","status":503,"err":"persist status: database or disk is full`) {
		t.Errorf("no error line naming the call and the cause:\n%s", tail(logs, 2000))
	}
	if got := e.metric(`voicegate_requests_total{outcome="error",source="vapi",type="status-update"}`); got != "1" {
		t.Errorf("requests_total for the failed status update: %q, want 1", got)
	}
	if got := e.metric(`voicegate_deadline_warnings_total{source="vapi",type="status-update"}`); got != "1" {
		t.Errorf("a slow error answer is not counted as slow: %q", got)
	}
}

// TestReplayLineNamesTheCall: a redelivery is answered before its body is
// read, yet its log line names the call and the message type.
func TestReplayLineNamesTheCall(t *testing.T) {
	e := newEnv(t, nil)
	body := msg("status-update", "R1", `"status":"in-progress"`)
	h := e.signed(body)
	for i := 0; i < 2; i++ {
		if s, _ := e.post(body, h); s != 200 {
			t.Fatal(s)
		}
	}
	if !strings.Contains(e.logs.String(), `"level":"INFO","msg":"replayed request answered from cache","type":"status-update","call_id":"R1","client":"127.0.0.1"`) {
		t.Fatalf("replay line:\n%s", tail(e.logs.String(), 1500))
	}
}

// TestExpiredCallGetsItsEndLine: a call whose end never arrives still ends
// in the log, when its session expires.
func TestExpiredCallGetsItsEndLine(t *testing.T) {
	e := newEnv(t, nil)
	if s, _ := e.send(msg("status-update", "X1", `"status":"in-progress"`)); s != 200 {
		t.Fatal(s)
	}
	e.skew.Store(int64(e.app.Config.Sessions.TTL.D() + time.Minute))
	if n := e.app.Sessions.Sweep(); n != 1 {
		t.Fatalf("swept %d sessions, want 1", n)
	}
	if !strings.Contains(e.logs.String(), `"msg":"call ended","call_id":"X1","ended_reason":"expired: no end event within sessions.ttl"`) {
		t.Fatalf("no end line for the expired call:\n%s", tail(e.logs.String(), 1500))
	}
}

// TestDryRunsCanBeRefused: with vapi.dry_run false a marked request is
// refused, never processed for real; a malformed marker is refused too.
func TestDryRunsCanBeRefused(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Vapi.DryRun = false })
	if s, b := e.send(dry(msg("tool-calls", "N1", `"toolCallList":[{"id":"t1","name":"getAppointment","arguments":{}}]`))); s != 403 || !strings.Contains(b, "dry runs are disabled") {
		t.Fatalf("dry run with dry_run false: %d %s", s, b)
	}
	on := newEnv(t, nil)
	bad := strings.TrimSuffix(msg("tool-calls", "N2", `"toolCallList":[{"id":"t1","name":"getAppointment","arguments":{}}]`), "}") + `,"voicegate":{"dryRun":"true"}}`
	if s, b := on.send(bad); s != 400 || !strings.Contains(b, `invalid \"voicegate\" marker`) {
		t.Fatalf("malformed marker: %d %s", s, b)
	}
	if e.hits.Load()+on.hits.Load() != 0 {
		t.Fatal("a refused dry run reached the internal API")
	}
}

// TestAuthFailuresAudited: each minute's authentication failures are
// appended to the tamper-evident audit log, one summary per reason.
func TestAuthFailuresAudited(t *testing.T) {
	e := newEnv(t, nil)
	body := msg("status-update", "A1", `"status":"in-progress"`)
	for range 3 {
		if s, _ := e.post(body, nil); s != 401 {
			t.Fatal(s)
		}
	}
	e.app.Gateway.FlushRefusals() // what the minute's tick does
	entries, err := e.app.Audit.Entries(context.Background(), 0, 10)
	if err != nil || len(entries) != 1 || entries[0].Event != "auth.failures" || entries[0].Subject != "127.0.0.1" || entries[0].Detail != "count=3 reasons=missing:3" {
		t.Fatalf("audit entries: %+v %v", entries, err)
	}
}
