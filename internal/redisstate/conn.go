// Package redisstate provides the state replicas share, in Redis: the replay
// guard (replay protection and in-flight de-duplication under renewed
// leases), the call sessions, and the registry of live replicas that the
// rate limits divide their budget by. Each passes the same contract suite
// as its in-memory counterpart (replaytest, trackertest).
//
// Every operation is one Redis round trip (a script or a pipeline). When
// Redis cannot be reached the Conn marks it down, the operations fall back
// to this replica's own memory (and say so: replay.Ticket.Local), and a
// probe brings it back without a restart. Redis Cluster is not supported:
// scripts touch keys of one call or request together with shared indexes;
// a single primary with replicas (Sentinel or a managed failover) is.
package redisstate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/voicegate/voicegate/internal/logkey"
	"github.com/voicegate/voicegate/internal/redact"
	"github.com/voicegate/voicegate/internal/state"
)

// errDown is returned while Redis is believed unreachable.
var errDown = errors.New("redis unreachable")

// Conn is a connection pool to Redis and what is known of its health.
type Conn struct {
	rdb    *redis.Client
	prefix string
	lease  time.Duration
	seal   *sealer // nil: values stored in clear
	log    *slog.Logger
	now    func() time.Time

	down     atomic.Bool
	downMu   sync.Mutex
	downAt   time.Time // when it went down (zero: up)
	lastLog  time.Time
	lastErr  string
	onChange func(up bool)

	stop chan struct{}
	// back is signalled when Redis answers again (the guard stores the
	// answers it could not store meanwhile at once).
	back chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// Options are a Conn's dependencies.
type Options struct {
	Log *slog.Logger
	Now func() time.Time
	// OnChange is called (outside locks) when Redis goes down or comes
	// back.
	OnChange func(up bool)
	// ProbeInterval is how often a down Redis is probed (default 1 s).
	ProbeInterval time.Duration
}

// Open returns a Conn for c (driver redis). It does not wait for Redis: a
// Redis down at start is handled like one that goes down later.
func Open(c state.Config, o Options) (*Conn, error) {
	opt, err := redis.ParseURL(c.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("state.redis_url %s: %v", redact.URL(c.RedisURL), err)
	}
	if c.RedisPasswordFile != "" {
		b, err := os.ReadFile(c.RedisPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("state.redis_password_file: %w", err)
		}
		opt.Password = strings.TrimRight(string(b), "\r\n")
	}
	t := c.Timeout.D()
	opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = t, t, t
	opt.ContextTimeoutEnabled = true
	// One retry at most: a dead Redis must cost a request one timeout,
	// not four.
	opt.MaxRetries = 1
	opt.PoolTimeout = t
	opt.DisableIdentity = true // CLIENT SETINFO: not on every Redis (and not needed)
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = time.Second
	}
	cn := &Conn{rdb: redis.NewClient(opt), prefix: c.KeyPrefix, lease: c.Lease.D(), log: o.Log, now: o.Now,
		onChange: o.OnChange, stop: make(chan struct{}), back: make(chan struct{}, 1)}
	cn.wg.Add(1)
	go func() { defer cn.wg.Done(); cn.probe(o.ProbeInterval) }()
	return cn, nil
}

// Client returns the underlying client (for tests and measurements).
func (c *Conn) Client() *redis.Client { return c.rdb }

// Up reports whether Redis is believed reachable.
func (c *Conn) Up() bool { return !c.down.Load() }

// Ping checks Redis now (for readiness and the health monitor).
func (c *Conn) Ping(ctx context.Context) error {
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		c.failed(err)
		return err
	}
	c.recovered()
	return nil
}

// Close stops the probe and closes the pool.
func (c *Conn) Close() error {
	c.once.Do(func() { close(c.stop) })
	c.wg.Wait()
	return c.rdb.Close()
}

// unavailable reports whether err means Redis could not be reached (as
// opposed to an answer: redis.Nil, a script's own error).
func unavailable(err error) bool {
	if err == nil || errors.Is(err, redis.Nil) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redis.ErrClosed) ||
		errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, net.ErrClosed) {
		return true
	}
	s := err.Error()
	// A Redis that is loading its data, or a replica that lost its
	// primary, answers but cannot serve: treated as down.
	return strings.HasPrefix(s, "LOADING") || strings.HasPrefix(s, "READONLY") || strings.HasPrefix(s, "MASTERDOWN") ||
		strings.Contains(s, "connection refused") || strings.Contains(s, "EOF") || strings.Contains(s, "broken pipe") ||
		strings.Contains(s, "connection reset")
}

// failed notes a failed command; a failure to reach Redis marks it down.
func (c *Conn) failed(err error) {
	if !unavailable(err) {
		return
	}
	c.downMu.Lock()
	c.lastErr = err.Error()
	wasUp := c.downAt.IsZero()
	if wasUp {
		c.downAt, c.lastLog = c.now(), c.now()
		c.down.Store(true)
	}
	c.downMu.Unlock()
	if wasUp {
		c.log.Error("redis unreachable: shared state degraded to this replica's memory", logkey.Err, err)
		if c.onChange != nil {
			c.onChange(false)
		}
	}
}

func (c *Conn) recovered() {
	if !c.down.Load() {
		return
	}
	c.downMu.Lock()
	since := c.downAt
	wasDown := !since.IsZero()
	c.downAt = time.Time{}
	c.down.Store(false)
	c.downMu.Unlock()
	if wasDown {
		select {
		case c.back <- struct{}{}:
		default:
		}
		c.log.Info("redis reachable again: shared state restored", logkey.DurationS, c.now().Sub(since).Round(time.Millisecond).Seconds())
		if c.onChange != nil {
			c.onChange(true)
		}
	}
}

// probe pings a down Redis every interval until it answers, and logs a
// line a minute while it does not.
func (c *Conn) probe(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		if !c.down.Load() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), interval)
		err := c.rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			c.recovered()
			continue
		}
		c.downMu.Lock()
		logNow := c.now().Sub(c.lastLog) >= time.Minute
		if logNow {
			c.lastLog = c.now()
		}
		since := c.downAt
		c.downMu.Unlock()
		if logNow {
			c.log.Error("redis still unreachable", logkey.DurationS, c.now().Sub(since).Round(time.Second).Seconds(), logkey.Err, err)
		}
	}
}

// ctx bounds one operation that has no request context.
func (c *Conn) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), c.rdb.Options().ReadTimeout+c.rdb.Options().WriteTimeout)
}

func (c *Conn) key(parts ...string) string {
	var b strings.Builder
	b.WriteString(c.prefix)
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(p)
	}
	return b.String()
}
