package gateway_test

import (
	"context"
	"crypto/rand"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/envelope"
	"github.com/voicegate/voicegate/internal/netproxy"
	"github.com/voicegate/voicegate/internal/redisstate/redistest"
	"github.com/voicegate/voicegate/internal/state"
)

// redisState points the env at the test's own key prefix of the real Redis.
func redisState(t *testing.T, url string) func(*config.Config) {
	prefix := redistest.Prefix(t)
	return func(c *config.Config) {
		c.State.Driver, c.State.RedisURL, c.State.KeyPrefix = state.DriverRedis, url, prefix
		c.State.Timeout, c.State.Lease = 200*1e6, 2*1e9
		if err := c.Check(config.Options{Getenv: os.Getenv}); err != nil {
			t.Fatal(err)
		}
	}
}

// Two gateways sharing one Redis (two replicas): a tool call delivered to
// both reaches the internal API once, and the second gets the first's
// answer; a call's events spread over both make one session.
func TestReplicasShareState(t *testing.T) {
	state := redisState(t, redistest.URL())
	keyring := sharedKeyring(t)
	mut := func(c *config.Config) { keyring(c); state(c) }
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
	px := redisProxy(t)
	e := newEnv(t, redisState(t, "redis://"+px.Addr()+"/0"))
	px.Cut()
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
		status, retry, ans := e.postFull(body, e.signed(body))
		if status != http.StatusServiceUnavailable || retry == "" {
			t.Fatalf("a message with side effects while Redis is down: %d Retry-After=%q %s", status, retry, ans)
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
	px.Restore()
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
	px := redisProxy(t)
	mut := redisState(t, "redis://"+px.Addr()+"/0")
	e := newEnv(t, func(c *config.Config) { c.State.OnUnavailable = state.Local; mut(c) })
	px.Cut()
	if s, ans := e.send(msg("tool-calls", "local-call", `"toolCallList":[{"id":"t-local","name":"getAppointment","arguments":{}}]`)); s != 200 || e.hits.Load() != 1 {
		t.Fatalf("opt-in local: %d %s, internal API calls %d", s, ans, e.hits.Load())
	}
	if got := e.metric(`voicegate_state_local_total{decision="handled"}`); got != "1" {
		t.Fatalf("handled count %q", got)
	}
}

// redisProxy stands between voicegate and the real Redis, so that the
// test can cut the link and restore it.
func redisProxy(t *testing.T) *netproxy.Proxy {
	redistest.Need(t)
	p, err := netproxy.New("127.0.0.1:6379")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// What internal APIs answered is personal data: sealed in Redis, never in
// clear — the stored answer, the session and the tool results memo alike.
func TestRedisHoldsNoAnswerInClear(t *testing.T) {
	mut := redisState(t, redistest.URL())
	var prefix string
	e := newEnv(t, func(c *config.Config) { mut(c); prefix = c.State.KeyPrefix })
	body := msg("tool-calls", "sealed-call", `"toolCallList":[{"id":"t1","name":"getAppointment","arguments":{"patient":"Ada Lovelace"}}]`)
	if s, ans := e.send(body); s != 200 || !strings.Contains(ans, "Ada Lovelace") {
		t.Fatalf("tool call: %d %s", s, ans)
	}
	// A replay is still answered from the (sealed) stored answer.
	if s, ans := e.send(body); s != 200 || !strings.Contains(ans, "Ada Lovelace") || e.hits.Load() != 1 {
		t.Fatalf("replay: %d %s, internal API calls %d", s, ans, e.hits.Load())
	}
	opt, _ := redis.ParseURL(redistest.URL())
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, prefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys under %s: %v %v", prefix, keys, err)
	}
	for _, k := range keys {
		var vals []string
		switch typ := rdb.Type(ctx, k).Val(); typ {
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				vals = append(vals, f, v)
			}
		case "string":
			vals = append(vals, rdb.Get(ctx, k).Val())
		case "zset":
			vals = append(vals, rdb.ZRange(ctx, k, 0, -1).Val()...)
		}
		for _, v := range vals {
			if strings.Contains(v, "Ada") || strings.Contains(v, "Lovelace") {
				t.Fatalf("%s holds the answer in clear", k)
			}
		}
	}
}

// sharedKeyring gives replicas one records keyring (records.keyring_env),
// as a deployment must.
func sharedKeyring(t *testing.T) func(*config.Config) {
	path := filepath.Join(t.TempDir(), "keyring.json")
	if _, err := envelope.LoadFile(path, rand.Reader, time.Now); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("VOICEGATE_TEST_KEYRING", string(b))
	return func(c *config.Config) {
		c.Records.KeyringEnv, c.Records.KeyringJSON = "VOICEGATE_TEST_KEYRING", string(b)
	}
}
