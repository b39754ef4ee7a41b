package gateway_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/app"
	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/sqlite"
)

const secret = "gW7t-Qz3rK9m-Vx2pL8n-Hs5yJ4"

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type env struct {
	t      testing.TB
	app    *app.App
	srv    *httptest.Server
	url    string
	signer *auth.Signer
	api    *httptest.Server // stands in for the internal appointments API
	hits   atomic.Int32
	logs   *syncBuf
	now    time.Time
	// skew moves the server's clock (app.Options.Now) ahead of real time.
	skew atomic.Int64
	// apiDelay makes the internal API answer this much later.
	apiDelay atomic.Int64
}

func newEnv(t testing.TB, mut func(*config.Config)) *env {
	t.Helper()
	return newEnvWith(t, mut, nil)
}

// newEnvWith is newEnv with the real SQLite store wrapped (fault injection
// on top of the real store, never instead of it).
func newEnvWith(t testing.TB, mut func(*config.Config), wrap func(calls.Store) calls.Store) *env {
	t.Helper()
	e := &env{t: t, logs: &syncBuf{}, now: time.Now()}
	e.api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		if d := time.Duration(e.apiDelay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
			}
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"echo":%s,"call":%q}`, b, r.Header.Get("X-Voicegate-Call-Id"))
	}))
	t.Cleanup(e.api.Close)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
data_dir: %s
vapi:
  max_body_bytes: 4096
  auth:
    - mode: hmac
      secrets: [%s]
  assistant_request:
    routes:
      - phone_number_id: pn-sales
        assistant_id: asst-sales
      - called_number: "+15550009999"
        caller_number: "+15550001234"
        destination: {type: number, number: "+15550007777"}
  transfer_destination:
    destination: {type: number, number: "+15550004444"}
    message: Transferring you now.
tools:
  - name: getAppointment
    url: %s/appointments
  - name: strict
    url: %s/strict
    schema: {type: object, required: [id], properties: {id: {type: integer}}}
`, t.TempDir(), secret, e.api.URL, e.api.URL)), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if mut != nil {
		mut(cfg)
	}
	level := slog.LevelDebug // tests see every log line, to check none leaks data
	if cfg.Log.Level == "error" {
		level = slog.LevelError // benchmarks log as production does, quietly
	}
	log := slog.New(cfg.Log.Handler(e.logs, level)) // as serve builds it
	now := func() time.Time { return time.Now().Add(time.Duration(e.skew.Load())) }
	opts := app.Options{Log: log, Now: now}
	if wrap != nil {
		db, err := sqlite.Open(context.Background(), cfg.DataDir, cfg.Storage.SQLite())
		if err != nil {
			t.Fatal(err)
		}
		opts.Store = wrap(db)
	}
	e.app, err = app.New(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.app.Close() })
	e.srv = httptest.NewServer(e.app.Gateway)
	t.Cleanup(e.srv.Close)
	e.url = e.srv.URL + cfg.Vapi.Path
	e.signer, err = auth.NewSigner(cfg.Vapi.Auth[0], e.now)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *env) post(body string, h http.Header) (int, string) {
	e.t.Helper()
	resp, b := e.do(body, h)
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Errorf("content type %q", ct)
	}
	return resp.StatusCode, b
}

// do posts body with headers h and returns the response (its body read).
func (e *env) do(body string, h http.Header) (*http.Response, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(body))
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (e *env) signed(body string) http.Header {
	h := http.Header{}
	e.signer.Sign(h, http.MethodPost, e.url, []byte(body), time.Now())
	return h
}

func (e *env) send(body string) (int, string) { return e.post(body, e.signed(body)) }

