package bench

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"math/rand/v2"

	"github.com/voicegate/voicegate/internal/app"
	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/ratelimit"
	"github.com/voicegate/voicegate/internal/vapi"
)

const secret = "bench-test-Wq7Zk3Rm8Xp2Lv9N"

func hmacAuth() config.AuthConfig {
	a := config.AuthConfig{Mode: auth.ModeHMAC, Secrets: []config.Secret{{Value: secret}}}
	a.Complete()
	return a
}

func newBuilder(t testing.TB, w Workload) *builder {
	s, err := auth.NewSigner(hmacAuth(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return &builder{host: "127.0.0.1:1", path: "/webhook/vapi", url: "http://127.0.0.1:1/webhook/vapi", signer: s, now: time.Now(), w: w,
		rng: rand.New(rand.NewPCG(1, 7)), hdr: http.Header{}}
}

// TestWorkloadIsSignedUniqueAndRealistic parses every pre-built request as a
// server would: each must verify, decode, and be unique; the mix must have
// every kind, partials most often, and whole calls from ringing to report.
func TestWorkloadIsSignedUniqueAndRealistic(t *testing.T) {
	b := newBuilder(t, Workload{Mix: "realistic", Calls: 4, ToolName: "getAppointment", CallPrefix: "t"})
	reqs := b.build(1200, nil)
	v, _ := auth.NewVerifier(hmacAuth())
	seen := map[string]bool{}
	var kinds [numKinds]int
	types := map[string]int{}
	for _, r := range reqs {
		hr, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(r.raw)))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(hr.Body)
		if err := v.Verify(&auth.Request{Method: hr.Method, Header: hr.Header, Body: body}, time.Now()); err != nil {
			t.Fatalf("pre-signed request refused: %v", err)
		}
		m, err := vapi.Decode(body)
		if err != nil {
			t.Fatalf("body does not decode: %v\n%s", err, body)
		}
		if seen[string(body)] {
			t.Fatal("duplicate body: replay protection would short-circuit it")
		}
		seen[string(body)] = true
		kinds[r.kind]++
		types[m.Type]++
		if r.kind == kTool && len(m.Invocations()) != 1 {
			t.Fatalf("tool call without invocation: %s", body)
		}
	}
	for k, n := range kinds[:numVapiKinds] {
		if n == 0 {
			t.Errorf("kind %s never generated", kindNames[k])
		}
		if k != kPartial && n >= kinds[kPartial] {
			t.Errorf("%s (%d) as frequent as partials (%d)", kindNames[k], n, kinds[kPartial])
		}
	}
	if types[`transcript[transcriptType="final"]`] == 0 || types["end-of-call-report"] == 0 {
		t.Errorf("mix lacks variants: %v", types)
	}
}

func TestFunctionCallStyle(t *testing.T) {
	b := newBuilder(t, Workload{Mix: "tools", Calls: 2, ToolStyle: "function-call", ToolName: "queryDatabase", CallPrefix: "t"})
	for _, r := range b.build(5, nil) {
		body := r.raw[bytes.Index(r.raw, []byte("\r\n\r\n"))+4:]
		m, err := vapi.Decode(body)
		if err != nil || m.Type != "function-call" || m.FunctionCall.Name != "queryDatabase" {
			t.Fatalf("%v %s", err, body)
		}
	}
}

func newGateway(t *testing.T) string {
	t.Helper()
	api := httptest.NewServer(APIHandler(0))
	t.Cleanup(api.Close)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Vapi.Auth = []config.AuthConfig{hmacAuth()}
	cfg.Tools = []config.ToolConfig{{Name: "getAppointment", URL: api.URL + "/appointments"}}
	// The load comes from one address, far faster than Vapi's: no limit.
	cfg.Limits.PerSource, cfg.Limits.PerRoute = ratelimit.Rate{}, ratelimit.Rate{}
	if err := cfg.Check(config.Options{}); err != nil {
		t.Fatal(err)
	}
	a, err := app.New(context.Background(), cfg, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	srv := httptest.NewServer(a.Gateway)
	t.Cleanup(srv.Close)
	return srv.URL + cfg.Vapi.Path
}

func TestRunClosedAndOpenAgainstVoicegate(t *testing.T) {
	url := newGateway(t)
	s, _ := auth.NewSigner(hmacAuth(), time.Now())
	base := Options{URL: url, Signer: s, Concurrency: 4, Warmup: 50 * time.Millisecond, Duration: 400 * time.Millisecond,
		MaxRequests: 20000, ServerPID: os.Getpid(), Workload: Workload{Mix: "realistic"}}
	closed := base
	closed.Mode = "closed"
	r, err := Run(context.Background(), closed)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests == 0 || r.Errors != 0 || r.Statuses["200"] != r.Requests || len(r.Kinds) < 5 {
		t.Fatalf("closed loop: %+v", r)
	}
	if r.All.P50 > r.All.P99 || r.All.P99 > r.All.Max || r.Server.CPUSeconds <= 0 || r.Server.RSSBytes <= 0 {
		t.Fatalf("inconsistent stats: %+v", r)
	}
	open := base
	open.Mode, open.Rate = "open", 500
	r, err = Run(context.Background(), open)
	if err != nil {
		t.Fatal(err)
	}
	// 500/s for 0.4 s is 200 requests: the schedule is kept, not the server's pace.
	if r.Requests < 190 || r.Requests > 210 || r.Errors != 0 || r.SendLag == nil {
		t.Fatalf("open loop sent %d requests (errors %d), want ~200", r.Requests, r.Errors)
	}
	// Live calls stay open during the run.
	live := base
	live.Mode, live.Rate, live.LiveCalls = "open", 200, 300
	if r, err = Run(context.Background(), live); err != nil || r.Errors != 0 || r.Server.RSSWithLiveCalls == 0 {
		t.Fatalf("live calls: %v %+v", err, r)
	}
}

func TestRunReportsRefusals(t *testing.T) {
	url := newGateway(t)
	wrong := hmacAuth()
	wrong.Secrets = []config.Secret{{Value: "not-the-secret-0123456789"}}
	s, _ := auth.NewSigner(wrong, time.Now())
	r, err := Run(context.Background(), Options{URL: url, Signer: s, Mode: "closed", Concurrency: 2, Duration: 100 * time.Millisecond,
		MaxRequests: 500, Workload: Workload{Mix: "status"}})
	if err != nil {
		t.Fatal(err)
	}
	if r.Statuses["401"] == 0 || r.Statuses["200"] != 0 {
		t.Fatalf("statuses %v: refusals must be reported, not hidden", r.Statuses)
	}
}

// TestClientResponses drives the raw client against canned responses.
func TestClientResponses(t *testing.T) {
	responses := []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
		"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
		"garbage\r\n\r\n",
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		i := 0
		for i < len(responses) {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			br := bufio.NewReader(c)
			for i < len(responses) {
				req, err := http.ReadRequest(br)
				if err != nil {
					break
				}
				io.Copy(io.Discard, req.Body)
				io.WriteString(c, responses[i])
				i++
				if i == 2 || i >= 3 { // after "Connection: close", and for the broken ones
					break
				}
			}
			c.Close()
		}
	}()
	c := newConn(ln.Addr().String(), 2*time.Second)
	raw := []byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
	want := []struct {
		status int
		err    string
	}{{200, ""}, {401, ""}, {0, "chunked"}, {0, "malformed"}}
	for i, w := range want {
		st, err := c.do(raw)
		if st != w.status || (w.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), w.err)) {
			t.Fatalf("response %d: status %d err %v, want %d %q", i, st, err, w.status, w.err)
		}
	}
}

