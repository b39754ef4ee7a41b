//go:build unix

package cluster_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/envelope"
)

const (
	nCalls    = 200
	nWorkers  = 12
	nReplicas = 3
	// perPhase calls are released before each disruption; the rest after
	// the last one, so that every disruption happens under load.
	perPhase  = 25
	callPace  = 60 * time.Millisecond // between two calls' starts
	hmacValue = "cluster-Hm4Qz8Rk2Wx7Pn3Lt6Vb9Ze5"
	toolName  = "bookSlot"
)

// toolAPI is the internal API the tool calls: it counts invocations per
// tool call id and keeps the idempotency key each carried.
type toolAPI struct {
	mu   sync.Mutex
	hits map[string]int
	keys map[string][]string // Idempotency-Key per invocation ("" when absent)
	at   map[string][]time.Time
	busy map[string]int // tool call ids being answered
}

// anyInProgress reports whether the API is answering any tool call.
func (a *toolAPI) anyInProgress() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, n := range a.busy {
		if n > 0 {
			return true
		}
	}
	return false
}

// inProgress reports whether the API is answering one of the tool calls.
func (a *toolAPI) inProgress(tcs []string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, tc := range tcs {
		if a.busy[tc] > 0 {
			return true
		}
	}
	return false
}

func (a *toolAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	tc := r.Header.Get("X-Voicegate-Tool-Call-Id")
	io.Copy(io.Discard, io.LimitReader(r.Body, 1<<16))
	a.mu.Lock()
	a.hits[tc]++
	a.keys[tc] = append(a.keys[tc], r.Header.Get("Idempotency-Key"))
	a.at[tc] = append(a.at[tc], time.Now())
	n := a.hits[tc]
	a.busy[tc]++
	a.mu.Unlock()
	// A little work, so that a replica can be killed while the internal
	// API is acting on its tool call.
	time.Sleep(20 * time.Millisecond)
	a.mu.Lock()
	a.busy[tc]--
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"booked":%q,"invocation":%d}`, tc, n)
}

// attempt is one request the driver sent through the balancer.
type attempt struct {
	typ        string
	start, end time.Time
	status     int
	retryAfter bool
	failure    string // the balancer's X-Cluster-Failure
}

// driver plays Vapi: it signs each message, sends it through the
// balancer and retries 5xx answers with backoff (honouring Retry-After),
// as Vapi retries its webhooks.
type driver struct {
	lb      string // the balancer's webhook URL
	signer  *auth.Signer
	client  *http.Client
	lastMS  atomic.Int64
	replays atomic.Int64

	mu       sync.Mutex
	attempts []attempt
	failures []string
	// killed are the tool call ids whose message failed in flight on a
	// killed replica at least once.
	killed map[string]bool
	// refused are the answers other than 200 each tool call's message got.
	refused map[string][]string
}

func (d *driver) fail(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.failures) < 20 {
		d.failures = append(d.failures, fmt.Sprintf(format, args...))
	}
}

// timestamp is unique and increasing: no two messages are the same bytes.
func (d *driver) timestamp() int64 {
	for {
		last := d.lastMS.Load()
		next := max(time.Now().UnixMilli(), last+1)
		if d.lastMS.CompareAndSwap(last, next) {
			return next
		}
	}
}

func (d *driver) msg(callID, typ string, fields map[string]any) []byte {
	m := map[string]any{
		"type":      typ,
		"timestamp": d.timestamp(),
		"call":      map[string]any{"id": callID, "orgId": "org-cluster", "type": "inboundPhoneCall", "phoneNumberId": "pn-cluster"},
	}
	for k, v := range fields {
		m[k] = v
	}
	b, _ := json.Marshal(map[string]any{"message": m})
	return b
}

// answer is a message's 200 answer and how it was sent.
type answer struct {
	body    []byte
	header  http.Header // the signed request headers of the accepted attempt
	replica int
}

// sideEffects are the types that, while Redis is unreachable, are
// refused with 503 (state.on_unavailable: refuse).
func sideEffects(typ string) bool { return typ == "tool-calls" || typ == "end-of-call-report" }

// deliver sends one message until it is answered 200 (5xx retried with
// backoff, for at most a minute). tc names the tool call it carries.
func (d *driver) deliver(ctx context.Context, typ, tc string, body []byte) (answer, bool) {
	backoff := 100 * time.Millisecond
	deadline := time.Now().Add(60 * time.Second)
	for n := 0; time.Now().Before(deadline); n++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.lb, bytes.NewReader(body))
		if err != nil {
			d.fail("%s: %v", typ, err)
			return answer{}, false
		}
		req.Header.Set("Content-Type", "application/json")
		d.signer.Sign(req.Header, http.MethodPost, d.lb, body, time.Now())
		a := attempt{typ: typ, start: time.Now()}
		resp, err := d.client.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return answer{}, false
			}
			d.fail("%s: the balancer: %v", typ, err)
			return answer{}, false
		}
		rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		a.end, a.status, a.failure = time.Now(), resp.StatusCode, resp.Header.Get(hdrFailure)
		ra, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		a.retryAfter = resp.Header.Get("Retry-After") != ""
		d.mu.Lock()
		d.attempts = append(d.attempts, a)
		if a.failure == "in-flight-killed" && tc != "" {
			d.killed[tc] = true
		}
		if tc != "" && a.status != http.StatusOK && len(d.refused[tc]) < 8 {
			d.refused[tc] = append(d.refused[tc], fmt.Sprintf("%d %s%.60s", a.status, a.failure, bytes.TrimSpace(rb)))
		}
		d.mu.Unlock()
		switch {
		case resp.StatusCode == http.StatusOK:
			replica, _ := strconv.Atoi(resp.Header.Get(hdrReplica))
			return answer{body: rb, header: req.Header.Clone(), replica: replica}, true
		case resp.StatusCode >= 500:
			wait := backoff
			if ra > 0 {
				wait = min(time.Duration(ra)*time.Second, time.Second)
			}
			backoff = min(2*backoff, time.Second)
			select {
			case <-ctx.Done():
				return answer{}, false
			case <-time.After(wait):
			}
		default:
			d.fail("%s: %d %.200s", typ, resp.StatusCode, rb)
			return answer{}, false
		}
	}
	d.fail("%s: not accepted within a minute of retries", typ)
	return answer{}, false
}

// replay sends the accepted request again, byte for byte with its
// signature, straight to another replica than the one that answered
// (bypassing the balancer): it must get the same answer.
func (d *driver) replay(ctx context.Context, replicas []*replica, typ string, body []byte, a answer) {
	d.replays.Add(1)
	deadline := time.Now().Add(45 * time.Second)
	for n := 1; time.Now().Before(deadline); n++ {
		r := replicas[(a.replica+1+n%2)%len(replicas)] // alternately the two others
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+r.addr()+"/webhook/vapi", bytes.NewReader(body))
		if err != nil {
			d.fail("replay %s: %v", typ, err)
			return
		}
		req.Header = a.header.Clone()
		resp, err := d.client.Do(req)
		if err == nil {
			rb, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if !bytes.Equal(rb, a.body) {
					d.fail("replay %s on replica %d answered %.200s, the original (replica %d) %.200s", typ, r.i, rb, a.replica, a.body)
				}
				return
			}
			if resp.StatusCode < 500 {
				d.fail("replay %s on replica %d: %d %.200s", typ, r.i, resp.StatusCode, rb)
				return
			}
		} else if ctx.Err() != nil {
			return
		}
		// A replica down, restarting, or refusing while a link is cut:
		// try again shortly.
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
	d.fail("replay %s: no replica answered it within 45 s", typ)
}

// callResult is what one simulated call sent and was answered.
type callResult struct {
	id, toolCallID string
	cost           float64
	toolCall       []byte // the tool-calls message
	toolAnswer     answer
	ok             bool
}

// call plays one call from in-progress to the end-of-call report; the
// tool call and the report are replayed to another replica.
func (d *driver) call(ctx context.Context, replicas []*replica, i int) callResult {
	res := callResult{id: fmt.Sprintf("call-%03d-%d", i, time.Now().UnixNano()), toolCallID: fmt.Sprintf("tc_%03d_%d", i, time.Now().UnixNano()),
		cost: float64(i+1) / 1000}
	send := func(typ string, fields map[string]any) (answer, []byte, bool) {
		body := d.msg(res.id, typ, fields)
		tc := ""
		if typ == "tool-calls" {
			tc = res.toolCallID
		}
		a, ok := d.deliver(ctx, typ, tc, body)
		return a, body, ok
	}
	steps := []struct {
		typ    string
		fields map[string]any
	}{
		{"status-update", map[string]any{"status": "in-progress"}},
		{"speech-update", map[string]any{"role": "assistant", "status": "started", "turn": 1}},
		{"speech-update", map[string]any{"role": "assistant", "status": "stopped", "turn": 1}},
		{"speech-update", map[string]any{"role": "user", "status": "started", "turn": 1}},
		{"transcript", map[string]any{"role": "user", "transcriptType": "partial", "transcript": "I would like"}},
		{"transcript", map[string]any{"role": "user", "transcriptType": "final", "transcript": "I would like to book a slot."}},
		{"speech-update", map[string]any{"role": "user", "status": "stopped", "turn": 1}},
	}
	for _, s := range steps {
		if _, _, ok := send(s.typ, s.fields); !ok {
			return res
		}
	}
	args, _ := json.Marshal(map[string]any{"slot": "10:00", "call": i})
	a, body, ok := send("tool-calls", map[string]any{"toolCallList": []any{map[string]any{"id": res.toolCallID, "type": "function",
		"function": map[string]any{"name": toolName, "arguments": string(args)}}}})
	if !ok {
		return res
	}
	var tr struct {
		Results []struct{ ToolCallID, Result, Error string }
	}
	if json.Unmarshal(a.body, &tr) != nil || len(tr.Results) != 1 || tr.Results[0].ToolCallID != res.toolCallID ||
		!strings.Contains(tr.Results[0].Result, res.toolCallID) {
		d.fail("tool call %s answered %.300s", res.toolCallID, a.body)
	}
	res.toolCall, res.toolAnswer = body, a
	d.replay(ctx, replicas, "tool-calls", body, a)
	for _, s := range []struct {
		typ    string
		fields map[string]any
	}{
		{"transcript", map[string]any{"role": "assistant", "transcriptType": "final", "transcript": "Your slot is booked."}},
		{"status-update", map[string]any{"status": "ended", "endedReason": "customer-ended-call"}},
	} {
		if _, _, ok := send(s.typ, s.fields); !ok {
			return res
		}
	}
	now := time.Now().UTC()
	a, body, ok = send("end-of-call-report", map[string]any{"endedReason": "customer-ended-call", "cost": res.cost, "durationSeconds": 42.5,
		"startedAt": now.Add(-43 * time.Second).Format(time.RFC3339Nano), "endedAt": now.Format(time.RFC3339Nano),
		"artifact": map[string]any{"transcript": "AI: Hello. User: I would like to book a slot.", "messages": []any{}},
		"analysis": map[string]any{"summary": "Booked a slot."}})
	if !ok {
		return res
	}
	d.replay(ctx, replicas, "end-of-call-report", body, a)
	res.ok = true
	return res
}

// TestThreeReplicasBehaveAsOne: see docs/cluster-test.md.
func TestThreeReplicasBehaveAsOne(t *testing.T) {
	began := time.Now()
	redis := startRedis(t)
	pg := startPostgres(t)
	redisLink, err := newLinkProxy(redis.addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { redisLink.Close() })
	pgLink, err := newLinkProxy(pg.addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pgLink.Close() })

	api := &toolAPI{hits: map[string]int{}, keys: map[string][]string{}, at: map[string][]time.Time{}, busy: map[string]int{}}
	apiSrv := httptest.NewServer(api)
	t.Cleanup(apiSrv.Close)

	withState := os.Getenv("VOICEGATE_CLUSTER_NO_STATE") == ""
	dir := t.TempDir()
	// Each replica has a data_dir of its own (replica 0's is emptied when it
	// is killed, as a replacement pod's would be): everything shared is in
	// PostgreSQL and Redis, and the records keyring comes from one secret.
	keyringPath := filepath.Join(dir, "keyring.json")
	if _, err := envelope.LoadFile(keyringPath, rand.Reader, time.Now); err != nil {
		t.Fatal(err)
	}
	keyringJSON, err := os.ReadFile(keyringPath)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"CLUSTER_KEYRING=" + string(keyringJSON), "CLUSTER_HMAC=" + hmacValue, "CLUSTER_PG_URL=postgres://postgres@" + pgLink.addr + "/postgres?sslmode=disable",
		"CLUSTER_REDIS_URL=redis://" + redisLink.addr + "/0"}
	state := ""
	if withState {
		state = "state:\n  driver: redis\n  redis_url: ${CLUSTER_REDIS_URL}\n  key_prefix: \"vg:\"\n  timeout: 250ms\n  on_unavailable: refuse\n"
	}
	replicas := make([]*replica, nReplicas)
	for i := range replicas {
		r := &replica{t: t, i: i, port: freePort(t), env: env, cfg: filepath.Join(dir, fmt.Sprintf("replica%d.yaml", i)),
			dataDir: filepath.Join(dir, fmt.Sprintf("data%d", i))}
		cfg := fmt.Sprintf(`listen: 127.0.0.1:%d
