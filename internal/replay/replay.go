// Package replay provides the cache that answers byte-identical replays of an
// accepted request without doing the work again.
//
// Threat: a captured, correctly signed request sent again inside the signature
// window would otherwise call a tool's internal API a second time. Keys are
// SHA-256 digests of the raw body; entries live for one window. A replay that
// arrives while the original is still being handled waits for its answer.
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

// Response is a stored answer.
type Response struct {
	Status int
	Body   []byte
}

type slot struct {
	k Key
	e *entry
}

type entry struct {
	done    chan struct{}
	resp    Response
	ok      bool // resp is valid (the first handler finished normally)
	expires time.Time
}

// Cache is a bounded, TTL-ordered replay cache. Because every entry lives for
// the same window, insertion order is expiry order: a FIFO ring evicts both
// expired entries and, at capacity, the oldest, without a timer per entry.
type Cache struct {
	window time.Duration
	cap    int
	now    func() time.Time

	mu    sync.Mutex
	m     map[Key]*entry
	order []slot // ring buffer, oldest at head
	head  int
	n     int
}

// New returns a cache holding at most capacity entries for window each.
func New(window time.Duration, capacity int, now func() time.Time) *Cache {
	return &Cache{window: window, cap: capacity, now: now, m: make(map[Key]*entry), order: make([]slot, capacity)}
}

// Begin looks k up. If a live entry exists, Begin waits (bounded by ctx) for
// it to finish and returns its response with replay=true. Otherwise it
// registers k and returns a finish function that the caller must call exactly
// once with the response to remember (ok=false forgets the entry, so a request
// that failed for a passing reason may be retried).
func (c *Cache) Begin(ctx context.Context, k Key) (resp Response, replay bool, finish func(Response, bool), err error) {
	now := c.now()
	c.mu.Lock()
	c.evictLocked(now)
	if e, found := c.m[k]; found {
		c.mu.Unlock()
		select {
		case <-e.done:
		case <-ctx.Done():
			return Response{}, true, nil, ctx.Err()
		}
		if e.ok {
			return e.resp, true, nil, nil
		}
		// The original was forgotten; handle this one afresh.
		return c.Begin(ctx, k)
	}
	if c.n == c.cap {
		c.popLocked()
	}
	e := &entry{done: make(chan struct{}), expires: now.Add(c.window)}
	c.m[k] = e
	c.order[(c.head+c.n)%c.cap] = slot{k, e}
	c.n++
	c.mu.Unlock()
	return Response{}, false, func(r Response, ok bool) {
		c.mu.Lock()
		e.resp, e.ok = r, ok
		if !ok && c.m[k] == e {
			delete(c.m, k) // its ring slot is dropped when popped
		}
		c.mu.Unlock()
		close(e.done)
	}, nil
}

func (c *Cache) evictLocked(now time.Time) {
	for c.n > 0 {
		if now.Before(c.order[c.head].e.expires) {
			return
		}
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
