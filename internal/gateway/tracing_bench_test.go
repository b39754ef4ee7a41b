package gateway_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/ratelimit"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// discardExporter is an in-process span exporter: it counts and drops.
type discardExporter struct{ spans atomic.Int64 }

func (d *discardExporter) ExportSpans(_ context.Context, s []sdktrace.ReadOnlySpan) error {
	d.spans.Add(int64(len(s)))
	return nil
}
func (d *discardExporter) Shutdown(context.Context) error { return nil }

// benchTracing measures one message type through the gateway (as
// benchHandler does) with tracing off (no provider: the default) or on,
// every request sampled, spans batched to an in-process exporter: the
// difference is tracing's cost on the request path.
func benchTracing(b *testing.B, on bool, mk func(i int) string) {
	var proc sdktrace.SpanProcessor
	exp := &discardExporter{}
	if on {
		proc = sdktrace.NewBatchSpanProcessor(exp)
	}
	te := newTracedEnv(b, proc, func(c *config.Config) {
		c.Vapi.Replay.Capacity = benchPool / 2
		c.Vapi.MaxBodyBytes = 4096 // as newEnv's, so that Off matches BenchmarkTranscriptPartial
		c.Log.Level = "error"
		c.Limits.PerSource = ratelimit.Rate{PerSecond: 1e9, Burst: 1e9}
		c.Limits.PerRoute = ratelimit.Rate{PerSecond: 1e9, Burst: 1e9}
	})
	e := te.env
	if on != (e.app.Tracing != nil) {
		b.Fatalf("tracing on=%v, provider %v", on, e.app.Tracing)
	}
	reqs := benchRequests(b, e, benchPool, mk)
	serveAll(b, e, func(i int) *signedBody { return &reqs[i%len(reqs)] }, nil)
	if n := replays(b, e); n != 0 {
		b.Fatalf("%.0f requests were answered as replays", n)
	}
	if on {
		e.app.Close() // flushes
		if exp.spans.Load() < int64(b.N) {
			b.Fatalf("%d spans exported for %d requests", exp.spans.Load(), b.N)
		}
	}
}

func transcriptPartial(i int) string {
	return fmt.Sprintf(`{"message":{"type":"transcript","role":"user","transcriptType":"partial","transcript":"I'd like to book an appointment for %d","timestamp":%d,"call":{"id":"call-%d","orgId":"org-1","type":"inboundPhoneCall","status":"in-progress"}}}`, i, 1767007390468+i, i%64)
}

func toolCall(i int) string {
	return fmt.Sprintf(`{"message":{"type":"tool-calls","timestamp":%d,"call":{"id":"call-%d"},"toolCallList":[{"id":"tc-%d","type":"function","function":{"name":"getAppointment","arguments":"{\"date\":\"2026-12-01\"}"}}]}}`, 1767007390468+i, i%64, i)
}

// BenchmarkTracingOffTranscriptPartial / On: the most frequent message.
func BenchmarkTracingOffTranscriptPartial(b *testing.B) { benchTracing(b, false, transcriptPartial) }
func BenchmarkTracingOnTranscriptPartial(b *testing.B)  { benchTracing(b, true, transcriptPartial) }

// BenchmarkTracingOffToolCall / On: a tool call, its loopback HTTP round
// trip to the internal API (with traceparent when on) and its record.
func BenchmarkTracingOffToolCall(b *testing.B) { benchTracing(b, false, toolCall) }
func BenchmarkTracingOnToolCall(b *testing.B)  { benchTracing(b, true, toolCall) }
