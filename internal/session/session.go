// Package session provides the per-call session table: one small state
// record per live call, created on the call's first event, removed when the
// call ends, and expired by TTL through a single sweeper (no timer per call).
// Sessions never share state: each call's record is reached only by its id.
package session

import (
	"context"
	"errors"
	"hash/maphash"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/voicegate/voicegate/internal/bargein"
	"github.com/voicegate/voicegate/internal/periodic"
)

// Tracker follows which calls are live and which have ended: the seam the
// dispatcher uses. The in-memory Table is one; a tracker shared by replicas
// (Redis) will be another. Every Tracker passes the suite in package
// trackertest.
type Tracker interface {
	// Observe notes an event of call id and reports whether it is the first
	// sight of the call. status, when not empty, becomes the call's status
	// (a status update); initial, when not empty, becomes it only on first
	// sight (the status a message's call object carries, which may be older
	// than the last update). A call that ended recently gets ErrEnded (its
	// late events must not bring it back); a new call at capacity gets
	// ErrFull.
	Observe(ctx context.Context, id, status, initial string) (first bool, err error)
	// Forget drops a live call, so that its next event is a first sight
	// again (when recording the first sight failed).
	Forget(ctx context.Context, id string)
	// Seen reports whether call id is live or has ended recently.
	Seen(ctx context.Context, id string) bool
	// End marks call id ended. When the call was live, it returns the
	// call's last state and true (for the end-of-call log line).
	End(ctx context.Context, id string) (last State, wasLive bool)
	// Speech notes that role ("assistant" or "user") started or stopped
	// speaking in turn; Interrupted, that the user interrupted the
	// assistant. Both report false when the call is not live.
	Speech(ctx context.Context, id, role string, started bool, turn int) bool
	Interrupted(ctx context.Context, id string) bool
	// ToolCall counts a tool call of call id by its outcome ("ok",
	// "http_error", ...); false when the call is not live.
	ToolCall(ctx context.Context, id, outcome string) bool
	// Update runs f on the state of live call id, atomically with respect
	// to every other change of that call (the barge-in engine's per-call
	// state changes this way); false, without running f, when the call is
	// not live. f must be quick and must not call the tracker; it may be
	// run more than once by a shared tracker (optimistic concurrency), so
	// it must only change the state it is given.
	Update(ctx context.Context, id string, f func(*State)) bool
	// Context returns the context of live call id, cancelled when the
	// call ends, expires or is forgotten, or when the tracker stops: work
	// that belongs to the call (a barge-in timer, a media stream) runs
	// under it. ok is false when the call is not live.
	Context(id string) (ctx context.Context, ok bool)
}

var _ Tracker = (*Table)(nil)

// Session is the live state of one call. ID and Created never change; the
// rest is read with State and changed by the Table's tracker methods, under
// the session's own lock.
type Session struct {
	ID      string
	Created time.Time

	mu       sync.Mutex
	lastSeen atomic.Int64 // unix nanoseconds
	state    State

	ctx    context.Context
	cancel context.CancelFunc
}

// Context is cancelled when the call ends, expires or is forgotten, or when
// the table's sweeper stops: work that belongs to the call (a barge-in
// timer, a media stream) stops with it.
func (s *Session) Context() context.Context { return s.ctx }

// State is what is known of a live call (the seam for barge-in).
type State struct {
	// Started is when the call was first seen.
	Started           time.Time
	Status            string
	Events            uint64
	AssistantSpeaking bool
	UserSpeaking      bool
	Turn              int
	Interruptions     int
	// ToolCalls counts the call's tool calls by outcome (nil: none).
	ToolCalls map[string]int
	// InFlight counts the call's tool calls under way, by tool (nil or
	// empty: none).
	InFlight map[string]int
	// Bargein is the barge-in engine's state of the call.
	Bargein bargein.State
	// ControlURL is the call's Live Call Control URL, once an
	// authenticated message gave one that passed the allowlist.
	ControlURL string
}

// State returns a copy of the session's state.
func (s *Session) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.state
	st.ToolCalls = maps.Clone(st.ToolCalls)
	st.InFlight = maps.Clone(st.InFlight)
	return st
}

