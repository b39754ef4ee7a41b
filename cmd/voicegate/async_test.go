package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/asynctools"
	"github.com/voicegate/voicegate/internal/auth"
	"github.com/voicegate/voicegate/internal/confval"
	"github.com/voicegate/voicegate/internal/postgres/pgtest"
)

// hold holds the first request a test server receives, so that the test
// can kill voicegate while it waits for the answer.
type hold struct {
	armed   bool          // hold the first request at all
	in      chan struct{} // closed when the first request arrives
	release chan struct{} // closed to let it finish (30 s at most)
	once    sync.Once
}

func newHold(armed bool) *hold {
	return &hold{armed: armed, in: make(chan struct{}), release: make(chan struct{})}
}

// wait is called by the first request: it signals its arrival, then waits
// for the release.
func (h *hold) wait() {
	if !h.armed {
		return
	}
	close(h.in)
	select {
	case <-h.release:
	case <-time.After(30 * time.Second):
	}
}

func (h *hold) unblock() { h.once.Do(func() { close(h.release) }) }

// idempotentAPI stands in for the customer's internal API, and a real HTTP
// server is what that is. It behaves as an idempotent API does: the effect
// of a request (a booking, numbered in order) is applied once per
// Idempotency-Key, and a repeated key gets the stored answer; a repeat
// that arrives while the first request with its key is still being worked
// on waits for it. With hold armed, the first request it receives is held
// so that the job is mid-flight when the test kills voicegate; when
// released it completes and stores its answer, as an API that received the
// request would, though nobody reads that response.
type idempotentAPI struct {
	*httptest.Server
	hold *hold

	mu       sync.Mutex
	requests []apiRequest
	answers  map[string]string        // Idempotency-Key -> stored answer
	working  map[string]chan struct{} // Idempotency-Key -> closed when its answer is stored
	applied  int                      // effects applied (bookings made)
}

type apiRequest struct{ key, toolCallID, body string }

func newIdempotentAPI(t *testing.T, holdFirst bool) *idempotentAPI {
	a := &idempotentAPI{hold: newHold(holdFirst), answers: map[string]string{}, working: map[string]chan struct{}{}}
	a.Server = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(func() { a.hold.unblock(); a.Close() })
	return a
}

func (a *idempotentAPI) serve(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	key := r.Header.Get("Idempotency-Key")
	a.mu.Lock()
	a.requests = append(a.requests, apiRequest{key, r.Header.Get("X-Voicegate-Tool-Call-Id"), string(b)})
	first := len(a.requests) == 1
	if key == "" {
		a.mu.Unlock()
		http.Error(w, `{"error":"Idempotency-Key required"}`, http.StatusBadRequest)
		return
	}
	answer, done := a.answers[key]
	busy, working := a.working[key]
	if !done && !working {
		ch := make(chan struct{})
		a.working[key] = ch
		a.mu.Unlock()
		if first {
			a.hold.wait()
		}
		a.mu.Lock()
		a.applied++
		answer = fmt.Sprintf(`{"booking":"BK-%d","table":4}`, a.applied)
		a.answers[key] = answer
		delete(a.working, key)
		close(ch)
		a.mu.Unlock()
	} else {
		a.mu.Unlock()
		if working {
			select {
			case <-busy:
			case <-time.After(30 * time.Second):
				http.Error(w, `{"error":"still working on this key"}`, http.StatusConflict)
				return
			}
			a.mu.Lock()
			answer = a.answers[key]
			a.mu.Unlock()
		}
	}
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, answer)
}

func (a *idempotentAPI) state() (reqs []apiRequest, keys map[string]bool, applied int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	keys = map[string]bool{}
	for _, r := range a.requests {
		keys[r.key] = true
	}
	return append([]apiRequest(nil), a.requests...), keys, a.applied
}

// controlRecorder stands in for Vapi's Live Call Control endpoint (outside
// the network in production): it records the body of each POST. With hold
// armed, the first POST is recorded (Vapi has it) but its answer is held.
type controlRecorder struct {
	*httptest.Server
	hold   *hold
	mu     sync.Mutex
	bodies []string
}

