// Package bench provides voicegate's load generator: concurrent simulated
// calls with a realistic event mix, every request signed and unique, sent in
// closed loop (maximum throughput) or open loop (a fixed arrival rate, with
// latency measured from each request's intended send time so that a stalled
// server cannot hide its stall — no coordinated omission). It reports
// throughput, per-type latency percentiles, status counts, and, given the
// server's PID, the server's CPU time per request and its memory.
package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
)

// Options configure a run.
type Options struct {
	Name        string // label in reports ("voicegate", "node-express")
	URL         string
	Signer      *auth.Signer
	Mode        string // "closed" or "open"
	Concurrency int    // closed: senders; open: connections
	Rate        int    // open: requests per second
	Duration    time.Duration
	Warmup      time.Duration
	Workload    Workload
	// LiveCalls > 0 first opens that many calls (one status-update each) and
	// keeps them all live during the run: the scale test.
	LiveCalls int
	// MaxRequests bounds the pre-built pool of a closed-loop run.
	MaxRequests int
	ServerPID   int
	Timeout     time.Duration
	Seed        uint64
	// Progress, if set, receives one-line phase messages.
	Progress func(string)
	// Twilio is the Twilio door the twilio mix loads (URL is then the
	// server's address); Signer is not used for it.
	Twilio *TwilioTarget
	// Targets are further replicas of the server under test, each
	// host:port (the requests are the same, URL's path included): the
	// connections are spread round-robin over URL's host and these.
	Targets []string
	// ServerPIDs are the further replicas' PIDs: the server CPU and
	// memory reported are summed over ServerPID and these.
	ServerPIDs []int
	// RedisURL, if set, is the Redis the servers share: its CPU (INFO
	// CPU) is measured over the window and its memory (INFO MEMORY) around
	// the window and the opening of live calls, reported apart.
	RedisURL string
}

// pids are all the server processes measured.
func (o Options) pids() []int {
	if o.ServerPID <= 0 {
		return nil
	}
	return append([]int{o.ServerPID}, o.ServerPIDs...)
}

type sample struct {
	kind uint8
	lat  time.Duration
}

type worker struct {
	samples  []sample
	lags     []time.Duration // open loop: actual send time - intended time
	statuses map[int]int
	errors   int
	firstErr error
}

func (w *worker) record(kind uint8, lat time.Duration, status int, err error) {
	if err != nil {
		w.errors++
		if w.firstErr == nil {
			w.firstErr = err
		}
		return
	}
	w.statuses[status]++
	w.samples = append(w.samples, sample{kind, lat})
}

// Run executes one benchmark and returns its report.
func Run(ctx context.Context, o Options) (*Report, error) {
	twilioMix := o.Workload.Mix == "twilio"
	switch {
	case twilioMix && o.Twilio == nil:
		return nil, errors.New("the twilio mix needs the Twilio door (paths, public base URL, token, number)")
	case twilioMix && o.LiveCalls > 0:
		return nil, errors.New("live calls are opened with Vapi's status updates: not with the twilio mix")
	case !twilioMix && o.Signer == nil:
		return nil, errors.New("bench needs a signer")
	}
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" || u.Scheme != "http" {
		return nil, fmt.Errorf("bench needs an http:// URL on this machine, got %q", o.URL)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 32
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Workload.Calls <= 0 {
		o.Workload.Calls = o.Concurrency
	}
	if o.Workload.ToolName == "" {
		o.Workload.ToolName = "getAppointment"
	}
	if o.Workload.CallPrefix == "" {
		o.Workload.CallPrefix = fmt.Sprintf("bench-%x", time.Now().UnixNano())
	}
	progress := o.Progress
	if progress == nil {
		progress = func(string) {}
	}
	path := u.RequestURI()
	b := &builder{host: u.Host, path: path, url: o.URL, signer: o.Signer, now: time.Now(), w: o.Workload,
		rng: rand.New(rand.NewPCG(o.Seed, 7)), hdr: http.Header{}, tw: o.Twilio}
	hosts := append([]string{u.Host}, o.Targets...)
	var rs *redisProbe
	if o.RedisURL != "" {
		if rs, err = newRedisProbe(o.RedisURL); err != nil {
			return nil, err
		}
		defer rs.close()
	}
	rep := &Report{Name: o.Name, URL: o.URL, Mode: o.Mode, Mix: o.Workload.Mix, Concurrency: o.Concurrency, Rate: o.Rate,
		Calls: o.Workload.Calls, LiveCalls: o.LiveCalls, ToolStyle: o.Workload.ToolStyle}

	var callIDs []string
	if o.LiveCalls > 0 {
		callIDs = make([]string, o.LiveCalls)
		for i := range callIDs {
			callIDs[i] = fmt.Sprintf("%s-live-%07d", o.Workload.CallPrefix, i)
		}
		if err := openLiveCalls(ctx, o, b, hosts, rs, callIDs, rep, progress); err != nil {
			return nil, err
		}
		b.w.Calls = len(callIDs)
	}

	n := o.MaxRequests
	if o.Mode == "open" {
		n = int(float64(o.Rate)*(o.Warmup+o.Duration).Seconds()*1.05) + 100
	} else if n <= 0 {
		n = 400_000
	}
	progress(fmt.Sprintf("pre-building %d signed requests", n))
	t0 := time.Now()
	pool := b.build(n, callIDs)
	rep.Prebuilt, rep.PrebuildSeconds = len(pool), time.Since(t0).Seconds()

	var res runResult
	switch o.Mode {
	case "closed":
		res = runClosed(ctx, o, hosts, rs, pool, progress)
	case "open":
		if o.Rate <= 0 {
			return nil, errors.New("open loop needs --rate > 0")
		}
		res = runOpen(ctx, o, hosts, rs, pool, progress)
	default:
		return nil, fmt.Errorf("unknown mode %q (closed or open)", o.Mode)
	}
	rep.fill(res)
	for _, pid := range o.pids() {
		rss, peak, err := procMem(pid)
		if err != nil {
			return nil, err
		}
		rep.Server.RSSBytes += rss
		rep.Server.PeakRSSBytes += peak
	}
	if len(o.pids()) > 1 {
		rep.Server.PIDs = o.pids()
	}
	return rep, nil
}

