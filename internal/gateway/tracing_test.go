package gateway_test

import (
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/app"
	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/tracing"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// tracedEnv is newEnv with app.Options.SpanProcessor set (nil: spans go
// where the configuration's tracing section says), and the traceparent
// each internal API request carried.
type tracedEnv struct {
	*env
	mu           sync.Mutex
	traceparents []string
}

func newTracedEnv(t testing.TB, proc sdktrace.SpanProcessor, mut func(*config.Config)) *tracedEnv {
	t.Helper()
	te := &tracedEnv{env: &env{t: t, logs: &syncBuf{}, now: time.Now()}}
	e := te.env
	e.api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.hits.Add(1)
		te.mu.Lock()
		te.traceparents = append(te.traceparents, r.Header.Get("Traceparent"))
		te.mu.Unlock()
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"slot":"10:30"}`)
	}))
	t.Cleanup(e.api.Close)
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
data_dir: %s
replica: gw-test-1
vapi:
  auth:
    - mode: hmac
      secrets: [%s]
tools:
  - name: getAppointment
    url: %s/appointments
`, t.TempDir(), secret, e.api.URL)), config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if mut != nil {
		mut(cfg)
	}
	level := slog.LevelDebug
	if cfg.Log.Level == "error" {
		level = slog.LevelError
	}
	e.app, err = app.New(context.Background(), cfg, app.Options{Log: slog.New(cfg.Log.Handler(e.logs, level)), Version: "v-test", SpanProcessor: proc})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.app.Close() })
	e.srv = httptest.NewServer(e.app.Gateway)
	t.Cleanup(e.srv.Close)
	e.url = e.srv.URL + cfg.Vapi.Path
	if e.signer, err = auth.NewSigner(cfg.Vapi.Auth[0], e.now); err != nil {
		t.Fatal(err)
	}
	return te
}

// phone is the caller's number in the traced messages: it must reach no
// span attribute.
const phone = "+15550001234"

func toolCallsWithPhone(callID string) string {
	return fmt.Sprintf(`{"message":{"type":"tool-calls","timestamp":%d,"call":{"id":%q,"orgId":"org","customer":{"number":%q}},"customer":{"number":%q},`+
		`"toolCallList":[{"id":"tc-1","type":"function","function":{"name":"getAppointment","arguments":"{\"phone\":\"%s\"}"}}]}}`,
		time.Now().UnixNano(), callID, phone, phone, phone)
}

