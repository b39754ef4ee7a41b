package gateway_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/redisstate/redistest"
	"github.com/voicegate/voicegate/internal/state"
)

// redisState points the env at the test's own key prefix of the real Redis.
func redisState(t *testing.T, url string) func(*config.Config) {
	prefix := redistest.Prefix(t)
	return func(c *config.Config) {
		c.State.Driver, c.State.RedisURL, c.State.KeyPrefix = state.DriverRedis, url, prefix
		c.State.Timeout, c.State.Lease = 200*1e6, 2*1e9
		if err := c.Check(config.Options{}); err != nil {
			t.Fatal(err)
		}
	}
}

// postFull is post with the response's headers.
func (e *env) postFull(body string) (*http.Response, string) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(body))
	req.Header = e.signed(body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// Two gateways sharing one Redis (two replicas): a tool call delivered to
// both reaches the internal API once, and the second gets the first's
// answer; a call's events spread over both make one session.
func TestReplicasShareState(t *testing.T) {
	mut := redisState(t, redistest.URL())
	a := newEnv(t, mut)
	b := newEnv(t, func(c *config.Config) {
		mut(c)
	})
	b.api = a.api
	body := msg("tool-calls", "shared-call", `"toolCallList":[{"id":"t1","name":"getAppointment","arguments":{"day":"mon"}}]`)
	// b's tools point at its own stand-in: count both.
	sa, ansA := a.send(body)
	sb, ansB := b.post(body, a.signed(body))
	if sa != 200 || sb != 200 || ansA != ansB {
		t.Fatalf("original %d %s, replay on the other replica %d %s", sa, ansA, sb, ansB)
	}
	if n := a.hits.Load() + b.hits.Load(); n != 1 {
		t.Fatalf("the internal API was called %d times for one tool call delivered to two replicas", n)
	}
	if s, _ := b.send(msg("end-of-call-report", "shared-call", `"endedReason":"customer-ended-call"`)); s != 200 {
		t.Fatalf("end-of-call report on b: %d", s)
	}
	// The call ended on b: a late event on a is not tracked again.
	if s, _ := a.send(msg("speech-update", "shared-call", `"role":"user","status":"started","turn":1`)); s != 200 {
		t.Fatalf("late event on a: %d", s)
	}
	if a.app.Tracker.Seen(context.Background(), "shared-call") != true {
		t.Fatal("the ended call is not remembered across replicas")
	}
	if _, live := a.app.Tracker.Context("shared-call"); live {
		t.Fatal("a late event on another replica brought the ended call back")
	}
}

// Redis unreachable: messages without side effects are answered from this
// replica's memory; tool calls and end-of-call reports get 503 with
// Retry-After (so Vapi retries them), and nothing reaches the internal
// API; when Redis is back, the same tool call is handled, without a
// restart.
func TestRedisDownRefusesSideEffects(t *testing.T) {
	px := newTCPProxy(t, "127.0.0.1:6379")
	e := newEnv(t, redisState(t, "redis://"+px.addr()+"/0"))
	px.cut(true)
	for _, body := range []string{
		msg("status-update", "down-call", `"status":"in-progress"`),
		msg("speech-update", "down-call", `"role":"user","status":"started","turn":1`),
		msg("transcript", "down-call", `"role":"user","transcriptType":"final","transcript":"hello"`),
	} {
		if s, ans := e.send(body); s != 200 {
			t.Fatalf("a message without side effects while Redis is down: %d %s", s, ans)
		}
	}
	tool := msg("tool-calls", "down-call", `"toolCallList":[{"id":"t-down","name":"getAppointment","arguments":{}}]`)
	for _, body := range []string{tool, msg("end-of-call-report", "down-call", `"endedReason":"customer-ended-call"`)} {
		resp, ans := e.postFull(body)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("a message with side effects while Redis is down: %d Retry-After=%q %s", resp.StatusCode, resp.Header.Get("Retry-After"), ans)
		}
	}
	if n := e.hits.Load(); n != 0 {
		t.Fatalf("the internal API was called %d times while Redis was down", n)
	}
	if got := e.metric(`voicegate_state_local_total{decision="refused"}`); got != "2" {
		t.Fatalf("refused count %q, want 2", got)
	}
	if got := e.metric("voicegate_state_redis_up"); got != "0" {
		t.Fatalf("voicegate_state_redis_up %q while Redis is down", got)
	}
	px.cut(false)
	deadline := time.Now().Add(15 * time.Second)
	for e.metric("voicegate_state_redis_up") != "1" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if s, ans := e.send(tool); s != 200 || e.hits.Load() != 1 {
		t.Fatalf("the tool call after Redis came back: %d %s, internal API calls %d", s, ans, e.hits.Load())
	}
}

// state.on_unavailable: local handles side effects on this replica's memory.
func TestRedisDownLocalOptIn(t *testing.T) {
	px := newTCPProxy(t, "127.0.0.1:6379")
	mut := redisState(t, "redis://"+px.addr()+"/0")
	e := newEnv(t, func(c *config.Config) { c.State.OnUnavailable = state.Local; mut(c) })
	px.cut(true)
	if s, ans := e.send(msg("tool-calls", "local-call", `"toolCallList":[{"id":"t-local","name":"getAppointment","arguments":{}}]`)); s != 200 || e.hits.Load() != 1 {
		t.Fatalf("opt-in local: %d %s, internal API calls %d", s, ans, e.hits.Load())
	}
	if got := e.metric(`voicegate_state_local_total{decision="handled"}`); got != "1" {
		t.Fatalf("handled count %q", got)
	}
}

// tcpProxy stands between voicegate and the real Redis, so that the test
// can cut the link and restore it.
type tcpProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

func newTCPProxy(t *testing.T, target string) *tcpProxy {
	redistest.Need(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.down {
				p.mu.Unlock()
				c.Close()
				continue
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				c.Close()
				continue
			}
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close() }()
			go func() { io.Copy(c, u); c.Close() }()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.cut(true) })
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) cut(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for _, c := range p.conns {
			c.Close()
		}
		p.conns = nil
	}
}
