package tools

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/voicegate/voicegate/internal/confval"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/vapi"
)

// internalAPI is a real HTTP server on 127.0.0.1 standing in for the
// company's internal API that a tool is bound to.
type internalAPI struct {
	*httptest.Server
	hits    atomic.Int32
	mu      sync.Mutex
	lastReq *http.Request
	lastBod string
}

func newInternalAPI(t *testing.T, h func(w http.ResponseWriter, r *http.Request)) *internalAPI {
	api := &internalAPI{}
	api.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.hits.Add(1)
		b, _ := io.ReadAll(r.Body)
		api.mu.Lock()
		api.lastReq, api.lastBod = r, string(b)
		api.mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(api.Close)
	return api
}

func toolCfg(name, url string, mut func(*Config)) Config {
	c := Config{Name: name, URL: url, Method: "POST", Timeout: confval.Duration(2 * time.Second), MaxConcurrency: 8, MaxResponseBytes: 1 << 10}
	if mut != nil {
		mut(&c)
	}
	return c
}

func router(t *testing.T, cfgs ...Config) (*Router, *[]Outcome) {
	t.Helper()
	var mu sync.Mutex
	var outs []Outcome
	r, err := New(cfgs, slog.New(slog.DiscardHandler), func(_ string, o Outcome, _ time.Duration) {
		mu.Lock()
		outs = append(outs, o)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	return r, &outs
}

func call(r *Router, name, args string) vapi.ToolResult {
	a, err := vapi.NormalizeArgs(json.RawMessage(args))
	return r.Call(context.Background(), CallInfo{CallID: "call-1"}, vapi.Invocation{ID: "tc-1", Name: name, Args: a, ArgsErr: err})
}

func TestSuccessForwardsArgsAndHeaders(t *testing.T) {
	api := newInternalAPI(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{\n  \"slot\": \"10:30\",\n  \"ok\": true\n}\n")
	})
	r, outs := router(t, toolCfg("getAppointment", api.URL+"/appointments", func(c *Config) {
		c.Headers = map[string]HeaderValue{"Authorization": {Value: "Bearer internal"}}
	}))
	res := call(r, "getAppointment", `{"date":"2026-12-01"}`)
	if res.Error != "" || res.Result != `{"slot":"10:30","ok":true}` || res.ToolCallID != "tc-1" || res.Name != "getAppointment" {
		t.Fatalf("result %+v", res)
	}
	api.mu.Lock()
	defer api.mu.Unlock()
	if api.lastBod != `{"date":"2026-12-01"}` || api.lastReq.Header.Get("Authorization") != "Bearer internal" ||
		api.lastReq.Header.Get(HeaderCallID) != "call-1" || api.lastReq.Header.Get(HeaderToolCallID) != "tc-1" ||
		api.lastReq.URL.Path != "/appointments" {
		t.Fatalf("request to internal API: %s %v %q", api.lastReq.URL, api.lastReq.Header, api.lastBod)
	}
	if (*outs)[0] != OutcomeOK {
		t.Fatalf("outcome %v", *outs)
	}
}

func TestGETSendsQuery(t *testing.T) {
	api := newInternalAPI(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "Line one\nLine two\r\n") })
	r, _ := router(t, toolCfg("find", api.URL+"/find?fixed=1", func(c *Config) { c.Method = "GET" }))
	res := call(r, "find", `{"q":"a b","n":3,"deep":{"x":1}}`)
	if res.Result != "Line one Line two" {
		t.Fatalf("text result must be folded onto one line: %q", res.Result)
	}
	api.mu.Lock()
	q := api.lastReq.URL.Query()
	api.mu.Unlock()
	if q.Get("q") != "a b" || q.Get("n") != "3" || q.Get("deep") != `{"x":1}` || q.Get("fixed") != "1" {
		t.Fatalf("query %v", q)
	}
}