func (e *env) metric(name string) string {
	// What the admin listener serves.
	rec := httptest.NewRecorder()
	e.app.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	// Every metric carries replica (the host name here): name leaves it out.
	rl := `replica="` + e.app.Config.Replica + `"`
	unlabel := strings.NewReplacer("{"+rl+"}", "", ","+rl, "", rl+",", "")
	b := rec.Body.Bytes()
	for _, line := range strings.Split(string(b), "\n") {
		if line = unlabel.Replace(line); strings.HasPrefix(line, name+" ") {
			return strings.TrimPrefix(line, name+" ")
		}
	}
	return ""
}

func msg(typ, callID string, extra string) string {
	if extra != "" {
		extra = "," + extra
	}
	return fmt.Sprintf(`{"message":{"type":%q,"timestamp":%d,"call":{"id":%q,"orgId":"org"}%s}}`, typ, time.Now().UnixNano(), callID, extra)
}

func sig(key, payload string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(payload))
	return hex.EncodeToString(m.Sum(nil))
}

// TestRefusedRequestsAreNotProcessed covers every rejection path at the HTTP
// level: right status, generic body, reason in metrics, nothing processed.
func TestRefusedRequestsAreNotProcessed(t *testing.T) {
	e := newEnv(t, nil)
	body := msg("tool-calls", "refused-call", `"toolCallList":[{"id":"t1","name":"getAppointment","arguments":{}}]`)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	old := strconv.FormatInt(time.Now().Add(-6*time.Minute).Unix(), 10)
	future := strconv.FormatInt(time.Now().Add(6*time.Minute).Unix(), 10)
	h := func(kv ...string) http.Header {
		x := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			x.Set(kv[i], kv[i+1])
		}
		return x
	}
	cases := []struct {
		name   string
		body   string
		h      http.Header
		status int
		resp   string
		reason string
	}{
		{"unsigned", body, h(), 401, `{"error":"unauthorized"}`, "missing"},
		{"short signature", body, h("X-Signature", "abc", "X-Timestamp", ts), 401, `{"error":"unauthorized"}`, "malformed"},
		{"wrong secret", body, h("X-Signature", sig("another-secret-0123456789", ts+"."+body), "X-Timestamp", ts), 401, `{"error":"unauthorized"}`, "mismatch"},
		{"stale", body, h("X-Signature", sig(secret, old+"."+body), "X-Timestamp", old), 401, `{"error":"unauthorized"}`, "stale"},
		{"future", body, h("X-Signature", sig(secret, future+"."+body), "X-Timestamp", future), 401, `{"error":"unauthorized"}`, "future"},
		{"signed other body", body, h("X-Signature", sig(secret, ts+"."+body+" "), "X-Timestamp", ts), 401, `{"error":"unauthorized"}`, "mismatch"},
		{"oversized", body + strings.Repeat(" ", 4096), e.signed(body + strings.Repeat(" ", 4096)), 413, `{"error":"request body too large"}`, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := `voicegate_auth_failures_total{reason="` + tc.reason + `",source="vapi"}`
			before, _ := strconv.Atoi(e.metric(name))
			status, resp := e.post(tc.body, tc.h)
			if status != tc.status || resp != tc.resp {
				t.Fatalf("got %d %s, want %d %s", status, resp, tc.status, tc.resp)
			}
			if after, _ := strconv.Atoi(e.metric(name)); tc.reason != "" && after != before+1 {
				t.Fatalf("auth failure reason %s not counted (%d -> %d)", tc.reason, before, after)
			}
		})
	}
	if e.hits.Load() != 0 {
		t.Fatalf("internal API called %d times by refused requests", e.hits.Load())
	}
	if _, _, err := e.app.Store.Call(context.Background(), "refused-call"); err != calls.ErrNotFound {
		t.Fatalf("refused request created a call record: %v", err)
	}
	if e.app.Sessions.Len() != 0 {
		t.Fatal("refused request created a session")
	}
	if e.metric(`voicegate_requests_total{outcome="too_large",source="vapi",type="none"}`) != "1" {
		t.Fatal("oversize not counted")
	}
}

