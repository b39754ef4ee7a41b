package tools

// Regression tests from the security review: what the operator configured
// (URL, query, headers) can never be changed by a tool call's payload, and
// internal URLs with secrets in them never reach the log. Every server here
// is an httptest server on 127.0.0.1 standing in for an internal API; nothing
// leaves the machine.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/vapi"
)

// lastRequest returns the last request the internal API received.
func (api *internalAPI) lastRequest(t *testing.T) (*http.Request, string) {
	t.Helper()
	api.mu.Lock()
	defer api.mu.Unlock()
	if api.lastReq == nil {
		t.Fatal("the internal API was not called")
	}
	return api.lastReq, api.lastBod
}

func okAPI(t *testing.T) *internalAPI {
	return newInternalAPI(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"ok":true}`) })
}

func TestArgsCannotOverrideConfiguredQuery(t *testing.T) {
	api := okAPI(t)
	get := func(c *Config) { c.Method = http.MethodGet }
	r, outs := router(t,
		toolCfg("getX", api.URL+"/echo?tenant=acme&apikey=K", get),
		toolCfg("delX", api.URL+"/echo?tenant=acme&apikey=K", func(c *Config) { c.Method = http.MethodDelete }),
		toolCfg("getMixed", api.URL+"/echo?apiKey=K", get),
		toolCfg("getSemi", api.URL+"/echo?a=1;tenant=acme", get),
		toolCfg("postX", api.URL+"/echo?tenant=acme&apikey=K", nil),
		toolCfg("getPHP", api.URL+"/echo?tenant=acme&api_key=K", get),
		toolCfg("getJSONAPI", api.URL+"/echo?page[size]=25&api.version=2", get),
	)
	cases := []struct {
		tool, args, want string
	}{
		{"getX", `{"tenant":"evil-corp"}`,
			`Invalid arguments for getX: "tenant" is fixed by the configuration and cannot be set. Remove it and call again.`},
		{"getX", `{"tenant":"evil-corp","apikey":"attacker"}`,
			`Invalid arguments for getX: "apikey", "tenant" are fixed by the configuration and cannot be set. Remove them and call again.`},
		{"getX", `{"date":"2026-12-01","TENANT":"evil-corp"}`,
			`Invalid arguments for getX: "TENANT" is fixed by the configuration and cannot be set. Remove it and call again.`},
		{"getX", `{"apikey":null}`,
			`Invalid arguments for getX: "apikey" is fixed by the configuration and cannot be set. Remove it and call again.`},
		{"delX", `{"tenant":"evil-corp"}`,
			`Invalid arguments for delX: "tenant" is fixed by the configuration and cannot be set. Remove it and call again.`},
		{"getMixed", `{"apikey":"attacker"}`,
			`Invalid arguments for getMixed: "apikey" is fixed by the configuration and cannot be set. Remove it and call again.`},
		{"getSemi", `{"tenant":"evil-corp"}`,
			`Invalid arguments for getSemi: "tenant" is fixed by the configuration and cannot be set. Remove it and call again.`},
		// A POST body is the arguments object unchanged, but frameworks that
		// merge body and query parameters (Laravel's input(), PHP's
		// $_REQUEST) would let it override the configured value all the same.
		{"postX", `{"tenant":"evil-corp"}`,
			`Invalid arguments for postX: "tenant" is fixed by the configuration and cannot be set. Remove it and call again.`},
		// Spellings that reach the same parameter: PHP reads "api.key" and
		// "api key" as "api_key" and drops surrounding spaces; "tenant[]"
		// replaces "tenant" in PHP, Rails and qs; a NUL ends a name in PHP;
		// "ſ" folds to "s" in some. With fixed parameters, names must be
		// plain; a plain one is compared as frameworks fold it.
		{"getPHP", `{"api.key":"attacker"}`,
			`Invalid arguments for getPHP: "api.key" is not a plain parameter name: use only letters, digits, "_" and "-", and call again.`},
		{"getPHP", `{"api key":"attacker","api[key":"x"}`,
			`Invalid arguments for getPHP: "api key", "api[key" are not plain parameter names: use only letters, digits, "_" and "-", and call again.`},
		{"getPHP", `{" tenant":"evil"}`,
			`Invalid arguments for getPHP: " tenant" is not a plain parameter name: use only letters, digits, "_" and "-", and call again.`},
		{"getPHP", `{"tenant[]":"evil","api_key\u0000x":"y","ſession":"z"}`,
			`Invalid arguments for getPHP: "api_key\x00x", "tenant[]", "ſession" are not plain parameter names: use only letters, digits, "_" and "-", and call again.`},
		{"getPHP", `{"TENANT":"evil","date":"ok"}`,
			`Invalid arguments for getPHP: "TENANT" is fixed by the configuration and cannot be set. Remove it and call again.`},
		// A plain name replaces a fixed array in PHP ("page" after
		// "page[size]=25"); a dotted fixed name is the underscored one.
		{"getJSONAPI", `{"page":"2"}`,
			`Invalid arguments for getJSONAPI: "page" is fixed by the configuration and cannot be set. Remove it and call again.`},
		{"getJSONAPI", `{"api_version":"0"}`,
			`Invalid arguments for getJSONAPI: "api_version" is fixed by the configuration and cannot be set. Remove it and call again.`},
	}
	for i, tc := range cases {
		res := call(r, tc.tool, tc.args)
		if res.Error != tc.want || res.Result != "" {
			t.Errorf("%s %s:\n got %+v\nwant error %q", tc.tool, tc.args, res, tc.want)
		}
		if got := (*outs)[i]; got != OutcomeBadArgs {
			t.Errorf("%s %s: outcome %s, want %s", tc.tool, tc.args, got, OutcomeBadArgs)
		}
	}
	if n := api.hits.Load(); n != 0 {
		t.Fatalf("a conflicting argument must not reach the internal API (hits %d)", n)
	}
}

func TestConfiguredQueryIsKeptVerbatim(t *testing.T) {
	api := okAPI(t)
	get := func(c *Config) { c.Method = http.MethodGet }
	r, _ := router(t,
		toolCfg("getX", api.URL+"/echo?tenant=acme&apikey=K", get),
		toolCfg("getEnc", api.URL+"/echo?tenant=acme%20corp&list=a,b&z=1", get),
		toolCfg("getSemi", api.URL+"/echo?a=1;b=2", get),
		toolCfg("getNone", api.URL+"/echo", get),
	)
	cases := []struct{ tool, args, wantRawQuery string }{
		{"getX", `{"date":"2026-12-01"}`, "tenant=acme&apikey=K&date=2026-12-01"},
		{"getX", `{}`, "tenant=acme&apikey=K"},
		{"getEnc", `{"q":"a b"}`, "tenant=acme%20corp&list=a,b&z=1&q=a+b"},
		{"getSemi", `{"q":"x"}`, "a=1;b=2&q=x"},
		{"getNone", `{"q":"x","n":3}`, "n=3&q=x"},
	}
	for _, tc := range cases {
		if res := call(r, tc.tool, tc.args); res.Error != "" {
			t.Fatalf("%s %s: %+v", tc.tool, tc.args, res)
		}
		req, _ := api.lastRequest(t)
		if req.URL.RawQuery != tc.wantRawQuery {
			t.Errorf("%s %s: query %q, want %q", tc.tool, tc.args, req.URL.RawQuery, tc.wantRawQuery)
		}
	}
}

func TestArgKeyCannotInjectQueryParams(t *testing.T) {
	api := okAPI(t)
	get := func(c *Config) { c.Method = http.MethodGet }
	r, _ := router(t, toolCfg("getX", api.URL+"/echo?tenant=acme", get), toolCfg("getFree", api.URL+"/echo", get))
	// A URL without fixed parameters takes any key, escaped: "&", "=" and
	// ";" in a key arrive as part of that one key.
	if res := call(r, "getFree", `{"a&tenant=evil":"x","b=c;tenant":"y"}`); res.Error != "" {
		t.Fatalf("%+v", res)
	}
	req, _ := api.lastRequest(t)
	q := req.URL.Query()
	if q.Get("a&tenant=evil") != "x" || q.Get("b=c;tenant") != "y" || len(q) != 2 || q.Has("tenant") {
		t.Errorf("keys with & = ; must arrive as one key each: %q", req.URL.RawQuery)
	}
	// With fixed parameters such keys are refused before any request.
	hits := api.hits.Load()
	if res := call(r, "getX", `{"a&tenant=evil":"x"}`); !strings.Contains(res.Error, "not a plain parameter name") {
		t.Fatalf("a key with & on a tool with fixed parameters: %+v", res)
	}
	if api.hits.Load() != hits {
		t.Fatal("a refused call reached the internal API")
	}
}

func TestPOSTKeepsConfiguredQuery(t *testing.T) {
	api := okAPI(t)
	r, _ := router(t, toolCfg("postX", api.URL+"/echo?tenant=acme&apikey=K", nil))
	if res := call(r, "postX", `{"date":"2026-12-01","q":"a&tenant=evil"}`); res.Error != "" {
		t.Fatalf("%+v", res)
	}
	req, body := api.lastRequest(t)
	if req.URL.Path != "/echo" || req.URL.RawQuery != "tenant=acme&apikey=K" || body != `{"date":"2026-12-01","q":"a&tenant=evil"}` {
		t.Fatalf("POST changed the configured URL or the body: %s %q", req.URL, body)
	}
}

func TestConfiguredHeadersAreHonoured(t *testing.T) {
	api := okAPI(t)
	r, _ := router(t,
		toolCfg("custom", api.URL+"/c", func(c *Config) {
			c.Headers = map[string]HeaderValue{
				"content-type": {Value: "application/vnd.acme+json"},
				"Accept":       {Value: "application/xml"},
				"User-Agent":   {Value: "acme-gateway/1"},
			}
		}),
		toolCfg("plainPOST", api.URL+"/p", nil),
		toolCfg("plainGET", api.URL+"/g", func(c *Config) { c.Method = http.MethodGet }),
	)
	cases := []struct {
		tool                 string
		ctype, accept, agent string
	}{
		{"custom", "application/vnd.acme+json", "application/xml", "acme-gateway/1"},
		{"plainPOST", "application/json", "application/json, text/plain;q=0.9", "voicegate"},
		{"plainGET", "", "application/json, text/plain;q=0.9", "voicegate"},
	}
	for _, tc := range cases {
		if res := call(r, tc.tool, `{"a":1}`); res.Error != "" {
			t.Fatalf("%s: %+v", tc.tool, res)
		}
		req, _ := api.lastRequest(t)
		h := req.Header
		if h.Get("Content-Type") != tc.ctype || h.Get("Accept") != tc.accept || h.Get("User-Agent") != tc.agent ||
			len(h.Values("Content-Type")) > 1 || len(h.Values("Accept")) != 1 || len(h.Values("User-Agent")) != 1 {
			t.Errorf("%s: headers %v, want Content-Type %q, Accept %q, User-Agent %q", tc.tool, h, tc.ctype, tc.accept, tc.agent)
		}
	}
}

func TestConfiguredHeaderCannotSetVoicegateIDs(t *testing.T) {
	api := okAPI(t)
	r, _ := router(t, toolCfg("t", api.URL, func(c *Config) {
		c.Headers = map[string]HeaderValue{
			"x-voicegate-call-id":      {Value: "forged-call"},
			"X-Voicegate-Tool-Call-Id": {Value: "forged-tool-call"},
			"Authorization":            {Value: "Bearer internal"},
		}
	}))
	cases := []struct {
		ci                 CallInfo
		id                 string
		wantCall, wantTool []string
	}{
		{CallInfo{CallID: "call-1"}, "tc-1", []string{"call-1"}, []string{"tc-1"}},
		// Without ids the headers are absent, not the configured values.
		{CallInfo{}, "", nil, nil},
	}
	for _, tc := range cases {
		res := r.Call(context.Background(), tc.ci, vapi.Invocation{ID: tc.id, Name: "t", Args: json.RawMessage(`{}`)})
		if res.Error != "" {
			t.Fatalf("%+v", res)
		}
		req, _ := api.lastRequest(t)
		gotCall, gotTool := req.Header.Values(HeaderCallID), req.Header.Values(HeaderToolCallID)
		if strings.Join(gotCall, ",") != strings.Join(tc.wantCall, ",") || strings.Join(gotTool, ",") != strings.Join(tc.wantTool, ",") {
			t.Errorf("call id %q: %s=%q %s=%q, want %q %q", tc.ci.CallID, HeaderCallID, gotCall, HeaderToolCallID, gotTool, tc.wantCall, tc.wantTool)
		}
		if req.Header.Get("Authorization") != "Bearer internal" {
			t.Errorf("other configured headers must still be sent: %v", req.Header)
		}
	}
}

// TestRequestErrorLogHasNoURLSecret: the transport error for an unreachable
// tool names the URL; the debug log must not carry its secret. Port 1 on
// 127.0.0.1 is closed, so the connection is refused locally.
func TestRequestErrorLogHasNoURLSecret(t *testing.T) {
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		cfg := toolCfg("getX", "http://127.0.0.1:1/x?apikey=SECRETKEY123&tenant=acme", func(c *Config) { c.Method = method })
		r, err := New([]Config{cfg}, log, nil)
		if err != nil {
			t.Fatal(err)
		}
		res := call(r, "getX", `{"date":"2026-12-01"}`)
		if !strings.Contains(res.Error, "unavailable") {
			t.Fatalf("%s: want the unreachable error, got %+v", method, res)
		}
		out := buf.String()
		if !strings.Contains(out, "tool request error") || !strings.Contains(out, "127.0.0.1:1") {
			t.Fatalf("%s: the request error must still be logged with its address:\n%s", method, out)
		}
		if strings.Contains(out, "SECRETKEY123") {
			t.Errorf("%s: debug log leaks the URL's secret:\n%s", method, out)
		}
	}
}

// TestReservedHeaders: the list the configuration check refuses as tool
// headers is exactly what the router sets, in canonical form.
func TestReservedHeaders(t *testing.T) {
	want := []string{HeaderCallID, HeaderToolCallID, HeaderIdempotencyKey}
	if strings.Join(ReservedHeaders, ",") != strings.Join(want, ",") {
		t.Fatalf("ReservedHeaders = %q, want %q", ReservedHeaders, want)
	}
	for _, h := range ReservedHeaders {
		if http.CanonicalHeaderKey(h) != h {
			t.Errorf("%q is not in canonical form", h)
		}
		// config cannot import tools (tools imports config), so it keeps its
		// own list of refused tool headers; it must cover these.
		if !slices.Contains(ReservedConfigHeaders, h) {
			t.Errorf("%q is missing from ReservedConfigHeaders %q", h, ReservedConfigHeaders)
		}
	}
}

// TestConflictRefusedWhileBusy: arguments that cannot be sent are refused
// at once, without waiting for a slot of a busy tool.
func TestConflictRefusedWhileBusy(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	api := newInternalAPI(t, func(w http.ResponseWriter, r *http.Request) {
		entered <- struct{}{}
		<-release
	})
	r, outs := router(t, toolCfg("getX", api.URL+"/echo?tenant=acme", func(c *Config) {
		c.Method = http.MethodGet
		c.MaxConcurrency = 1
	}))
	done := make(chan vapi.ToolResult)
	go func() { done <- call(r, "getX", `{"date":"2026-12-01"}`) }()
	<-entered // the only slot is taken
	res := call(r, "getX", `{"tenant":"evil-corp"}`)
	close(release)
	<-done
	if !strings.Contains(res.Error, `"tenant" is fixed by the configuration`) || (*outs)[0] != OutcomeBadArgs {
		t.Fatalf("want the conflict refused while the tool is busy, got %+v (outcomes %v)", res, *outs)
	}
	if n := api.hits.Load(); n != 1 {
		t.Fatalf("internal API hit %d times, want 1", n)
	}
}