type runResult struct {
	workers      []*worker
	window       time.Duration
	serverCPU    time.Duration
	clientCPU    time.Duration
	serverPID    int
	redis        *RedisStats
	exhausted    bool
	behindByEnd  time.Duration
	serverCPUErr error
}

// measure snapshots CPU around the measured window: the servers' (summed)
// and, given a probe, Redis's.
type measure struct {
	pids            []int
	rs              *redisProbe
	t0              time.Time
	s0, c0          time.Duration
	r0              redisSample
	redis           *RedisStats
	err             error
	window, sc, ccp time.Duration
}

func newMeasure(o Options, rs *redisProbe) *measure { return &measure{pids: o.pids(), rs: rs} }

func (m *measure) serverCPU() (time.Duration, error) {
	var sum time.Duration
	for _, pid := range m.pids {
		d, err := procCPU(pid)
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum, nil
}

func (m *measure) start() {
	if m.rs != nil {
		m.redis = &RedisStats{}
		m.r0, m.err = m.rs.sample()
	}
	m.t0 = time.Now()
	m.c0 = selfCPU()
	if len(m.pids) > 0 && m.err == nil {
		m.s0, m.err = m.serverCPU()
	}
}

func (m *measure) stop() {
	m.window = time.Since(m.t0)
	m.ccp = selfCPU() - m.c0
	if len(m.pids) > 0 && m.err == nil {
		s1, err := m.serverCPU()
		m.sc, m.err = s1-m.s0, err
	}
	if m.rs != nil && m.err == nil {
		r1, err := m.rs.sample()
		if err != nil {
			m.redis.Error = err.Error()
			return
		}
		m.redis.CPUSeconds = r1.cpu - m.r0.cpu
		m.redis.UsedMemoryBefore, m.redis.UsedMemoryAfter = m.r0.usedMemory, r1.usedMemory
	}
}

// spawn starts one sender per worker, each with its own keep-alive
// connection to one of hosts (round-robin), and returns a function that
// waits for all of them.
func spawn(ws []*worker, hosts []string, timeout time.Duration, send func(w *worker, c *conn)) (wait func()) {
	var wg sync.WaitGroup
	for i, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newConn(hosts[i%len(hosts)], timeout)
			defer c.close()
			send(w, c)
		}()
	}
	return wg.Wait
}

func newWorkers(n int) []*worker {
	ws := make([]*worker, n)
	for i := range ws {
		ws[i] = &worker{statuses: map[int]int{}, samples: make([]sample, 0, 1<<14)}
	}
	return ws
}

