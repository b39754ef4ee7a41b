// Package benchcmd is the voicegate-bench command line: the load generator
// and its helpers (a stand-in internal API, the bare baseline handler, the
// header-only flood), kept out of the product binary.
package benchcmd

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/bench"
	"github.com/voicegate/voicegate/internal/cli/clikit"
)

const benchUsage = `voicegate-bench — voicegate's load generator and benchmark helpers (loopback only)

Usage:
  voicegate-bench --url URL [--target URL]... [--mode closed|open] [--mix realistic|partials|tools|status] [auth flags | --config FILE]
  voicegate-bench --url SERVER --mix twilio --config FILE [--twilio-number N] [--mode closed|open]
  voicegate-bench api [--listen ADDR] [--delay D]
  voicegate-bench bare [--listen ADDR] --secret S
  voicegate-bench flood --url URL --server-pid PID [--conns N] [--announce BYTES] [--hold D]

Run "voicegate-bench [COMMAND] -h" for the flags.
`

// Main is the voicegate-bench command line (a binary of its own, so the
// load generator is not part of the product binary); it returns the exit
// code.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) < 2 {
		fmt.Fprint(stderr, benchUsage)
		return clikit.ExitCode("voicegate-bench", &clikit.UsageError{Msg: "no arguments given"}, stderr)
	}
	if a := args[1]; a == "help" || a == "--help" || a == "-h" {
		fmt.Fprint(stdout, benchUsage)
		return 0
	}
	return clikit.ExitCode("voicegate-bench", runBench(ctx, args[1:], getenv, stdout, stderr), stderr)
}

func benchFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(strings.TrimSpace("voicegate-bench "+name), flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func runBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "api" {
		return runBenchAPI(ctx, args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "bare" {
		return runBenchBare(ctx, args[1:], getenv, stdout, stderr)
	}
	if len(args) > 0 && args[0] == "flood" {
		return runBenchFlood(ctx, args[1:], stdout, stderr)
	}
	fs := benchFlagSet("", stderr)
	url := fs.String("url", "", "webhook URL of the server under test (required; loopback); with --mix twilio the server's address, such as http://127.0.0.1:3100")
	name := fs.String("name", "voicegate", "label of the server under test")
	var pids []int
	fs.Func("server-pid", "PID of the server, to report its CPU time per request and memory (repeatable: one per replica, summed)", func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("want a process id, got %q", v)
		}
		pids = append(pids, n)
		return nil
	})
	var replicas []string
	fs.Func("target", "another replica of the server under test, http://HOST:PORT[/same path as --url] (repeatable; loopback): the connections are spread round-robin over --url and every --target", func(v string) error {
		replicas = append(replicas, v)
		return nil
	})
	redisURL := fs.String("redis-url", "", "the Redis the replicas share (redis://HOST:PORT/DB, loopback): its CPU per request (INFO CPU) and memory (INFO MEMORY) are reported apart")
	mode := fs.String("mode", "closed", "closed (maximum throughput) or open (fixed arrival rate)")
	conc := fs.Int("concurrency", 32, "closed: concurrent senders; open: connections")
	rate := fs.Int("rate", 2000, "open loop: requests per second")
	dur := fs.Duration("duration", 20*time.Second, "measured window")
	warm := fs.Duration("warmup", 5*time.Second, "warm-up before the window")
	mix := fs.String("mix", "realistic", "event mix: "+strings.Join(bench.Mixes, ", "))
	calls := fs.Int("calls", 0, "concurrent simulated calls whose events interleave (default: --concurrency)")
	live := fs.Int("live-calls", 0, "open this many calls first and keep them all live (memory scale test)")
	toolName := fs.String("tool", "getAppointment", "tool name in tool calls")
	toolStyle := fs.String("tool-style", "tool-calls", "tool-calls, or function-call (legacy, for the Node/Express reference)")
	maxReq := fs.Int("max-requests", 400_000, "closed loop: size of the pre-built pool of signed requests")
	timeout := fs.Duration("timeout", 10*time.Second, "per-request timeout")
	toolAPI := fs.String("tool-api", "", "also serve the internal tool API on this loopback address during the run")
	toolDelay := fs.Duration("tool-delay", 0, "with --tool-api: how long the internal API takes to answer")
	cmpURL := fs.String("compare-url", "", "run the same scenario against this second server and report ratios")
	cmpName := fs.String("compare-name", "node-express", "label of the second server")
	cmpPID := fs.Int("compare-pid", 0, "PID of the second server")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	jsonOut := fs.String("json-out", "", "also write the JSON report to this file")
	seed := fs.Uint64("seed", 1, "seed of the workload's random choices")
	repeat := fs.Int("repeat", 1, "run the scenario this many times and report medians (the machine is shared and noisy)")
	twNumber := fs.String("twilio-number", "", "--mix twilio: the number called (default: the first of twilio.numbers)")
	af := clikit.RegisterAuthFlags(fs)
	if err := clikit.ParseFlags(fs, args); err != nil {
		return err
	}
	if *url == "" {
		return &clikit.UsageError{Msg: "voicegate-bench needs --url"}
	}
	if !slices.Contains(bench.Mixes, *mix) {
		return &clikit.UsageError{Msg: fmt.Sprintf("unknown mix %q (known: %s)", *mix, strings.Join(bench.Mixes, ", "))}
	}
	if *toolStyle != "tool-calls" && *toolStyle != "function-call" {
		return &clikit.UsageError{Msg: "--tool-style is tool-calls or function-call"}
	}
	hosts, err := replicaHosts(*url, replicas)
	if err != nil {
		return err
	}
	if len(pids) > 1 && len(pids) > len(hosts) {
		return &clikit.UsageError{Msg: fmt.Sprintf("%d --server-pid for %d replicas (--url and each --target)", len(pids), len(hosts))}
	}
	pid := 0
	if len(pids) > 0 {
		pid = pids[0]
	}
	loadTargets := []string{*url, *cmpURL}
	if *toolAPI != "" {
		loadTargets = append(loadTargets, "http://"+*toolAPI+"/")
	}
	for _, u := range loadTargets {
		if u == "" {
			continue
		}
		if err := loopbackOnly(u); err != nil {
			return &clikit.UsageError{Msg: err.Error()}
		}
	}
	var (
		signer *auth.Signer
		tw     *bench.TwilioTarget
	)
	if *mix == "twilio" {
		if tw, err = twilioTarget(*url, *cmpURL, af.ConfigPath(), *twNumber, *live, getenv); err != nil {
			return err
		}
	} else {
		if *twNumber != "" {
			return &clikit.UsageError{Msg: "--twilio-number is for --mix twilio"}
		}
		a, _, err := af.Resolve(getenv)
		if err != nil {
			if ue, ok := err.(*clikit.UsageError); ok {
				return &clikit.UsageError{Msg: "bench " + ue.Msg}
			}
			return err
		}
		if signer, err = auth.NewSigner(a, time.Now()); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *toolAPI != "" {
		ln, err := net.Listen("tcp", *toolAPI)
		if err != nil {
			return fmt.Errorf("tool API: %w", err)
		}
		srv := &http.Server{Handler: bench.APIHandler(*toolDelay), ReadHeaderTimeout: 5 * time.Second}
		var serving sync.WaitGroup
		serving.Go(func() { srv.Serve(ln) })
		defer func() { srv.Close(); serving.Wait() }()
	}
	opts := bench.Options{Name: *name, URL: *url, Signer: signer, Twilio: tw, Mode: *mode, Concurrency: *conc, Rate: *rate,
		Duration: *dur, Warmup: *warm, LiveCalls: *live, MaxRequests: *maxReq, ServerPID: pid, Timeout: *timeout, Seed: *seed,
		Workload: bench.Workload{Mix: *mix, Calls: *calls, ToolStyle: *toolStyle, ToolName: *toolName},
		Targets:  hosts[1:], RedisURL: *redisURL}
	if len(pids) > 1 {
		opts.ServerPIDs = pids[1:]
	}
	if !*asJSON {
		opts.Progress = func(s string) { fmt.Fprintf(stderr, "bench %s: %s\n", opts.Name, s) }
	}
	if *repeat < 1 {
		return &clikit.UsageError{Msg: "--repeat must be at least 1"}
	}
	targets := []bench.Options{opts}
	if *cmpURL != "" {
		o2 := opts
		o2.Name, o2.URL, o2.ServerPID = *cmpName, *cmpURL, *cmpPID
		o2.Targets, o2.ServerPIDs, o2.RedisURL = nil, nil, "" // the second server is one process
		if !*asJSON {
			o2.Progress = func(s string) { fmt.Fprintf(stderr, "bench %s: %s\n", o2.Name, s) }
		}
		targets = append(targets, o2)
	}
	out := struct {
		Runs       []*bench.Report   `json:"runs"`
		Medians    []*bench.Report   `json:"medians"`
		Comparison *bench.Comparison `json:"comparison,omitempty"`
	}{}
	failed := 0
	// Repetitions alternate between targets, so that a noisy spell on the
	// shared machine hits both rather than one, and the order within a
	// pair alternates too (A B, B A, ...): whichever runs first in a pair
	// measured several percent more (BENCHMARKS.md).
	runs := make([][]*bench.Report, len(targets))
	for i := 0; i < *repeat; i++ {
		order := make([]int, len(targets))
		for t := range order {
			order[t] = t
			if i%2 == 1 {
				order[t] = len(targets) - 1 - t
			}
		}
		for _, t := range order {
			o := targets[t]
			rep, err := bench.Run(ctx, o)
			if err != nil {
				return fmt.Errorf("%s: %w", o.Name, err)
			}
			failed += rep.Errors
			runs[t] = append(runs[t], rep)
			out.Runs = append(out.Runs, rep)
		}
	}
	for t := range targets {
		out.Medians = append(out.Medians, bench.Median(runs[t]))
	}
	if len(out.Medians) == 2 {
		c := bench.Compare(out.Medians[0], out.Medians[1])
		out.Comparison = &c
	}
	if *jsonOut != "" {
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", *jsonOut, err)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		if *repeat > 1 {
			for _, r := range out.Runs {
				r.WriteSummary(stdout)
			}
			fmt.Fprintln(stdout)
		}
		for _, r := range out.Medians {
			r.WriteText(stdout)
			fmt.Fprintln(stdout)
		}
		if out.Comparison != nil {
			out.Comparison.WriteText(stdout)
		}
	}
	if failed > 0 {
		return fmt.Errorf("%d requests failed", failed)
	}
	return nil
}