func newControlRecorder(t *testing.T, holdFirst bool) *controlRecorder {
	c := &controlRecorder{hold: newHold(holdFirst)}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodPost {
			c.mu.Lock()
			c.bodies = append(c.bodies, r.URL.Path+" "+string(b))
			first := len(c.bodies) == 1
			c.mu.Unlock()
			if first {
				c.hold.wait()
			}
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{}`)
	}))
	t.Cleanup(func() { c.hold.unblock(); c.Close() })
	return c
}

func (c *controlRecorder) got() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.bodies...)
}

// TestAsyncToolSurvivesKill9 is the crash test of async tools with the real
// binary: voicegate is killed with SIGKILL while a queued tool call is in
// flight, then restarted on the same data.
//
//   - Killed while the internal API works on the request: the restarted
//     process asks again with the same Idempotency-Key, the API's effect is
//     applied once, and the caller gets the result exactly once.
//   - Killed while the result is being delivered (Vapi has the add-message,
//     its answer has not come back): the restarted process does not ask the
//     internal API again (the answer was stored before delivering) and
//     delivers the same stored answer once more: two identical
//     add-messages, the repeat the asynctools package documents for this
//     window, and never a third.
//
// The queue on SQLite (jobs.db in data_dir; a restart takes over the dead
// process's jobs at once) and on PostgreSQL (River's leader rescues them
// once they have been running for longer than the job timeout, 22 s here,
// and its rescuer looks every 30 s: about 50 s after the kill).
func TestAsyncToolSurvivesKill9(t *testing.T) {
	for _, store := range []string{"sqlite", "postgres"} {
		for _, crash := range []string{"during-request", "during-delivery"} {
			t.Run(store+"/"+crash, func(t *testing.T) {
				t.Parallel()
				// SQLite takes the job over at start-up: 20 s is ample,
				// and less than River's own rescue (~50 s), so a broken
				// take-over fails here.
				storage, within := "", 20*time.Second
				if store == "postgres" {
					// Skips when unreachable; fails under CI=true.
					storage, within = fmt.Sprintf("storage: {driver: postgres, postgres_url: %q}\n", pgtest.URL(t)), 120*time.Second
				}
				testAsyncToolSurvivesKill9(t, storage, within, crash == "during-delivery")
			})
		}
	}
}

func testAsyncToolSurvivesKill9(t *testing.T, storage string, within time.Duration, duringDelivery bool) {
	api := newIdempotentAPI(t, !duringDelivery)
	control := newControlRecorder(t, duringDelivery)
	held := api.hold
	if duringDelivery {
		held = control.hold
	}
	const (
		secret  = "e2e-async-Jq7Vx3Lm9Rt2Wk8Pz5"
		callID  = "call-async-kill9"
		toolID  = "tc-async-kill9"
		holding = "One moment while I book that table."
	)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "voicegate.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
listen: 127.0.0.1:0
data_dir: %s/data
vapi:
  auth:
    - mode: hmac
      secrets: ["${E2E_SECRET}"]
call_control:
  allowed_hosts: [%q]
tools:
  - name: bookTable
    url: %s/bookings
    timeout: 2s
    async: true
    holding_phrase: %q
    deadline: 2m
    max_attempts: 5
    schema: {type: object, required: [date], properties: {date: {type: string}}}
%s`, dir, strings.TrimPrefix(control.URL, "http://"), api.URL, holding, storage)), 0o600)
	env := []string{"E2E_SECRET=" + secret}

	p := start(t, env, "serve", "--config", cfgPath)
	a := auth.Config{Mode: auth.ModeHMAC, Secrets: []confval.Secret{{Value: secret}}}
	a.Complete()
	signer, err := auth.NewSigner(a, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	webhook := "http://" + p.addr + "/webhook/vapi"
	const controlPath = "/6b38c32e-0000-4000-8000-00000000a51c/control"
	send := func(fields string) string {
		t.Helper()
		body := []byte(fmt.Sprintf(`{"message":{%s,"timestamp":%d,"call":{"id":%q,"monitor":{"listenUrl":"wss://x.vapi.ai/l","controlUrl":%q}}}}`,
			fields, time.Now().UnixMilli(), callID, control.URL+controlPath))
		req, _ := http.NewRequest(http.MethodPost, webhook, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		signer.Sign(req.Header, http.MethodPost, webhook, body, time.Now())
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s\n%s", fields, resp.StatusCode, out, drain(p.logs))
		}
		return string(out)
	}
	// The call is live in the store, then the model calls the tool.
	send(`"type":"status-update","status":"in-progress"`)
	t0 := time.Now()
	out := send(fmt.Sprintf(`"type":"tool-calls","toolCallList":[{"id":%q,"type":"function","function":{"name":"bookTable","arguments":{"date":"2026-12-01"}}}]`, toolID))
	var answer struct {
		Results []struct{ ToolCallID, Result, Error string }
	}
	if err := json.Unmarshal([]byte(out), &answer); err != nil || len(answer.Results) != 1 ||
		answer.Results[0].ToolCallID != toolID || answer.Results[0].Result != holding || answer.Results[0].Error != "" {
		t.Fatalf("the immediate answer is not the holding phrase: %v %s", err, out)
	}

	// The job is mid-flight: its request (to the internal API, or to the
	// control URL) has arrived and is held.
	select {
	case <-held.in:
	case err := <-p.done:
		t.Fatalf("voicegate exited before the held request: %v\n%s", err, drain(p.logs))
	case <-time.After(20 * time.Second):
		t.Fatalf("the held request did not arrive within 20 s\n%s", drain(p.logs))
	}
	inFlight := time.Since(t0)
	if err := p.cmd.Process.Kill(); err != nil { // SIGKILL: no shutdown, no cleanup
		t.Fatal(err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatal("voicegate did not exit after SIGKILL")
	}
	// The held request completes (at the API its effect is applied); its
	// answer goes to a dead connection.
	held.unblock()
	// Deliveries: none before the crash, or the one Vapi had when it came.
	before := 0
	if duringDelivery {
		before = 1
	}
	if got := control.got(); len(got) != before {
		t.Fatalf("%d control messages before the restart, want %d: %q", len(got), before, got)
	}
	wantDeliveries := before + 1

	restarted := time.Now()
	p2 := start(t, env, "serve", "--config", cfgPath)
	deadline := time.Now().Add(within)
	for len(control.got()) < wantDeliveries {
		if time.Now().After(deadline) {
			reqs, _, applied := api.state()
			t.Fatalf("%d control messages within %s of the restart, want %d (internal API: %d requests, %d applied)\n%s",
				len(control.got()), within, wantDeliveries, len(reqs), applied, drain(p2.logs))
		}
		time.Sleep(20 * time.Millisecond)
	}
	delivered := time.Since(restarted)
	check := func(when string) {
		t.Helper()
		got := control.got()
		if len(got) != wantDeliveries {
			t.Fatalf("%s: %d control messages, want %d: %q", when, len(got), wantDeliveries, got)
		}
		want := fmt.Sprintf(`The result of the bookTable tool call (%s) is ready: {"booking":"BK-1","table":4}`, toolID)
		for _, g := range got {
			path, body, _ := strings.Cut(g, " ")
			var m struct {
				Type    string
				Message struct{ Role, Content string }
				Trigger bool `json:"triggerResponseEnabled"`
			}
			if err := json.Unmarshal([]byte(body), &m); err != nil || path != controlPath ||
				m.Type != "add-message" || m.Message.Role != "system" || !m.Trigger || m.Message.Content != want {
				t.Fatalf("%s: control message %q (%v), want an add-message of %q", when, g, err, want)
			}
		}
		reqs, keys, applied := api.state()
		wantKey := asynctools.IdempotencyKey(callID, toolID)
		// Killed during the request: it is made again after the restart.
		// Killed during the delivery: the stored answer is delivered, the
		// internal API is not asked again.
		requestsOK := len(reqs) >= 2
		if duringDelivery {
			requestsOK = len(reqs) == 1
		}
		if applied != 1 || len(keys) != 1 || !keys[wantKey] || !requestsOK {
			t.Fatalf("%s: internal API: %d requests, keys %v, %d effects applied; want one effect, every request with key %s (killed during the delivery: one request)",
				when, len(reqs), keys, applied, wantKey)
		}
		for _, r := range reqs {
			if r.toolCallID != toolID || r.body != `{"date":"2026-12-01"}` {
				t.Fatalf("%s: internal API request %+v", when, r)
			}
		}
	}
	check("after the restart")
	// Nothing more arrives: the delivery was marked done.
	time.Sleep(3 * time.Second)
	check("3 s later")
	reqs, _, _ := api.state()
	t.Logf("held request in flight %s after the tool call; delivered %s after the restart; %d requests to the internal API, %d control messages",
		inFlight.Round(time.Millisecond), delivered.Round(time.Millisecond), len(reqs), wantDeliveries)
	// The restarted process logged no error, and neither the arguments, the
	// answer nor the control URL (the call's capability).
	logs := p2.stop(t)
	for _, leak := range []string{`"level":"ERROR"`, "2026-12-01", "BK-1", "00000000a51c"} {
		if strings.Contains(logs, leak) {
			t.Errorf("the restarted process's log holds %q:\n%s", leak, logs)
		}
	}
}
