// Package redistest gives tests a Redis of their own: the machine's real
// Redis (127.0.0.1:6379, or VOICEGATE_TEST_REDIS_URL), under a key prefix
// no other test uses, emptied when the test ends. Under CI=true an
// unreachable Redis fails the test; elsewhere it skips.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// URL is the Redis the tests use.
func URL() string {
	if u := os.Getenv("VOICEGATE_TEST_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}

// Need checks that Redis answers, or skips (fails under CI=true).
func Need(t testing.TB) {
	t.Helper()
	opt, err := redis.ParseURL(URL())
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis unreachable under CI=true: %v", err)
		}
		t.Skipf("Redis unreachable: %v (under CI=true this fails)", err)
	}
}

// Prefix returns a key prefix of the test's own; its keys are deleted
// when the test ends.
func Prefix(t testing.TB) string {
	t.Helper()
	Need(t)
	var b [6]byte
	_, _ = rand.Read(b[:])
	p := "vgtest:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		opt, _ := redis.ParseURL(URL())
		c := redis.NewClient(opt)
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, p+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	return p
}