func TestOversizedChunkedBody(t *testing.T) {
	e := newEnv(t, nil)
	big := msg("transcript", "c", `"transcript":"`+strings.Repeat("a", 5000)+`"`)
	req, _ := http.NewRequest(http.MethodPost, e.url, io.MultiReader(strings.NewReader(big))) // unknown length: chunked
	req.Header = e.signed(big)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if req.ContentLength != 0 || resp.StatusCode != 413 {
		t.Fatalf("chunked (length unknown: %d) oversize body: status %d, want 413", req.ContentLength, resp.StatusCode)
	}
}

func TestInvalidJSONAfterAuth(t *testing.T) {
	e := newEnv(t, nil)
	for _, tc := range []struct{ body, want string }{
		{`{"message": {"type": "tool-calls",`, "invalid JSON"},
		{`{"msg": {}}`, `no \"message\" object`},
		{`{"message": {"call": {"id": "x"}}}`, `no \"type\"`},
	} {
		status, resp := e.send(tc.body)
		if status != 400 || !strings.Contains(resp, tc.want) {
			t.Errorf("%s: %d %s", tc.body, status, resp)
		}
	}
}

func TestToolCallsShapesOrderAndReplay(t *testing.T) {
	e := newEnv(t, nil)
	body := msg("tool-calls", "call-tools", `"toolCallList":[
		{"id":"t1","type":"function","function":{"name":"getAppointment","arguments":"{\"date\":\"2026-12-01\"}"}},
		{"id":"t2","name":"strict","parameters":{"id":"seven"}},
		{"id":"t3","name":"unknownTool","arguments":{}},
		{"id":"t4","name":"getAppointment","parameters":{"n":1}}]`)
	h := e.signed(body)
	status, resp := e.post(body, h)
	if status != 200 {
		t.Fatalf("status %d %s", status, resp)
	}
	var out struct {
		Results []map[string]string `json:"results"`
	}
	if err := json.Unmarshal([]byte(resp), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Results) != 4 {
		t.Fatalf("results %s", resp)
	}
	for i, id := range []string{"t1", "t2", "t3", "t4"} {
		r := out.Results[i]
		if r["toolCallId"] != id || r["name"] == "" {
			t.Fatalf("result %d: %v (order or id wrong)", i, r)
		}
		if (r["result"] == "") == (r["error"] == "") {
			t.Fatalf("result %d must have exactly one of result/error: %v", i, r)
		}
	}
	if out.Results[0]["result"] != `{"echo":{"date":"2026-12-01"},"call":"call-tools"}` {
		t.Fatalf("t1 result %q", out.Results[0]["result"])
	}
	if !strings.Contains(out.Results[1]["error"], "/id") || !strings.Contains(out.Results[2]["error"], "Unknown tool") {
		t.Fatalf("errors: %v %v", out.Results[1], out.Results[2])
	}
	if strings.Contains(resp, "\\n") {
		t.Fatal("results must be single-line strings")
	}
	if e.hits.Load() != 2 {
		t.Fatalf("internal API hits %d, want 2", e.hits.Load())
	}
	// A byte-identical replay gets the same answer without calling the API again.
	status2, resp2 := e.post(body, h)
	if status2 != 200 || resp2 != resp || e.hits.Load() != 2 {
		t.Fatalf("replay: %d, same=%v, hits %d", status2, resp2 == resp, e.hits.Load())
	}
	if e.metric(`voicegate_requests_total{outcome="replay",source="vapi",type="none"}`) != "1" {
		t.Fatal("replay not counted")
	}
	if e.metric(`voicegate_tool_calls_total{outcome="ok",tool="getAppointment"}`) != "2" ||
		e.metric(`voicegate_tool_calls_total{outcome="invalid_arguments",tool="strict"}`) != "1" {
		t.Fatal("tool metrics missing")
	}
}

