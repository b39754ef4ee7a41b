package redisstate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voicegate/voicegate/internal/replay"
)

// Guard is a replay.Guard shared by replicas. A request's entry is a hash
// (state, expiry, answer) and its owner's lease a key of its own, so that
// a replica that dies mid-request stops owning it when the lease ends and
// a retry, on any replica, is handled once.
type Guard struct {
	c      *Conn
	window time.Duration
	grace  time.Duration
	// local answers while Redis is unreachable.
	local *replay.Cache

	mu      sync.Mutex
	pending map[*ticket]struct{}
}

type ticket struct {
	entry, lease string
	token        string
}

var _ replay.Guard = (*Guard)(nil)

// NewGuard returns a guard remembering requests for window (and for as
// long as their credential verifies); grace is replay.Cache.SetGrace's.
// localCapacity bounds the fallback cache used while Redis is down.
func NewGuard(c *Conn, window, grace time.Duration, localCapacity int) *Guard {
	g := &Guard{c: c, window: window, grace: grace, local: replay.New(window, localCapacity), pending: make(map[*ticket]struct{})}
	g.local.SetGrace(grace)
	c.wg.Add(1)
	go func() { defer c.wg.Done(); g.renew() }()
	return g
}

// claim: KEYS entry, lease; ARGV at(µs), expires(µs), keep(ms), lease(ms),
// token. Returns {0} claimed, {1, status, body, ctype, callid, type}
// answered, {2} pending under a live lease, {3} taken over (the owner's
// lease ended without an answer).
var claimScript = redis.NewScript(`
local exp = redis.call('HGET', KEYS[1], 'x')
if exp and tonumber(exp) > tonumber(ARGV[1]) then
  local st = redis.call('HGET', KEYS[1], 's')
  if st == 'd' then
    local r = redis.call('HMGET', KEYS[1], 'c', 'b', 't', 'i', 'y')
    return {1, r[1], r[2], r[3], r[4], r[5]}
  end
  if redis.call('EXISTS', KEYS[2]) == 1 then return {2} end
  redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[4])
  return {3}
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 's', 'p', 'x', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[4])
return {0}
`)

// finish: KEYS entry, lease; ARGV token, remember, status, body, ctype,
// callid, type. Only a pending entry changes; a forget removes only what
// this owner (or nobody) holds.
var finishScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 's') ~= 'p' then return 0 end
local owner = redis.call('GET', KEYS[2])
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], 's', 'd', 'c', ARGV[3], 'b', ARGV[4], 't', ARGV[5], 'i', ARGV[6], 'y', ARGV[7])
  if owner == ARGV[1] then redis.call('DEL', KEYS[2]) end
  return 1
end
if owner == ARGV[1] or not owner then redis.call('DEL', KEYS[1], KEYS[2]) end
return 1
`)

// renewScript: KEYS lease; ARGV token, lease(ms).
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

// BeginAt implements replay.Guard: one round trip, unless a duplicate
// waits for an original still being handled (polled, bounded by ctx).
func (g *Guard) BeginAt(ctx context.Context, k replay.Key, at, validUntil time.Time) (replay.Response, bool, replay.Ticket, error) {
	if !g.c.Up() {
		return g.beginLocal(ctx, k, at, validUntil)
	}
	hk := string(k[:])
	t := &ticket{entry: g.c.key("r", hk), lease: g.c.key("l", hk), token: newToken()}
	expires := at.Add(g.window)
	if validUntil.After(expires) {
		expires = validUntil
	}
	keep := max(expires.Sub(at)+g.grace, time.Millisecond)
	args := []any{at.UnixMicro(), expires.UnixMicro(), keep.Milliseconds(), g.c.lease.Milliseconds(), t.token}
	wait := 2 * time.Millisecond
	for {
		res, err := claimScript.Run(ctx, g.c.rdb, []string{t.entry, t.lease}, args...).Slice()
		if err != nil {
			if ctx.Err() != nil {
				return replay.Response{}, true, replay.Ticket{}, ctx.Err()
			}
			g.c.failed(err)
			if !g.c.Up() {
				return g.beginLocal(ctx, k, at, validUntil)
			}
			return replay.Response{}, true, replay.Ticket{}, err
		}
		switch code, _ := res[0].(int64); code {
		case 0, 3:
			g.mu.Lock()
			g.pending[t] = struct{}{}
			g.mu.Unlock()
			return replay.Response{}, false, replay.Ticket{Key: k, Handle: t}, nil
		case 1:
			return responseOf(res[1:]), true, replay.Ticket{}, nil
		}
		// Pending on another replica (or this one): wait for its answer.
		select {
		case <-ctx.Done():
			return replay.Response{}, true, replay.Ticket{}, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 50*time.Millisecond)
	}
}

func (g *Guard) beginLocal(ctx context.Context, k replay.Key, at, validUntil time.Time) (replay.Response, bool, replay.Ticket, error) {
	r, replayed, t, err := g.local.BeginAt(ctx, k, at, validUntil)
	t.Local = true
	return r, replayed, t, err
}

// Finish implements replay.Guard: one round trip.
func (g *Guard) Finish(tk replay.Ticket, r replay.Response, remember bool) {
	if tk.Local {
		g.local.Finish(tk, r, remember)
		return
	}
	t, _ := tk.Handle.(*ticket)
	if t == nil {
		return
	}
	g.mu.Lock()
	_, ok := g.pending[t]
	delete(g.pending, t)
	g.mu.Unlock()
	if !ok {
		return // only the first Finish counts
	}
	rem := "0"
	if remember {
		rem = "1"
	}
	ctx, cancel := g.c.ctx()
	defer cancel()
	err := finishScript.Run(ctx, g.c.rdb, []string{t.entry, t.lease}, t.token, rem, r.Status, r.Body, r.ContentType, r.CallID, r.Type).Err()
	if err != nil {
		// The answer is not stored: a duplicate waits for the lease to
		// end and is then handled again. Logged by the Conn when Redis
		// is down; counted by the caller's metrics otherwise.
		g.c.failed(err)
	}
}

// renew extends the lease of every request this replica is handling,
// every third of the lease, in one pipeline.
func (g *Guard) renew() {
	t := time.NewTicker(g.c.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-g.c.stop:
			return
		case <-t.C:
		}
		g.mu.Lock()
		leases := make([]*ticket, 0, len(g.pending))
		for tk := range g.pending {
			leases = append(leases, tk)
		}
		g.mu.Unlock()
		if len(leases) == 0 || !g.c.Up() {
			continue
		}
		ctx, cancel := g.c.ctx()
		_, err := g.c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, tk := range leases {
				renewScript.Eval(ctx, p, []string{tk.lease}, tk.token, g.c.lease.Milliseconds())
			}
			return nil
		})
		cancel()
		if err != nil {
			g.c.failed(err)
		}
	}
}

// Pending returns how many requests this replica is handling under a
// lease.
func (g *Guard) Pending() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pending)
}

func responseOf(v []any) replay.Response {
	str := func(i int) string { s, _ := v[i].(string); return s }
	status, _ := strconv.Atoi(str(0))
	return replay.Response{Status: status, Body: []byte(str(1)), ContentType: str(2), CallID: str(3), Type: str(4)}
}

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// BoundedByStore tells the replaytest suite that this guard's memory is
// bounded by Redis (entries expire with their window), not by a count.
func (g *Guard) BoundedByStore() bool { return true }

// Local is the per-replica cache used while Redis is unreachable.
func (g *Guard) Local() *replay.Cache { return g.local }
