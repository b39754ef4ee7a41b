// Package replay provides the cache that answers byte-identical replays of an
// accepted request without doing the work again.
//
// Threat: a captured, correctly signed request sent again inside the signature
// window would otherwise call a tool's internal API a second time. Keys are
// SHA-256 digests of the raw body. An entry lives for one window after first
// sight, and at least as long as the credential it arrived with can still
// verify (a signed timestamp plus its tolerance): a replay is refused for as
// long as its signature could pass. A replay that arrives while the original
// is still being handled waits for its answer.
package replay

import (
	"context"
	"crypto/sha256"
	"sync"
	"time"
)

// Key identifies a request body.
type Key [sha256.Size]byte

// KeyOf returns the key of a raw body.
func KeyOf(body []byte) Key { return sha256.Sum256(body) }

// Response is a stored answer. Body is shared, never modified.
type Response struct {
	Status      int
	Body        []byte
	ContentType string // empty: application/json
	// CallID and Type name what was answered, for the replay's log line
	// (a replay is answered before its body is read).
	CallID, Type string
}

type entry struct {
	resp    Response
	expires int64 // unix nanoseconds
	state   uint8 // pending, done, forgotten
	// wait is created only when a replay arrives while the original is
	// still pending; most entries never need one.
	wait chan struct{}
}

const (
	pending uint8 = iota
	done
	forgotten
)

type slot struct {
	k Key
	e *entry
}

// Cache is a bounded replay cache. Entries sit in a FIFO ring in insertion
// order: expired entries are popped from its head, and at capacity the oldest
// goes, without a timer per entry. An entry that outlives its window (its
// credential is valid longer) may keep later, expired entries in the ring a
// little longer; lookups ignore expired entries, so this costs memory only.
type Cache struct {
	window time.Duration
	cap    int
	grace  int64 // nanoseconds an expired entry stays in the ring (SetGrace)

	mu    sync.Mutex
	m     map[Key]*entry
	order []slot // ring buffer, oldest at head
	head  int
	n     int
	// early counts entries dropped for capacity before their window ended:
	// a replay of those would no longer be recognised.
	early uint64
}

// New returns a cache holding at most capacity entries for window each.
func New(window time.Duration, capacity int) *Cache {
	return &Cache{window: window, cap: capacity, m: make(map[Key]*entry), order: make([]slot, capacity)}
}

// SetGrace keeps an entry in memory for d past its expiry, for lookups as of
// an earlier instant (BeginAt): a request whose credential was checked
// before its body had finished arriving (for up to the server's read
// timeout) must still find the entry it would have found then, whatever
// other requests arrived meanwhile. Call it before the cache is used.
func (c *Cache) SetGrace(d time.Duration) { c.grace = int64(d) }

// Guard is replay protection as the gateway uses it. The in-memory Cache is
// one; a Guard shared by replicas (Redis) will be another. Every Guard passes
// the suite in package replaytest.
type Guard interface {
	// BeginAt looks k up as of the instant at (when the request's
	// credential was checked). If a live entry exists it waits (bounded by
	// ctx) for its handler to finish and returns its answer with
	// replay=true; if that handler gives up, this request takes over.
	// Otherwise it registers k until the later of at+window and validUntil
	// (when the request's credential stops verifying; zero if never) and
	// returns a Ticket for Finish.
	BeginAt(ctx context.Context, k Key, at, validUntil time.Time) (resp Response, replay bool, t Ticket, err error)
	// Finish records the answer of a request that was not a replay;
	// remember=false forgets it so that a retry is handled afresh. Only the
	// first Finish of a ticket counts, so a deferred Finish(t, Response{},
	// false) releases it on every path. A zero Ticket is ignored.
	Finish(t Ticket, r Response, remember bool)
}

// Ticket is a Guard's handle on a request it let through. It is opaque:
// only the Guard that issued it reads Handle.
type Ticket struct {
	Key    Key
	Handle any
	// Local is set by a shared Guard that could not reach its store: the
	// request was checked against this replica's memory only, so a replay
	// of it on another replica would not be recognised. The gateway tells
	// the source, which refuses what has side effects (state.on_unavailable).
	Local bool
}

var _ Guard = (*Cache)(nil)

// BeginAt looks k up as of the instant at, when the caller checked the
// request's credential: an entry is found for as long as that check could
// pass, so a client that sends its body slowly cannot outlast the entry
// between the two checks. If a live entry exists, BeginAt waits (bounded by
// ctx) for its handler to finish and returns its response with replay=true.
// Otherwise it registers k, to be remembered until the later of at+window
// and validUntil (when the credential stops verifying; zero if it never
// does), and returns a Ticket that the caller must pass to Finish.
func (c *Cache) BeginAt(ctx context.Context, k Key, at, validUntil time.Time) (resp Response, replay bool, t Ticket, err error) {
	now := at.UnixNano()
	c.mu.Lock()
	c.evictLocked(now)
	if e, found := c.m[k]; found && e.expires > now {
		if e.state == done {
			resp = e.resp
			c.mu.Unlock()
			return resp, true, Ticket{}, nil
		}
		if e.wait == nil {
			e.wait = make(chan struct{})
		}
		wait := e.wait
		c.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return Response{}, true, Ticket{}, ctx.Err()
		}
		c.mu.Lock()
		st, resp := e.state, e.resp
		c.mu.Unlock()
		if st == done {
			return resp, true, Ticket{}, nil
		}
		// The original was forgotten; handle this one afresh.
		return c.BeginAt(ctx, k, at, validUntil)
	}
	if c.n == c.cap {
		if c.order[c.head].e.expires > now {
			c.early++
		}
		c.popLocked()
	}
	e := &entry{expires: now + int64(c.window)}
	if !validUntil.IsZero() {
		e.expires = max(e.expires, validUntil.UnixNano())
	}
	c.m[k] = e
	c.order[(c.head+c.n)%c.cap] = slot{k, e}
	c.n++
	c.mu.Unlock()
	return Response{}, false, Ticket{Key: k, Handle: e}, nil
}

// Finish records the answer of a Begin that was not a replay. remember=false
// forgets the request, so that one that failed for a passing reason can be
// retried. Only the first Finish of a ticket counts: a deferred
// Finish(t, Response{}, false) releases the ticket on every path (a panic
// included) without undoing an answer already recorded.
func (c *Cache) Finish(t Ticket, r Response, remember bool) {
	e, _ := t.Handle.(*entry)
	if e == nil {
		return
	}
	c.mu.Lock()
	if e.state != pending {
		c.mu.Unlock()
		return
	}
	if remember {
		e.resp, e.state = r, done
	} else {
		e.state = forgotten
		if c.m[t.Key] == e {
			delete(c.m, t.Key) // its ring slot is dropped when popped
		}
	}
	w := e.wait
	c.mu.Unlock()
	if w != nil {
		close(w)
	}
}

func (c *Cache) evictLocked(now int64) {
	for c.n > 0 && c.order[c.head].e.expires+c.grace <= now {
		c.popLocked()
	}
}

func (c *Cache) popLocked() {
	sl := c.order[c.head]
	// Only remove the entry that owns this slot: a forgotten key may have
	// been registered again in a later slot.
	if c.m[sl.k] == sl.e {
		delete(c.m, sl.k)
	}
	c.order[c.head] = slot{}
	c.head = (c.head + 1) % c.cap
	c.n--
}

// Len returns the number of remembered requests.
func (c *Cache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// EarlyEvictions returns how many entries were dropped for capacity before
// their window ended (vapi.replay.capacity is too small for the load).
func (c *Cache) EarlyEvictions() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.early
}
