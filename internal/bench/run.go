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
	rep := &Report{Name: o.Name, URL: o.URL, Mode: o.Mode, Mix: o.Workload.Mix, Concurrency: o.Concurrency, Rate: o.Rate,
		Calls: o.Workload.Calls, LiveCalls: o.LiveCalls, ToolStyle: o.Workload.ToolStyle}

	var callIDs []string
	if o.LiveCalls > 0 {
		callIDs = make([]string, o.LiveCalls)
		for i := range callIDs {
			callIDs[i] = fmt.Sprintf("%s-live-%07d", o.Workload.CallPrefix, i)
		}
		if err := openLiveCalls(ctx, o, b, callIDs, rep, progress); err != nil {
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
		res = runClosed(ctx, o, u.Host, pool, progress)
	case "open":
		if o.Rate <= 0 {
			return nil, errors.New("open loop needs --rate > 0")
		}
		res = runOpen(ctx, o, u.Host, pool, progress)
	default:
		return nil, fmt.Errorf("unknown mode %q (closed or open)", o.Mode)
	}
	rep.fill(res)
	if o.ServerPID > 0 {
		rss, peak, err := procMem(o.ServerPID)
		if err != nil {
			return nil, err
		}
		rep.Server.RSSBytes, rep.Server.PeakRSSBytes = rss, peak
	}
	return rep, nil
}

type runResult struct {
	workers      []*worker
	window       time.Duration
	serverCPU    time.Duration
	clientCPU    time.Duration
	serverPID    int
	exhausted    bool
	behindByEnd  time.Duration
	serverCPUErr error
}

// measure snapshots CPU around the measured window.
type measure struct {
	pid             int
	t0              time.Time
	s0, c0          time.Duration
	err             error
	window, sc, ccp time.Duration
}

func (m *measure) start() {
	m.t0 = time.Now()
	m.c0 = selfCPU()
	if m.pid > 0 {
		m.s0, m.err = procCPU(m.pid)
	}
}

func (m *measure) stop() {
	m.window = time.Since(m.t0)
	m.ccp = selfCPU() - m.c0
	if m.pid > 0 && m.err == nil {
		s1, err := procCPU(m.pid)
		m.sc, m.err = s1-m.s0, err
	}
}

// spawn starts one sender per worker, each with its own keep-alive
// connection, and returns a function that waits for all of them.
func spawn(ws []*worker, host string, timeout time.Duration, send func(w *worker, c *conn)) (wait func()) {
	var wg sync.WaitGroup
	for _, w := range ws {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newConn(host, timeout)
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
func runClosed(ctx context.Context, o Options, host string, pool []request, progress func(string)) runResult {
	var next atomic.Int64
	var phase atomic.Int32 // 0 warm-up, 1 measure, 2 stop
	ws := newWorkers(o.Concurrency)
	wait := spawn(ws, host, o.Timeout, func(w *worker, c *conn) {
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
	m := &measure{pid: o.ServerPID}
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
	return runResult{workers: ws, window: m.window, serverCPU: m.sc, clientCPU: m.ccp, serverPID: o.ServerPID, exhausted: exhausted, serverCPUErr: m.err}
}

type job struct {
	idx      int
	intended time.Time
	measured bool
}

// runOpen: requests are released on a fixed schedule whatever the server
// does; latency runs from the scheduled time, so queueing behind a slow
// answer is counted.
func runOpen(ctx context.Context, o Options, host string, pool []request, progress func(string)) runResult {
	interval := time.Second / time.Duration(o.Rate)
	jobs := make(chan job, len(pool))
	ws := newWorkers(o.Concurrency)
	wait := spawn(ws, host, o.Timeout, func(w *worker, c *conn) {
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
	m := &measure{pid: o.ServerPID}
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
	return runResult{workers: ws, window: m.window, serverCPU: m.sc, clientCPU: m.ccp, serverPID: o.ServerPID, behindByEnd: behind, serverCPUErr: m.err}
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

// openLiveCalls creates the live calls and records the server's memory
// before and after.
func openLiveCalls(ctx context.Context, o Options, b *builder, ids []string, rep *Report, progress func(string)) error {
	if o.ServerPID > 0 {
		rss, _, err := procMem(o.ServerPID)
		if err != nil {
			return err
		}
		rep.Server.RSSBeforeLiveCalls = rss
	}
	progress(fmt.Sprintf("opening %d live calls", len(ids)))
	reqs := make([]request, len(ids))
	for i, id := range ids {
		reqs[i] = b.status(&callState{id: id}, "in-progress")
	}
	var next atomic.Int64
	var failed atomic.Int64
	var firstErr atomic.Value
	spawn(newWorkers(o.Concurrency), b.host, o.Timeout, func(_ *worker, c *conn) {
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
	if o.ServerPID > 0 {
		rss, _, err := procMem(o.ServerPID)
		if err != nil {
			return err
		}
		rep.Server.RSSWithLiveCalls = rss
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
