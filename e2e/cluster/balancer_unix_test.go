//go:build unix

package cluster_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Headers the balancer adds to its answers for the driver.
const (
	hdrReplica = "X-Cluster-Replica" // the replica that answered
	hdrFailure = "X-Cluster-Failure" // on a 502: "in-flight-killed" or "unexpected"
)

// balancer spreads requests over the replicas round robin, as a load
// balancer with health checks and retries would: only replicas whose
// /readyz answers 200 get requests (all of them when none does); a
// request that never reached a live process (connection refused, or sent
// to an incarnation already dead) is retried on the next replica. A
// request that was in flight on a replica killed with SIGKILL fails with
// 502 (the sender retries it, as Vapi would); any other failure too, and
// is counted as unexpected.
type balancer struct {
	replicas []*replica
	tr       *http.Transport
	next     atomic.Uint64
	ready    []atomic.Bool
	awaiting []atomic.Int64 // requests sent and not yet answered, per replica
	// awaitingTools are the tool call ids of the tool-calls messages
	// among awaiting, per replica.
	awaitingTools []map[string]int

	retries        atomic.Int64 // attempts moved to another replica
	inFlightKilled atomic.Int64
	mu             sync.Mutex
	unexpected     []string

	stop chan struct{}
	wg   sync.WaitGroup // the readiness poller
}

func newBalancer(replicas []*replica) *balancer {
	n := len(replicas)
	b := &balancer{replicas: replicas, ready: make([]atomic.Bool, n), awaiting: make([]atomic.Int64, n), awaitingTools: make([]map[string]int, n), stop: make(chan struct{}),
		tr: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second, ResponseHeaderTimeout: 30 * time.Second,
			DialContext: (&net.Dialer{Timeout: 2 * time.Second}).DialContext}}
	for i := range b.ready {
		b.ready[i].Store(true)
		b.awaitingTools[i] = map[string]int{}
	}
	b.wg.Add(1)
	go b.poll()
	return b
}

// poll checks every replica's /readyz every 100 ms until Close.
func (b *balancer) poll() {
	defer b.wg.Done()
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		for i, r := range b.replicas {
			ok := false
			if resp, err := c.Get("http://" + r.addr() + "/readyz"); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				ok = resp.StatusCode == http.StatusOK
			}
			b.ready[i].Store(ok)
		}
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
	}
}

// Close stops the poller and waits for it.
func (b *balancer) Close() {
	close(b.stop)
	b.wg.Wait()
	b.tr.CloseIdleConnections()
}

// pick returns the next replica round robin among the ready ones.
func (b *balancer) pick() int {
	n := uint64(len(b.replicas))
	for range n {
		i := int(b.next.Add(1) % n)
		if b.ready[i].Load() {
			return i
		}
	}
	return int(b.next.Add(1) % n)
}

// handler is the balancer's front: an httputil.ReverseProxy over it.
func (b *balancer) handler() http.Handler {
	return &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.Out.URL.Scheme, pr.Out.URL.Host = "http", "replicas" },
		Transport: b,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			var f *lbFailure
			if errors.As(err, &f) {
				w.Header().Set(hdrFailure, f.kind)
				w.Header().Set(hdrReplica, strconv.Itoa(f.replica))
			} else {
				w.Header().Set(hdrFailure, "unexpected")
			}
			w.WriteHeader(http.StatusBadGateway)
		},
	}
}

type lbFailure struct {
	kind    string
	replica int
	err     error
}

func (f *lbFailure) Error() string {
	return fmt.Sprintf("replica %d: %s: %v", f.replica, f.kind, f.err)
}

// RoundTrip implements http.RoundTripper.
func (b *balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	tool := ""
	if m := toolCallIDRe.FindSubmatch(body); m != nil && bytes.Contains(body, []byte(`"type":"tool-calls"`)) {
		tool = string(m[1])
	}
	deadline := time.Now().Add(20 * time.Second)
	var last error
	for attempt := 0; attempt < 30 && time.Now().Before(deadline); attempt++ {
		i := b.pick()
		r := b.replicas[i]
		gen := r.incarnation()
		out := req.Clone(req.Context())
		out.URL.Host, out.Host = r.addr(), r.addr()
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.ContentLength = int64(len(body))
		sent := time.Now()
		b.awaiting[i].Add(1)
		b.toolAwaiting(i, tool, 1)
		resp, err := b.tr.RoundTrip(out)
		b.awaiting[i].Add(-1)
		b.toolAwaiting(i, tool, -1)
		if err == nil {
			resp.Header.Set(hdrReplica, strconv.Itoa(i))
			return resp, nil
		}
		last = err
		switch {
		case req.Context().Err() != nil:
			return nil, err
		case r.killedIn(gen, sent):
			b.inFlightKilled.Add(1)
			return nil, &lbFailure{kind: "in-flight-killed", replica: i, err: err}
		case errors.Is(err, syscall.ECONNREFUSED) || r.deadBefore(gen, sent):
			b.retries.Add(1)
			b.ready[i].Store(false) // until the poller sees it again
			if attempt >= len(b.replicas) {
				time.Sleep(100 * time.Millisecond) // every replica refused: one may be restarting
			}
			continue
		default:
			b.mu.Lock()
			b.unexpected = append(b.unexpected, fmt.Sprintf("replica %d (incarnation %d): %v", i, gen, err))
			b.mu.Unlock()
			return nil, &lbFailure{kind: "unexpected", replica: i, err: err}
		}
	}
	b.mu.Lock()
	b.unexpected = append(b.unexpected, fmt.Sprintf("no replica took the request in 20 s: %v", last))
	b.mu.Unlock()
	return nil, &lbFailure{kind: "unexpected", replica: -1, err: errors.Join(errNoReplica, last)}
}

var _ http.RoundTripper = (*balancer)(nil)

var errNoReplica = errors.New("no replica answered")

// unexpectedFailures is what failed otherwise than in flight on a
// killed replica.
func (b *balancer) unexpectedFailures() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.unexpected...)
}

// toolCallIDRe finds the driver's tool call id in a tool-calls message.
var toolCallIDRe = regexp.MustCompile(`"id":"(tc_[0-9_]+)"`)

func (b *balancer) toolAwaiting(i int, tc string, delta int) {
	if tc == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.awaitingTools[i][tc] += delta; b.awaitingTools[i][tc] <= 0 {
		delete(b.awaitingTools[i], tc)
	}
}

// toolsAwaiting returns the tool call ids awaiting an answer from replica i.
func (b *balancer) toolsAwaiting(i int) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for tc := range b.awaitingTools[i] {
		out = append(out, tc)
	}
	return out
}
