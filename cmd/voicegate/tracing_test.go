package main

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestReplicaAndTracing runs the real binary as one replica named by
// ${VOICEGATE_REPLICA}, with tracing to a loopback OTLP/HTTP collector:
// every log line and every metric carries the replica, and the webhooks'
// spans reach the collector (flushed at SIGTERM) with the replica as
// service.instance.id.
func TestReplicaAndTracing(t *testing.T) {
	var mu sync.Mutex
	var spans, resource []string
	col := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, "bad gzip", 400)
				return
			}
			body = zr
		}
		b, _ := io.ReadAll(io.LimitReader(body, 8<<20))
		var req collectortrace.ExportTraceServiceRequest
		if r.URL.Path != "/v1/traces" || proto.Unmarshal(b, &req) != nil {
			http.Error(w, "bad export", 400)
			return
		}
		mu.Lock()
		for _, rs := range req.ResourceSpans {
			for _, kv := range rs.GetResource().GetAttributes() {
				resource = append(resource, kv.GetKey()+"="+kv.GetValue().GetStringValue())
			}
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					spans = append(spans, s.Name)
				}
			}
		}
		mu.Unlock()
	}))
	defer col.Close()

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "voicegate.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
listen: 127.0.0.1:0
data_dir: %s/data
replica: ${VOICEGATE_REPLICA}
server: {shutdown_delay: 0s}
admin: {listen: "%s"}
vapi:
  auth: [{mode: hmac, secrets: ["${SECRET}"]}]
  assistant_request: {default: {assistant_id: asst-1}}
tracing:
  endpoint: %s
`, dir, freeAddr(t), col.URL)), 0o600)
	const secret = "tr-Hq4Zr8Km2Wx7Pn3L"
	p := start(t, []string{"VOICEGATE_REPLICA=gw-e2e-1", "SECRET=" + secret}, "serve", "--config", cfgPath)
	var lines []string
	var admin string
	for admin == "" {
		select {
		case l := <-p.logs:
			lines = append(lines, l)
			var v struct{ Msg, Addr string }
			if json.Unmarshal([]byte(l), &v) == nil && strings.HasPrefix(v.Msg, "admin listener") {
				admin = v.Addr
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no admin listener line:\n%s", strings.Join(lines, "\n"))
		}
	}
	if out, err := run(t, nil, "simulate", "--url", "http://"+p.addr+"/webhook/vapi", "--secret", secret, "--scenario", "call"); err != nil {
		t.Fatalf("simulate: %v\n%s", err, out)
	}
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	n := 0
	for _, m := range strings.Split(string(metrics), "\n") {
		if m == "" || strings.HasPrefix(m, "#") {
			continue
		}
		n++
		if !strings.Contains(m, `replica="gw-e2e-1"`) {
			t.Errorf("metric without the replica label: %s", m)
		}
	}
	if n == 0 || !strings.Contains(string(metrics), `voicegate_requests_total{outcome="ok",replica="gw-e2e-1",source="vapi",type="status-update"}`) {
		t.Fatalf("metrics:\n%s", metrics)
	}
	lines = append(lines, strings.Split(strings.TrimSpace(p.stop(t)), "\n")...)
	for _, l := range lines {
		var v map[string]any
		if err := json.Unmarshal([]byte(l), &v); err != nil || v["replica"] != "gw-e2e-1" {
			t.Errorf("log line without the replica: %s", l)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(spans, "POST /webhook/vapi") || !slices.Contains(spans, "authenticate") {
		t.Fatalf("collector got spans %v", spans)
	}
	if !slices.Contains(resource, "service.instance.id=gw-e2e-1") || !slices.Contains(resource, "service.name=voicegate") {
		t.Errorf("resource %v", resource)
	}
}