// runClosed: each sender sends its next request as soon as the previous
// answer arrived, for the warm-up and then the measured window.
func runClosed(ctx context.Context, o Options, hosts []string, rs *redisProbe, pool []request, progress func(string)) runResult {
	var next atomic.Int64
	var phase atomic.Int32 // 0 warm-up, 1 measure, 2 stop
	ws := newWorkers(o.Concurrency)
	wait := spawn(ws, hosts, o.Timeout, func(w *worker, c *conn) {
		for ctx.Err() == nil {
			p := phase.Load()
			if p == 2 {
				return
			}
			j := next.Add(1) - 1
			if j >= int64(len(pool)) {
				return
			}
			r := &pool[j]
			t := time.Now()
			st, err := c.do(r.raw)
			if p == 1 && phase.Load() == 1 {
				w.record(r.kind, time.Since(t), st, err)
			}
		}
	})
	progress(fmt.Sprintf("closed loop, %d senders: warming up for %s", o.Concurrency, o.Warmup))
	sleepCtx(ctx, o.Warmup)
	m := newMeasure(o, rs)
	m.start()
	phase.Store(1)
	progress(fmt.Sprintf("measuring for %s", o.Duration))
	done := make(chan struct{})
	go func() { wait(); close(done) }()
	exhausted := false
	select {
	case <-time.After(o.Duration):
	case <-done:
		exhausted = true
	case <-ctx.Done():
	}
	m.stop()
	phase.Store(2)
	<-done
	return runResult{workers: ws, window: m.window, serverCPU: m.sc, clientCPU: m.ccp, serverPID: o.ServerPID, redis: m.redis, exhausted: exhausted, serverCPUErr: m.err}
}

type job struct {
	idx      int
	intended time.Time
	measured bool
}

// runOpen: requests are released on a fixed schedule whatever the server
// does; latency runs from the scheduled time, so queueing behind a slow
// answer is counted.
func runOpen(ctx context.Context, o Options, hosts []string, rs *redisProbe, pool []request, progress func(string)) runResult {
	interval := time.Second / time.Duration(o.Rate)
	jobs := make(chan job, len(pool))
	ws := newWorkers(o.Concurrency)
	wait := spawn(ws, hosts, o.Timeout, func(w *worker, c *conn) {
		for j := range jobs {
			if ctx.Err() != nil {
				continue
			}
			r := &pool[j.idx]
			sent := time.Now()
			st, err := c.do(r.raw)
			if j.measured {
				w.record(r.kind, time.Since(j.intended), st, err)
				w.lags = append(w.lags, sent.Sub(j.intended))
			}
		}
	})
	progress(fmt.Sprintf("open loop at %d requests/s over %d connections: warming up for %s", o.Rate, o.Concurrency, o.Warmup))
	start := time.Now()
	warmN := int(o.Warmup / interval)
	totalN := warmN + int(o.Duration/interval)
	if totalN > len(pool) {
		totalN = len(pool)
	}
	m := newMeasure(o, rs)
	var behind time.Duration
	for i := 0; i < totalN && ctx.Err() == nil; i++ {
		at := start.Add(time.Duration(i) * interval)
		if i == warmN {
			sleepUntil(at)
			m.start()
			progress(fmt.Sprintf("measuring for %s", o.Duration))
		}
		if d := time.Until(at); d > 0 {
			sleepUntil(at)
		} else if -d > behind {
			behind = -d
		}
		jobs <- job{idx: i, intended: at, measured: i >= warmN}
	}
	close(jobs)
	wait()
	m.stop()
	return runResult{workers: ws, window: m.window, serverCPU: m.sc, clientCPU: m.ccp, serverPID: o.ServerPID, redis: m.redis, behindByEnd: behind, serverCPUErr: m.err}
}

