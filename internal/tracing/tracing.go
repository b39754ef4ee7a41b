// Package tracing provides voicegate's OpenTelemetry tracing: the
// "tracing" configuration section, the tracer provider that exports spans
// to one configured OTLP/HTTP collector, and the helpers the request path
// uses (the webhook's server span, its child spans, the W3C traceparent
// read from webhooks and written on calls to internal APIs).
//
// Off by default, and then free: the gateway holds a nil *Provider and
// starts nothing; the helpers see no recording span in the context and
// return at once. Spans carry identifiers and outcomes only (call id,
// message type, tool name, HTTP status), never phone numbers, transcripts,
// bodies or arguments.
package tracing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/redact"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// ScopeName names voicegate's instrumentation scope.
const ScopeName = "github.com/voicegate/voicegate"

// Attribute keys. Their values are identifiers and outcomes, never personal
// data (a test asserts no phone number reaches one).
const (
	AttrCallID      = attribute.Key("voicegate.call_id")
	AttrMessageType = attribute.Key("voicegate.message_type")
	AttrSource      = attribute.Key("voicegate.source")
	AttrOutcome     = attribute.Key("voicegate.outcome")
	AttrReason      = attribute.Key("voicegate.reason")
	AttrTool        = attribute.Key("voicegate.tool")
	AttrReplayed    = attribute.Key("voicegate.replayed")
	AttrStateLocal  = attribute.Key("voicegate.state_local")
	AttrStored      = attribute.Key("voicegate.stored")
	AttrOperation   = attribute.Key("voicegate.operation")
	AttrHTTPStatus  = attribute.Key("http.response.status_code")
	AttrHTTPMethod  = attribute.Key("http.request.method")
	AttrHTTPRoute   = attribute.Key("http.route")
)

// Propagator reads and writes W3C traceparent/tracestate headers: the only
// format voicegate accepts or sends.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Options are what the provider needs besides the configuration.
type Options struct {
	// Replica is service.instance.id; Version is service.version.
	Replica, Version string
	// Log receives export failures (at most one line a minute).
	Log *slog.Logger
	// Processor, if set, receives the spans instead of the OTLP exporter
	// (tests: an in-memory recorder), tracing on whatever the endpoint.
	Processor sdktrace.SpanProcessor
}

// QueueSize is how many ended spans wait for export; past it, new ones
// are dropped (a slow collector never holds up a request).
const QueueSize = 2048

// Provider owns the tracer provider and its exporter: the batch
// processor's goroutine runs until Close.
type Provider struct {
	tp      *sdktrace.TracerProvider
	tracer  trace.Tracer
	timeout time.Duration
}

// Open returns the provider for cfg, or nil when tracing is off (no
// endpoint and no Options.Processor). Spans go to cfg.TracesURL only,
// through a client of their own (no proxy from the environment, no
// redirect followed, cfg.Timeout per export); the OTEL_EXPORTER_OTLP_*
// and OTEL_BSP_* environment variables change nothing.
func Open(cfg Config, o Options) (*Provider, error) {
	if !cfg.Enabled() && o.Processor == nil {
		return nil, nil
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	proc := o.Processor
	if proc == nil {
		exp, err := newExporter(cfg, o.Log)
		if err != nil {
			return nil, err
		}
		// Explicit, so that no OTEL_BSP_* variable changes them.
		proc = sdktrace.NewBatchSpanProcessor(exp, sdktrace.WithExportTimeout(cfg.Timeout.D()),
			sdktrace.WithMaxQueueSize(QueueSize), sdktrace.WithMaxExportBatchSize(512), sdktrace.WithBatchTimeout(5*time.Second))
	}
	res := resource.NewSchemaless(
		attribute.String("service.name", "voicegate"),
		attribute.String("service.version", o.Version),
		attribute.String("service.instance.id", o.Replica),
	)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
		sdktrace.WithSpanProcessor(proc),
	)
	return &Provider{tp: tp, tracer: tp.Tracer(ScopeName), timeout: cfg.Timeout.D()}, nil
}

