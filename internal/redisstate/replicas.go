package redisstate

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

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
		now := c.now().UnixMilli()
		ctx, cancel := c.ctx()
		defer cancel()
		var card *redis.IntCmd
		_, err := c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.ZAdd(ctx, key, redis.Z{Score: float64(now), Member: name})
			p.ZRemRangeByScore(ctx, key, "-inf", strconv.FormatInt(now-3*interval.Milliseconds(), 10))
			card = p.ZCard(ctx, key)
			p.PExpire(ctx, key, 10*interval)
			return nil
		})
		if err != nil {
			c.failed(err)
			return
		}
		if n := int(card.Val()); n != last && n > 0 {
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
