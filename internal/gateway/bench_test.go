package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/dispatch"
	"github.com/voicegate/voicegate/internal/knowledge"
	"github.com/voicegate/voicegate/internal/knowledge/library"
	"github.com/voicegate/voicegate/internal/predial"
	"github.com/voicegate/voicegate/internal/ratelimit"
)

// discardWriter is a reusable http.ResponseWriter that keeps only the status.
type discardWriter struct {
	h      http.Header
	status int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (d *discardWriter) WriteHeader(s int)           { d.status = s }

type signedBody struct {
	body []byte
	h    http.Header
}

// benchRequests pre-builds and pre-signs n unique bodies (the client's work
// stays outside the measured loop). The replay cache holds fewer entries
// than the pool (benchHandler), so a body seen again a pool-cycle later has
// been evicted and is processed for real, as a new body would be: its
// signature still verifies, so it would otherwise be answered as a replay.
func benchRequests(b *testing.B, e *env, n int, mk func(i int) string) []signedBody {
	out := make([]signedBody, n)
	for i := range out {
		body := mk(i)
		out[i] = signedBody{body: []byte(body), h: e.signed(body)}
	}
	return out
}

const benchPool = 4096

// replays counts the requests answered from the replay cache.
func replays(b *testing.B, e *env) float64 {
	fams, err := e.app.Metrics.Registry.Gather()
	if err != nil {
		b.Fatal(err)
	}
	var n float64
	for _, f := range fams {
		if f.GetName() != "voicegate_requests_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == "replay" {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

func benchHandler(b *testing.B, mut func(*config.Config), mk func(i int) string, setup ...func(*env)) {
	e := newEnv(b, func(c *config.Config) {
		c.Vapi.Replay.Capacity = benchPool / 2
		c.Log.Level = "error"
		// Every request comes from one address, far faster than a real
		// one: the buckets are checked (their cost is measured) but set
		// out of reach, as in bench/voicegate-bench.yaml.
		c.Limits.PerSource = ratelimit.Rate{PerSecond: 1e9, Burst: 1e9}
		c.Limits.PerRoute = ratelimit.Rate{PerSecond: 1e9, Burst: 1e9}
		if mut != nil {
			mut(c)
		}
	})
	for _, f := range setup {
		f(e)
	}
	reqs := benchRequests(b, e, benchPool, mk)
	serveAll(b, e, func(i int) *signedBody { return &reqs[i%len(reqs)] }, nil)
	if n := replays(b, e); n != 0 {
		b.Fatalf("%.0f requests were answered as replays: the benchmark must measure real processing", n)
	}
}

// BenchmarkTranscriptPartial: verify (HMAC-SHA256 + timestamp) + replay check
// + decode + dispatch of a user transcript partial, the most frequent message.
func BenchmarkTranscriptPartial(b *testing.B) {
	benchHandler(b, nil, func(i int) string {
		return fmt.Sprintf(`{"message":{"type":"transcript","role":"user","transcriptType":"partial","transcript":"I'd like to book an appointment for %d","timestamp":%d,"call":{"id":"call-%d","orgId":"org-1","type":"inboundPhoneCall","status":"in-progress"}}}`, i, 1767007390468+i, i%64)
	})
}

// BenchmarkSpeechUpdate touches per-call session state.
func BenchmarkSpeechUpdate(b *testing.B) {
	benchHandler(b, nil, func(i int) string {
		return fmt.Sprintf(`{"message":{"type":"speech-update","role":"user","status":"started","turn":%d,"timestamp":%d,"call":{"id":"call-%d"}}}`, i%7, 1767007390468+i, i%64)
	})
}

// BenchmarkStatusUpdate includes the SQLite write of the status change.
func BenchmarkStatusUpdate(b *testing.B) {
	benchHandler(b, nil, func(i int) string {
		return fmt.Sprintf(`{"message":{"type":"status-update","status":"in-progress","timestamp":%d,"call":{"id":"call-%d"}}}`, 1767007390468+i, i%64)
	})
}

// BenchmarkToolCall includes the loopback HTTP round trip to the internal API.
func BenchmarkToolCall(b *testing.B) {
	benchHandler(b, nil, func(i int) string {
		return fmt.Sprintf(`{"message":{"type":"tool-calls","timestamp":%d,"call":{"id":"call-%d"},"toolCallList":[{"id":"tc-%d","type":"function","function":{"name":"getAppointment","arguments":"{\"date\":\"2026-12-01\"}"}}]}}`, 1767007390468+i, i%64, i)
	})
}

// BenchmarkTranscriptPartialBargeinOff is BenchmarkTranscriptPartial with
// the barge-in engine off: the difference is the engine's cost on the most
// frequent message (a partial while the assistant is silent).
func BenchmarkTranscriptPartialBargeinOff(b *testing.B) {
	benchHandler(b, func(c *config.Config) { c.Bargein.Enabled = false }, func(i int) string {
		return fmt.Sprintf(`{"message":{"type":"transcript","role":"user","transcriptType":"partial","transcript":"I'd like to book an appointment for %d","timestamp":%d,"call":{"id":"call-%d","orgId":"org-1","type":"inboundPhoneCall","status":"in-progress"}}}`, i, 1767007390468+i, i%64)
	})
}

// BenchmarkBargeinJudged: the engine's worst case — every other message is
// the assistant starting to speak, the next a caller's partial over it that
// the engine judges (a backchannel here), kept in the call's timeline (a
// database write). Per message: the average of the two.
func BenchmarkBargeinJudged(b *testing.B) {
	benchHandler(b, nil, func(i int) string {
		if i%2 == 0 {
			return fmt.Sprintf(`{"message":{"type":"speech-update","role":"assistant","status":"started","turn":%d,"timestamp":%d,"call":{"id":"call-%d"}}}`, i, 1767007390468+i, (i/2)%64)
		}
		return fmt.Sprintf(`{"message":{"type":"transcript","role":"user","transcriptType":"partial","transcript":"yeah okay sure %d","timestamp":%d,"call":{"id":"call-%d"}}}`, i, 1767007390468+i, (i/2)%64)
	})
}

// BenchmarkAsyncToolCall: an async tool's call — the dry-run check, the
// sealed job inserted into the durable queue (River on jobs.db), the
// holding phrase answered. The queued jobs run meanwhile against the
// stand-in internal API.
func BenchmarkAsyncToolCall(b *testing.B) {
	var api string
	benchHandler(b, func(c *config.Config) {
		api = c.Tools[0].URL
		c.Tools = append(c.Tools, config.ToolConfig{Name: "getBalance", URL: api, Async: true})
		if err := c.Check(config.Options{}); err != nil {
			b.Fatal(err)
		}
	}, func(i int) string {
		return fmt.Sprintf(`{"message":{"type":"tool-calls","timestamp":%d,"call":{"id":"call-%d"},"toolCallList":[{"id":"atc-%d","type":"function","function":{"name":"getBalance","arguments":"{\"account\":\"DE89\"}"}}]}}`, 1767007390468+i, i%64, i)
	})
}

// BenchmarkEndpointingRequest: call.endpointing.request, the conversation
// read and the rules applied to the assistant's last question.
func BenchmarkEndpointingRequest(b *testing.B) {
	benchHandler(b, nil, func(i int) string {
		return fmt.Sprintf(`{"message":{"type":"call.endpointing.request","timestamp":%d,"call":{"id":"call-%d"},"messagesOpenAIFormatted":[{"role":"system","content":"You are a clinic assistant."},{"role":"user","content":"I need to move my appointment."},{"role":"assistant","content":"Of course. Could you tell me your date of birth?"}]}}`, 1767007390468+i, i%64)
	})
}

// BenchmarkCampaignPredial: campaign.predial with every rule on (a
// do-not-call list of 10,000 numbers, calling hours, attempts), audited.
func BenchmarkCampaignPredial(b *testing.B) {
	dnc := b.TempDir() + "/dnc.txt"
	var list strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&list, "+1212555%04d\n", i)
	}
	os.WriteFile(dnc, []byte(list.String()), 0o600)
	benchHandler(b, func(c *config.Config) {
		c.Vapi.Predial = predial.Config{DoNotCallFile: dnc, MaxAttemptsPerDay: 1 << 30,
			CallingHours: &predial.Hours{Start: "00:00", End: "23:59", DefaultTimeZone: "America/New_York"}}
	}, func(i int) string {
		return fmt.Sprintf(`{"message":{"type":"campaign.predial","timestamp":%d,"campaignId":"camp-1","contact":{"number":"+1646555%04d"}}}`, 1767007390468+i, i%10000)
	})
}

// BenchmarkKnowledgeBaseLocal: knowledge-base-request answered from the
// local document store (SQLite) holding the labelled set's six documents:
// the query from the conversation, the search, the passages opened and
// budgeted, the answer encoded.
func BenchmarkKnowledgeBaseLocal(b *testing.B) {
	qs := []string{"I lost my debit card, can you block it?", "how do I get a repeat prescription", "when is the bulk waste collected",
		"can you delete my call recordings", "what time does the clinic open on saturday", "how do I cancel a direct debit"}
	benchHandler(b, func(c *config.Config) {
		c.Vapi.KnowledgeBase.Bases = map[string]knowledge.Base{"handbook": {}}
		if err := c.Check(config.Options{}); err != nil {
			b.Fatal(err)
		}
	}, func(i int) string {
		return fmt.Sprintf(`{"message":{"type":"knowledge-base-request","timestamp":%d,"call":{"id":"call-%d"},"messagesOpenAIFormatted":[{"role":"assistant","content":"How can I help?"},{"role":"user","content":%q}]}}`, 1767007390468+i, i%64, qs[i%len(qs)])
	}, func(e *env) {
		files, _ := filepath.Glob("../knowledge/library/testdata/docs/*")
		for _, f := range files {
			doc, _ := os.ReadFile(f)
			format, _ := library.FormatOf(f)
			if _, err := e.app.Library.Add(context.Background(), "handbook", "en", filepath.Base(f), doc, format); err != nil {
				b.Fatal(err)
			}
		}
		if code, out := e.send(fmt.Sprintf(`{"message":{"type":"knowledge-base-request","timestamp":1,"call":{"id":"c"},"messagesOpenAIFormatted":[{"role":"user","content":%q}]}}`, qs[0])); code != 200 || !strings.Contains(out, `"content":"`) {
			b.Fatalf("no documents: %d %s", code, out)
		}
	})
}

// assistantRequest is an assistant-request for a call to pn-sales.
func assistantRequest(i int) string {
	return fmt.Sprintf(`{"message":{"type":"assistant-request","timestamp":%d,"call":{"id":"call-%d","phoneNumberId":"pn-sales","customer":{"number":"+15550001234"}},"phoneNumber":{"id":"pn-sales","number":"+15550009999"}}}`, 1767007390468+i, i)
}

// BenchmarkAssistantRequestStatic: assistant-request answered by the
// static routes (answers serialised at start-up).
func BenchmarkAssistantRequestStatic(b *testing.B) {
	benchHandler(b, nil, assistantRequest)
}

// BenchmarkAssistantRequestRouter: assistant-request answered by the
// internal router API (a local HTTP server, as the customer's would be):
// the call's metadata sent, the answer validated and passed on.
func BenchmarkAssistantRequestRouter(b *testing.B) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"assistantId":"asst-vip","assistantOverrides":{"variableValues":{"tier":"gold"}}}`)
	}))
	b.Cleanup(api.Close)
	benchHandler(b, func(c *config.Config) {
		c.Vapi.AssistantRequest.Router = &dispatch.AssistantAPIConfig{URL: api.URL + "/route", Timeout: confval.Duration(time.Second)}
		if err := c.Check(config.Options{}); err != nil {
			b.Fatal(err)
		}
	}, assistantRequest)
}

// serveAll serves b.N signed requests straight through the gateway's
// handler, the ith being next(i), each of which must be answered 200; the
// timer covers the loop alone, and around, if set, runs just before and
// just after it (a measurement of its own).
func serveAll(b *testing.B, e *env, next func(i int) *signedBody, around func(start bool)) {
	h := e.app.Gateway
	w := &discardWriter{h: http.Header{}}
	rd := bytes.NewReader(nil)
	r, _ := http.NewRequest(http.MethodPost, e.url, nil)
	r.Host = e.srv.Listener.Addr().String()
	r.RemoteAddr = "127.0.0.1:40000" // as the server sets it
	b.ReportAllocs()
	b.ResetTimer()
	if around != nil {
		around(true)
	}
	for i := 0; i < b.N; i++ {
		sb := next(i)
		rd.Reset(sb.body)
		r.Body = io.NopCloser(rd)
		r.ContentLength = int64(len(sb.body))
		r.Header = sb.h
		clear(w.h)
		h.ServeHTTP(w, r)
		if w.status != 200 {
			b.Fatalf("status %d for request %d", w.status, i)
		}
	}
	if around != nil {
		around(false)
	}
	b.StopTimer()
}
