// Package tools provides the tool router: it answers Vapi tool calls by
// calling the internal HTTP endpoint configured for each tool name, with
// argument validation, timeouts, concurrency caps and safe error strings.
//
// Threat: tool calls are untrusted input that trigger actions. Nothing in a
// payload can choose where a request goes or change what the operator
// configured: the URL comes from configuration by tool name, an argument
// named like a configured query parameter is refused, configured headers
// and voicegate's own headers cannot be replaced, redirects are refused,
// responses are size-capped, and no internal URL, status page or stack trace
// reaches the caller. URLs in logged errors are redacted.
package tools

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/redact"
	"github.com/voicegate/voicegate/internal/tracing"
	"github.com/voicegate/voicegate/internal/vapi"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

// Outcome labels a tool call for metrics.
type Outcome string

// Tool call outcomes.
const (
	OutcomeOK          Outcome = "ok"
	OutcomeUnknownTool Outcome = "unknown_tool"
	OutcomeBadArgs     Outcome = "invalid_arguments"
	OutcomeBusy        Outcome = "busy"
	OutcomeTimeout     Outcome = "timeout"
	OutcomeHTTPError   Outcome = "http_error"
	OutcomeUnreachable Outcome = "unreachable"
	OutcomeTooLarge    Outcome = "response_too_large"
	// An async tool's call queued (its result comes later), or not
	// queued because the queue's database failed.
	OutcomeQueued     Outcome = "queued"
	OutcomeQueueError Outcome = "queue_error"
)

// Observer is told about every tool call (metrics).
type Observer func(tool string, outcome Outcome, d time.Duration)

// Router calls internal APIs for tool calls.
type Router struct {
	tools   map[string]*tool
	client  *http.Client
	log     *slog.Logger
	observe Observer
	now     func() time.Time
}

type tool struct {
	cfg Config
	url *url.URL
	// inQuery: the arguments are sent as query parameters (GET, DELETE),
	// otherwise as the JSON body.
	inQuery bool
	// fixed holds the lower-cased names of the configured URL's query
	// parameters; an argument with one of these names is refused.
	fixed map[string]struct{}
	// headers are sent on every request: defaults, then configured values
	// (which win), without ReservedHeaders. Read-only after New.
	headers http.Header
	schema  *jsonschema.Schema
	sem     chan struct{}
}

// CallInfo identifies the call a tool runs for; it is forwarded to the
// internal API as headers so that acting tools can be idempotent.
type CallInfo struct {
	CallID string
	// IdempotencyKey, when set, is sent as the Idempotency-Key header: the
	// same key on every attempt of one durable (async) call, so that the
	// internal API can apply a repeated request once.
	IdempotencyKey string
	// ControlURL is the call's Live Call Control URL, from the
	// authenticated message (an async tool's result is delivered there).
	ControlURL string
	// DryRun checks the call as a real one would be (known tool, arguments
	// against the schema and the configured URL) and answers without
	// calling the internal API (voicegate simulate's smoke test).
	DryRun bool
}

// IdempotencyKey is the Idempotency-Key of a tool call's requests to the
// internal API: derived from the call and tool call ids, so the same on
// every delivery and attempt, on every replica and after every restart,
// and opaque.
func IdempotencyKey(callID, toolCallID string) string {
	h := sha256.Sum256([]byte("voicegate/asynctools/idempotency/v1\x00" + callID + "\x00" + toolCallID))
	return "vgat_" + hex.EncodeToString(h[:16])
}

// Header names sent to internal APIs.
const (
	HeaderCallID         = "X-Voicegate-Call-Id"
	HeaderToolCallID     = "X-Voicegate-Tool-Call-Id"
	HeaderIdempotencyKey = "Idempotency-Key"
)

// ReservedHeaders are the headers voicegate sets on each request to an
// internal API, in canonical form. A tool header configured with one of
// these names is a configuration error; the router never sends a configured
// value under them. Read-only.
var ReservedHeaders = []string{HeaderCallID, HeaderToolCallID, HeaderIdempotencyKey}

// Default request headers, sent unless the tool configures its own.
const (
	defaultAccept      = "application/json, text/plain;q=0.9"
	defaultUserAgent   = "voicegate"
	defaultContentType = "application/json" // body methods only
)