// ErrFull is returned when the table is at capacity.
var ErrFull = errors.New("session table is full")

// ErrEnded is returned for a call that ended recently: a late event must
// not bring its session back.
var ErrEnded = errors.New("call has ended")

// EndedMemory is how long an ended call is remembered.
const EndedMemory = 15 * time.Minute

const shards = 64

// Table holds the sessions. It is safe for concurrent use.
type Table struct {
	ttl      time.Duration
	capacity int64
	// endedCap bounds each shard's memory of ended calls, so that all of
	// them together stay within capacity (plus one per shard).
	endedCap int
	now      func() time.Time
	seed     maphash.Seed
	count    atomic.Int64
	shard    [shards]struct {
		mu    sync.Mutex
		m     map[string]*Session
		ended map[string]int64 // call id -> when it ended (unix ns)
	}
	// OnExpire, if set, is called (outside any lock) for each session the
	// sweeper removes.
	OnExpire func(*Session)
}

// New returns a table with the given TTL and capacity.
func New(ttl time.Duration, capacity int, now func() time.Time) *Table {
	t := &Table{ttl: ttl, capacity: int64(capacity), endedCap: (capacity + shards - 1) / shards, now: now, seed: maphash.MakeSeed()}
	for i := range t.shard {
		t.shard[i].m = make(map[string]*Session)
		t.shard[i].ended = make(map[string]int64)
	}
	return t
}

func (t *Table) shardOf(id string) int {
	return int(maphash.String(t.seed, id) % shards)
}

// Touch returns the session of call id, creating it on first sight, and
// marks it seen now. created reports a new session. At capacity, a new call
// gets ErrFull (an existing call is always found); a call ended within
// EndedMemory gets ErrEnded.
func (t *Table) Touch(id string) (s *Session, created bool, err error) {
	now := t.now()
	sh := &t.shard[t.shardOf(id)]
	sh.mu.Lock()
	s, ok := sh.m[id]
	if !ok {
		if _, ended := sh.ended[id]; ended {
			sh.mu.Unlock()
			return nil, false, ErrEnded
		}
		if t.count.Load() >= t.capacity {
			sh.mu.Unlock()
			return nil, false, ErrFull
		}
		s = &Session{ID: id, Created: now, state: State{Started: now}}
		s.ctx, s.cancel = context.WithCancel(context.Background())
		sh.m[id] = s
		t.count.Add(1)
		created = true
	}
	sh.mu.Unlock()
	s.lastSeen.Store(now.UnixNano())
	return s, created, nil
}

// Get returns the session of call id, if live.
func (t *Table) Get(id string) (*Session, bool) {
	sh := &t.shard[t.shardOf(id)]
	sh.mu.Lock()
	s, ok := sh.m[id]
	sh.mu.Unlock()
	return s, ok
}

// Observe implements Tracker.
func (t *Table) Observe(ctx context.Context, id, status, initial string) (first bool, err error) {
	s, created, err := t.Touch(id)
	if err != nil {
		return false, err
	}
	s.mu.Lock()
	s.state.Events++
	switch {
	case status != "":
		s.state.Status = status
	case created && initial != "":
		s.state.Status = initial
	}
	s.mu.Unlock()
	return created, nil
}

// Speech implements Tracker.
func (t *Table) Speech(ctx context.Context, id, role string, started bool, turn int) bool {
	s, ok := t.Get(id)
	if !ok {
		return false
	}
	s.mu.Lock()
	switch role {
	case "assistant":
		s.state.AssistantSpeaking = started
	case "user":
		s.state.UserSpeaking = started
	}
	s.state.Turn = max(s.state.Turn, turn)
	s.mu.Unlock()
	return true
}

// Interrupted implements Tracker.
func (t *Table) Interrupted(ctx context.Context, id string) bool {
	s, ok := t.Get(id)
	if !ok {
		return false
	}
	s.mu.Lock()
	s.state.Interruptions++
	s.state.AssistantSpeaking = false
	s.mu.Unlock()
	return true
}

// ToolCall implements Tracker.
func (t *Table) ToolCall(ctx context.Context, id, outcome string) bool {
	s, ok := t.Get(id)
	if !ok {
		return false
	}
	s.mu.Lock()
	if s.state.ToolCalls == nil {
		s.state.ToolCalls = make(map[string]int, 2)
	}
	s.state.ToolCalls[outcome]++
	s.mu.Unlock()
	return true
}