data_dir: %s
server: {shutdown_delay: 1s, drain_timeout: 20s}
log: {level: info}
vapi:
  auth: [{mode: hmac, secrets: ["${CLUSTER_HMAC}"]}]
  assistant_request: {default: {assistant_id: asst-cluster}}
tools:
  - name: %s
    url: %s/book
    timeout: 5s
    schema: {type: object, required: [slot], properties: {slot: {type: string}, call: {type: integer}}}
storage:
  driver: postgres
  postgres_url: ${CLUSTER_PG_URL}
records:
  keyring_env: CLUSTER_KEYRING
%s`, r.port, r.dataDir, toolName, apiSrv.URL, state)
		if err := os.WriteFile(r.cfg, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		if logs := os.Getenv("VOICEGATE_CLUSTER_LOGS"); logs != "" {
			f, err := os.Create(filepath.Join(logs, fmt.Sprintf("replica%d.log", i)))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { f.Close() })
			r.logFile = f
		}
		replicas[i] = r
	}
	if out, err := runBinary(env, "config", "check", "--config", replicas[0].cfg); err != nil {
		t.Fatalf("config check: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		for _, r := range replicas {
			r.stop()
		}
		if t.Failed() {
			for _, r := range replicas {
				t.Logf("replica %d's last log lines:\n%s", r.i, r.tail(60))
			}
		}
	})
	// The first replica makes the keyring and migrates the database; the
	// others start after it.
	replicas[0].start()
	var wg sync.WaitGroup
	for _, r := range replicas[1:] {
		wg.Add(1)
		go func() { defer wg.Done(); r.startErr = r.startE() }()
	}
	wg.Wait()
	for _, r := range replicas[1:] {
		if r.startErr != nil {
			t.Fatal(r.startErr)
		}
	}
	lb := newBalancer(replicas)
	t.Cleanup(lb.Close)
	front := httptest.NewServer(lb.handler())
	t.Cleanup(front.Close)

	a := auth.Config{Mode: auth.ModeHMAC, Secrets: []confval.Secret{{Value: hmacValue}}}
	a.Complete()
	signer, err := auth.NewSigner(a, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d := &driver{lb: front.URL + "/webhook/vapi", signer: signer, killed: map[string]bool{}, refused: map[string][]string{},
		client: &http.Client{Timeout: 40 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}

	// The load: nWorkers goroutines play the calls, paced and released
	// phase by phase; the test's goroutine runs the disruptions.
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	var (
		released atomic.Int64 // calls that may start
		started  atomic.Int64
		results  = make([]callResult, nCalls)
		next     atomic.Int64
		pace     sync.Mutex
		lastGo   time.Time
		workers  sync.WaitGroup
	)
	released.Store(perPhase)
	for range nWorkers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= nCalls {
					return
				}
				for int64(i) >= released.Load() {
					select {
					case <-ctx.Done():
						return
					case <-time.After(20 * time.Millisecond):
					}
				}
				pace.Lock()
				if wait := time.Until(lastGo.Add(callPace)); wait > 0 {
					time.Sleep(wait)
				}
				lastGo = time.Now()
				pace.Unlock()
				started.Add(1)
				results[i] = d.call(ctx, replicas, i)
			}
		}()
	}
	stopLoad := func() { cancel(); workers.Wait() }
	t.Cleanup(stopLoad)

	// underLoad waits until the current phase's calls are under way.
	underLoad := func(what string) {
		t.Helper()
		want := released.Load() - perPhase + 8
		deadline := time.Now().Add(60 * time.Second)
		for started.Load() < want {
			if time.Now().After(deadline) {
				t.Fatalf("before %s: %d calls started in a minute, want %d", what, started.Load(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Logf("%5.1fs %s (%d calls started)", time.Since(began).Seconds(), what, started.Load())
	}
	nextPhase := func() { released.Add(perPhase) }

	var redisCut [2]time.Time
	underLoad("SIGKILL replica 0 while the internal API acts on a tool call it sent, restart it")
	// Preferably while the internal API is acting on a tool call sent by
	// replica 0 (it may then see it twice), else with any request in
	// flight on it; at worst with none.
	for deadline := time.Now().Add(15 * time.Second); !api.inProgress(lb.toolsAwaiting(0)) && time.Now().Before(deadline); {
		time.Sleep(200 * time.Microsecond)
	}
	for deadline := time.Now().Add(5 * time.Second); lb.awaiting[0].Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(500 * time.Microsecond)
	}
	toolsInFlight := len(lb.toolsAwaiting(0))
	replicas[0].kill()
	if err := os.RemoveAll(replicas[0].dataDir); err != nil { // a replacement pod: nothing of the dead one's
		t.Fatal(err)
	}
	replicas[0].start()
	t.Logf("%5.1fs replica 0 killed with %d tool calls in flight and restarted; so far %d requests failed in flight on it, %d moved to another replica",
		time.Since(began).Seconds(), toolsInFlight, lb.inFlightKilled.Load(), lb.retries.Load())
	nextPhase()

	underLoad("SIGTERM replica 1 (drain), restart it")
	replicas[1].drain()
	replicas[1].start()
	nextPhase()

	underLoad("cut the Redis link for 3 s while the internal API acts on a tool call")
	// While a tool call is at the internal API: its replica claimed it in
	// Redis and must store its answer there for a replay elsewhere.
	for deadline := time.Now().Add(15 * time.Second); !api.anyInProgress() && time.Now().Before(deadline); {
		time.Sleep(200 * time.Microsecond)
	}
	redisCut[0] = time.Now()
	redisLink.Cut()
	time.Sleep(3 * time.Second)
	if err := redisLink.Restore(); err != nil {
		t.Fatal(err)
	}
	redisCut[1] = time.Now()
	t.Logf("%5.1fs the Redis link restored", time.Since(began).Seconds())
	nextPhase()

	underLoad("restart Redis (SHUTDOWN, start on the same directory)")
	keysBefore, err := redis.dbsize()
	if err != nil {
		t.Fatal(err)
	}
	redis.restart()
	t.Logf("%5.1fs Redis restarted", time.Since(began).Seconds())
	keysAfter, err := redis.dbsize()
	if err != nil {
		t.Fatal(err)
	}
	if withState && (keysBefore == 0 || keysAfter == 0) {
		t.Errorf("Redis held %d keys before its restart and %d after: the shared state is not in Redis, or was lost", keysBefore, keysAfter)
	}
	nextPhase()

	underLoad("cut the PostgreSQL link for 2 s")
	pgLink.Cut()
	time.Sleep(2 * time.Second)
	if err := pgLink.Restore(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%5.1fs the PostgreSQL link restored", time.Since(began).Seconds())
	nextPhase()

	underLoad("restart PostgreSQL (pg_ctl restart -m fast)")
	pg.restart()
	t.Logf("%5.1fs PostgreSQL restarted", time.Since(began).Seconds())
	released.Store(nCalls)
	t.Logf("%5.1fs disruptions done; the last calls released", time.Since(began).Seconds())

	waited := make(chan struct{})
	go func() { workers.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(120 * time.Second):
		t.Fatalf("the calls did not finish in 2 minutes: %d started", started.Load())
	}

	// Every tool call replayed once more, now that Redis was restarted
	// and every replica restarted or drained: still the original's answer,
	// and the internal API is not called again.
	for _, res := range results {
		if res.toolCall != nil {
			d.replay(ctx, replicas, "tool-calls (after the restarts)", res.toolCall, res.toolAnswer)
		}
	}
	cancel()

	// What failed.
	for _, f := range lb.unexpectedFailures() {
		t.Errorf("the balancer: %s", f)
	}
	for _, f := range d.failures {
		t.Errorf("driver: %s", f)
	}
	completed := 0
	for _, res := range results {
		if res.ok {
			completed++
		}
	}
	if completed != nCalls {
		t.Errorf("%d of %d calls completed", completed, nCalls)
	}

	// Each tool call reached the internal API once; twice only when it was
	// in flight on the killed replica, and then with one idempotency key.
	api.mu.Lock()
	twice, wrong := 0, 0
	for _, res := range results {
		if res.toolCallID == "" {
			continue
		}
		n, keys := api.hits[res.toolCallID], api.keys[res.toolCallID]
		switch {
		case n == 1:
		case n == 2 && d.killed[res.toolCallID]:
			twice++
			if keys[0] == "" {
				t.Logf("tool call %s reached the internal API twice (in flight on the killed replica), the same X-Voicegate-Tool-Call-Id but no Idempotency-Key", res.toolCallID)
			} else if keys[0] != keys[1] {
				t.Errorf("tool call %s reached the internal API twice with two idempotency keys %q", res.toolCallID, keys)
			}
		default:
			if wrong++; wrong <= 20 {
				var when []string
				for _, at := range api.at[res.toolCallID] {
					when = append(when, fmt.Sprintf("%.2fs", at.Sub(began).Seconds()))
				}
				t.Errorf("tool call %s reached the internal API %d times, at %s (killed in flight: %v); its message was answered %q before its 200",
					res.toolCallID, n, strings.Join(when, " "), d.killed[res.toolCallID], d.refused[res.toolCallID])
			}
		}
	}
	if wrong > 0 {
		t.Errorf("%d tool calls reached the internal API other than once", wrong)
	}
	for tc := range d.killed {
		t.Logf("tool call %s was in flight on the killed replica; it reached the internal API %d times, with Idempotency-Key %q", tc, api.hits[tc], api.keys[tc])
	}
	noKey := 0
	for _, ks := range api.keys {
		for _, k := range ks {
			if k == "" {
				noKey++
			}
		}
	}
	api.mu.Unlock()

	// What PostgreSQL holds, read straight from the private server.
	checkStore(t, pg, results)
	checkCallsShow(t, env, replicas[0].cfg, results)

	var n503, n503se, n503seNoRA, n502, n503cut, nCutOther503, nCutNoRA int
	for _, at := range d.attempts {
		switch at.status {
		case http.StatusServiceUnavailable:
			n503++
			if sideEffects(at.typ) {
				n503se++
				if !at.retryAfter {
					n503seNoRA++
				}
			}
			if at.start.After(redisCut[0]) && at.end.Before(redisCut[1]) {
				if sideEffects(at.typ) {
					n503cut++
					if !at.retryAfter {
						nCutNoRA++
					}
				} else {
					nCutOther503++
				}
			}
		case http.StatusBadGateway:
			n502++
		}
	}
	if withState && nCutNoRA > 0 {
		t.Errorf("while the Redis link was cut, %d messages with side effects were refused with 503 without Retry-After", nCutNoRA)
	}
	if withState && nCutOther503 > 0 {
		t.Errorf("while the Redis link was cut, %d messages without side effects were refused with 503: they must be answered", nCutOther503)
	}
	t.Logf("summary: %d calls, %d requests through the balancer (%d balancer retries on another replica, %d failed in flight on the killed replica), "+
		"%d replays straight to another replica, 502s seen: %d, 503s seen: %d (%d side-effecting, %d of them without Retry-After; %d during the Redis cut), "+
		"tool calls reaching the internal API twice: %d, invocations without an Idempotency-Key: %d, Redis keys %d before its restart and %d after, %s",
		nCalls, len(d.attempts), lb.retries.Load(), lb.inFlightKilled.Load(), d.replays.Load(), n502, n503, n503se, n503seNoRA, n503cut,
		twice, noKey, keysBefore, keysAfter, time.Since(began).Round(100*time.Millisecond))
}

// checkStore reads the private PostgreSQL: every call ended with its
// report stored exactly once, its tool call recorded once, and its status
// timeline complete and in order.
func checkStore(t *testing.T, pg *pgServer, results []callResult) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, "postgres://postgres@"+pg.addr()+"/postgres?sslmode=disable")
	if err != nil {
		t.Fatalf("the private PostgreSQL: %v", err)
	}
	defer conn.Close(context.Background())
	counts := func(q string) map[string]int {
		rows, err := conn.Query(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		m, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (kv struct {
			k string
			n int
		}, err error) {
			err = r.Scan(&kv.k, &kv.n)
			return kv, err
		})
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		out := map[string]int{}
		for _, kv := range m {
			out[kv.k] = kv.n
		}
		return out
	}
	reports := counts(`SELECT call_id, count(*) FROM records WHERE kind = 'end_of_call_report' GROUP BY call_id`)
	toolRecs := counts(`SELECT call_id, count(*) FROM records WHERE kind = 'tool_call' GROUP BY call_id`)
	timelines := map[string][]string{}
	rows, err := conn.Query(ctx, `SELECT call_id, status FROM call_status_changes ORDER BY call_id, at, seq`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			t.Fatal(err)
		}
		timelines[id] = append(timelines[id], st)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	bad := 0
	report := func(format string, args ...any) {
		bad++
		if bad <= 20 {
			t.Errorf(format, args...)
		}
	}
	dupStatus := 0
	for _, res := range results {
		if !res.ok {
			continue
		}
		if n := reports[res.id]; n != 1 {
			report("call %s: %d end-of-call records, want 1", res.id, n)
		}
		if n := toolRecs[res.id]; n != 1 {
			report("call %s: %d tool call records, want 1", res.id, n)
		}
		var status, reason string
		var cost *float64
		var ended *int64
		err := conn.QueryRow(ctx, `SELECT status, ended_reason, cost, ended_at FROM calls WHERE id = $1`, res.id).Scan(&status, &reason, &cost, &ended)
		if errors.Is(err, pgx.ErrNoRows) {
			report("call %s acknowledged but not stored", res.id)
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		if status != "ended" || reason != "customer-ended-call" || cost == nil || *cost != res.cost || ended == nil {
			c := "none"
			if cost != nil {
				c = strconv.FormatFloat(*cost, 'g', -1, 64)
			}
			report("call %s stored as status %q, reason %q, cost %s (want %v), ended: %v", res.id, status, reason, c, res.cost, ended != nil)
		}
		// The timeline: in-progress then ended, in that order; a status
		// redelivered after a failed attempt may repeat.
		tl := timelines[res.id]
		compact := slices.Compact(slices.Clone(tl))
		dupStatus += len(tl) - len(compact)
		if !slices.Equal(compact, []string{"in-progress", "ended"}) {
			report("call %s: status timeline %q, want [in-progress ended]", res.id, tl)
		}
	}
	var extra int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM calls`).Scan(&extra); err != nil {
		t.Fatal(err)
	}
	if extra != len(results) {
		t.Errorf("%d calls stored, %d played", extra, len(results))
	}
	if dupStatus > 0 {
		t.Logf("%d status changes stored twice (a redelivery after a failed attempt)", dupStatus)
	}
}

