package bench

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/redisstate/redistest"
)

// Several replicas: the connections are spread over --url and every
// --target, each replica answers its share, the CPU is read for every PID
// given, and the shared Redis's CPU and memory are reported apart.
func TestRunSpreadsOverReplicas(t *testing.T) {
	redistest.Need(t)
	var hits [3]atomic.Int64
	hosts := make([]string, 3)
	for i := range hits {
		bare := BareHandler(secret)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits[i].Add(1)
			bare.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		hosts[i] = strings.TrimPrefix(srv.URL, "http://")
	}
	s, err := auth.NewSigner(hmacAuth(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Bounded: 600 requests at most, a 300 ms window.
	rep, err := Run(context.Background(), Options{URL: "http://" + hosts[0] + "/webhook/vapi", Targets: hosts[1:], Signer: s,
		Mode: "closed", Concurrency: 6, Duration: 300 * time.Millisecond, MaxRequests: 600, Timeout: 5 * time.Second,
		ServerPID: os.Getpid(), ServerPIDs: []int{os.Getpid(), os.Getpid()}, RedisURL: redistest.URL(),
		Workload: Workload{Mix: "realistic"}})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Errors != 0 || rep.Statuses["200"] == 0 {
		t.Fatalf("errors %d (%s), statuses %v", rep.Errors, rep.FirstError, rep.Statuses)
	}
	for i := range hits {
		if hits[i].Load() == 0 {
			t.Errorf("replica %d got no request (hits %d %d %d)", i, hits[0].Load(), hits[1].Load(), hits[2].Load())
		}
	}
	if got := rep.Server.PIDs; len(got) != 3 {
		t.Errorf("PIDs measured %v, want all three", got)
	}
	if rep.Server.RSSBytes <= 0 {
		t.Error("no memory read")
	}
	if rep.Redis == nil || rep.Redis.Error != "" || rep.Redis.UsedMemoryAfter <= 0 {
		t.Fatalf("Redis not measured: %+v", rep.Redis)
	}
}

func TestRedisProbeRefusesRemoteAndReadsInfo(t *testing.T) {
	for _, u := range []string{"redis://192.0.2.1:6379/0", "redis://example.com:6379/0", "http://127.0.0.1:6379"} {
		if p, err := newRedisProbe(u); err == nil {
			p.close()
			t.Errorf("%s: accepted", u)
		}
	}
	s := parseRedisInfo("# CPU\r\nused_cpu_sys:1.50\r\nused_cpu_user:2.25\r\nused_cpu_sys_children:9\r\n# Memory\r\nused_memory:1048576\r\nused_memory_human:1.00M\r\n")
	if s.cpu != 3.75 || s.usedMemory != 1048576 {
		t.Fatalf("parsed %+v, want cpu 3.75 and used_memory 1048576", s)
	}
}