// New builds a router for validated tool configurations.
func New(cfgs []Config, log *slog.Logger, observe Observer) (*Router, error) {
	if observe == nil {
		observe = func(string, Outcome, time.Duration) {}
	}
	r := &Router{
		tools: make(map[string]*tool, len(cfgs)),
		log:   log,
		now:   time.Now,
		client: &http.Client{
			Transport: &http.Transport{
				Proxy:                 nil, // internal APIs are reached directly
				DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
				MaxIdleConns:          256,
				MaxIdleConnsPerHost:   64,
				IdleConnTimeout:       90 * time.Second,
				TLSHandshakeTimeout:   3 * time.Second,
				ResponseHeaderTimeout: 0, // bounded by the per-tool context
				ForceAttemptHTTP2:     true,
			},
			// Redirects are refused: a 3xx is a failure, never followed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		observe: observe,
	}
	for _, c := range cfgs {
		u, err := url.Parse(c.URL)
		if err != nil {
			// The error quotes the URL, which may hold a key.
			return nil, fmt.Errorf("tool %s: %s", c.Name, redact.Error(err))
		}
		t := &tool{
			cfg: c, url: u, sem: make(chan struct{}, c.MaxConcurrency),
			inQuery: c.Method == http.MethodGet || c.Method == http.MethodDelete,
			fixed:   fixedParams(u.RawQuery),
			headers: http.Header{},
		}
		t.headers.Set("Accept", defaultAccept)
		t.headers.Set("User-Agent", defaultUserAgent)
		if !t.inQuery {
			t.headers.Set("Content-Type", defaultContentType)
		}
		for k, v := range c.Headers {
			t.headers.Set(k, v.Value)
		}
		for _, k := range ReservedHeaders {
			t.headers.Del(k)
		}
		if c.Compiled != nil {
			t.schema = c.Compiled // compiled once, by Config.Resolve
		} else if c.Schema != nil {
			if t.schema, err = CompileSchema(c.Name, c.Schema); err != nil {
				return nil, fmt.Errorf("tool %s: %s", c.Name, redact.Error(err))
			}
		}
		r.tools[c.Name] = t
	}
	return r, nil
}

// fixedParams returns the names (as paramKey) of the parameters in a
// configured raw query, each both as written and decoded. Pairs are split on
// ";" as well as "&" because some servers accept either.
func fixedParams(rawQuery string) map[string]struct{} {
	if rawQuery == "" {
		return nil
	}
	fixed := map[string]struct{}{}
	for _, pair := range strings.FieldsFunc(rawQuery, func(c rune) bool { return c == '&' || c == ';' }) {
		name, _, _ := strings.Cut(pair, "=")
		if name == "" {
			continue
		}
		fixed[paramKey(name)] = struct{}{}
		if dec, err := url.QueryUnescape(name); err == nil && dec != "" {
			fixed[paramKey(dec)] = struct{}{}
		}
	}
	return fixed
}

// Runner runs tool invocations against the configured internal APIs. The
// Router runs them now, inside the webhook's deadline; a durable queued
// runner will be another. Every Runner passes the suite in package
// runnertest. Neither method fails: each problem becomes that call's error
// string, safe to speak to the caller.
type Runner interface {
	// CallAll runs invocations concurrently; results are in call order.
	CallAll(ctx context.Context, ci CallInfo, invs []vapi.Invocation) []vapi.ToolResult
	// Call runs one invocation.
	Call(ctx context.Context, ci CallInfo, inv vapi.Invocation) vapi.ToolResult
}

var _ Runner = (*Router)(nil)

// CallAll runs every invocation concurrently and returns the results in call
// order. It never fails: each problem becomes that call's error string.
func (r *Router) CallAll(ctx context.Context, ci CallInfo, invs []vapi.Invocation) []vapi.ToolResult {
	out := make([]vapi.ToolResult, len(invs))
	if len(invs) == 1 {
		out[0] = r.Call(ctx, ci, invs[0])
		return out
	}
	var wg sync.WaitGroup
	for i := range invs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			out[i] = r.Call(ctx, ci, invs[i])
		}(i)
	}
	wg.Wait()
	return out
}

