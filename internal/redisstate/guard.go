package redisstate

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/replay"
	"github.com/voicegate/voicegate/internal/session"
)

// Guard is a replay.Guard shared by replicas. A request's entry is a hash
// (state, expiry, answer) and its owner's lease a key of its own, so that
// a replica that dies mid-request stops owning it when the lease ends and
// a retry, on any replica, is handled once.
//
// With a request's replay.Subject (the source decoded it first) the claim
// also notes the event in its call's session and reads the call's state,
// in the same script: a request without side effects then costs one round
// trip on its path, its answer and its call's changes being written behind
// (batched across requests); one with side effects has its answer stored
// before it is sent.
type Guard struct {
	c      *Conn
	calls  *Tracker
	window time.Duration
	grace  time.Duration
	// local answers while Redis is unreachable.
	local *replay.Cache

	mu      sync.Mutex
	pending map[*ticket]struct{}

	behind chan *ticket // answers to write behind
}

// ticket is a claimed request; with a subject, it also carries its call's
// state as the claim read it and the changes to write with its answer.
type ticket struct {
	entry, lease string
	token        string
	subj         replay.Subject
	hasSubj      bool
	callKey      string // set when the claim read the call

	// The call, when the claim read it (hasSubj and a call id).
	callMu   sync.Mutex
	observed int64 // 1 first sight, 0 seen, -1 ended, -2 full, -3 not observed
	live     bool
	ended    bool
	state    session.State
	ops      []any  // kind, field, value triples (see finishScript)
	ver      string // the call's version ("v") as the claim read it
	// fns are the changes ops stand for, run again on the current state
	// when another request changed the call since the claim (reapply).
	fns []func(*session.State)

	// The answer, once Finish has it.
	resp     replay.Response
	remember bool
	seal     *sealer
	sealed   []byte // resp.Body as stored
	// unstored is when an answer with side effects could not be stored
	// (zero: stored, or not finished).
	unstored time.Time
}

var _ replay.Guard = (*Guard)(nil)

// NewGuard returns a guard remembering requests for window (and for as
// long as their credential verifies); grace is replay.Cache.SetGrace's.
// localCapacity bounds the fallback cache used while Redis is down. calls,
// when set, is the tracker whose sessions a claim with a subject notes.
func NewGuard(c *Conn, window, grace time.Duration, localCapacity int, calls *Tracker) *Guard {
	g := &Guard{c: c, calls: calls, window: window, grace: grace, local: replay.New(window, localCapacity),
		pending: make(map[*ticket]struct{}), behind: make(chan *ticket, 4096)}
	g.local.SetGrace(grace)
	c.wg.Add(2)
	go func() { defer c.wg.Done(); g.renew() }()
	go func() { defer c.wg.Done(); g.writeBehind() }()
	return g
}

// claim: KEYS entry, lease, call, ended, live; ARGV at(µs), expires(µs),
// keep(ms), lease(ms), token, then the call part: mode (0 none, 1 read,
// 2 observe), id, status, initial, now(µs), call keep(ms), capacity,
// now(ms). Returns {0, obs, hash...} claimed, {1, status, body, ctype,
// callid, type} answered, {2} pending under a live lease, {3, obs,
// hash...} taken over (the owner's lease ended without an answer). obs:
// 1 first sight, 0 seen, -1 ended, -2 full, -3 read only.
var claimScript = redis.NewScript(`
local function call()
  local obs
  local mode = ARGV[6]
  if mode == '0' then return {-3} end
  if redis.call('EXISTS', KEYS[4]) == 1 then return {-1} end
  if mode == '1' then
    local r = redis.call('HGETALL', KEYS[3])
    table.insert(r, 1, -3)
    return r
  end
  if redis.call('EXISTS', KEYS[3]) == 0 then
    if redis.call('ZCARD', KEYS[5]) >= tonumber(ARGV[12]) then return {-2} end
    redis.call('HSET', KEYS[3], 't0', ARGV[10])
    if ARGV[9] ~= '' then redis.call('HSET', KEYS[3], 's', ARGV[9]) end
    obs = 1
  else
    obs = 0
  end
  if ARGV[8] ~= '' then redis.call('HSET', KEYS[3], 's', ARGV[8]) end
  redis.call('HINCRBY', KEYS[3], 'ev', 1)
  redis.call('HINCRBY', KEYS[3], 'v', 1)
  redis.call('PEXPIRE', KEYS[3], ARGV[11])
  redis.call('ZADD', KEYS[5], ARGV[13], ARGV[7])
  local r = redis.call('HGETALL', KEYS[3])
  table.insert(r, 1, obs)
  return r
end
local exp = redis.call('HGET', KEYS[1], 'x')
if exp and tonumber(exp) > tonumber(ARGV[1]) then
  local st = redis.call('HGET', KEYS[1], 's')
  if st == 'd' then
    local r = redis.call('HMGET', KEYS[1], 'c', 'b', 't', 'i', 'y')
    return {1, r[1], r[2], r[3], r[4], r[5]}
  end
  if redis.call('EXISTS', KEYS[2]) == 1 then return {2} end
  redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[4])
  local r = call()
  table.insert(r, 1, 3)
  return r
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 's', 'p', 'x', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[4])
local r = call()
table.insert(r, 1, 0)
return r
`)