// twilioTarget is the Twilio door --mix twilio loads, from the config's
// twilio section: the URLs given are the servers' addresses, to which its
// paths are appended; requests are signed for its public_base_url.
func twilioTarget(url, cmpURL, cfgPath, number string, live int, getenv func(string) string) (*bench.TwilioTarget, error) {
	if cfgPath == "" {
		return nil, &clikit.UsageError{Msg: "--mix twilio needs --config FILE: its twilio section gives the paths, public_base_url, the auth token and the number"}
	}
	if live > 0 {
		return nil, &clikit.UsageError{Msg: "--live-calls is for Vapi's mixes"}
	}
	for _, u := range []string{url, cmpURL} {
		if rest := strings.TrimPrefix(u, "http://"); strings.Trim(rest[strings.IndexByte(rest+"/", '/'):], "/") != "" {
			return nil, &clikit.UsageError{Msg: fmt.Sprintf("--mix twilio: %q must be the server's address, such as http://127.0.0.1:3100 (the paths come from the twilio section)", u)}
		}
	}
	t, err := clikit.LoadTwilio(cfgPath, number, getenv, time.Now())
	if err != nil {
		return nil, err
	}
	return &bench.TwilioTarget{PublicBaseURL: t.Config.PublicBaseURL, VoicePath: t.Config.VoicePath, StatusPath: t.Config.StatusPath,
		Token: t.Token, Number: t.Number}, nil
}

// replicaHosts returns the host:port of --url and of each --target, which
// must be on this machine and serve the same path (the pre-built requests
// are the same for all).
func replicaHosts(url string, targets []string) ([]string, error) {
	path := func(u string) string {
		rest := strings.TrimPrefix(u, "http://")
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			return strings.TrimRight(rest[i:], "/")
		}
		return ""
	}
	host := func(u string) string {
		rest := strings.TrimPrefix(u, "http://")
		return strings.SplitN(rest, "/", 2)[0]
	}
	hosts := []string{host(url)}
	for _, t := range targets {
		if !strings.HasPrefix(t, "http://") {
			return nil, &clikit.UsageError{Msg: fmt.Sprintf("--target %q: want http://HOST:PORT", t)}
		}
		if err := loopbackOnly(t); err != nil {
			return nil, &clikit.UsageError{Msg: "--target " + err.Error()}
		}
		if p := path(t); p != "" && p != path(url) {
			return nil, &clikit.UsageError{Msg: fmt.Sprintf("--target %q: its path must be --url's (%q) or none", t, path(url))}
		}
		hosts = append(hosts, host(t))
	}
	return hosts, nil
}