// TestTracingSpanTree: a signed tool-calls webhook through the real gateway
// makes one trace: the server span (call id, message type, status), its
// authentication, replay-guard, tool-call and storage children, and the
// internal API receives a traceparent of that same trace. No attribute
// holds the caller's number.
func TestTracingSpanTree(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	te := newTracedEnv(t, rec, nil)
	if code, out := te.send(toolCallsWithPhone("call-traced")); code != 200 || !strings.Contains(out, "10:30") {
		t.Fatalf("%d %s", code, out)
	}
	spans := rec.Ended()
	byName := map[string]sdktrace.ReadOnlySpan{}
	var names []string
	for _, s := range spans {
		byName[s.Name()] = s
		names = append(names, s.Name())
	}
	root, ok := byName["POST /webhook/vapi"]
	if !ok {
		t.Fatalf("no webhook span among %v", names)
	}
	if root.SpanKind() != trace.SpanKindServer || root.Parent().IsValid() {
		t.Errorf("webhook span: kind %v, parent %v", root.SpanKind(), root.Parent())
	}
	attrs := func(s sdktrace.ReadOnlySpan) map[string]string {
		m := map[string]string{}
		for _, kv := range s.Attributes() {
			m[string(kv.Key)] = kv.Value.Emit()
		}
		return m
	}
	ra := attrs(root)
	for k, want := range map[string]string{"voicegate.call_id": "call-traced", "voicegate.message_type": "tool-calls", "http.response.status_code": "200", "voicegate.outcome": "ok", "http.route": "/webhook/vapi"} {
		if ra[k] != want {
			t.Errorf("webhook span %s = %q, want %q (%v)", k, ra[k], want, ra)
		}
	}
	tid := root.SpanContext().TraceID()
	// Direct children of the webhook span.
	for _, name := range []string{"authenticate", "replay.begin", "replay.finish", "tool call"} {
		s, ok := byName[name]
		if !ok {
			t.Errorf("no %q span among %v", name, names)
			continue
		}
		if s.Parent().SpanID() != root.SpanContext().SpanID() || s.SpanContext().TraceID() != tid {
			t.Errorf("%s is not a child of the webhook span", name)
		}
	}
	if ta := attrs(byName["tool call"]); ta["voicegate.tool"] != "getAppointment" || ta["voicegate.outcome"] != "ok" || ta["http.response.status_code"] != "200" {
		t.Errorf("tool call span attributes %v", ta)
	}
	// Storage: the call's first sight and the sealed tool-call record,
	// each a span of this trace.
	var storage []string
	for _, s := range spans {
		if strings.HasPrefix(s.Name(), "store.") {
			storage = append(storage, s.Name())
			if s.SpanContext().TraceID() != tid {
				t.Errorf("%s is in another trace", s.Name())
			}
		}
	}
	for _, want := range []string{"store.create_call", "store.put_record"} {
		if !slices.Contains(storage, want) {
			t.Errorf("no %s span among %v", want, storage)
		}
	}
	// The internal API continued the trace.
	te.mu.Lock()
	tps := slices.Clone(te.traceparents)
	te.mu.Unlock()
	if len(tps) != 1 || !strings.HasPrefix(tps[0], "00-"+tid.String()+"-") {
		t.Errorf("internal API got traceparent %q, want trace %s", tps, tid)
	}
	// Resource: the replica and the version.
	res := map[string]string{}
	for _, kv := range root.Resource().Attributes() {
		res[string(kv.Key)] = kv.Value.Emit()
	}
	if res["service.name"] != "voicegate" || res["service.instance.id"] != "gw-test-1" || res["service.version"] != "v-test" {
		t.Errorf("resource %v", res)
	}
	// Nothing personal in any attribute, status or event.
	digits := strings.TrimPrefix(phone, "+")
	for _, s := range spans {
		all := s.Status().Description
		for _, kv := range s.Attributes() {
			all += " " + kv.Value.Emit()
		}
		for _, ev := range s.Events() {
			all += " " + ev.Name
		}
		if strings.Contains(all, digits) {
			t.Errorf("span %s carries the caller's number: %s", s.Name(), all)
		}
	}
}

// TestTracingAcceptsIncomingTraceparent: a webhook carrying a W3C
// traceparent (a proxy's) continues that trace; a refused one is still
// traced, with its reason and status.
func TestTracingAcceptsIncomingTraceparent(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	te := newTracedEnv(t, rec, nil)
	const parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	body := msg("status-update", "call-tp", `"status":"in-progress"`)
	h := te.signed(body)
	h.Set("Traceparent", parent)
	if code, out := te.post(body, h); code != 200 {
		t.Fatalf("%d %s", code, out)
	}
	h = http.Header{"Traceparent": {parent}}
	if code, _ := te.post(body+" ", h); code != 401 {
		t.Fatalf("unsigned: %d", code)
	}
	var webhooks, auths []sdktrace.ReadOnlySpan
	for _, s := range rec.Ended() {
		switch s.Name() {
		case "POST /webhook/vapi":
			webhooks = append(webhooks, s)
		case "authenticate":
			auths = append(auths, s)
		}
	}
	if len(webhooks) != 2 || len(auths) != 2 {
		t.Fatalf("%d webhook spans, %d authentication spans", len(webhooks), len(auths))
	}
	for _, s := range webhooks {
		if got := s.SpanContext().TraceID().String(); got != "0af7651916cd43dd8448eb211c80319c" || s.Parent().SpanID().String() != "b7ad6b7169203331" || !s.Parent().IsRemote() {
			t.Errorf("webhook span in trace %s under %v: want the incoming traceparent's", got, s.Parent())
		}
	}
	last := webhooks[1]
	var status string
	for _, kv := range last.Attributes() {
		if kv.Key == "http.response.status_code" {
			status = kv.Value.Emit()
		}
	}
	if status != "401" {
		t.Errorf("refused request's span status %q", status)
	}
	var reason string
	for _, kv := range auths[1].Attributes() {
		if kv.Key == tracing.AttrReason {
			reason = kv.Value.Emit()
		}
	}
	if reason != "missing" {
		t.Errorf("authentication span reason %q, want missing", reason)
	}
}