// Call runs one invocation.
func (r *Router) Call(ctx context.Context, ci CallInfo, inv vapi.Invocation) vapi.ToolResult {
	start := r.now()
	res := vapi.ToolResult{ToolCallID: inv.ID, Name: inv.Name}
	t, ok := r.tools[inv.Name]
	if !ok {
		res.Error = fmt.Sprintf("Unknown tool %q: this tool is not available.", oneLine(inv.Name, 64))
		res.Outcome = string(OutcomeUnknownTool)
		if !ci.DryRun {
			r.observe("unknown", OutcomeUnknownTool, 0)
		}
		// The model asked for a tool the configuration does not have: the
		// Vapi assistant and voicegate disagree on the tool list.
		r.log.Warn("unknown tool called", logkey.Tool, oneLine(inv.Name, 64), logkey.CallID, ci.CallID, logkey.ToolCallID, inv.ID, logkey.DryRun, ci.DryRun)
		return res
	}
	ctx, span := tracing.Start(ctx, "tool call", trace.SpanKindClient)
	c := r.call(ctx, t, ci, inv)
	endToolSpan(span, t.cfg.Name, c)
	if c.errMsg != "" {
		res.Error = c.errMsg
	} else {
		res.Result = c.result
	}
	res.Message, res.Metadata = c.message, c.metadata
	res.Outcome = string(c.outcome)
	res.Status = c.status
	d := r.now().Sub(start)
	res.Duration = d
	if !ci.DryRun {
		r.observe(t.cfg.Name, c.outcome, d)
	}
	if c.outcome != OutcomeOK {
		attrs := []any{logkey.Tool, t.cfg.Name, logkey.CallID, ci.CallID, logkey.ToolCallID, inv.ID, logkey.Outcome, string(c.outcome), logkey.DurationMS, float64(d.Microseconds()) / 1000}
		if c.status != 0 {
			attrs = append(attrs, logkey.Status, c.status)
		}
		if c.class != "" {
			attrs = append(attrs, logkey.ErrClass, c.class)
		}
		if ci.DryRun {
			attrs = append(attrs, logkey.DryRun, true)
		}
		r.log.Warn("tool call failed", attrs...)
	}
	return res
}

// callResult is how one call went: what the model is told, and for the
// log the internal API's status or the class of error that stopped it.
type callResult struct {
	outcome        Outcome
	result, errMsg string
	// message and metadata pass through to Vapi (tools' response: vapi).
	message, metadata json.RawMessage
	status            int    // the internal API's HTTP status, when it answered
	class             string // why it did not ("timeout", "connection refused", ...)
}

func fail(o Outcome, format string, args ...any) callResult {
	return callResult{outcome: o, errMsg: fmt.Sprintf(format, args...)}
}