// finish: KEYS entry, lease, call; ARGV token, remember, status, body,
// ctype, callid, type, the call's version as the claim read it, then the
// call's changes as (kind, field, value) triples: s set, i increment, m raise to at least, d delete. The answer
// changes only a pending entry; a forget removes only what this owner (or
// nobody) holds; the changes apply only to a live call.
var finishScript = redis.NewScript(`
local conflict = 0
if #ARGV > 8 and redis.call('EXISTS', KEYS[3]) == 1 then
 if redis.call('HGET', KEYS[3], 'v') ~= ARGV[8] then
  conflict = 1
 else
  for i = 9, #ARGV, 3 do
    local k, f, v = ARGV[i], ARGV[i+1], ARGV[i+2]
    if k == 's' then redis.call('HSET', KEYS[3], f, v)
    elseif k == 'i' then redis.call('HINCRBY', KEYS[3], f, v)
    elseif k == 'm' then
      if tonumber(v) > tonumber(redis.call('HGET', KEYS[3], f) or '0') then redis.call('HSET', KEYS[3], f, v) end
    elseif k == 'd' then redis.call('HDEL', KEYS[3], f) end
  end
  redis.call('HINCRBY', KEYS[3], 'v', 1)
 end
end
if redis.call('HGET', KEYS[1], 's') ~= 'p' then return {0, conflict} end
local owner = redis.call('GET', KEYS[2])
if ARGV[2] == '1' then
  redis.call('HSET', KEYS[1], 's', 'd', 'c', ARGV[3], 'b', ARGV[4], 't', ARGV[5], 'i', ARGV[6], 'y', ARGV[7])
  if owner == ARGV[1] then redis.call('DEL', KEYS[2]) end
  return {1, conflict}
end
if owner == ARGV[1] or not owner then redis.call('DEL', KEYS[1], KEYS[2]) end
return {1, conflict}
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
	t := &ticket{entry: g.c.key("r", hk), lease: g.c.key("l", hk), token: newToken(), observed: -3, seal: g.c.seal}
	t.subj, t.hasSubj = replay.SubjectOf(ctx)
	expires := at.Add(g.window)
	if validUntil.After(expires) {
		expires = validUntil
	}
	keep := max(expires.Sub(at)+g.grace, time.Millisecond)
	keys := []string{t.entry, t.lease, t.entry, t.entry, t.entry}
	args := []any{at.UnixMicro(), expires.UnixMicro(), keep.Milliseconds(), g.c.lease.Milliseconds(), t.token, 0}
	if t.hasSubj && t.subj.CallID != "" && g.calls != nil {
		id := t.subj.CallID
		t.callKey = g.calls.callKey(id)
		keys = []string{t.entry, t.lease, t.callKey, g.calls.endedKey(id), g.calls.live}
		now := g.c.now()
		mode := 1
		if t.subj.Observe {
			mode = 2
		}
		args = append(args[:5], mode, id, t.subj.Status, t.subj.Initial, now.UnixMicro(), g.calls.keep().Milliseconds(), g.calls.capacity, now.UnixMilli())
	}
	wait := 2 * time.Millisecond
	for {
		res, err := claimScript.Run(ctx, g.c.rdb, keys, args...).Slice()
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
			t.readCall(res[1:])
			g.mu.Lock()
			g.pending[t] = struct{}{}
			g.mu.Unlock()
			return replay.Response{}, false, replay.Ticket{Key: k, Handle: t}, nil
		case 1:
			r := responseOf(res[1:])
			body, err := g.c.seal.openBytes(r.Body, t.entry)
			if err != nil {
				g.c.log.Error("a stored answer could not be opened: every replica must have the same records keyring", logkey.Err, err)
				return replay.Response{}, true, replay.Ticket{}, err
			}
			r.Body = body
			return r, true, replay.Ticket{}, nil
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

// readCall keeps what the claim read of the call: {obs, hash...}.
func (t *ticket) readCall(v []any) {
	if len(v) == 0 {
		return
	}
	t.observed, _ = v[0].(int64)
	t.ended = t.observed == -1
	h := make(map[string]string, (len(v)-1)/2)
	for i := 1; i+1 < len(v); i += 2 {
		k, _ := v[i].(string)
		h[k], _ = v[i+1].(string)
	}
	t.live = len(h) > 0
	t.ver = h["v"]
	if t.live {
		t.seal.openFields(h, t.callKey)
		t.state = decodeState(h)
	}
}

func (g *Guard) beginLocal(ctx context.Context, k replay.Key, at, validUntil time.Time) (replay.Response, bool, replay.Ticket, error) {
	r, replayed, t, err := g.local.BeginAt(ctx, k, at, validUntil)
	t.Local = true
	return r, replayed, t, err
}

// Finish implements replay.Guard: one round trip, written behind for a
// request without side effects.
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
	if !t.unstored.IsZero() {
		ok = false // finished, its answer waiting to be stored
	} else {
		delete(g.pending, t)
	}
	g.mu.Unlock()
	if !ok {
		return // only the first Finish counts
	}
	t.resp, t.remember = r, remember
	if t.hasSubj && !t.subj.SideEffects {
		select {
		case g.behind <- t:
			return
		default: // the queue is full: written now
		}
	}
	if err := g.store(t); err != nil && t.hasSubj && t.subj.SideEffects && remember {
		// The answer was sent but not stored (Redis unreachable): kept
		// pending, its lease renewed, and stored as soon as Redis answers
		// (renew), so that a duplicate gets it instead of acting again.
		g.mu.Lock()
		t.unstored = g.c.now()
		g.pending[t] = struct{}{}
		g.mu.Unlock()
	}
}

// store writes t's answer and call changes now.
func (g *Guard) store(t *ticket) error {
	ctx, cancel := g.c.ctx()
	defer cancel()
	res, err := finishScript.Run(ctx, g.c.rdb, t.finishKeys(), t.finishArgs()...).Slice()
	g.c.failed(err)
	if err == nil && conflicted(res) {
		g.reapply(t)
	}
	return err
}

// conflicted reports whether a finish found its call changed since the
// claim read it (its changes were then not written).
func conflicted(res []any) bool {
	if len(res) < 2 {
		return false
	}
	c, _ := res[1].(int64)
	return c == 1
}

// reapply applies a request's call changes to the call's current state
// (another request of the call changed it since this one's claim): the
// changes are the request's functions, run again on the fresh state and
// written if nothing changed it meanwhile (Tracker.Update), so that no
// request's change is lost.
func (g *Guard) reapply(t *ticket) {
	t.callMu.Lock()
	fns := t.fns
	t.callMu.Unlock()
	if len(fns) == 0 || g.calls == nil {
		return
	}
	g.calls.Update(context.Background(), t.subj.CallID, func(s *session.State) {
		for _, f := range fns {
			f(s)
		}
	})
}

func (t *ticket) finishKeys() []string {
	call := t.callKey
	if call == "" {
		call = t.entry // no call read: the script has no changes for it
	}
	return []string{t.entry, t.lease, call}
}

func (t *ticket) finishArgs() []any {
	rem := "0"
	if t.remember {
		rem = "1"
	}
	t.callMu.Lock()
	defer t.callMu.Unlock()
	if t.sealed == nil && t.remember {
		t.sealed = t.seal.sealBytes(t.resp.Body, t.entry)
	}
	args := []any{t.token, rem, t.resp.Status, t.sealed, t.resp.ContentType, t.resp.CallID, t.resp.Type}
	if !t.remember || len(t.ops) == 0 {
		// A request answered with a passing failure is handled again:
		// its call changes are not written (they will be, by the retry).
		return args
	}
	return append(append(args, t.ver), t.ops...)
}

// writeBehind stores the answers (and the calls' changes) of requests
// without side effects, many in one pipeline. Until one is stored, a
// duplicate of its request waits for it; if this replica dies first, its
// lease ends and the duplicate is handled again (harmless: no side
// effects). At Close it drains what is queued.
func (g *Guard) writeBehind() {
	batch := make([]*ticket, 0, 256)
	for {
		select {
		case t := <-g.behind:
			batch = append(batch[:0], t)
		case <-g.c.stop:
			for {
				select {
				case t := <-g.behind:
					batch = append(batch[:0], t)
					g.flush(batch)
				default:
					return
				}
			}
		}
	more:
		for len(batch) < cap(batch) {
			select {
			case t := <-g.behind:
				batch = append(batch, t)
			default:
				break more
			}
		}
		g.flush(batch)
	}
}

func (g *Guard) flush(batch []*ticket) {
	ctx, cancel := g.c.ctx()
	defer cancel()
	run := func(p redis.Pipeliner) error {
		for _, t := range batch {
			finishScript.EvalSha(ctx, p, t.finishKeys(), t.finishArgs()...)
		}
		return nil
	}
	cmds, err := g.c.rdb.Pipelined(ctx, run)
	if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
		// Redis restarted and lost its scripts: load, then once more.
		if err = finishScript.Load(ctx, g.c.rdb).Err(); err == nil {
			cmds, err = g.c.rdb.Pipelined(ctx, run)
		}
	}
	g.c.failed(err)
	for i, c := range cmds {
		if sc, ok := c.(*redis.Cmd); ok && i < len(batch) {
			if res, err := sc.Slice(); err == nil && conflicted(res) {
				g.reapply(batch[i])
			}
		}
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
		case <-g.c.back:
		}
		g.mu.Lock()
		leases := make([]*ticket, 0, len(g.pending))
		var unstored []*ticket
		for tk := range g.pending {
			if !tk.unstored.IsZero() {
				unstored = append(unstored, tk)
			}
			leases = append(leases, tk)
		}
		g.mu.Unlock()
		if len(leases) == 0 || !g.c.Up() {
			continue
		}
		for _, tk := range unstored {
			if g.store(tk) == nil || g.c.now().Sub(tk.unstored) > g.window {
				// Stored, or past the window in which a replay would
				// be recognised anyway.
				g.mu.Lock()
				delete(g.pending, tk)
				g.mu.Unlock()
			}
		}
		ctx, cancel := g.c.ctx()
		_, err := g.c.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, tk := range leases {
				renewScript.Eval(ctx, p, []string{tk.lease}, tk.token, g.c.lease.Milliseconds())
			}
			return nil
		})
		cancel()
		g.c.failed(err)
	}
}

// Pending returns how many requests this replica is handling under a
// lease.
func (g *Guard) Pending() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pending)
}

// BoundedByStore tells the replaytest suite that this guard's memory is
// bounded by Redis (entries expire with their window), not by a count.
func (g *Guard) BoundedByStore() bool { return true }

// Local is the per-replica cache used while Redis is unreachable.
func (g *Guard) Local() *replay.Cache { return g.local }

func responseOf(v []any) replay.Response {
	str := func(i int) string {
		if i >= len(v) {
			return ""
		}
		s, _ := v[i].(string)
		return s
	}
	status, _ := strconv.Atoi(str(0))
	return replay.Response{Status: status, Body: []byte(str(1)), ContentType: str(2), CallID: str(3), Type: str(4)}
}

func newToken() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