// otlpReceiver is a loopback OTLP/HTTP collector: it decodes each
// POST /v1/traces and keeps the span names and the headers it got.
type otlpReceiver struct {
	*httptest.Server
	mu      sync.Mutex
	spans   []string
	res     []string
	headers []http.Header
	paths   []string
}

func newOTLPReceiver(t testing.TB) *otlpReceiver {
	o := &otlpReceiver{}
	o.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), 400)
				return
			}
			body = zr
		}
		b, err := io.ReadAll(io.LimitReader(body, 8<<20))
		var req collectortrace.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(b, &req)
		}
		if err != nil || r.Method != http.MethodPost {
			http.Error(w, "bad export", 400)
			return
		}
		o.mu.Lock()
		o.paths = append(o.paths, r.URL.Path)
		o.headers = append(o.headers, r.Header.Clone())
		for _, rs := range req.ResourceSpans {
			for _, kv := range rs.GetResource().GetAttributes() {
				o.res = append(o.res, kv.GetKey()+"="+kv.GetValue().GetStringValue())
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					o.spans = append(o.spans, s.Name)
				}
			}
		}
		o.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
		w.Write(out)
	}))
	t.Cleanup(o.Close)
	return o
}

// TestTracingExportsToConfiguredEndpoint: with tracing.endpoint set, the
// spans of a webhook reach that collector's /v1/traces (OTLP/HTTP
// protobuf) with the configured headers, flushed by the app's Close.
func TestTracingExportsToConfiguredEndpoint(t *testing.T) {
	col := newOTLPReceiver(t)
	te := newTracedEnv(t, nil, func(c *config.Config) {
		c.Tracing.Endpoint = col.URL
		c.Tracing.Headers = map[string]confval.Masked{"Authorization": "Bearer collector-token"}
		if err := c.Check(config.Options{}); err != nil {
			t.Fatal(err)
		}
	})
	if code, out := te.send(msg("status-update", "call-exported", `"status":"in-progress"`)); code != 200 {
		t.Fatalf("%d %s", code, out)
	}
	if err := te.app.Close(); err != nil { // flushes the batch
		t.Fatal(err)
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	if !slices.Contains(col.spans, "POST /webhook/vapi") || !slices.Contains(col.spans, "store.record_status") {
		t.Fatalf("collector got spans %v", col.spans)
	}
	for i, p := range col.paths {
		if p != "/v1/traces" || col.headers[i].Get("Authorization") != "Bearer collector-token" {
			t.Errorf("export %d: path %s, authorization %q", i, p, col.headers[i].Get("Authorization"))
		}
	}
	if !slices.Contains(col.res, "service.instance.id=gw-test-1") || !slices.Contains(col.res, "service.name=voicegate") {
		t.Errorf("resource %v", col.res)
	}
	if strings.Contains(te.logs.String(), "collector-token") {
		t.Error("the collector's header reached the log")
	}
}

// TestTracingOffStartsNothing: without an endpoint, no provider exists and
// requests carry no trace to the internal API.
func TestTracingOffStartsNothing(t *testing.T) {
	te := newTracedEnv(t, nil, nil)
	if te.app.Tracing != nil {
		t.Fatal("tracing is on without an endpoint")
	}
	body := toolCallsWithPhone("call-off")
	h := te.signed(body)
	h.Set("Traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
	if code, out := te.post(body, h); code != 200 {
		t.Fatalf("%d %s", code, out)
	}
	te.mu.Lock()
	defer te.mu.Unlock()
	if len(te.traceparents) != 1 || te.traceparents[0] != "" {
		t.Fatalf("internal API got traceparent %q with tracing off", te.traceparents)
	}
}