func (r *Router) call(ctx context.Context, t *tool, ci CallInfo, inv vapi.Invocation) callResult {
	name := t.cfg.Name
	if inv.ArgsErr != nil {
		return fail(OutcomeBadArgs, "Invalid arguments for %s: %s. Send the arguments as a JSON object and call again.", name, inv.ArgsErr.Error())
	}
	if t.schema != nil {
		if msg := validate(t.schema, inv.Args); msg != "" {
			return fail(OutcomeBadArgs, "Invalid arguments for %s: %s. Fix the arguments and call again.", name, msg)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, t.cfg.Timeout.D())
	defer cancel()
	// Built before waiting for a slot: arguments that cannot be sent are
	// refused at once, even when the tool is busy.
	req, err := t.request(ctx, ci, inv)
	if err != nil {
		var ae *argsError
		if errors.As(err, &ae) {
			return fail(OutcomeBadArgs, "Invalid arguments for %s: %s", name, ae.msg)
		}
		r.log.Debug("tool request error", logkey.Tool, name, logkey.Err, redact.Error(configuredURL(err, t.cfg.URL)))
		c := fail(OutcomeUnreachable, "The %s service is unavailable right now.", name)
		c.class = "request could not be built"
		return c
	}
	if ci.DryRun {
		return callResult{outcome: OutcomeOK, result: fmt.Sprintf("Dry run: %s was not called. The arguments are valid and would be sent as configured.", name)}
	}
	select {
	case t.sem <- struct{}{}:
		defer func() { <-t.sem }()
	case <-ctx.Done():
		c := fail(OutcomeBusy, "The %s service is busy right now. Tell the caller to try again in a moment.", name)
		c.class = fmt.Sprintf("all %d slots in use", cap(t.sem))
		return c
	}
	resp, err := r.client.Do(req)
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			c := fail(OutcomeTimeout, "The %s service did not answer in time. Tell the caller it is unavailable right now.", name)
			c.class = "no answer within " + t.cfg.Timeout.D().String()
			return c
		}
		// The client's error quotes the URL it sent: with a GET tool's
		// arguments in its query (the caller's words), and perhaps a key.
		// The log names the configured URL instead, redacted.
		r.log.Debug("tool request error", logkey.Tool, name, logkey.Err, redact.Error(configuredURL(err, t.cfg.URL)))
		c := fail(OutcomeUnreachable, "The %s service is unavailable right now.", name)
		c.class = ErrorClass(err)
		return c
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, t.cfg.MaxResponseBytes+1))
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			c := fail(OutcomeTimeout, "The %s service did not answer in time. Tell the caller it is unavailable right now.", name)
			c.status, c.class = resp.StatusCode, "body not finished within "+t.cfg.Timeout.D().String()
			return c
		}
		c := fail(OutcomeUnreachable, "The %s service is unavailable right now.", name)
		c.status, c.class = resp.StatusCode, ErrorClass(err)
		return c
	}
	if int64(len(body)) > t.cfg.MaxResponseBytes {
		c := fail(OutcomeTooLarge, "The %s service returned too much data.", name)
		c.status, c.class = resp.StatusCode, fmt.Sprintf("answer over %d bytes", t.cfg.MaxResponseBytes)
		return c
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		c := fail(OutcomeHTTPError, "The %s service failed (status %d).", name, resp.StatusCode)
		c.status = resp.StatusCode
		return c
	}
	if t.cfg.Response == ResponseVapi {
		if c, ok := vapiShaped(body, name); ok {
			c.status = resp.StatusCode
			return c
		}
		r.log.Warn("tool answer not in Vapi's tool-result shape; using the whole answer as the result", logkey.Tool, name, logkey.CallID, ci.CallID)
	}
	return callResult{outcome: OutcomeOK, result: ResultString(body), status: resp.StatusCode}
}

// vapiShaped reads an answer in Vapi's tool-result shape: a JSON object
// with "result" (a string, or JSON compacted onto one line) or "error" (a
// string the model hears), and optionally "message" (an object or a list
// of objects) and "metadata" (an object), passed through.
func vapiShaped(body []byte, name string) (callResult, bool) {
	var v struct {
		Result   json.RawMessage `json:"result"`
		Error    *string         `json:"error"`
		Message  json.RawMessage `json:"message"`
		Metadata json.RawMessage `json:"metadata"`
	}
	if json.Unmarshal(body, &v) != nil || (len(v.Result) == 0 && v.Error == nil) {
		return callResult{}, false
	}
	kind := func(raw json.RawMessage) byte {
		b := bytes.TrimSpace(raw)
		if len(b) == 0 {
			return 0
		}
		return b[0]
	}
	if k := kind(v.Message); k != 0 && k != '{' && k != '[' && !bytes.Equal(bytes.TrimSpace(v.Message), []byte("null")) {
		return callResult{}, false
	}
	if k := kind(v.Metadata); k != 0 && k != '{' && !bytes.Equal(bytes.TrimSpace(v.Metadata), []byte("null")) {
		return callResult{}, false
	}
	c := callResult{outcome: OutcomeOK, message: compact(v.Message), metadata: compact(v.Metadata)}
	if v.Error != nil && *v.Error != "" {
		c.errMsg = oneLine(*v.Error, -1)
		return c, true
	}
	c.result = ResultString(v.Result)
	return c, true
}

// compact returns raw on one line, or nil for none or null.
func compact(raw json.RawMessage) json.RawMessage {
	var buf bytes.Buffer
	if len(raw) == 0 || json.Compact(&buf, raw) != nil || buf.String() == "null" {
		return nil
	}
	return buf.Bytes()
}