func newExporter(cfg Config, log *slog.Logger) (sdktrace.SpanExporter, error) {
	headers := make(map[string]string, len(cfg.Headers))
	for k, v := range cfg.Headers {
		headers[k] = string(v)
	}
	client := &http.Client{
		Timeout: cfg.Timeout.D(),
		Transport: &http.Transport{
			Proxy:                 nil, // the configured collector only, never a proxy from the environment
			DialContext:           (&net.Dialer{Timeout: cfg.Timeout.D(), KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   cfg.Timeout.D(),
			ResponseHeaderTimeout: cfg.Timeout.D(),
			MaxIdleConns:          2,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		// A redirect would send the spans and headers elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	exp, err := otlptracehttp.New(context.Background(),
		otlptracehttp.WithEndpointURL(cfg.TracesURL()),
		otlptracehttp.WithHTTPClient(client),
		otlptracehttp.WithHeaders(headers),
		otlptracehttp.WithTimeout(cfg.Timeout.D()),
		otlptracehttp.WithEncoding(otlptracehttp.EncodingProtobuf),
		otlptracehttp.WithCompression(otlptracehttp.GzipCompression),
		otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: true, InitialInterval: time.Second, MaxInterval: cfg.Timeout.D(), MaxElapsedTime: cfg.Timeout.D()}),
	)
	if err != nil {
		return nil, fmt.Errorf("tracing exporter: %s", redact.Error(err))
	}
	return &loggedExporter{SpanExporter: exp, log: log.With(logkey.Component, "tracing"), every: time.Minute, now: time.Now}, nil
}

// Close flushes the spans still queued and stops the exporter, bounded by
// the configured timeout. A nil Provider closes at once.
func (p *Provider) Close() error {
	if p == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	return p.tp.Shutdown(ctx)
}

// StartWebhook starts a webhook request's server span ("POST /webhook/vapi"),
// the child of the request's traceparent when it carries a valid one.
func (p *Provider) StartWebhook(r *http.Request, route, source string) (context.Context, trace.Span) {
	ctx := Propagator.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	return p.tracer.Start(ctx, r.Method+" "+route, trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(AttrHTTPMethod.String(r.Method), AttrHTTPRoute.String(route), AttrSource.String(source)))
}

// EndWebhook records a webhook's answer on its span and ends it.
func EndWebhook(span trace.Span, status int, msgType, callID, outcome string) {
	attrs := [...]attribute.KeyValue{AttrHTTPStatus.Int(status), AttrMessageType.String(msgType), AttrOutcome.String(outcome), AttrCallID.String(callID)}
	n := len(attrs)
	if callID == "" {
		n--
	}
	span.SetAttributes(attrs[:n]...)
	if status >= 500 {
		span.SetStatus(codes.Error, outcome)
	}
	span.End()
}

// Start starts a child span of the recording span in ctx, through that
// span's own provider. Without one (tracing off, or this trace not
// sampled) it returns ctx and its span as they are: no allocation.
func Start(ctx context.Context, name string, kind trace.SpanKind) (context.Context, trace.Span) {
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, parent
	}
	return parent.TracerProvider().Tracer(ScopeName).Start(ctx, name, trace.WithSpanKind(kind))
}

// End ends a span Start returned, marking it failed when err is set (its
// message is not recorded: it may quote a URL or a value).
func End(span trace.Span, err error) {
	if !span.IsRecording() {
		return
	}
	if err != nil {
		span.SetStatus(codes.Error, errorClass(err))
	}
	span.End()
}

// errorClass names an error without its text.
func errorClass(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline exceeded"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "error"
}

// Inject writes ctx's trace context into h as traceparent (and
// tracestate), for an outgoing request; nothing without one.
func Inject(ctx context.Context, h http.Header) {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		Propagator.Inject(ctx, propagation.HeaderCarrier(h))
	}
}

// loggedExporter logs export failures itself (at most one line each
// interval, with how many failed since) instead of passing them to
// OpenTelemetry's global error handler, which writes plain text to stderr.
// A failed batch is dropped: tracing never holds up the request path.
type loggedExporter struct {
	sdktrace.SpanExporter
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu       sync.Mutex
	last     time.Time
	failures int
}

func (e *loggedExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := e.SpanExporter.ExportSpans(ctx, spans)
	if err == nil {
		return nil
	}
	e.mu.Lock()
	e.failures++
	now := e.now()
	if !e.last.IsZero() && now.Sub(e.last) < e.every {
		e.mu.Unlock()
		return nil
	}
	n := e.failures
	e.last, e.failures = now, 0
	e.mu.Unlock()
	e.log.Warn("span export failed; those spans are dropped", logkey.Count, n, logkey.Err, redact.Error(err))
	return nil
}
