package redisstate

import (
	"context"
	"encoding/json"
	"maps"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/periodic"
	"github.com/voicegate/voicegate/internal/replay"
	"github.com/voicegate/voicegate/internal/session"
)

// Tracker is a session.Tracker shared by replicas: each live call is a
// Redis hash (expiring after the session TTL plus a margin), each ended
// call a key remembered for session.EndedMemory, and a sorted set of live
// calls by last event bounds their number (sessions.capacity, for the whole
// deployment) and drives expiry. Every method is one round trip except
// Update (a read, then a compare-and-set retried on conflict).
//
// A call's Context is this replica's: cancelled when this replica ends or
// forgets the call, when a sweep finds it gone, or at Close.
type Tracker struct {
	c        *Conn
	ttl      time.Duration
	capacity int
	live     string
	// local answers while Redis is unreachable.
	local *session.Table

	ctxMu sync.Mutex
	ctxs  map[string]context.CancelFunc
	ctxOf map[string]context.Context

	count atomic.Int64 // live calls at the last sweep
	// OnExpire, if set, is called for each call the sweeps find silent
	// for the TTL (on the one replica whose sweep removed it).
	OnExpire func(id string, last session.State)
}

var _ session.Tracker = (*Tracker)(nil)

// NewTracker returns a tracker of calls silent at most ttl, at most
// capacity live at once across the deployment.
func NewTracker(c *Conn, ttl time.Duration, capacity int, now func() time.Time) *Tracker {
	return &Tracker{c: c, ttl: ttl, capacity: capacity, live: c.key("live"), local: session.New(ttl, capacity, now),
		ctxs: make(map[string]context.CancelFunc), ctxOf: make(map[string]context.Context)}
}

// Local is the table used while Redis is unreachable.
func (t *Tracker) Local() *session.Table { return t.local }

func (t *Tracker) callKey(id string) string  { return t.c.key("c", id) }
func (t *Tracker) endedKey(id string) string { return t.c.key("e", id) }

// keep is how long a call's hash outlives its last event: the TTL, and
// then long enough for a sweep to find it and log its end.
func (t *Tracker) keep() time.Duration { return t.ttl + 10*time.Minute }

var observeScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return -1 end
local first = 0
if redis.call('EXISTS', KEYS[1]) == 0 then
  if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[6]) then return -2 end
  first = 1
  redis.call('HSET', KEYS[1], 't0', ARGV[4])
  if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 's', ARGV[3]) end
end
if ARGV[2] ~= '' then redis.call('HSET', KEYS[1], 's', ARGV[2]) end
redis.call('HINCRBY', KEYS[1], 'ev', 1)
redis.call('HINCRBY', KEYS[1], 'v', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[3], ARGV[7], ARGV[1])
return first
`)

// Observe implements session.Tracker.
func (t *Tracker) Observe(ctx context.Context, id, status, initial string) (bool, error) {
	if tk := claimed(ctx, id); tk != nil && tk.subj.Observe && tk.subj.Status == status && tk.subj.Initial == initial {
		// Noted by the request's claim; the first use of it only.
		tk.callMu.Lock()
		obs := tk.observed
		tk.observed = -3
		tk.callMu.Unlock()
		switch obs {
		case 1, 0:
			return obs == 1, nil
		case -1:
			return false, session.ErrEnded
		case -2:
			return false, session.ErrFull
		}
	}
	if !t.c.Up() {
		return t.local.Observe(ctx, id, status, initial)
	}
	now := t.c.now()
	ctx, cancel := t.c.ctx()
	defer cancel()
	n, err := observeScript.Run(ctx, t.c.rdb, []string{t.callKey(id), t.endedKey(id), t.live},
		id, status, initial, now.UnixMicro(), t.keep().Milliseconds(), t.capacity, now.UnixMilli()).Int64()
	if err != nil {
		t.c.failed(err)
		return t.local.Observe(ctx, id, status, initial)
	}
	switch n {
	case -1:
		return false, session.ErrEnded
	case -2:
		return false, session.ErrFull
	}
	return n == 1, nil
}

var speechScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == 'assistant' then redis.call('HSET', KEYS[1], 'as', ARGV[2])
elseif ARGV[1] == 'user' then redis.call('HSET', KEYS[1], 'us', ARGV[2]) end
local tn = tonumber(redis.call('HGET', KEYS[1], 'tn') or '0')
if tonumber(ARGV[3]) > tn then redis.call('HSET', KEYS[1], 'tn', ARGV[3]) end
redis.call('HINCRBY', KEYS[1], 'v', 1)
return 1
`)