// argsError is a problem with the arguments that the model can fix; msg
// completes "Invalid arguments for TOOL: ".
type argsError struct{ msg string }

func (e *argsError) Error() string { return e.msg }

func (t *tool) request(ctx context.Context, ci CallInfo, inv vapi.Invocation) (*http.Request, error) {
	u := *t.url
	var body io.Reader
	if t.inQuery {
		q, err := t.queryFromArgs(inv.Args)
		if err != nil {
			return nil, err
		}
		// The configured query is kept exactly as written (order, encoding);
		// the arguments follow it.
		switch {
		case q == "":
		case u.RawQuery == "":
			u.RawQuery = q
		default:
			u.RawQuery += "&" + q
		}
	} else {
		if len(t.fixed) > 0 {
			// Frameworks that merge body and query parameters (Laravel's
			// input(), PHP's $_REQUEST) would let a body field override the
			// configured query parameter of the same name.
			var m map[string]json.RawMessage
			if err := json.Unmarshal(inv.Args, &m); err != nil {
				return nil, &argsError{"arguments must be a JSON object."}
			}
			if err := t.checkFixed(maps.Keys(m)); err != nil {
				return nil, err
			}
		}
		body = bytes.NewReader(inv.Args)
	}
	req, err := http.NewRequestWithContext(ctx, t.cfg.Method, u.String(), body)
	if err != nil {
		return nil, err
	}
	for k, v := range t.headers {
		req.Header[k] = v
	}
	// Last, so that nothing configured can stand in for them.
	if ci.CallID != "" {
		req.Header.Set(HeaderCallID, ci.CallID)
	}
	if inv.ID != "" {
		req.Header.Set(HeaderToolCallID, inv.ID)
	}
	switch {
	case ci.IdempotencyKey != "":
		req.Header.Set(HeaderIdempotencyKey, ci.IdempotencyKey)
	case ci.CallID != "" && inv.ID != "":
		// The same key on every delivery of this tool call (a redelivery
		// after a replica died mid-call included), whichever replica sends it.
		req.Header.Set(HeaderIdempotencyKey, IdempotencyKey(ci.CallID, inv.ID))
	}
	// The internal API continues the webhook's trace (W3C traceparent).
	tracing.Inject(ctx, req.Header)
	return req, nil
}

// endToolSpan records a call's tool, outcome and the internal API's status
// on its span (never its arguments or answer) and ends it.
func endToolSpan(span trace.Span, tool string, c callResult) {
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(tracing.AttrTool.String(tool), tracing.AttrOutcome.String(string(c.outcome)))
	if c.status != 0 {
		span.SetAttributes(tracing.AttrHTTPStatus.Int(c.status))
	}
	if c.outcome != OutcomeOK {
		span.SetStatus(codes.Error, string(c.outcome))
	}
	span.End()
}

// queryFromArgs encodes the top-level scalar arguments as query parameters.
// Keys are escaped, so "a&b=c" stays one parameter.
func (t *tool) queryFromArgs(args json.RawMessage) (string, error) {
	var m map[string]any
	if err := json.Unmarshal(args, &m); err != nil {
		return "", &argsError{"arguments must be a JSON object."}
	}
	if err := t.checkFixed(maps.Keys(m)); err != nil {
		return "", err
	}
	q := make(url.Values, len(m))
	for k, v := range m {
		switch x := v.(type) {
		case string:
			q.Set(k, x)
		case float64, bool:
			q.Set(k, fmt.Sprint(x))
		case nil:
		default:
			b, _ := json.Marshal(x)
			q.Set(k, string(b))
		}
	}
	return q.Encode(), nil
}

// paramKey is the name a configured query parameter has for the
// frameworks that read it: case folded, surrounding spaces trimmed, an array
// or map suffix cut ("page[size]" is "page" to PHP, Rails and qs, where a
// plain "page" replaces it), and "." and " " mapped to "_" (PHP reads
// "api.key" as "api_key").
func paramKey(name string) string {
	k := strings.TrimSpace(strings.ToLower(name))
	if i := strings.IndexByte(k, '['); i > 0 {
		k = k[:i]
	}
	return strings.Map(func(r rune) rune {
		if r == '.' || r == ' ' {
			return '_'
		}
		return r
	}, strings.TrimSpace(k))
}