// loopbackOnly refuses targets off this machine: benchmarks load only
// loopback addresses.
func loopbackOnly(u string) error {
	rest := strings.TrimPrefix(strings.TrimPrefix(u, "http://"), "https://")
	host, _, err := net.SplitHostPort(strings.SplitN(rest, "/", 2)[0])
	if err != nil {
		return fmt.Errorf("%q: want http://HOST:PORT/path", u)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%q is not a loopback address: bench only loads servers on this machine", u)
	}
	return nil
}

// runBenchFlood measures the server's memory under header-only connections
// that announce a large body (the pre-authentication memory attack).
func runBenchFlood(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := benchFlagSet("flood", stderr)
	url := fs.String("url", "", "webhook URL of the server under test (required; loopback); with --mix twilio the server's address, such as http://127.0.0.1:3100")
	pid := fs.Int("server-pid", 0, "PID of the server, to sample its resident memory")
	conns := fs.Int("conns", 3000, "connections held at once (at most 20000)")
	announce := fs.Int64("announce", 1<<20, "Content-Length each connection announces")
	hold := fs.Duration("hold", 5*time.Second, "how long the connections are held (at most 1m)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := clikit.ParseFlags(fs, args); err != nil {
		return err
	}
	if *url == "" {
		return &clikit.UsageError{Msg: "voicegate-bench flood needs --url"}
	}
	if err := loopbackOnly(*url); err != nil {
		return &clikit.UsageError{Msg: err.Error()}
	}
	if *conns < 1 || *conns > 20000 || *hold <= 0 || *hold > time.Minute {
		return &clikit.UsageError{Msg: "--conns must be 1..20000 and --hold at most 1m"}
	}
	r, err := bench.Flood(ctx, bench.FloodOptions{URL: *url, Conns: *conns, Announce: *announce, Hold: *hold, ServerPID: *pid})
	if err != nil {
		return err
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(r)
	}
	fmt.Fprintf(stdout, "header-only flood: %d connections announcing %.0f MiB in all, held %s\n", r.Opened, r.AnnouncedMB, *hold)
	if *pid != 0 {
		fmt.Fprintf(stdout, "server RSS: idle %.1f MB, peak %.1f MB, growth %.1f MB\n", r.IdleRSSMB, r.PeakRSSMB, r.GrowthMB)
	}
	fmt.Fprintf(stdout, "server answered /healthz afterwards: %v\n", r.AnsweredLive)
	return nil
}

func runBenchAPI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := benchFlagSet("api", stderr)
	listen := fs.String("listen", "127.0.0.1:9090", "loopback address to serve the internal tool API on")
	delay := fs.Duration("delay", 0, "how long each answer takes")
	if err := clikit.ParseFlags(fs, args); err != nil {
		return err
	}
	return serveLoopback(ctx, *listen, bench.APIHandler(*delay), stdout, fmt.Sprintf("internal tool API (answers after %s)", *delay))
}

func runBenchBare(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := benchFlagSet("bare", stderr)
	listen := fs.String("listen", "127.0.0.1:3200", "loopback address to serve the bare baseline handler on")
	secret := fs.String("secret", "", "HMAC secret (default: $VOICEGATE_SECRET)")
	if err := clikit.ParseFlags(fs, args); err != nil {
		return err
	}
	s := *secret
	if s == "" {
		s = getenv("VOICEGATE_SECRET")
	}
	if s == "" {
		return &clikit.UsageError{Msg: "voicegate-bench bare needs --secret (or VOICEGATE_SECRET)"}
	}
	return serveLoopback(ctx, *listen, bench.BareHandler(s), stdout, "bare baseline handler (read body, check HMAC, decode envelope)")
}

// serveLoopback serves h on a loopback address until SIGINT or SIGTERM.
func serveLoopback(ctx context.Context, addr string, h http.Handler, stdout io.Writer, what string) error {
	if err := loopbackOnly("http://" + addr + "/"); err != nil {
		return &clikit.UsageError{Msg: err.Error()}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	fmt.Fprintf(stdout, "%s on http://%s/\n", what, ln.Addr())
	go func() { <-ctx.Done(); srv.Close() }()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