// Speech implements session.Tracker.
func (t *Tracker) Speech(ctx context.Context, id, role string, started bool, turn int) bool {
	if tk := batched(ctx, id); tk != nil {
		ops := []any{"m", "tn", turn}
		if role == "assistant" || role == "user" {
			ops = append(ops, "s", role[:1]+"s", b01(started))
		}
		return tk.queue(func(s *session.State) {
			switch role {
			case "assistant":
				s.AssistantSpeaking = started
			case "user":
				s.UserSpeaking = started
			}
			s.Turn = max(s.Turn, turn)
		}, ops...)
	}
	if !t.c.Up() {
		return t.local.Speech(ctx, id, role, started, turn)
	}
	return t.run(speechScript, id, func() bool { return t.local.Speech(ctx, id, role, started, turn) }, role, b01(started), turn)
}

var interruptedScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'in', 1)
redis.call('HSET', KEYS[1], 'as', '0')
redis.call('HINCRBY', KEYS[1], 'v', 1)
return 1
`)

// Interrupted implements session.Tracker.
func (t *Tracker) Interrupted(ctx context.Context, id string) bool {
	if tk := batched(ctx, id); tk != nil {
		return tk.queue(func(s *session.State) { s.Interruptions++; s.AssistantSpeaking = false }, "i", "in", 1, "s", "as", "0")
	}
	if !t.c.Up() {
		return t.local.Interrupted(ctx, id)
	}
	return t.run(interruptedScript, id, func() bool { return t.local.Interrupted(ctx, id) })
}

var toolCallScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'tc:' .. ARGV[1], 1)
redis.call('HINCRBY', KEYS[1], 'v', 1)
return 1
`)

// ToolCall implements session.Tracker.
func (t *Tracker) ToolCall(ctx context.Context, id, outcome string) bool {
	if tk := batched(ctx, id); tk != nil {
		return tk.queue(func(s *session.State) {
			if s.ToolCalls == nil {
				s.ToolCalls = make(map[string]int, 2)
			}
			s.ToolCalls[outcome]++
		}, "i", "tc:"+outcome, 1)
	}
	if !t.c.Up() {
		return t.local.ToolCall(ctx, id, outcome)
	}
	return t.run(toolCallScript, id, func() bool { return t.local.ToolCall(ctx, id, outcome) }, outcome)
}

// run runs a script on call id's hash that answers 1 when the call is live.
func (t *Tracker) run(s *redis.Script, id string, fallback func() bool, args ...any) bool {
	ctx, cancel := t.c.ctx()
	defer cancel()
	n, err := s.Run(ctx, t.c.rdb, []string{t.callKey(id)}, args...).Int64()
	if err != nil {
		t.c.failed(err)
		return fallback()
	}
	return n == 1
}

