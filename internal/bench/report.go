package bench

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

// Report is the outcome of one run. Latencies are in milliseconds.
type Report struct {
	Name            string    `json:"name,omitempty"`
	MedianOf        int       `json:"median_of,omitempty"`
	URL             string    `json:"url"`
	Mode            string    `json:"mode"`
	Mix             string    `json:"mix"`
	ToolStyle       string    `json:"tool_style,omitempty"`
	Concurrency     int       `json:"concurrency"`
	Rate            int       `json:"rate,omitempty"`
	Calls           int       `json:"calls"`
	LiveCalls       int       `json:"live_calls,omitempty"`
	Prebuilt        int       `json:"prebuilt_requests"`
	PrebuildSeconds float64   `json:"prebuild_seconds"`
	WindowSeconds   float64   `json:"window_seconds"`
	Requests        int       `json:"requests"`
	Throughput      float64   `json:"throughput_rps"`
	PoolExhausted   bool      `json:"pool_exhausted,omitempty"`
	SchedulerLagMs  float64   `json:"scheduler_max_lag_ms,omitempty"`
	All             KindStats `json:"all"`
	// SendLag (open loop) is how late the generator itself sent each request
	// after its scheduled time; it is included in every latency above.
	SendLag    *KindStats     `json:"send_lag,omitempty"`
	Kinds      []KindStats    `json:"by_type"`
	Statuses   map[string]int `json:"statuses"`
	Errors     int            `json:"errors"`
	FirstError string         `json:"first_error,omitempty"`
	Server     ServerStats    `json:"server"`
	Client     ClientStats    `json:"client"`
	// Redis is the shared Redis's cost over the window (Options.RedisURL).
	Redis *RedisStats `json:"redis,omitempty"`
	// RedisLiveCalls is its memory around the opening of the live calls.
	RedisLiveCalls *RedisLiveCalls `json:"redis_live_calls,omitempty"`
}