func TestPercentileAndMedian(t *testing.T) {
	var d []time.Duration
	for i := 1; i <= 1000; i++ {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	if percentile(d, 50) != 500*time.Millisecond || percentile(d, 99) != 990*time.Millisecond || percentile(d, 99.9) != 999*time.Millisecond {
		t.Fatal("percentiles")
	}
	runs := []*Report{{Name: "a", Server: ServerStats{PID: 1, CPUPerRequestUS: 50}}, {Server: ServerStats{PID: 1, CPUPerRequestUS: 30}}, {Server: ServerStats{PID: 1, CPUPerRequestUS: 90}}}
	if m := Median(runs); m.Server.CPUPerRequestUS != 50 || m.MedianOf != 3 {
		t.Fatalf("median %+v", m)
	}
	c := Compare(&Report{Throughput: 1000, All: KindStats{P99: 1}, Server: ServerStats{CPUPerRequestUS: 50}}, &Report{Throughput: 250, All: KindStats{P99: 4}, Server: ServerStats{CPUPerRequestUS: 200}})
	if c.Ratios["server_cpu_per_request"] != 4 || c.Ratios["throughput"] != 4 || c.Ratios["p99"] != 4 {
		t.Fatalf("ratios %v", c.Ratios)
	}
	var buf bytes.Buffer
	c.A.Name, c.B.Name = "a", "b"
	c.WriteText(&buf)
	if !strings.Contains(buf.String(), "4.0× less") || !strings.Contains(buf.String(), "4.0× more") {
		t.Fatalf("comparison text:\n%s", buf.String())
	}
	// Worded correctly when the first server is the costlier one.
	buf.Reset()
	Compare(c.B, c.A).WriteText(&buf)
	if !strings.Contains(buf.String(), "4.0× more") || !strings.Contains(buf.String(), "4.0× higher") || strings.Contains(buf.String(), "0.2×") {
		t.Fatalf("reversed comparison text:\n%s", buf.String())
	}
}

// TestBareHandlerChecksTheSignature: the baseline must really verify, or
// the comparison with voicegate would flatter it.
func TestBareHandlerChecksTheSignature(t *testing.T) {
	srv := httptest.NewServer(BareHandler(secret))
	defer srv.Close()
	s, _ := auth.NewSigner(hmacAuth(), time.Now())
	r, err := Run(context.Background(), Options{URL: srv.URL + "/webhook/vapi", Signer: s, Mode: "closed", Concurrency: 2,
		Duration: 200 * time.Millisecond, MaxRequests: 2000, Workload: Workload{Mix: "realistic"}})
	if err != nil || r.Errors != 0 || r.Statuses["200"] == 0 || len(r.Statuses) != 1 {
		t.Fatalf("signed requests: %v %v", err, r.Statuses)
	}
	wrong := hmacAuth()
	wrong.Secrets = []config.Secret{{Value: "not-the-secret-0123456789"}}
	ws, _ := auth.NewSigner(wrong, time.Now())
	r, err = Run(context.Background(), Options{URL: srv.URL + "/webhook/vapi", Signer: ws, Mode: "closed", Concurrency: 2,
		Duration: 100 * time.Millisecond, MaxRequests: 500, Workload: Workload{Mix: "status"}})
	if err != nil || r.Statuses["200"] != 0 || r.Statuses["401"] == 0 {
		t.Fatalf("wrongly signed requests: %v %v", err, r.Statuses)
	}
}