func TestLegacyFunctionCallAndOtherAnswers(t *testing.T) {
	e := newEnv(t, nil)
	cases := []struct{ name, body, want string }{
		{"function-call", msg("function-call", "c1", `"functionCall":{"name":"getAppointment","parameters":{"q":"x"}}`), `{"result":"{\"echo\":{\"q\":\"x\"},\"call\":\"c1\"}"}`},
		{"function-call unknown", msg("function-call", "c1", `"functionCall":{"name":"nope","parameters":{}}`), `{"result":"Unknown tool \"nope\": this tool is not available."}`},
		{"assistant by phone number id", msg("assistant-request", "c2", `"phoneNumber":{"id":"pn-sales"}`), `{"assistantId":"asst-sales"}`},
		{"assistant by called and caller", `{"message":{"type":"assistant-request","call":{"id":"c3","phoneNumber":{"number":"+15550009999"},"customer":{"number":"+15550001234"}}}}`, `{"destination":{"number":"+15550007777","type":"number"}}`},
		{"assistant no route", msg("assistant-request", "c4", `"phoneNumber":{"id":"pn-other"}`), `{"error":"Sorry, we cannot take your call right now. Please try again later."}`},
		{"transfer", msg("transfer-destination-request", "c5", ""), `{"destination":{"number":"+15550004444","type":"number"},"message":{"type":"request-start","message":"Transferring you now.","content":"Transferring you now."}}`},
		{"unknown type", msg("brand-new-event", "c6", ""), `{}`},
		{"transcript", msg("transcript", "c6", `"role":"user","transcriptType":"partial","transcript":"hi"`), `{}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, resp := e.send(tc.body)
			if status != 200 || resp != tc.want {
				t.Fatalf("got %d %s\nwant %s", status, resp, tc.want)
			}
		})
	}
}

func TestCallLifecyclePersistedAndSessionsIsolated(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	for _, b := range []string{
		msg("status-update", "A", `"status":"ringing"`),
		msg("status-update", "B", `"status":"ringing"`),
		msg("speech-update", "A", `"role":"assistant","status":"started","turn":1`),
		msg("status-update", "A", `"status":"in-progress"`),
	} {
		if s, r := e.send(b); s != 200 {
			t.Fatalf("%d %s", s, r)
		}
	}
	sa, okA := e.app.Sessions.Get("A")
	sb, okB := e.app.Sessions.Get("B")
	if !okA || !okB {
		t.Fatalf("sessions A %v, B %v", okA, okB)
	}
	a, b := sa.State(), sb.State()
	if !a.AssistantSpeaking || b.AssistantSpeaking || a.Status != "in-progress" || b.Status != "ringing" {
		t.Fatalf("sessions: A=%+v B=%+v", a, b)
	}
	if e.metric("voicegate_active_calls") != "2" {
		t.Fatalf("active calls %s", e.metric("voicegate_active_calls"))
	}
	e.send(msg("status-update", "A", `"status":"ended","endedReason":"customer-ended-call"`))
	if _, ok := e.app.Sessions.Get("A"); ok {
		t.Fatal("session A not removed on status ended")
	}
	e.send(msg("end-of-call-report", "B", `"endedReason":"hangup","cost":0.25,"durationSeconds":12.5`))
	if _, ok := e.app.Sessions.Get("B"); ok || e.app.Sessions.Len() != 0 {
		t.Fatal("session B not removed on end-of-call-report")
	}
	// Late events after the end do not bring a session back.
	for _, late := range []string{
		msg("transcript", "A", `"role":"user","transcriptType":"final","transcript":"bye"`),
		msg("speech-update", "B", `"role":"user","status":"stopped","turn":3`),
		msg("end-of-call-report", "A", `"endedReason":"customer-ended-call","cost":0.1`),
	} {
		if s, r := e.send(late); s != 200 || r != "{}" {
			t.Fatalf("late event: %d %s", s, r)
		}
	}
	if e.app.Sessions.Len() != 0 || e.metric("voicegate_active_calls") != "0" {
		t.Fatalf("late events revived %d sessions", e.app.Sessions.Len())
	}
	ra, hist, err := e.app.Store.Call(ctx, "A")
	if err != nil || ra.Status != "ended" || ra.EndedReason != "customer-ended-call" || len(hist) != 3 || ra.OrgID != "org" {
		t.Fatalf("A: %+v %v %v", ra, hist, err)
	}
	rb, _, err := e.app.Store.Call(ctx, "B")
	if err != nil || rb.Cost == nil || *rb.Cost != 0.25 || rb.Duration == nil || *rb.Duration != 12.5 || rb.EndedReason != "hangup" {
		t.Fatalf("B: %+v %v", rb, err)
	}
}

func TestStoreFailureIsRetryable(t *testing.T) {
	e := newEnv(t, nil)
	e.app.Store.Close()
	body := msg("end-of-call-report", "Z", `"endedReason":"hangup"`)
	h := e.signed(body)
	if s, r := e.post(body, h); s != 503 || !strings.Contains(r, "retry") {
		t.Fatalf("store down: %d %s", s, r)
	}
	// Not remembered as done: the same delivery is handled again, not replayed.
	if s, _ := e.post(body, h); s != 503 {
		t.Fatalf("retry was answered from the replay cache: %d", s)
	}
	resp, _ := http.Get(e.srv.URL + "/readyz")
	resp.Body.Close()
	if resp.StatusCode != 503 {
		t.Fatalf("readyz with database down: %d", resp.StatusCode)
	}
}

func TestHealthReadyDrainAndRoutes(t *testing.T) {
	e := newEnv(t, nil)
	get := func(path string) int {
		resp, err := http.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if get("/healthz") != 200 || get("/readyz") != 200 || get("/metrics") != 404 || get("/nope") != 404 || get("/webhook/vapi") != 405 ||
		get("/debug/pprof/") != 404 {
		t.Fatal("routes")
	}
	e.app.Gateway.SetDraining()
	if get("/readyz") != 503 || get("/healthz") != 200 {
		t.Fatal("readyz must fail while draining, healthz must not")
	}
}

func TestLogsNeverHoldBodiesSecretsOrSignatures(t *testing.T) {
	e := newEnv(t, nil)
	pii := "+15551230000"
	body := msg("tool-calls", "log-call", `"customer":{"number":"`+pii+`"},"toolCallList":[{"id":"t1","name":"getAppointment","arguments":{"ssn":"123-45-6789"}}]`)
	h := e.signed(body)
	e.post(body, h)
	e.post(body, h)
	bad := h.Clone()
	bad.Set("X-Signature", strings.Repeat("0", 64))
	e.post(body, bad)
	e.send(`{"message": {"type": "x", "transcript": "my card is 4111111111111111"`)
	logs := e.logs.String()
	if !strings.Contains(logs, "authentication failed") {
		t.Fatalf("expected auth failure log, got %s", logs)
	}
	for _, secretish := range []string{secret, h.Get("X-Signature"), pii, "123-45-6789", "4111111111111111", "toolCallList"} {
		if strings.Contains(logs, secretish) {
			t.Fatalf("log contains %q:\n%s", secretish, logs)
		}
	}
}

// TestToolErrorsNeverLogArguments: a GET tool's arguments travel in its
// URL's query, and Go's HTTP client quotes that URL in its errors; the
// debug line "tool request error" names the configured URL instead, so a
// caller's words never reach it — with log redaction on or off (the
// redactor would only catch the kinds it knows).
func TestToolErrorsNeverLogArguments(t *testing.T) {
	const (
		phone  = "+15557654321"
		email  = "jane.doe@example.com"
		phrase = "my-daughters-asthma"
	)
	for _, redact := range []bool{true, false} {
		t.Run(fmt.Sprintf("redact_pii=%v", redact), func(t *testing.T) {
			e := newEnv(t, func(c *config.Config) {
				c.Log.RedactPII = redact
				// Port 1 on 127.0.0.1 is closed: the connection is refused.
				tool := config.ToolConfig{Name: "lookupCaller", URL: "http://127.0.0.1:1/callers?apikey=SECRETKEY123", Method: http.MethodGet}
				tool.Complete()
				c.Tools = append(c.Tools, tool)
			})
			args := fmt.Sprintf(`{"phone":%q,"email":%q,"note":%q}`, phone, email, phrase)
			status, body := e.send(msg("tool-calls", "redact-call", `"toolCallList":[{"id":"t1","name":"lookupCaller","arguments":`+args+`}]`))
			if status != 200 || !strings.Contains(body, "unavailable") {
				t.Fatalf("%d %s: want the unreachable tool's error", status, body)
			}
			logs := e.logs.String()
			line := ""
			for _, l := range strings.Split(logs, "\n") {
				if strings.Contains(l, "tool request error") {
					line = l
				}
			}
			if line == "" || !strings.Contains(line, "127.0.0.1:1/callers") || !strings.Contains(line, "connection refused") {
				t.Fatalf("no tool request error naming the configured URL and the cause:\n%s", tail(logs, 2000))
			}
			for _, l := range []string{"5557654321", "jane.doe", phrase, "SECRETKEY123"} {
				if strings.Contains(logs, l) {
					t.Errorf("the logs carry %q:\n%s", l, line)
				}
			}
		})
	}
}

func TestDeadlineWarning(t *testing.T) {
	quiet := newEnv(t, nil)
	quiet.send(msg("assistant-request", "x", ""))
	if strings.Contains(quiet.logs.String(), "slow webhook answer") {
		t.Fatal("a fast answer must not warn")
	}
	// With a tiny ratio every answer uses "too much" of its deadline.
	e := newEnv(t, func(c *config.Config) { c.Vapi.DeadlineWarnRatio = 1e-9 })
	e.send(msg("assistant-request", "x", ""))
	if !strings.Contains(e.logs.String(), "slow webhook answer") || e.metric(`voicegate_deadline_warnings_total{source="vapi",type="assistant-request"}`) != "1" {
		t.Fatalf("deadline warning not raised: %s", e.logs.String())
	}
}

func TestFullSessionTableStillAnswers(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Sessions.Capacity = 1 })
	e.send(msg("status-update", "first", `"status":"in-progress"`))
	status, resp := e.send(msg("tool-calls", "second", `"toolCallList":[{"id":"t1","name":"getAppointment","arguments":{}}]`))
	if status != 200 || !strings.Contains(resp, `"result"`) {
		t.Fatalf("a call over capacity must still get its tool answer: %d %s", status, resp)
	}
	if _, ok := e.app.Sessions.Get("second"); ok || e.metric("voicegate_sessions_rejected_total") != "1" {
		t.Fatal("over-capacity call must not be tracked, and must be counted")
	}
}

// TestSignedURLPlaceholder: with {url} in the payload format, the URL signed
// is the configured public URL (what Vapi calls), not the one a proxy
// forwarded to.
func TestSignedURLPlaceholder(t *testing.T) {
	const public = "https://gw.example.com/webhook/vapi"
	for _, tc := range []struct {
		name, publicURL, signedAs string
		want                      int
	}{
		{"public url", public, public, 200},
		{"internal url signed while public configured", public, "", 401},
		{"derived from the request", "", "", 200},
		{"derived, other host signed", "", public, 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *config.Config) {
				c.Vapi.PublicURL = tc.publicURL
				c.Vapi.Auth[0].PayloadFormat = "{method} {url} {timestamp}.{body}"
			})
			signedAs := tc.signedAs
			if signedAs == "" {
				signedAs = e.url
			}
			body := msg("status-update", "u", `"status":"ringing"`)
			h := http.Header{}
			e.signer.Sign(h, http.MethodPost, signedAs, []byte(body), time.Now())
			if status, _ := e.post(body, h); status != tc.want {
				t.Fatalf("status %d, want %d", status, tc.want)
			}
		})
	}
}