// KindStats are the latency percentiles of one message type.
type KindStats struct {
	Name  string  `json:"type"`
	Count int     `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
}

// ServerStats are read from /proc for the server's PID.
type ServerStats struct {
	PID int `json:"pid,omitempty"`
	// PIDs are all the replicas measured (several targets): CPU and
	// memory are their sums.
	PIDs               []int   `json:"pids,omitempty"`
	CPUSeconds         float64 `json:"cpu_seconds,omitempty"`
	CPUPerRequestUS    float64 `json:"cpu_per_request_us,omitempty"`
	RSSBytes           int64   `json:"rss_bytes,omitempty"`
	PeakRSSBytes       int64   `json:"peak_rss_bytes,omitempty"`
	RSSBeforeLiveCalls int64   `json:"rss_before_live_calls_bytes,omitempty"`
	RSSWithLiveCalls   int64   `json:"rss_with_live_calls_bytes,omitempty"`
	Error              string  `json:"error,omitempty"`
}

// ClientStats are the generator's own costs.
type ClientStats struct {
	CPUSeconds      float64 `json:"cpu_seconds"`
	CPUPerRequestUS float64 `json:"cpu_per_request_us"`
}

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }

// WriteText prints a human-readable report.
func (r *Report) WriteText(w io.Writer) {
	name := r.Name
	if name == "" {
		name = r.URL
	}
	load := fmt.Sprintf("closed loop, %d senders", r.Concurrency)
	if r.Mode == "open" {
		load = fmt.Sprintf("open loop at %d req/s over %d connections", r.Rate, r.Concurrency)
	}
	fmt.Fprintf(w, "== %s: %s, mix %s, %d concurrent calls", name, load, r.Mix, r.Calls)
	if r.MedianOf > 1 {
		fmt.Fprintf(w, " — median run of %d", r.MedianOf)
	}
	if r.LiveCalls > 0 {
		fmt.Fprintf(w, " (%d live)", r.LiveCalls)
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "window %.1fs  requests %d  throughput %.0f req/s  errors %d", r.WindowSeconds, r.Requests, r.Throughput, r.Errors)
	if r.FirstError != "" {
		fmt.Fprintf(w, " (first: %s)", r.FirstError)
	}
	fmt.Fprintln(w)
	var st []string
	for k, v := range r.Statuses {
		st = append(st, fmt.Sprintf("%s×%d", k, v))
	}
	sort.Strings(st)
	fmt.Fprintf(w, "statuses %s\n", strings.Join(st, " "))
	if r.PoolExhausted {
		fmt.Fprintln(w, "note: the pre-built pool ran out before the window ended; the window is what was measured")
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "type\tcount\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\t\n")
	for _, k := range append(r.Kinds, r.All) {
		fmt.Fprintf(tw, "%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t\n", k.Name, k.Count, k.P50, k.P90, k.P99, k.P999, k.Max)
	}
	tw.Flush()
	if l := r.SendLag; l != nil {
		fmt.Fprintf(w, "generator send lag (included above): p50 %.3f ms, p99 %.3f ms, max %.3f ms\n", l.P50, l.P99, l.Max)
	}
	if s := r.Server; s.PID > 0 {
		if len(s.PIDs) > 1 {
			fmt.Fprintf(w, "%d replicas (pids %v), summed: ", len(s.PIDs), s.PIDs)
		}
		fmt.Fprintf(w, "server pid %d: CPU %.2fs = %.1f µs/request; RSS %s, peak %s", s.PID, s.CPUSeconds, s.CPUPerRequestUS, mb(s.RSSBytes), mb(s.PeakRSSBytes))
		if r.LiveCalls > 0 {
			fmt.Fprintf(w, "; live calls: %s before, %s with %d calls (%.2f KB/call)", mb(s.RSSBeforeLiveCalls), mb(s.RSSWithLiveCalls), r.LiveCalls,
				float64(s.RSSWithLiveCalls-s.RSSBeforeLiveCalls)/1e3/float64(r.LiveCalls))
		}
		if s.Error != "" {
			fmt.Fprintf(w, " (%s)", s.Error)
		}
		fmt.Fprintln(w)
	}
	if rs := r.Redis; rs != nil {
		fmt.Fprintf(w, "redis: CPU %.2fs = %.1f µs/request; used_memory %s → %s (%+.0f bytes/request)", rs.CPUSeconds, rs.CPUPerRequestUS,
			mb(rs.UsedMemoryBefore), mb(rs.UsedMemoryAfter), rs.MemoryPerRequestBytes)
		if rs.Error != "" {
			fmt.Fprintf(w, " (%s)", rs.Error)
		}
		fmt.Fprintln(w)
	}
	if l := r.RedisLiveCalls; l != nil {
		fmt.Fprintf(w, "redis live calls: used_memory %s before, %s with %d calls (%.0f bytes/call)\n", mb(l.UsedMemoryBefore), mb(l.UsedMemoryWith), r.LiveCalls, l.PerCallBytes)
	}
	fmt.Fprintf(w, "generator: CPU %.2fs = %.1f µs/request; %d requests pre-built and signed in %.2fs\n", r.Client.CPUSeconds, r.Client.CPUPerRequestUS, r.Prebuilt, r.PrebuildSeconds)
}

// Comparison is a side-by-side of the same scenario against two servers.
type Comparison struct {
	A, B   *Report
	Ratios map[string]float64 `json:"ratios"`
}

// Compare computes B/A ratios (how many times better A is).
func Compare(a, b *Report) Comparison {
	c := Comparison{A: a, B: b, Ratios: map[string]float64{}}
	div := func(x, y float64) float64 {
		if y == 0 {
			return 0
		}
		return x / y
	}
	c.Ratios["server_cpu_per_request"] = div(b.Server.CPUPerRequestUS, a.Server.CPUPerRequestUS)
	c.Ratios["throughput"] = div(a.Throughput, b.Throughput)
	c.Ratios["p99"] = div(b.All.P99, a.All.P99)
	c.Ratios["p50"] = div(b.All.P50, a.All.P50)
	return c
}

// WriteText prints the comparison table, worded from the first server's
// side whichever way each ratio goes.
func (c Comparison) WriteText(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "\t%s\t%s\t%s vs %s\t\n", c.A.Name, c.B.Name, c.A.Name, c.B.Name)
	fmt.Fprintf(tw, "server CPU µs/request\t%.1f\t%.1f\t%s\t\n", c.A.Server.CPUPerRequestUS, c.B.Server.CPUPerRequestUS, times(c.Ratios["server_cpu_per_request"], "less", "more"))
	fmt.Fprintf(tw, "throughput req/s\t%.0f\t%.0f\t%s\t\n", c.A.Throughput, c.B.Throughput, times(c.Ratios["throughput"], "more", "less"))
	fmt.Fprintf(tw, "p50 ms\t%.3f\t%.3f\t%s\t\n", c.A.All.P50, c.B.All.P50, times(c.Ratios["p50"], "lower", "higher"))
	fmt.Fprintf(tw, "p99 ms\t%.3f\t%.3f\t%s\t\n", c.A.All.P99, c.B.All.P99, times(c.Ratios["p99"], "lower", "higher"))
	fmt.Fprintf(tw, "peak RSS\t%s\t%s\t\t\n", mb(c.A.Server.PeakRSSBytes), mb(c.B.Server.PeakRSSBytes))
	tw.Flush()
}

// times words a ratio r (how many times better the first server is):
// "3.0× less" when r ≥ 1, "1.4× more" (1/r) when it is worse.
func times(r float64, better, worse string) string {
	switch {
	case r == 0:
		return "n/a"
	case r >= 1:
		return fmt.Sprintf("%.1f× %s", r, better)
	default:
		return fmt.Sprintf("%.1f× %s", 1/r, worse)
	}
}

// WriteSummary prints one line for a run.
func (r *Report) WriteSummary(w io.Writer) {
	fmt.Fprintf(w, "run %-14s %7.0f req/s  p50 %.3f  p99 %.3f  p99.9 %.3f ms  server %.1f µs/req", r.Name, r.Throughput, r.All.P50, r.All.P99, r.All.P999, r.Server.CPUPerRequestUS)
	if r.Redis != nil {
		fmt.Fprintf(w, "  redis %.1f µs/req", r.Redis.CPUPerRequestUS)
	}
	fmt.Fprintf(w, "  errors %d\n", r.Errors)
}

// Median returns the run whose server CPU per request is the median (or,
// without a PID, whose throughput is), labelled with how many runs it is
// the median of. Picking a whole run keeps its figures consistent with
// each other.
func Median(runs []*Report) *Report {
	if len(runs) == 1 {
		return runs[0]
	}
	s := append([]*Report(nil), runs...)
	sort.Slice(s, func(i, j int) bool {
		if s[i].Server.PID > 0 {
			return s[i].Server.CPUPerRequestUS < s[j].Server.CPUPerRequestUS
		}
		return s[i].Throughput < s[j].Throughput
	})
	m := *s[len(s)/2]
	m.MedianOf = len(runs)
	return &m
}