func TestFailuresAreSafeStrings(t *testing.T) {
	slow := newInternalAPI(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	})
	fail := newInternalAPI(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "panic: runtime error at /srv/internal/appointments.go:42 db=postgres://10.0.0.5", 500)
	})
	redirect := newInternalAPI(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://169.254.169.254/latest/meta-data", http.StatusFound)
	})
	big := newInternalAPI(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, strings.Repeat("x", 2000)) })
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	schema := map[string]any{"type": "object", "properties": map[string]any{"date": map[string]any{"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}}, "required": []any{"date"}}
	r, outs := router(t,
		toolCfg("slow", slow.URL, func(c *Config) { c.Timeout = confval.Duration(100 * time.Millisecond) }),
		toolCfg("fail", fail.URL, nil),
		toolCfg("redirect", redirect.URL, nil),
		toolCfg("big", big.URL, nil),
		toolCfg("dead", deadURL, nil),
		toolCfg("strict", fail.URL, func(c *Config) { c.Schema = schema }),
	)
	cases := []struct {
		tool, args string
		want       Outcome
		mention    string
	}{
		{"slow", `{}`, OutcomeTimeout, "did not answer in time"},
		{"fail", `{}`, OutcomeHTTPError, "failed (status 500)"},
		{"redirect", `{}`, OutcomeHTTPError, "failed (status 302)"},
		{"big", `{}`, OutcomeTooLarge, "too much data"},
		{"dead", `{}`, OutcomeUnreachable, "unavailable"},
		{"strict", `{"date":"tomorrow"}`, OutcomeBadArgs, "/date"},
		{"strict", `{}`, OutcomeBadArgs, "missing property 'date'"},
		{"strict", `"not json"`, OutcomeBadArgs, "JSON"},
		{"nope", `{}`, OutcomeUnknownTool, "Unknown tool"},
	}
	for i, tc := range cases {
		res := call(r, tc.tool, tc.args)
		if res.Result != "" || !strings.Contains(res.Error, tc.mention) {
			t.Errorf("%s %s: %+v, want error mentioning %q", tc.tool, tc.args, res, tc.mention)
		}
		for _, leak := range []string{"127.0.0.1", "panic", "postgres", "169.254", ".go:", "\n"} {
			if strings.Contains(res.Error, leak) {
				t.Errorf("%s: error leaks %q: %q", tc.tool, leak, res.Error)
			}
		}
		if got := (*outs)[i]; got != tc.want {
			t.Errorf("%s: outcome %s, want %s", tc.tool, got, tc.want)
		}
	}
	if redirect.hits.Load() != 1 {
		t.Fatalf("redirect target hit %d times", redirect.hits.Load())
	}
	if fail.hits.Load() != 1 {
		t.Fatalf("invalid arguments must not reach the internal API (hits %d)", fail.hits.Load())
	}
}

func TestConcurrencyCapAndOrder(t *testing.T) {
	release := make(chan struct{})
	var inflight, peak atomic.Int32
	api := newInternalAPI(t, func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		<-release
		inflight.Add(-1)
		b, _ := json.Marshal(r.Header.Get(HeaderToolCallID))
		w.Write(b)
	})
	r, _ := router(t, toolCfg("t", api.URL, func(c *Config) {
		c.MaxConcurrency = 2
		c.Timeout = confval.Duration(300 * time.Millisecond)
	}))
	invs := make([]vapi.Invocation, 4)
	for i := range invs {
		invs[i] = vapi.Invocation{ID: string(rune('a' + i)), Name: "t", Args: json.RawMessage(`{}`)}
	}
	go func() { time.Sleep(100 * time.Millisecond); close(release) }()
	res := r.CallAll(context.Background(), CallInfo{}, invs)
	// Exactly the cap: the calls ran concurrently, and no more at once.
	if p := peak.Load(); p != 2 {
		t.Fatalf("peak concurrency %d, want the cap, 2", p)
	}
	if len(res) != len(invs) {
		t.Fatalf("%d results for %d calls", len(res), len(invs))
	}
	for i, x := range res {
		if x.ToolCallID != invs[i].ID {
			t.Fatalf("results out of call order: %+v", res)
		}
		// Every call succeeds: the waiting ones get a slot once the first
		// two are released, well inside their timeout.
		if x.Error != "" || x.Result != invs[i].ID {
			t.Fatalf("result %d is %+v, want its own answer %q", i, x, invs[i].ID)
		}
	}
}

func TestResultString(t *testing.T) {
	cases := map[string]string{
		"":                      "OK",
		"  \"quoted\\ntext\"  ": "quoted text",
		"{\"a\":\n [1, 2]}":     `{"a":[1,2]}`,
		"plain\ttext\r\nmore":   "plain text more",
		"[1,\n2]":               "[1,2]",
		"{not json\n":           "{not json",
	}
	for in, want := range cases {
		if got := ResultString([]byte(in)); got != want {
			t.Errorf("ResultString(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFailureLogNamesStatusOrCause: a failed call is logged once at warn
// with what the operator needs — the internal API's status, or the class
// of error that stopped the request — and never the URL's secret.
func TestFailureLogNamesStatusOrCause(t *testing.T) {
	api := newInternalAPI(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	r, err := New([]Config{toolCfg("getX", api.URL, nil), toolCfg("getY", "http://127.0.0.1:1/y?apikey=SECRETKEY123", nil)}, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ tool, want string }{
		{"getX", `outcome=http_error duration_ms=`},
		{"getX", ` status=502`},
		{"getY", `err_class="connection refused"`},
		{"nope", `msg="unknown tool called" tool=nope call_id=call-1`},
	} {
		buf.Reset()
		if res := call(r, c.tool, `{}`); res.Outcome == string(OutcomeOK) || res.Error == "" {
			t.Fatalf("%s: want a failure, got %+v", c.tool, res)
		}
		out := buf.String()
		if !strings.Contains(out, c.want) || strings.Count(out, "\n") != 1 {
			t.Errorf("%s: want one warn line with %q, got:\n%s", c.tool, c.want, out)
		}
		if strings.Contains(out, "SECRETKEY123") {
			t.Errorf("the log leaks the URL's secret:\n%s", out)
		}
	}
}

// TestDryRunChecksEverythingButCallsNothing: a dry run refuses what a real
// call would refuse and answers the rest without reaching the internal API
// or the tool metrics.
func TestDryRunChecksEverythingButCallsNothing(t *testing.T) {
	api := newInternalAPI(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) })
	r, outs := router(t, toolCfg("book", api.URL, func(c *Config) {
		c.Schema = map[string]any{"type": "object", "required": []any{"date"}}
	}))
	dry := func(name, args string) vapi.ToolResult {
		a, err := vapi.NormalizeArgs(json.RawMessage(args))
		return r.Call(context.Background(), CallInfo{CallID: "c", DryRun: true}, vapi.Invocation{ID: "t", Name: name, Args: a, ArgsErr: err})
	}
	if res := dry("book", `{"date":"2026-12-01"}`); res.Outcome != "ok" || !strings.HasPrefix(res.Result, "Dry run: book was not called") {
		t.Fatalf("valid arguments: %+v", res)
	}
	if res := dry("book", `{}`); res.Outcome != string(OutcomeBadArgs) {
		t.Fatalf("arguments the schema refuses: %+v", res)
	}
	if res := dry("other", `{}`); res.Outcome != string(OutcomeUnknownTool) {
		t.Fatalf("unknown tool: %+v", res)
	}
	if n := api.hits.Load(); n != 0 {
		t.Fatalf("a dry run reached the internal API %d times", n)
	}
	if len(*outs) != 0 {
		t.Fatalf("dry runs were counted in the tool metrics: %v", *outs)
	}
}

// TestIdempotencyKeyHeader: CallInfo.IdempotencyKey becomes the
// Idempotency-Key header, last, so that a configured header of that name
// (refused by Validate) could not stand in for it; without a key no such
// header is derived from the call and tool call ids. The HTTP status is reported with the result.
func TestIdempotencyKeyHeader(t *testing.T) {
	api := newInternalAPI(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fail" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	r, _ := router(t, toolCfg("act", api.URL+"/act", func(c *Config) {
		// Not through Validate: New must drop it even so.
		c.Headers = map[string]HeaderValue{"idempotency-key": {Value: "configured"}}
	}), toolCfg("fail", api.URL+"/fail", nil))
	inv := vapi.Invocation{ID: "tc-1", Name: "act", Args: json.RawMessage(`{}`)}
	res := r.Call(context.Background(), CallInfo{CallID: "call-1", IdempotencyKey: "key-123"}, inv)
	req, _ := api.lastRequest(t)
	if got := req.Header.Values(HeaderIdempotencyKey); res.Error != "" || len(got) != 1 || got[0] != "key-123" {
		t.Fatalf("Idempotency-Key %q (result %+v), want exactly [key-123]", got, res)
	}
	if res.Status != http.StatusOK {
		t.Errorf("status %d, want 200", res.Status)
	}
	// Without a key, one derived from the call and tool call ids: the same
	// on every delivery, different per tool call; none without those ids.
	r.Call(context.Background(), CallInfo{CallID: "call-1"}, inv)
	if req, _ := api.lastRequest(t); req.Header.Get(HeaderIdempotencyKey) != IdempotencyKey("call-1", "tc-1") {
		t.Fatalf("no key given: Idempotency-Key %q, want the one derived from the ids", req.Header.Get(HeaderIdempotencyKey))
	}
	if IdempotencyKey("call-1", "tc-1") == IdempotencyKey("call-1", "tc-2") || IdempotencyKey("a", "bc") == IdempotencyKey("ab", "c") {
		t.Fatal("derived keys collide")
	}
	r.Call(context.Background(), CallInfo{}, vapi.Invocation{Name: "act", Args: json.RawMessage(`{}`)})
	if req, _ := api.lastRequest(t); req.Header.Get(HeaderIdempotencyKey) != "" {
		t.Fatalf("no ids, but Idempotency-Key %q sent", req.Header.Get(HeaderIdempotencyKey))
	}
	res = r.Call(context.Background(), CallInfo{CallID: "call-1"}, vapi.Invocation{ID: "tc-2", Name: "fail", Args: json.RawMessage(`{}`)})
	if res.Status != http.StatusServiceUnavailable || res.Outcome != string(OutcomeHTTPError) {
		t.Fatalf("failed call: status %d outcome %s", res.Status, res.Outcome)
	}
}

// TestVapiShapedAnswer: with response: vapi, the internal API answers in
// Vapi's tool-result shape and its spoken message and metadata pass
// through; an answer not in that shape is the whole result, as with
// response: body.
func TestVapiShapedAnswer(t *testing.T) {
	var answer atomic.Value
	api := newInternalAPI(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, answer.Load().(string))
	})
	r, _ := router(t, toolCfg("book", api.URL, func(c *Config) { c.Response = ResponseVapi }), toolCfg("plain", api.URL, func(c *Config) { c.Response = ResponseBody }))
	for _, c := range []struct {
		tool, body                        string
		result, errMsg, message, metadata string
	}{
		{"book", `{"result":"Booked for 3pm","message":{"type":"request-complete","content":"Done!"},"metadata":{"bookingId":"B1"}}`,
			"Booked for 3pm", "", `{"type":"request-complete","content":"Done!"}`, `{"bookingId":"B1"}`},
		{"book", `{"result":{"slot":"15:00"},"message":[{"type":"request-complete","content":"Done"}]}`, `{"slot":"15:00"}`, "", `[{"type":"request-complete","content":"Done"}]`, ""},
		{"book", `{"error":"No slot left\non Friday"}`, "", "No slot left on Friday", "", ""},
		{"book", `{"slot":"15:00"}`, `{"slot":"15:00"}`, "", "", ""},                                                   // not the shape: the whole answer
		{"book", `{"result":"x","metadata":"not an object"}`, `{"result":"x","metadata":"not an object"}`, "", "", ""}, // not the shape either
		{"plain", `{"result":"Booked","metadata":{"a":1}}`, `{"result":"Booked","metadata":{"a":1}}`, "", "", ""},
	} {
		answer.Store(c.body)
		res := call(r, c.tool, `{}`)
		if res.Result != c.result || res.Error != c.errMsg || string(res.Message) != c.message || string(res.Metadata) != c.metadata {
			t.Errorf("%s %s: %+v (message %s metadata %s)", c.tool, c.body, res, res.Message, res.Metadata)
		}
	}
	b, _ := json.Marshal(vapi.ToolCallsResponse{Results: []vapi.ToolResult{{ToolCallID: "t", Name: "book", Result: "ok", Message: json.RawMessage(`{"type":"request-complete"}`), Metadata: json.RawMessage(`{"a":1}`)}}})
	if string(b) != `{"results":[{"toolCallId":"t","name":"book","result":"ok","message":{"type":"request-complete"},"metadata":{"a":1}}]}` {
		t.Fatalf("answer to Vapi: %s", b)
	}
}
