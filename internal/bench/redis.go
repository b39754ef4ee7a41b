package bench

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisStats are the shared Redis's costs over a measured window: its CPU
// (INFO CPU, user+system) and how its memory (INFO MEMORY used_memory)
// grew, per request: the replay entries and call sessions the window's
// requests left.
type RedisStats struct {
	CPUSeconds            float64 `json:"cpu_seconds"`
	CPUPerRequestUS       float64 `json:"cpu_per_request_us"`
	UsedMemoryBefore      int64   `json:"used_memory_before_bytes"`
	UsedMemoryAfter       int64   `json:"used_memory_after_bytes"`
	MemoryPerRequestBytes float64 `json:"memory_per_request_bytes"`
	Error                 string  `json:"error,omitempty"`
}

// RedisLiveCalls is Redis's memory before and after the live calls were
// opened.
type RedisLiveCalls struct {
	UsedMemoryBefore int64   `json:"used_memory_before_bytes"`
	UsedMemoryWith   int64   `json:"used_memory_with_bytes"`
	PerCallBytes     float64 `json:"per_call_bytes"`
}

// redisProbe reads a Redis's INFO.
type redisProbe struct {
	c *redis.Client
}

type redisSample struct {
	cpu        float64 // seconds, user+system
	usedMemory int64
}

// newRedisProbe connects to url (redis://, loopback only: the benchmark
// reads only a Redis on this machine).
func newRedisProbe(url string) (*redisProbe, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redis URL: %v", err)
	}
	host, _, err := net.SplitHostPort(opt.Addr)
	if ip := net.ParseIP(host); err != nil || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
		return nil, fmt.Errorf("redis %q is not a loopback address: bench only reads a Redis on this machine", opt.Addr)
	}
	opt.DisableIdentity = true
	return &redisProbe{c: redis.NewClient(opt)}, nil
}

func (p *redisProbe) close() { p.c.Close() }

func (p *redisProbe) sample() (redisSample, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := p.c.Info(ctx, "cpu", "memory").Result()
	if err != nil {
		return redisSample{}, fmt.Errorf("redis INFO: %w", err)
	}
	return parseRedisInfo(s), nil
}

// parseRedisInfo reads used_cpu_sys, used_cpu_user and used_memory from
// an INFO answer.
func parseRedisInfo(info string) redisSample {
	var r redisSample
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch k {
		case "used_cpu_sys", "used_cpu_user":
			f, _ := strconv.ParseFloat(v, 64)
			r.cpu += f
		case "used_memory":
			r.usedMemory, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return r
}