// Update implements Tracker.
func (t *Table) Update(ctx context.Context, id string, f func(*State)) bool {
	s, ok := t.Get(id)
	if !ok {
		return false
	}
	s.mu.Lock()
	f(&s.state)
	s.mu.Unlock()
	return true
}

// Forget implements Tracker.
func (t *Table) Forget(ctx context.Context, id string) { t.Remove(id) }

// Context implements Tracker.
func (t *Table) Context(id string) (context.Context, bool) {
	s, ok := t.Get(id)
	if !ok {
		return nil, false
	}
	return s.ctx, true
}

// Remove deletes the session of call id; it reports whether one existed.
func (t *Table) Remove(id string) bool {
	sh := &t.shard[t.shardOf(id)]
	sh.mu.Lock()
	s, ok := sh.m[id]
	if ok {
		delete(sh.m, id)
		t.count.Add(-1)
	}
	sh.mu.Unlock()
	if ok {
		s.cancel()
	}
	return ok
}

// Seen reports whether call id is live or ended within EndedMemory.
func (t *Table) Seen(ctx context.Context, id string) bool {
	sh := &t.shard[t.shardOf(id)]
	sh.mu.Lock()
	_, live := sh.m[id]
	_, ended := sh.ended[id]
	sh.mu.Unlock()
	return live || ended
}

// End removes the session of call id and remembers for EndedMemory that the
// call is over. The memory of ended calls is bounded like the table: when a
// shard's share is full, an arbitrary older entry is forgotten (a late event
// of that call then opens a session that the TTL sweeper removes).
func (t *Table) End(ctx context.Context, id string) (State, bool) {
	now := t.now().UnixNano()
	sh := &t.shard[t.shardOf(id)]
	sh.mu.Lock()
	s, live := sh.m[id]
	if live {
		delete(sh.m, id)
		t.count.Add(-1)
	}
	if _, ok := sh.ended[id]; !ok && len(sh.ended) >= t.endedCap {
		for old := range sh.ended {
			delete(sh.ended, old)
			break
		}
	}
	sh.ended[id] = now
	sh.mu.Unlock()
	if !live {
		return State{}, false
	}
	s.cancel()
	return s.State(), true
}

// EndedLen returns how many ended calls are remembered.
func (t *Table) EndedLen() int {
	n := 0
	for i := range t.shard {
		sh := &t.shard[i]
		sh.mu.Lock()
		n += len(sh.ended)
		sh.mu.Unlock()
	}
	return n
}

// Len returns the number of live sessions.
func (t *Table) Len() int { return int(t.count.Load()) }

// Sweep removes every session not seen for the TTL, and forgets calls ended
// more than EndedMemory ago. It returns how many sessions expired.
func (t *Table) Sweep() int {
	now := t.now()
	cutoff := now.Add(-t.ttl).UnixNano()
	endedCutoff := now.Add(-EndedMemory).UnixNano()
	var expired []*Session
	for i := range t.shard {
		sh := &t.shard[i]
		sh.mu.Lock()
		for id, at := range sh.ended {
			if at < endedCutoff {
				delete(sh.ended, id)
			}
		}
		for id, s := range sh.m {
			if s.lastSeen.Load() < cutoff {
				delete(sh.m, id)
				t.count.Add(-1)
				expired = append(expired, s)
			}
		}
		sh.mu.Unlock()
	}
	for _, s := range expired {
		s.cancel()
		if t.OnExpire != nil {
			t.OnExpire(s)
		}
	}
	return len(expired)
}

// Run sweeps every interval until ctx ends, then cancels the context of
// every live session (the process is stopping).
func (t *Table) Run(ctx context.Context, interval time.Duration) {
	periodic.Run(ctx, interval, func() { t.Sweep() })
	// Shutting down: work that belongs to a live call stops with it.
	for i := range t.shard {
		sh := &t.shard[i]
		sh.mu.Lock()
		for _, s := range sh.m {
			s.cancel()
		}
		sh.mu.Unlock()
	}
}
