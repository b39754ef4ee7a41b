package tracing

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

func TestConfigValidate(t *testing.T) {
	ok := DefaultConfig()
	ok.Endpoint = "http://otel-collector.observability:4318"
	if probs, warns := ok.Validate(); len(probs)+len(warns) != 0 {
		t.Fatalf("a plain endpoint: %v %v", probs, warns)
	}
	if probs, warns := DefaultConfig().Validate(); len(probs)+len(warns) != 0 {
		t.Fatalf("the defaults: %v %v", probs, warns)
	}
	for _, tc := range []struct {
		name string
		mut  func(*Config)
		want string
	}{
		{"not a URL", func(c *Config) { c.Endpoint = "http://[::1" }, "endpoint: not a URL"},
		{"no scheme", func(c *Config) { c.Endpoint = "otel-collector:4318" }, "endpoint: scheme"},
		{"grpc scheme", func(c *Config) { c.Endpoint = "grpc://otel-collector:4317" }, `scheme "grpc"`},
		{"no host", func(c *Config) { c.Endpoint = "http:///v1/traces" }, "endpoint: no host"},
		{"credentials in URL", func(c *Config) { c.Endpoint = "https://user:s3cret@collector:4318" }, "credentials in the URL"},
		{"query", func(c *Config) { c.Endpoint = "https://collector:4318/?token=x" }, "query or fragment"},
		{"ratio above 1", func(c *Config) { c.SampleRatio = 1.5 }, "sample_ratio: 1.5 is not between 0 and 1"},
		{"ratio negative", func(c *Config) { c.SampleRatio = -0.1 }, "sample_ratio: -0.1"},
		{"ratio NaN", func(c *Config) { c.SampleRatio = math.NaN() }, "sample_ratio: NaN"},
		{"zero timeout", func(c *Config) { c.Timeout = 0 }, "timeout: 0s must be above 0"},
		{"long timeout", func(c *Config) { c.Timeout = confval.Duration(2 * time.Minute) }, "at most 1m0s"},
		{"bad header name", func(c *Config) { c.Headers = map[string]confval.Masked{"bad name": "v"} }, `headers: "bad name" is not a valid header name`},
		{"reserved header", func(c *Config) { c.Headers = map[string]confval.Masked{"content-type": "text/plain"} }, "headers.content-type: set by the exporter itself"},
		{"empty header", func(c *Config) { c.Headers = map[string]confval.Masked{"Authorization": ""} }, "headers.Authorization: empty value"},
		{"header line break", func(c *Config) { c.Headers = map[string]confval.Masked{"Authorization": "Bearer x\r\nX-Evil: 1"} }, "line break"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mut(&c)
			probs, _ := c.Validate()
			got := strings.Join(probs, "\n")
			if !strings.Contains(got, tc.want) {
				t.Fatalf("problems %q, want %q", got, tc.want)
			}
			if strings.Contains(got, "s3cret") || strings.Contains(got, "X-Evil") {
				t.Fatalf("a problem quotes a secret: %q", got)
			}
		})
	}
	c := ok
	c.Headers = map[string]confval.Masked{"Authorization": "Bearer k"}
	if _, warns := c.Validate(); len(warns) != 1 || !strings.Contains(warns[0], "in clear") {
		t.Fatalf("headers over plain http to a remote host: warnings %v", warns)
	}
	c.Endpoint = "http://127.0.0.1:4318"
	if _, warns := c.Validate(); len(warns) != 0 {
		t.Fatalf("loopback: warnings %v", warns)
	}
}

func TestTracesURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://c:4318":                "http://c:4318/v1/traces",
		"http://c:4318/":               "http://c:4318/v1/traces",
		"https://c/otlp":               "https://c/otlp/v1/traces",
		"https://c/otlp/v1/traces":     "https://c/otlp/v1/traces",
		"https://c:4318/v1/traces/":    "https://c:4318/v1/traces",
		"https://api.vendor.io/tenant": "https://api.vendor.io/tenant/v1/traces",
	} {
		if got := (Config{Endpoint: in}).TracesURL(); got != want {
			t.Errorf("%s: %s, want %s", in, got, want)
		}
	}
}

