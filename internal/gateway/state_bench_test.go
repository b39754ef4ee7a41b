package gateway_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/bench"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/ratelimit"
	"github.com/voicegate/voicegate/internal/redisstate/redistest"
	"github.com/voicegate/voicegate/internal/state"
)

// BenchmarkStateMix: the realistic mix voicegate-bench sends (bench.Bodies:
// status updates, speech updates, transcript partials and finals,
// conversation updates, tool calls to a loopback internal API, end-of-call
// reports), handler called directly, with the state in the process
// (memory) and in the real Redis (redis). Besides ns/op and allocs/op it
// reports the process's CPU per request (cpu-ns/op: every goroutine,
// the write-behind included; sys-ns/op: the part spent in the kernel) and, for redis, Redis's own (redis-cpu-ns/op,
// from INFO CPU). See BENCHMARKS.md, "Shared state (several replicas)".
func BenchmarkStateMix(b *testing.B) {
	b.Run("memory", func(b *testing.B) { benchMix(b, nil) })
	b.Run("redis", func(b *testing.B) {
		prefix := redistest.Prefix(b)
		benchMix(b, func(c *config.Config) {
			c.State.Driver, c.State.RedisURL, c.State.KeyPrefix = state.DriverRedis, redistest.URL(), prefix
			if err := c.Check(config.Options{}); err != nil {
				b.Fatal(err)
			}
		})
	})
}

func benchMix(b *testing.B, mut func(*config.Config)) {
	e := newEnv(b, func(c *config.Config) {
		c.Log.Level = "error"
		c.Vapi.MaxBodyBytes = 64 << 10
		c.Limits.PerSource = ratelimit.Rate{PerSecond: 1e9, Burst: 1e9}
		c.Limits.PerRoute = ratelimit.Rate{PerSecond: 1e9, Burst: 1e9}
		if mut != nil {
			mut(c)
		}
	})
	// Every body unique (the replay guard in Redis remembers each for the
	// whole window), signed before the timer starts.
	bodies, err := bench.Bodies(bench.Workload{Mix: "realistic", Calls: 32, CallPrefix: "bm-" + strconv.FormatInt(time.Now().UnixNano(), 36)}, b.N, 1)
	if err != nil {
		b.Fatal(err)
	}
	reqs := make([]signedBody, len(bodies))
	for i, bd := range bodies {
		reqs[i] = signedBody{body: bd.Data, h: e.signed(string(bd.Data))}
	}
	rcpu := redisCPU(b, e)
	var u0, s0, u1, s1 time.Duration
	serveAll(b, e, func(i int) *signedBody { return &reqs[i] }, func(start bool) {
		if start {
			u0, s0 = bench.SelfCPUTimes()
		} else {
			u1, s1 = bench.SelfCPUTimes()
		}
	})
	if cpu := (u1 - u0) + (s1 - s0); cpu > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		b.ReportMetric(float64((s1-s0).Nanoseconds())/float64(b.N), "sys-ns/op")
	}
	if rcpu != nil {
		b.ReportMetric(rcpu()/float64(b.N), "redis-cpu-ns/op")
	}
	if n := replays(b, e); n != 0 {
		b.Fatalf("%.0f requests were answered as replays: the benchmark must measure real processing", n)
	}
}

// redisCPU returns a function giving Redis's CPU time (ns, user+system,
// from INFO CPU) since it was called; nil with memory state.
func redisCPU(b *testing.B, e *env) func() float64 {
	if e.app.Redis() == nil {
		return nil
	}
	c := e.app.Redis().Client()
	read := func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := c.Info(ctx, "cpu").Result()
		if err != nil {
			b.Fatal(err)
		}
		return infoCPU(s)
	}
	t0 := read()
	return func() float64 { return (read() - t0) * 1e9 }
}

// infoCPU sums used_cpu_sys and used_cpu_user (seconds) of an INFO CPU.
func infoCPU(info string) float64 {
	var sum float64
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, _ := strconv.ParseFloat(v, 64)
			sum += f
		}
	}
	return sum
}