// sleepUntil sleeps until t (see preciseSleep). Any lateness is counted in
// latencies and reported as send lag.
func sleepUntil(t time.Time) {
	preciseSleep(time.Until(t))
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

// openLiveCalls creates the live calls and records the servers' memory
// (and Redis's) before and after.
func openLiveCalls(ctx context.Context, o Options, b *builder, hosts []string, rs *redisProbe, ids []string, rep *Report, progress func(string)) error {
	for _, pid := range o.pids() {
		rss, _, err := procMem(pid)
		if err != nil {
			return err
		}
		rep.Server.RSSBeforeLiveCalls += rss
	}
	if rs != nil {
		s, err := rs.sample()
		if err != nil {
			return err
		}
		rep.RedisLiveCalls = &RedisLiveCalls{UsedMemoryBefore: s.usedMemory}
	}
	progress(fmt.Sprintf("opening %d live calls", len(ids)))
	reqs := make([]request, len(ids))
	for i, id := range ids {
		reqs[i] = b.status(&callState{id: id}, "in-progress")
	}
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr atomic.Value
	spawn(newWorkers(o.Concurrency), hosts, o.Timeout, func(_ *worker, c *conn) {
		for ctx.Err() == nil {
			j := next.Add(1) - 1
			if j >= int64(len(reqs)) {
				return
			}
			st, err := c.do(reqs[j].raw)
			if err != nil || st != 200 {
				failed.Add(1)
				if err == nil {
					err = fmt.Errorf("status %d", st)
				}
				firstErr.CompareAndSwap(nil, err.Error())
			}
		}
	})()
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("opening live calls: %d failed (first: %v)", f, firstErr.Load())
	}
	for _, pid := range o.pids() {
		rss, _, err := procMem(pid)
		if err != nil {
			return err
		}
		rep.Server.RSSWithLiveCalls += rss
	}
	if rs != nil {
		// Writes behind land within milliseconds; give them a moment.
		sleepCtx(ctx, 500*time.Millisecond)
		s, err := rs.sample()
		if err != nil {
			return err
		}
		rep.RedisLiveCalls.UsedMemoryWith = s.usedMemory
		rep.RedisLiveCalls.PerCallBytes = float64(s.usedMemory-rep.RedisLiveCalls.UsedMemoryBefore) / float64(len(ids))
	}
	return nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	if i < 0 {
		i = 0
	}
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

func statsOf(name string, lats []time.Duration) KindStats {
	sort.Slice(lats, func(i, j int) bool { return lats[i] < lats[j] })
	ms := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
	s := KindStats{Name: name, Count: len(lats)}
	if len(lats) > 0 {
		s.P50, s.P90, s.P99, s.P999, s.Max = ms(percentile(lats, 50)), ms(percentile(lats, 90)), ms(percentile(lats, 99)), ms(percentile(lats, 99.9)), ms(lats[len(lats)-1])
	}
	return s
}

func (r *Report) fill(res runResult) {
	var per [numKinds][]time.Duration
	var all, lags []time.Duration
	r.Statuses = map[string]int{}
	for _, w := range res.workers {
		for _, s := range w.samples {
			per[s.kind] = append(per[s.kind], s.lat)
			all = append(all, s.lat)
		}
		lags = append(lags, w.lags...)
		for st, n := range w.statuses {
			r.Statuses[strconv.Itoa(st)] += n
		}
		r.Errors += w.errors
		if w.firstErr != nil && r.FirstError == "" {
			r.FirstError = w.firstErr.Error()
		}
	}
	r.WindowSeconds = res.window.Seconds()
	r.Requests = len(all) + r.Errors
	if r.WindowSeconds > 0 {
		r.Throughput = float64(len(all)) / r.WindowSeconds
	}
	r.PoolExhausted = res.exhausted
	r.SchedulerLagMs = float64(res.behindByEnd.Microseconds()) / 1000
	for k := range per {
		if len(per[k]) > 0 {
			r.Kinds = append(r.Kinds, statsOf(kindNames[k], per[k]))
		}
	}
	r.All = statsOf("all", all)
	if len(lags) > 0 {
		l := statsOf("send lag", lags)
		r.SendLag = &l
	}
	r.Client.CPUSeconds = res.clientCPU.Seconds()
	if r.Requests > 0 {
		r.Client.CPUPerRequestUS = float64(res.clientCPU.Microseconds()) / float64(r.Requests)
	}
	if rs := res.redis; rs != nil {
		if r.Requests > 0 {
			rs.CPUPerRequestUS = rs.CPUSeconds * 1e6 / float64(r.Requests)
			rs.MemoryPerRequestBytes = float64(rs.UsedMemoryAfter-rs.UsedMemoryBefore) / float64(r.Requests)
		}
		r.Redis = rs
	}
	if res.serverPID > 0 {
		r.Server.PID = res.serverPID
		if res.serverCPUErr != nil {
			r.Server.Error = res.serverCPUErr.Error()
		}
		r.Server.CPUSeconds = res.serverCPU.Seconds()
		if r.Requests > 0 {
			r.Server.CPUPerRequestUS = float64(res.serverCPU.Microseconds()) / float64(r.Requests)
		}
	}
}