// TestOpenOff: no endpoint and no processor is no provider, and closing
// it is a no-op.
func TestOpenOff(t *testing.T) {
	p, err := Open(DefaultConfig(), Options{})
	if err != nil || p != nil {
		t.Fatalf("%v %v", p, err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestStartWithoutTraceIsFree: the child-span helper neither starts a
// span nor allocates when the context carries no recording span.
func TestStartWithoutTraceIsFree(t *testing.T) {
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		c, s := Start(ctx, "x", trace.SpanKindInternal)
		End(s, nil)
		if c != ctx || s.IsRecording() {
			t.Fatal("a span was started")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per call with tracing off", allocs)
	}
	// Sampled out: the parent is not recording, nor is anything below it.
	rec := tracetest.NewSpanRecorder()
	p, err := Open(Config{SampleRatio: 0, Timeout: confval.Duration(time.Second)}, Options{Processor: rec})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	r := httptest.NewRequest(http.MethodPost, "/webhook/vapi", nil)
	ctx, root := p.StartWebhook(r, "/webhook/vapi", "vapi")
	_, child := Start(ctx, "child", trace.SpanKindInternal)
	End(child, nil)
	EndWebhook(root, 200, "status-update", "c1", "ok")
	if n := len(rec.Ended()); n != 0 {
		t.Fatalf("sample_ratio 0 recorded %d spans", n)
	}
	// Its trace still propagates (not sampled) to the internal API.
	h := http.Header{}
	Inject(ctx, h)
	if tp := h.Get("Traceparent"); !strings.HasSuffix(tp, "-00") || !strings.HasPrefix(tp, "00-"+root.SpanContext().TraceID().String()) {
		t.Fatalf("traceparent %q", tp)
	}
}

// TestExporterIgnoresEnvironment: the OTEL_EXPORTER_OTLP_* variables
// cannot send spans or headers anywhere but the configured endpoint.
func TestExporterIgnoresEnvironment(t *testing.T) {
	var configured, other atomic.Int32
	var gotAuth atomic.Value
	col := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		configured.Add(1)
		gotAuth.Store(r.Header.Get("Authorization") + "|" + r.Header.Get("X-Env"))
	}))
	defer col.Close()
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { other.Add(1) }))
	defer elsewhere.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", elsewhere.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", elsewhere.URL+"/v1/traces")
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "X-Env=leak")
	t.Setenv("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "X-Env=leak")
	cfg := Config{Endpoint: col.URL, SampleRatio: 1, Timeout: confval.Duration(5 * time.Second), Headers: map[string]confval.Masked{"Authorization": "Bearer k"}}
	p, err := Open(cfg, Options{Replica: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	_, s := p.StartWebhook(httptest.NewRequest(http.MethodPost, "/webhook/vapi", nil), "/webhook/vapi", "vapi")
	EndWebhook(s, 200, "status-update", "c", "ok")
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if configured.Load() == 0 || other.Load() != 0 {
		t.Fatalf("exports: configured %d, from the environment %d", configured.Load(), other.Load())
	}
	if got := gotAuth.Load(); got != "Bearer k|" {
		t.Fatalf("headers sent %q", got)
	}
}

// TestCloseIsBounded: a collector that never answers holds Close for at
// most the configured timeout (the export fails; Close still returns).
func TestCloseIsBounded(t *testing.T) {
	release := make(chan struct{})
	col := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer func() { close(release); col.Close() }() // Close waits for the handler
	p, err := Open(Config{Endpoint: col.URL, SampleRatio: 1, Timeout: confval.Duration(200 * time.Millisecond)}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, s := p.StartWebhook(httptest.NewRequest(http.MethodPost, "/webhook/vapi", nil), "/webhook/vapi", "vapi")
	EndWebhook(s, 200, "status-update", "c", "ok")
	done := make(chan error, 1)
	go func() { done <- p.Close() }()
	// Not a timing assertion: the test's own deadline is the bound; this
	// only fails if Close never returns.
	<-done
}

type failingExporter struct{ calls atomic.Int32 }

func (f *failingExporter) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error {
	f.calls.Add(1)
	return errors.New(`Post "https://collector:4318/v1/traces": dial tcp: connection refused`)
}
func (f *failingExporter) Shutdown(context.Context) error { return nil }

// TestExportFailuresLoggedOncePerInterval: a collector that is down costs
// one log line per interval, with the count of failed exports, and the
// error never reaches OpenTelemetry's global handler.
func TestExportFailuresLoggedOncePerInterval(t *testing.T) {
	var buf strings.Builder
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return buf.Write(p) }), nil))
	e := &loggedExporter{SpanExporter: &failingExporter{}, log: log, every: time.Minute, now: func() time.Time { return now }}
	for i := range 5 {
		if err := e.ExportSpans(context.Background(), nil); err != nil {
			t.Fatalf("export %d returned %v: it would reach the global error handler", i, err)
		}
	}
	now = now.Add(time.Minute)
	e.ExportSpans(context.Background(), nil)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "count=1") || !strings.Contains(lines[1], "count=5") {
		t.Fatalf("log lines:\n%s", buf.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
