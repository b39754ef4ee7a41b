package redisstate

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// heartbeatScript: KEYS replicas; ARGV name, counted for (ms), key
// expiry (ms). On Redis's clock, so that replicas whose clocks differ do
// not count each other out.
var heartbeatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return redis.call('ZCARD', KEYS[1])
`)

// CountReplicas registers this replica under name and counts the live
// ones: every interval it notes itself in a sorted set and counts the
// members seen within three intervals, and calls onCount when the number
// changes (the gateway divides its rate limits by it). At Close it leaves
// the set, so that the others count it out at once. While Redis is
// unreachable the last count stands. It runs until the Conn closes.
func (c *Conn) CountReplicas(name string, interval time.Duration, onCount func(int)) {
	key := c.key("replicas")
	last := 0
	tick := func() {
		ctx, cancel := c.ctx()
		defer cancel()
		n, err := heartbeatScript.Run(ctx, c.rdb, []string{key}, name, 3*interval.Milliseconds(), 10*interval.Milliseconds()).Int()
		if err != nil {
			c.failed(err)
			return
		}
		if n != last && n > 0 {
			last = n
			onCount(n)
		}
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		tick()
		for {
			select {
			case <-c.stop:
				ctx, cancel := context.WithTimeout(context.Background(), c.rdb.Options().WriteTimeout)
				c.rdb.ZRem(ctx, key, name)
				cancel()
				return
			case <-t.C:
				tick()
			}
		}
	}()
}
