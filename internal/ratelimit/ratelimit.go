// Package ratelimit provides the token buckets that keep one source, or
// one route, from taking more than its share of the server: a bucket per
// client address with bounded memory, and a single bucket (a route's).
//
// Threat: a flood from one address (or many) that would otherwise reach
// body reading and authentication, the most expensive work done for a
// request that turns out to be bad. The buckets are checked first, in
// nanoseconds, before any of it.
//
// The buckets are golang.org/x/time/rate's; the clock is injected (every
// call takes the time), so tests and the gateway agree on it.
package ratelimit

import (
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Rate is a bucket's refill rate and size. A zero PerSecond turns the
// limit off.
type Rate struct {
	// PerSecond is the sustained rate, requests per second.
	PerSecond float64 `yaml:"per_second"`
	// Burst is how many requests may come at once after a quiet spell.
	Burst int `yaml:"burst"`
}

// Off reports whether the limit is off.
func (r Rate) Off() bool { return r.PerSecond == 0 }

// refill is how long an untouched bucket takes to fill up again: after
// that it is the same as a new one, and can be forgotten.
func (r Rate) refill() time.Duration {
	return time.Duration(float64(r.Burst) / r.PerSecond * float64(time.Second))
}

// Bucket is one token bucket. Safe for concurrent use.
type Bucket struct {
	lim *rate.Limiter
	r   Rate
}

// NewBucket returns a bucket for r (nil when r is off: it allows all).
func NewBucket(r Rate) *Bucket {
	if r.Off() {
		return nil
	}
	return &Bucket{lim: rate.NewLimiter(rate.Limit(r.PerSecond), r.Burst), r: r}
}

// Share makes the bucket this replica's share of a limit n replicas
// enforce together (their load balancer spreading requests evenly): the
// rate and burst divided by n (n < 1 counts as 1).
func (b *Bucket) Share(n int) {
	if b == nil {
		return
	}
	sr := b.r.share(n)
	b.lim.SetLimit(rate.Limit(sr.PerSecond))
	b.lim.SetBurst(sr.Burst)
}

// share is r divided among n replicas (a burst of at least 1).
func (r Rate) share(n int) Rate {
	n = max(n, 1)
	return Rate{PerSecond: r.PerSecond / float64(n), Burst: max(1, r.Burst/n)}
}

// Allow takes a token at now, or says how long until one is there.
func (b *Bucket) Allow(now time.Time) (ok bool, retryAfter time.Duration) {
	if b == nil {
		return true, 0
	}
	return take(b.lim, now)
}

func take(lim *rate.Limiter, now time.Time) (bool, time.Duration) {
	r := lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second // a burst of 0: never
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// shards spread the addresses over separate locks: requests from
// different clients rarely wait for each other.
const shards = 16

// PerAddress keeps a bucket per client address (an IPv6 address by its
// /64, what one host is usually given). Its memory is bounded: a bucket
// idle long enough to be full again is forgotten (it is the same as a new
// one), and when maxAddrs are tracked, the addresses beyond them share
// one bucket, so that a flood of distinct addresses cannot grow it.
// Safe for concurrent use.
type PerAddress struct {
	r      Rate
	idle   time.Duration
	max    int // per shard
	seed   maphash.Seed
	shards [shards]addrShard
	// overflow is the bucket of the addresses beyond max.
	overflow *rate.Limiter
	// cur is r's share on this replica (Share), read under a shard's
	// lock or atomically.
	cur atomic.Pointer[Rate]
}

type addrShard struct {
	mu    sync.Mutex
	m     map[netip.Addr]*entry
	swept time.Time
}

type entry struct {
	lim  *rate.Limiter
	seen time.Time
}

// NewPerAddress returns the buckets for r, tracking at most maxAddrs
// addresses (nil when r is off: it allows all).
func NewPerAddress(r Rate, maxAddrs int) *PerAddress {
	if r.Off() {
		return nil
	}
	p := &PerAddress{r: r, idle: r.refill(), max: max(1, maxAddrs/shards), seed: maphash.MakeSeed(),
		overflow: rate.NewLimiter(rate.Limit(r.PerSecond), r.Burst)}
	for i := range p.shards {
		p.shards[i].m = make(map[netip.Addr]*entry)
	}
	p.cur.Store(&r)
	return p
}

// Share makes every address's bucket this replica's share of a limit n
// replicas enforce together (Bucket.Share).
func (p *PerAddress) Share(n int) {
	if p == nil {
		return
	}
	sr := p.r.share(n)
	if old := p.cur.Load(); *old == sr {
		return
	}
	p.cur.Store(&sr)
	set := func(l *rate.Limiter) { l.SetLimit(rate.Limit(sr.PerSecond)); l.SetBurst(sr.Burst) }
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.Lock()
		for _, e := range s.m {
			set(e.lim)
		}
		s.mu.Unlock()
	}
	set(p.overflow)
}

// Key is the address a client is limited by: an IPv4 address itself, an
// IPv6 address by its /64.
func Key(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// Allow takes a token from addr's bucket at now, or says how long until
// one is there.
func (p *PerAddress) Allow(addr netip.Addr, now time.Time) (ok bool, retryAfter time.Duration) {
	if p == nil {
		return true, 0
	}
	addr = Key(addr)
	b := addr.As16()
	s := &p.shards[maphash.Bytes(p.seed, b[:])%shards]
	s.mu.Lock()
	e := s.m[addr]
	if e == nil {
		if len(s.m) >= p.max {
			p.sweep(s, now)
		}
		if len(s.m) >= p.max {
			s.mu.Unlock()
			return take(p.overflow, now) // full: a shared bucket
		}
		cur := p.cur.Load()
		e = &entry{lim: rate.NewLimiter(rate.Limit(cur.PerSecond), cur.Burst)}
		s.m[addr] = e
	}
	e.seen = now
	ok, retryAfter = take(e.lim, now)
	s.mu.Unlock()
	return ok, retryAfter
}

// sweep forgets the shard's buckets that are full again. It runs when the
// shard is full, at most once per refill period (a shard full of active
// addresses is not rescanned on every new one). With s.mu held.
func (p *PerAddress) sweep(s *addrShard, now time.Time) {
	if now.Sub(s.swept) < min(p.idle, time.Second) {
		return
	}
	s.swept = now
	for a, e := range s.m {
		if now.Sub(e.seen) >= p.idle {
			delete(s.m, a)
		}
	}
}

// Sweep forgets every bucket that is full again (the gateway runs it
// periodically, so that memory goes down after a flood too).
func (p *PerAddress) Sweep(now time.Time) {
	if p == nil {
		return
	}
	for i := range p.shards {
		s := &p.shards[i]
		s.mu.Lock()
		s.swept = time.Time{}
		p.sweep(s, now)
		s.mu.Unlock()
	}
}

// Len returns how many addresses have a bucket of their own.
func (p *PerAddress) Len() int {
	if p == nil {
		return 0
	}
	n := 0
	for i := range p.shards {
		p.shards[i].mu.Lock()
		n += len(p.shards[i].m)
		p.shards[i].mu.Unlock()
	}
	return n
}

// RetryAfterSeconds is a wait as a Retry-After value: whole seconds,
// rounded up, at least 1.
func RetryAfterSeconds(d time.Duration) int {
	return max(1, int(math.Ceil(d.Seconds())))
}