// cas: KEYS call; ARGV version, then n, then n field/value pairs, then the
// fields to delete. -1: the call is not live; 0: changed meanwhile.
var casScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], 'v')
if not v then return -1 end
if v ~= ARGV[1] then return 0 end
local n = tonumber(ARGV[2])
for i = 0, n - 1 do redis.call('HSET', KEYS[1], ARGV[3 + 2*i], ARGV[4 + 2*i]) end
for i = 3 + 2*n, #ARGV do redis.call('HDEL', KEYS[1], ARGV[i]) end
redis.call('HINCRBY', KEYS[1], 'v', 1)
return 1
`)

// Update implements session.Tracker: the state is read, f runs on it, and
// the fields it changed are written if nobody changed the call meanwhile;
// otherwise f runs again on the new state (as the interface allows).
func (t *Tracker) Update(ctx context.Context, id string, f func(*session.State)) bool {
	if tk := batched(ctx, id); tk != nil {
		return tk.change(f)
	}
	if tk := claimed(ctx, id); tk != nil && t.c.Up() {
		if ok, done := t.updateFromClaim(ctx, tk, id, f); done {
			return ok
		}
	}
	if !t.c.Up() {
		return t.local.Update(ctx, id, f)
	}
	// Each attempt has its own deadline; contention alone never makes
	// Redis look down. 1,000 conflicts in a row would be a bug: reported.
	for attempt := 0; attempt < 1000; attempt++ {
		if attempt > 0 {
			// Changed meanwhile by another request of the call: back off
			// a little, at random, so that contenders do not collide again.
			time.Sleep(time.Duration(rand.Int64N(int64(min(attempt, 20))*100_000 + 1)))
		}
		ok, done := t.tryUpdate(id, f)
		if done {
			return ok
		}
	}
	t.c.log.Error("session update: 1000 conflicting updates in a row; update dropped", logkey.CallID, id)
	return false
}

// tryUpdate makes one attempt; done is false when the call changed
// meanwhile.
func (t *Tracker) tryUpdate(id string, f func(*session.State)) (ok, done bool) {
	ctx, cancel := t.c.ctx()
	defer cancel()
	h, err := t.c.rdb.HGetAll(ctx, t.callKey(id)).Result()
	if err != nil {
		t.c.failed(err)
		return t.local.Update(ctx, id, f), true
	}
	if len(h) == 0 {
		return false, true
	}
	t.c.seal.openFields(h, t.callKey(id))
	_, ok, done = t.cas(ctx, id, h, f)
	return ok, done
}

// cas runs f on the state h (the call's hash, opened, with its version
// "v") and writes the fields f changed if the call is still at that
// version. done is false when it is not (changed meanwhile).
func (t *Tracker) cas(ctx context.Context, id string, h map[string]string, f func(*session.State)) (st session.State, ok, done bool) {
	st = decodeState(h)
	f(&st)
	after := encodeState(st)
	args := []any{h["v"], 0}
	n := 0
	for k, v := range after {
		if h[k] != v {
			args = append(args, k, t.c.seal.sealField(k, v, t.callKey(id)))
			n++
		}
	}
	args[1] = n
	for k := range h {
		if _, ok := after[k]; !ok && deletable(k) {
			args = append(args, k)
		}
	}
	if len(args) == 2 {
		return st, true, true // nothing changed
	}
	r, err := casScript.Run(ctx, t.c.rdb, []string{t.callKey(id)}, args...).Int64()
	if err != nil {
		t.c.failed(err)
		return st, t.local.Update(ctx, id, f), true
	}
	return st, r == 1, r != 0
}

// updateFromClaim is Update for a request whose claim read the call: the
// state it read stands for the first read, so that an unchanged call
// costs one round trip (the compare-and-set) instead of two. done is
// false when the call changed since (or the claim found it not live).
func (t *Tracker) updateFromClaim(ctx context.Context, tk *ticket, id string, f func(*session.State)) (ok, done bool) {
	tk.callMu.Lock()
	if !tk.live || tk.ver == "" {
		tk.callMu.Unlock()
		return false, false
	}
	h := encodeState(tk.state)
	h["v"] = tk.ver
	tk.callMu.Unlock()
	cctx, cancel := t.c.ctx()
	defer cancel()
	st, ok, done := t.cas(cctx, id, h, f)
	if after := encodeState(st); maps.Equal(after, encodeState(decodeState(h))) {
		// Nothing to write as the claim saw it: the current state may
		// differ, so it is read after all.
		return false, false
	}
	if done && ok {
		tk.callMu.Lock()
		if v, err := strconv.ParseInt(tk.ver, 10, 64); err == nil {
			tk.state, tk.ver = st, strconv.FormatInt(v+1, 10)
		}
		tk.callMu.Unlock()
	}
	return ok, done
}

// deletable: fields of the state that f may remove (map entries and
// optional values); never the bookkeeping.
func deletable(k string) bool { return k != "v" && k != "ev" && k != "t0" }

// Forget implements session.Tracker.
func (t *Tracker) Forget(ctx context.Context, id string) {
	t.cancelCtx(id)
	if tk := claimed(ctx, id); tk != nil {
		tk.callMu.Lock()
		tk.live, tk.ops, tk.fns = false, nil, nil
		tk.callMu.Unlock()
	}
	t.local.Forget(ctx, id)
	if !t.c.Up() {
		return
	}
	ctx, cancel := t.c.ctx()
	defer cancel()
	_, err := t.c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, t.callKey(id))
		p.ZRem(ctx, t.live, id)
		return nil
	})
	t.c.failed(err)
}

// Seen implements session.Tracker.
func (t *Tracker) Seen(ctx context.Context, id string) bool {
	if tk := claimed(ctx, id); tk != nil {
		tk.callMu.Lock()
		defer tk.callMu.Unlock()
		return tk.live || tk.ended
	}
	if !t.c.Up() {
		return t.local.Seen(ctx, id)
	}
	ctx, cancel := t.c.ctx()
	defer cancel()
	n, err := t.c.rdb.Exists(ctx, t.callKey(id), t.endedKey(id)).Result()
	if err != nil {
		t.c.failed(err)
		return t.local.Seen(ctx, id)
	}
	return n > 0
}

var endScript = redis.NewScript(`
local h = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return h
`)

// End implements session.Tracker.
func (t *Tracker) End(ctx context.Context, id string) (session.State, bool) {
	t.cancelCtx(id)
	if tk := claimed(ctx, id); tk != nil {
		tk.callMu.Lock()
		tk.live, tk.ended, tk.ops, tk.fns = false, true, nil, nil
		tk.callMu.Unlock()
	}
	if !t.c.Up() {
		return t.local.End(ctx, id)
	}
	ctx, cancel := t.c.ctx()
	defer cancel()
	v, err := endScript.Run(ctx, t.c.rdb, []string{t.callKey(id), t.endedKey(id), t.live},
		id, t.c.now().UnixMicro(), session.EndedMemory.Milliseconds()).StringSlice()
	if err != nil {
		t.c.failed(err)
		return t.local.End(ctx, id)
	}
	// A call that went live on this replica while Redis was down ends
	// here too.
	lastLocal, liveLocal := t.local.End(ctx, id)
	if len(v) == 0 {
		return lastLocal, liveLocal
	}
	h := make(map[string]string, len(v)/2)
	for i := 0; i+1 < len(v); i += 2 {
		h[v[i]] = v[i+1]
	}
	t.c.seal.openFields(h, t.callKey(id))
	return decodeState(h), true
}

// Context implements session.Tracker.
func (t *Tracker) Context(id string) (context.Context, bool) {
	if !t.Live(id) {
		return nil, false
	}
	t.ctxMu.Lock()
	defer t.ctxMu.Unlock()
	if ctx, ok := t.ctxOf[id]; ok {
		return ctx, true
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.ctxOf[id], t.ctxs[id] = ctx, cancel
	return ctx, true
}

// Live reports whether call id is live.
func (t *Tracker) Live(id string) bool {
	if !t.c.Up() {
		_, ok := t.local.Get(id)
		return ok
	}
	ctx, cancel := t.c.ctx()
	defer cancel()
	n, err := t.c.rdb.Exists(ctx, t.callKey(id)).Result()
	if err != nil {
		t.c.failed(err)
		_, ok := t.local.Get(id)
		return ok
	}
	return n == 1
}

func (t *Tracker) cancelCtx(id string) {
	t.ctxMu.Lock()
	cancel := t.ctxs[id]
	delete(t.ctxs, id)
	delete(t.ctxOf, id)
	t.ctxMu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// Len returns the live calls of the deployment at the last sweep.
func (t *Tracker) Len() int { return int(t.count.Load()) }

var expireScript = redis.NewScript(`
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return false end
local h = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return h
`)

// Sweep removes the calls silent for the TTL (each by one replica only,
// which calls OnExpire), drops this replica's contexts of calls that are
// no longer live, and refreshes Len. It returns how many calls it expired.
func (t *Tracker) Sweep() int {
	t.local.Sweep()
	if !t.c.Up() {
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*t.c.rdb.Options().ReadTimeout)
	defer cancel()
	cutoff := t.c.now().Add(-t.ttl).UnixMilli()
	ids, err := t.c.rdb.ZRangeByScore(ctx, t.live, &redis.ZRangeBy{Min: "-inf", Max: strconv.FormatInt(cutoff, 10), Count: 10_000}).Result()
	if err != nil {
		t.c.failed(err)
		return 0
	}
	expired := 0
	for _, id := range ids {
		v, err := expireScript.Run(ctx, t.c.rdb, []string{t.callKey(id), t.live}, id).StringSlice()
		if err == redis.Nil {
			continue // another replica's sweep took it
		}
		if err != nil {
			if ctx.Err() == nil {
				// Out of this sweep's own budget is not Redis down: the
				// rest go at the next sweep.
				t.c.failed(err)
			}
			break
		}
		expired++
		t.cancelCtx(id)
		if t.OnExpire != nil {
			h := make(map[string]string, len(v)/2)
			for i := 0; i+1 < len(v); i += 2 {
				h[v[i]] = v[i+1]
			}
			t.c.seal.openFields(h, t.callKey(id))
			t.OnExpire(id, decodeState(h))
		}
	}
	if n, err := t.c.rdb.ZCard(ctx, t.live).Result(); err == nil {
		t.count.Store(n)
	}
	t.ctxMu.Lock()
	ids = ids[:0]
	for id := range t.ctxOf {
		ids = append(ids, id)
	}
	t.ctxMu.Unlock()
	for _, id := range ids {
		if n, err := t.c.rdb.Exists(ctx, t.callKey(id)).Result(); err == nil && n == 0 {
			t.cancelCtx(id)
		}
	}
	return expired
}

// Run sweeps every interval until ctx ends, then cancels every call
// context of this replica (the process is stopping).
func (t *Tracker) Run(ctx context.Context, interval time.Duration) {
	periodic.Run(ctx, interval, func() { t.Sweep() })
	t.ctxMu.Lock()
	cancels := maps.Clone(t.ctxs)
	clear(t.ctxs)
	clear(t.ctxOf)
	t.ctxMu.Unlock()
	for _, c := range cancels {
		c()
	}
}

func b01(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// encodeState is the hash of st (without the bookkeeping fields v, ev).
func encodeState(st session.State) map[string]string {
	h := map[string]string{"t0": strconv.FormatInt(st.Started.UnixMicro(), 10), "ev": strconv.FormatUint(st.Events, 10)}
	if st.Status != "" {
		h["s"] = st.Status
	}
	if st.AssistantSpeaking {
		h["as"] = "1"
	}
	if st.UserSpeaking {
		h["us"] = "1"
	}
	if st.Turn != 0 {
		h["tn"] = strconv.Itoa(st.Turn)
	}
	if st.Interruptions != 0 {
		h["in"] = strconv.Itoa(st.Interruptions)
	}
	for k, v := range st.ToolCalls {
		if v != 0 {
			h["tc:"+k] = strconv.Itoa(v)
		}
	}
	for k, v := range st.InFlight {
		if v != 0 {
			h["if:"+k] = strconv.Itoa(v)
		}
	}
	if st.Bargein != (session.State{}).Bargein {
		b, _ := json.Marshal(st.Bargein)
		h["b"] = string(b)
	}
	if st.ControlURL != "" {
		h["cu"] = st.ControlURL
	}
	return h
}

func decodeState(h map[string]string) session.State {
	var st session.State
	atoi := func(k string) int { n, _ := strconv.Atoi(h[k]); return n }
	if us, err := strconv.ParseInt(h["t0"], 10, 64); err == nil {
		st.Started = time.UnixMicro(us)
	}
	st.Events, _ = strconv.ParseUint(h["ev"], 10, 64)
	st.Status = h["s"]
	st.AssistantSpeaking = h["as"] == "1"
	st.UserSpeaking = h["us"] == "1"
	st.Turn = atoi("tn")
	st.Interruptions = atoi("in")
	for k, v := range h {
		switch {
		case strings.HasPrefix(k, "tc:"):
			if st.ToolCalls == nil {
				st.ToolCalls = make(map[string]int, 2)
			}
			st.ToolCalls[k[3:]], _ = strconv.Atoi(v)
		case strings.HasPrefix(k, "if:"):
			if st.InFlight == nil {
				st.InFlight = make(map[string]int, 1)
			}
			st.InFlight[k[3:]], _ = strconv.Atoi(v)
		}
	}
	if b := h["b"]; b != "" {
		_ = json.Unmarshal([]byte(b), &st.Bargein)
	}
	st.ControlURL = h["cu"]
	return st
}

// claimed returns the ticket of ctx's request when its claim read call
// id's state.
func claimed(ctx context.Context, id string) *ticket {
	tk, ok := replay.TicketOf(ctx)
	if !ok || tk.Local {
		return nil
	}
	t, _ := tk.Handle.(*ticket)
	if t == nil || t.callKey == "" || t.subj.CallID != id {
		return nil
	}
	return t
}

// batched returns the ticket whose call state ctx's request changes in
// memory, the changes being written with its answer: a request without
// side effects. With side effects, changes are written at once.
func batched(ctx context.Context, id string) *ticket {
	if t := claimed(ctx, id); t != nil && !t.subj.SideEffects {
		return t
	}
	return nil
}

// change applies f to the call state t read and queues the fields that
// changed; false when the call is not live.
func (t *ticket) change(f func(*session.State)) bool {
	t.callMu.Lock()
	defer t.callMu.Unlock()
	if !t.live {
		return false
	}
	before := encodeState(t.state)
	f(&t.state)
	t.fns = append(t.fns, f)
	after := encodeState(t.state)
	for k, v := range after {
		if before[k] != v {
			t.ops = append(t.ops, "s", k, t.seal.sealField(k, v, t.callKey))
		}
	}
	for k := range before {
		if _, ok := after[k]; !ok && deletable(k) {
			t.ops = append(t.ops, "d", k, "")
		}
	}
	return true
}

// queue applies f to the call state t read and queues ops, written as
// they are (increments stay increments, so that concurrent requests of
// the call add up); false when the call is not live.
func (t *ticket) queue(f func(*session.State), ops ...any) bool {
	t.callMu.Lock()
	defer t.callMu.Unlock()
	if !t.live {
		return false
	}
	f(&t.state)
	t.fns = append(t.fns, f)
	t.ops = append(t.ops, ops...)
	return true
}