// checkCallsShow reads a few calls' timelines the operator's way, with
// voicegate calls show. It reads SQLite only today (README: "voicegate
// calls reads the SQLite store only, for now"): when it cannot read the
// PostgreSQL store, that is logged, not failed.
func checkCallsShow(t *testing.T, env []string, cfg string, results []callResult) {
	t.Helper()
	for _, i := range []int{0, len(results) / 2, len(results) - 1} {
		res := results[i]
		if !res.ok {
			continue
		}
		out, err := runBinary(env, "calls", "show", res.id, "--config", cfg, "--json")
		if err != nil {
			first, _, _ := strings.Cut(out, "\n")
			t.Logf("voicegate calls show cannot read the PostgreSQL store (%v: %s): the timelines were read from PostgreSQL directly", err, first)
			return
		}
		var c struct {
			Status   string `json:"status"`
			Timeline []struct {
				Status string `json:"status"`
			} `json:"timeline"`
		}
		if err := json.Unmarshal([]byte(out), &c); err != nil {
			t.Errorf("calls show %s --json: %v\n%s", res.id, err, out)
			continue
		}
		var seq []string
		for _, s := range c.Timeline {
			seq = append(seq, s.Status)
		}
		if c.Status != "ended" || !slices.Equal(slices.Compact(seq), []string{"in-progress", "ended"}) {
			t.Errorf("calls show %s: status %q, timeline %q", res.id, c.Status, seq)
		}
	}
}
