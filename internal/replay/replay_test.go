package replay

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestReplayAnsweredFromCache(t *testing.T) {
	ck := &clock{t: time.Unix(1e9, 0)}
	c := New(time.Minute, 10, ck.now)
	k := KeyOf([]byte("body"))
	_, replay, tk, err := c.Begin(context.Background(), k)
	if err != nil || replay {
		t.Fatalf("first: replay=%v err=%v", replay, err)
	}
	c.Finish(tk, Response{Status: 200, Body: []byte(`{"results":[]}`)}, true)
	r, replay, _, err := c.Begin(context.Background(), k)
	if err != nil || !replay || r.Status != 200 || string(r.Body) != `{"results":[]}` {
		t.Fatalf("second: %+v replay=%v err=%v", r, replay, err)
	}
	if _, replay, _, _ := c.Begin(context.Background(), KeyOf([]byte("other"))); replay {
		t.Fatal("a different body is not a replay")
	}
	// After the window the key is forgotten.
	ck.add(time.Minute)
	if _, replay, tk, _ := c.Begin(context.Background(), k); replay {
		t.Fatal("expired entry still answered")
	} else {
		c.Finish(tk, Response{}, true)
	}
}

func TestConcurrentReplayWaitsForOriginal(t *testing.T) {
	c := New(time.Minute, 10, time.Now)
	k := KeyOf([]byte("x"))
	_, _, tk, _ := c.Begin(context.Background(), k)
	var got atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, replay, _, err := c.Begin(context.Background(), k)
			if err == nil && replay && r.Status == 201 {
				got.Add(1)
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	c.Finish(tk, Response{Status: 201}, true)
	wg.Wait()
	if got.Load() != 5 {
		t.Fatalf("%d of 5 concurrent replays got the original answer", got.Load())
	}
	// A waiting replay gives up with its context.
	k2 := KeyOf([]byte("y"))
	c.Begin(context.Background(), k2)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, _, _, err := c.Begin(ctx, k2); err == nil {
		t.Fatal("want context error while the original is stuck")
	}
}

func TestForgottenEntryIsHandledAgain(t *testing.T) {
	c := New(time.Minute, 10, time.Now)
	k := KeyOf([]byte("x"))
	_, _, tk, _ := c.Begin(context.Background(), k)
	c.Finish(tk, Response{Status: 503}, false)
	_, replay, tk2, _ := c.Begin(context.Background(), k)
	if replay {
		t.Fatal("a failed request must be retryable, not answered from cache")
	}
	c.Finish(tk2, Response{Status: 200}, true)
	if r, replay, _, _ := c.Begin(context.Background(), k); !replay || r.Status != 200 {
		t.Fatalf("retry's answer not remembered: %+v %v", r, replay)
	}
}

func TestCapacityEvictsOldest(t *testing.T) {
	c := New(time.Hour, 3, time.Now)
	for i := 0; i < 5; i++ {
		_, _, tk, _ := c.Begin(context.Background(), KeyOf([]byte{byte(i)}))
		c.Finish(tk, Response{Status: 200}, true)
	}
	if c.Len() != 3 || c.EarlyEvictions() != 2 {
		t.Fatalf("len %d, early evictions %d; want capacity 3 and 2 counted", c.Len(), c.EarlyEvictions())
	}
	if _, replay, tk, _ := c.Begin(context.Background(), KeyOf([]byte{0})); replay {
		t.Fatal("oldest entry should have been evicted")
	} else {
		c.Finish(tk, Response{}, true)
	}
	if _, replay, _, _ := c.Begin(context.Background(), KeyOf([]byte{4})); !replay {
		t.Fatal("newest entry should be kept")
	}
}

func TestWaiterSeesForgottenOriginalAndTakesOver(t *testing.T) {
	c := New(time.Minute, 10, time.Now)
	k := KeyOf([]byte("z"))
	_, _, tk, _ := c.Begin(context.Background(), k)
	type res struct {
		replay bool
		tk     Ticket
	}
	ch := make(chan res)
	go func() {
		_, replay, tk2, _ := c.Begin(context.Background(), k)
		ch <- res{replay, tk2}
	}()
	time.Sleep(20 * time.Millisecond)
	c.Finish(tk, Response{Status: 503}, false)
	r := <-ch
	if r.replay || r.tk.e == nil {
		t.Fatal("after the original was forgotten, the waiter must handle the request itself")
	}
	c.Finish(r.tk, Response{Status: 200}, true)
}

func BenchmarkBeginFinish(b *testing.B) {
	c := New(time.Minute, 1<<16, time.Now)
	var keys [1024]Key
	for i := range keys {
		keys[i] = KeyOf([]byte{byte(i), byte(i >> 8)})
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		k := keys[i%len(keys)]
		k[31] = byte(i >> 10)
		k[30] = byte(i >> 18)
		_, replay, tk, _ := c.Begin(context.Background(), k)
		if !replay {
			c.Finish(tk, Response{Status: 200}, true)
		}
	}
}

// TestMemoryPerEntry bounds what one remembered request costs, so that the
// capacity advice in the README stays true (memory, not time: stable in CI).
func TestMemoryPerEntry(t *testing.T) {
	const n = 100_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := New(time.Hour, n, time.Now)
	for i := 0; i < n; i++ {
		var k Key
		k[0], k[1], k[2] = byte(i), byte(i>>8), byte(i>>16)
		_, _, tk, _ := c.Begin(context.Background(), k)
		c.Finish(tk, Response{Status: 200, Body: shared}, true)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.0f bytes per entry", per)
	if per > 250 || c.Len() != n {
		t.Fatalf("%.0f bytes per entry (len %d), want at most 250", per, c.Len())
	}
	runtime.KeepAlive(c)
}

var shared = []byte("{}")