// plainName reports whether an argument name is letters, digits, "_" and
// "-" only: a name every framework reads as written.
func plainName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// checkFixed refuses arguments that could reach a configured query
// parameter: the operator's values cannot be replaced or repeated by a
// payload. When the URL fixes parameters, argument names must be plain
// (frameworks read "api.key", "api[key", " tenant", "tenant[]" or a name
// with a NUL or a non-ASCII letter as other names, each in its own way), and
// a plain name must not be a fixed one (compared as paramKey folds them).
func (t *tool) checkFixed(names iter.Seq[string]) error {
	if len(t.fixed) == 0 {
		return nil
	}
	var bad, odd []string
	for k := range names {
		switch {
		case !plainName(k):
			odd = append(odd, strconv.Quote(oneLine(k, 64)))
		default:
			if _, ok := t.fixed[paramKey(k)]; ok {
				bad = append(bad, strconv.Quote(oneLine(k, 64)))
			}
		}
	}
	sort.Strings(bad)
	sort.Strings(odd)
	var msgs []string
	switch len(bad) {
	case 0:
	case 1:
		msgs = append(msgs, bad[0]+" is fixed by the configuration and cannot be set. Remove it and call again.")
	default:
		msgs = append(msgs, strings.Join(bad, ", ")+" are fixed by the configuration and cannot be set. Remove them and call again.")
	}
	switch len(odd) {
	case 0:
	case 1:
		msgs = append(msgs, odd[0]+" is not a plain parameter name: use only letters, digits, \"_\" and \"-\", and call again.")
	default:
		msgs = append(msgs, strings.Join(odd, ", ")+" are not plain parameter names: use only letters, digits, \"_\" and \"-\", and call again.")
	}
	if len(msgs) == 0 {
		return nil
	}
	return &argsError{strings.Join(msgs, " ")}
}

func validate(s *jsonschema.Schema, args json.RawMessage) string {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(args))
	if err != nil {
		return "arguments are not valid JSON"
	}
	err = s.Validate(inst)
	if err == nil {
		return ""
	}
	var ve *jsonschema.ValidationError
	if errors.As(err, &ve) {
		var msgs []string
		collect(ve, &msgs)
		if len(msgs) > 0 {
			return oneLine(strings.Join(msgs, "; "), 500)
		}
	}
	return "arguments do not match the tool's schema"
}

// collect gathers the leaf causes of a validation error, each with the
// argument it concerns.
func collect(ve *jsonschema.ValidationError, out *[]string) {
	if len(ve.Causes) == 0 {
		loc := "/" + strings.Join(ve.InstanceLocation, "/")
		msg := ve.ErrorKind.LocalizedString(printer)
		if loc == "/" {
			*out = append(*out, msg)
		} else {
			*out = append(*out, loc+": "+msg)
		}
		return
	}
	for _, c := range ve.Causes {
		collect(c, out)
	}
}

// ResultString turns an internal API's answer into Vapi's single-line string:
// JSON is compacted onto one line; text has its line breaks folded.
func ResultString(body []byte) string {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return "OK"
	}
	if json.Valid(trimmed) {
		var buf bytes.Buffer
		if json.Compact(&buf, trimmed) == nil {
			// A bare JSON string is returned as its text.
			if buf.Len() > 0 && buf.Bytes()[0] == '"' {
				var s string
				if json.Unmarshal(buf.Bytes(), &s) == nil {
					return oneLine(s, -1)
				}
			}
			return buf.String()
		}
	}
	return oneLine(string(trimmed), -1)
}

// oneLine folds line breaks and control characters into spaces and, with
// max >= 0, truncates to max bytes.
func oneLine(s string, max int) string {
	if max >= 0 && len(s) > max {
		s = s[:max]
	}
	if !strings.ContainsAny(s, "\r\n\t") {
		return s
	}
	r := strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\t", " ")
	return r.Replace(s)
}

var printer = message.NewPrinter(language.English)

// configuredURL returns err with the URL a *url.Error quotes replaced by
// the tool's configured one: the URL sent carries the call's arguments.
func configuredURL(err error, configured string) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	return &url.Error{Op: ue.Op, URL: configured, Err: ue.Err}
}
