package gateway_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voicegate/voicegate/internal/redisstate/redistest"
)

// Where a Redis round trip was made, relative to the request being
// measured.
const (
	rtBeforeAnswer = iota // on the request's path, before its answer is written
	rtAfterAnswer         // still in the handler, after the answer
	rtWriteBehind         // the guard's write-behind flush (its own goroutine)
	rtBackground          // heartbeat, lease renewal, sweep, probe: not the request's
	rtKinds
)

// rtCounter is a go-redis hook counting round trips: one per command sent
// alone (ProcessHook) and one per pipeline (ProcessPipelineHook), each
// attributed by the goroutine that makes it and by whether the answer of
// the request in flight was already written.
type rtCounter struct {
	mu       sync.Mutex
	answered bool
	n        [rtKinds]int
	cmds     [rtKinds][]string
}

func (c *rtCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *rtCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.note(cmd.Name())
		return next(ctx, cmd)
	}
}

func (c *rtCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		names := make([]string, len(cmds))
		for i, cmd := range cmds {
			names[i] = cmd.Name()
		}
		c.note("pipeline[" + strings.Join(names, " ") + "]")
		return next(ctx, cmds)
	}
}

// note classifies a round trip by its caller's stack: the guard's
// write-behind and the periodic work are recognised by their functions;
// anything else belongs to the request in flight.
func (c *rtCounter) note(what string) {
	var pcs [64]uintptr
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs[:])])
	kind := -1
	where := ""
	for kind < 0 {
		f, more := frames.Next()
		if strings.Contains(f.Function, "voicegate/internal/") && !strings.Contains(where, " < ") {
			// The redisstate function and its caller.
			fn := f.Function[strings.LastIndex(f.Function, "/")+1:]
			switch {
			case where == "":
				where = fn
			case !strings.HasPrefix(fn, "redisstate.") && !strings.HasPrefix(fn, "app."):
				where += " < " + fn
			}
		}
		switch {
		case strings.Contains(f.Function, "redisstate.(*Guard).writeBehind"), strings.Contains(f.Function, "redisstate.(*Guard).flush"):
			kind = rtWriteBehind
		case strings.Contains(f.Function, "redisstate.(*Guard).renew"), strings.Contains(f.Function, "redisstate.(*Conn).CountReplicas"),
			strings.Contains(f.Function, "redisstate.(*Conn).probe"), strings.Contains(f.Function, "redisstate.(*Tracker).Sweep"),
			strings.Contains(f.Function, "health."):
			kind = rtBackground
		}
		if !more {
			break
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if kind < 0 {
		kind = rtBeforeAnswer
		if c.answered {
			kind = rtAfterAnswer
		}
	}
	c.n[kind]++
	c.cmds[kind] = append(c.cmds[kind], what+" by "+where)
}

// reset starts a request's count.
func (c *rtCounter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.answered = false
	c.n = [rtKinds]int{}
	c.cmds = [rtKinds][]string{}
}

func (c *rtCounter) get() (n [rtKinds]int, cmds [rtKinds][]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range cmds {
		cmds[k] = append([]string(nil), c.cmds[k]...)
	}
	return c.n, cmds
}

// answerWriter marks the counter answered at the first byte of the answer.
type answerWriter struct {
	http.ResponseWriter
	c    *rtCounter
	once sync.Once
}

func (w *answerWriter) mark() {
	w.once.Do(func() { w.c.mu.Lock(); w.c.answered = true; w.c.mu.Unlock() })
}
func (w *answerWriter) WriteHeader(s int)           { w.mark(); w.ResponseWriter.WriteHeader(s) }
func (w *answerWriter) Write(p []byte) (int, error) { w.mark(); return w.ResponseWriter.Write(p) }

// TestRedisRoundTripsPerWebhook counts, through the real gateway on the
// real Redis (state.driver redis), the round trips each message of one
// live call costs before its answer is sent, and those its write-behind
// flush costs afterwards. A change that adds a round trip to the hot path
// fails it (BENCHMARKS.md, "Shared state (several replicas)").
func TestRedisRoundTripsPerWebhook(t *testing.T) {
	e := newEnv(t, redisState(t, redistest.URL()))
	rc := e.app.Redis()
	if rc == nil {
		t.Fatal("state.driver redis gave no Redis connection")
	}
	c := &rtCounter{}
	rc.Client().AddHook(c)
	// The gateway served behind the counter's writer, on its own server.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.app.Gateway.ServeHTTP(&answerWriter{ResponseWriter: w, c: c}, r)
	}))
	t.Cleanup(srv.Close)
	if _, port, _ := net.SplitHostPort(srv.Listener.Addr().String()); port == "" {
		t.Fatal("no listener")
	}
	// e.signed signs for e.url; the path is the same on this server, and
	// the HMAC preset does not sign the host.
	post := func(body string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, srv.URL+strings.TrimPrefix(e.url, e.srv.URL), strings.NewReader(body))
		for k, v := range e.signed(body) {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	script := func(call string) []struct{ name, body string } {
		return []struct{ name, body string }{
			{"status-update (first, in-progress)", msg("status-update", call, `"status":"in-progress"`)},
			{"speech-update", msg("speech-update", call, `"role":"user","status":"started","turn":1`)},
			{"transcript", msg("transcript", call, `"role":"user","transcriptType":"partial","transcript":"I would like"`)},
			{"status-update (in-progress)", msg("status-update", call, `"status":"in-progress"`)},
			{"conversation-update", msg("conversation-update", call, `"messages":[{"role":"bot","message":"Hello"},{"role":"user","message":"I would like"}]`)},
			{"tool-calls", msg("tool-calls", call, `"toolCallList":[{"id":"rt-`+call+`","name":"getAppointment","arguments":{"day":"mon"}}]`)},
			{"status-update (ended)", msg("status-update", call, `"status":"ended","endedReason":"customer-ended-call"`)},
			{"end-of-call-report", msg("end-of-call-report", call, `"endedReason":"customer-ended-call"`)},
		}
	}
	// One call first, unmeasured: Redis learns the scripts (EVALSHA's
	// NOSCRIPT and the EVAL after it would count twice on a fresh Redis).
	for _, m := range script("rt-warm") {
		if s := post(m.body); s != 200 {
			t.Fatalf("warm-up %s: %d", m.name, s)
		}
	}
	waitFlushed(t, e)

	want := map[string][2]int{ // before the answer, written behind
		"status-update (first, in-progress)": {1, 1},
		"speech-update":                      {1, 1},
		"transcript":                         {1, 1},
		"status-update (in-progress)":        {1, 1},
		"conversation-update":                {1, 1},
		// The claim; the call ended (Tracker.End); the answer written behind.
		"status-update (ended)": {2, 1},
		// The claim; the call's in-flight count raised (a compare-and-set
		// on the state the claim read, dispatch.inFlight → Tracker.Update);
		// the memo of results already obtained (Memo.Recall); the in-flight
		// count lowered (again a compare-and-set); the tool's outcome
		// counted (Tracker.ToolCall); the answer stored before it is sent.
		"tool-calls": {6, 0},
		// The claim; the call ended (Tracker.End); the answer stored.
		"end-of-call-report": {3, 0},
	}
	for _, m := range script("rt-live") {
		c.reset()
		if s := post(m.body); s != 200 {
			t.Fatalf("%s: %d", m.name, s)
		}
		w := want[m.name]
		// Bounded wait for the flush, which runs in its own goroutine as
		// soon as the queue has an answer.
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if n, _ := c.get(); n[rtWriteBehind] >= w[1] {
				break
			}
		}
		waitFlushed(t, e)
		n, cmds := c.get()
		t.Logf("%-36s before answer %d %v; after answer %d %v; written behind %d %v; background %d",
			m.name, n[rtBeforeAnswer], cmds[rtBeforeAnswer], n[rtAfterAnswer], cmds[rtAfterAnswer], n[rtWriteBehind], cmds[rtWriteBehind], n[rtBackground])
		if n[rtBeforeAnswer] != w[0] {
			t.Errorf("%s: %d Redis round trips before the answer (%v), want %d", m.name, n[rtBeforeAnswer], cmds[rtBeforeAnswer], w[0])
		}
		if n[rtAfterAnswer] != 0 {
			t.Errorf("%s: %d Redis round trips in the handler after the answer (%v), want 0", m.name, n[rtAfterAnswer], cmds[rtAfterAnswer])
		}
		// The flush is batched across requests: alone, one request's
		// answer is one pipeline.
		if n[rtWriteBehind] != w[1] {
			t.Errorf("%s: %d write-behind round trips (%v), want %d", m.name, n[rtWriteBehind], cmds[rtWriteBehind], w[1])
		}
	}
}

// waitFlushed waits (bounded) until the guard has no request pending, and
// a little more: an answer written behind that nobody expected then shows
// in the next count, which fails.
func waitFlushed(t *testing.T, e *env) {
	t.Helper()
	type pender interface{ Pending() int }
	p, _ := e.app.Guard.(pender)
	deadline := time.Now().Add(5 * time.Second)
	for p != nil && p.Pending() > 0 {
		if time.Now().After(deadline) {
			t.Fatal("requests still pending after 5 s")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond) // the flush runs as soon as the queue has an answer
}
