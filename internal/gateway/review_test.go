package gateway_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/dispatch"
	"github.com/voicegate/voicegate/internal/redisstate/redistest"
	"github.com/voicegate/voicegate/internal/replay"
)

// A message with side effects refused because Redis is unreachable says
// when to retry as the dispatcher decided (dispatch.StateRetryAfter: the
// probe's second plus a margin), not the store's one second.
func TestRedisDownRetryAfterIsTheStates(t *testing.T) {
	px := redisProxy(t)
	e := newEnv(t, redisState(t, "redis://"+px.Addr()+"/0"))
	px.Cut()
	body := msg("tool-calls", "retry-call", `"toolCallList":[{"id":"t-retry","name":"getAppointment","arguments":{}}]`)
	status, retry, ans := e.postFull(body, e.signed(body))
	if want := strconv.Itoa(dispatch.StateRetryAfter); status != http.StatusServiceUnavailable || retry != want {
		t.Fatalf("tool call while Redis is down: %d Retry-After=%q (want 503, %s) %s", status, retry, want, ans)
	}
}

// Redis answering the claim with an error (out of memory, a key of the
// wrong type) is a passing failure like an unreachable Redis: 503 with
// Retry-After, so that Vapi retries, and nothing reaches the internal API.
func TestClaimErrorIsRetriedLater(t *testing.T) {
	mut := redisState(t, redistest.URL())
	var prefix string
	e := newEnv(t, func(c *config.Config) { mut(c); prefix = c.State.KeyPrefix })
	body := msg("tool-calls", "claim-error-call", `"toolCallList":[{"id":"t-err","name":"getAppointment","arguments":{}}]`)
	k, salt := replay.KeyOf([]byte(body)), replay.KeyOf([]byte("voicegate source vapi"))
	for i := range k {
		k[i] ^= salt[i]
	}
	opt, _ := redis.ParseURL(redistest.URL())
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	if err := rdb.Set(context.Background(), prefix+"r:"+string(k[:]), "not a hash", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	status, retry, ans := e.postFull(body, e.signed(body))
	if status != http.StatusServiceUnavailable || retry == "" || e.hits.Load() != 0 {
		t.Fatalf("claim answered with an error: %d Retry-After=%q %s, internal API calls %d", status, retry, ans, e.hits.Load())
	}
}
