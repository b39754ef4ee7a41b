package replay

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestCapacityEvictsOldest(t *testing.T) {
	c := New(time.Hour, 3)
	for i := 0; i < 5; i++ {
		_, _, tk, _ := c.BeginAt(context.Background(), KeyOf([]byte{byte(i)}), time.Now(), time.Time{})
		c.Finish(tk, Response{Status: 200}, true)
	}
	if c.Len() != 3 || c.EarlyEvictions() != 2 {
		t.Fatalf("len %d, early evictions %d; want capacity 3 and 2 counted", c.Len(), c.EarlyEvictions())
	}
	if _, replay, tk, _ := c.BeginAt(context.Background(), KeyOf([]byte{0}), time.Now(), time.Time{}); replay {
		t.Fatal("oldest entry should have been evicted")
	} else {
		c.Finish(tk, Response{}, true)
	}
	if _, replay, _, _ := c.BeginAt(context.Background(), KeyOf([]byte{4}), time.Now(), time.Time{}); !replay {
		t.Fatal("newest entry should be kept")
	}
}

func TestWaiterSeesForgottenOriginalAndTakesOver(t *testing.T) {
	c := New(time.Minute, 10)
	k := KeyOf([]byte("z"))
	_, _, tk, _ := c.BeginAt(context.Background(), k, time.Now(), time.Time{})
	type res struct {
		replay bool
		tk     Ticket
	}
	ch := make(chan res)
	go func() {
		_, replay, tk2, _ := c.BeginAt(context.Background(), k, time.Now(), time.Time{})
		ch <- res{replay, tk2}
	}()
	// Finish only once the second Begin is waiting on the original, so
	// that the test goes through the wait path, not around it.
	waiting := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return tk.Handle.(*entry).wait != nil
	}
	for deadline := time.Now().Add(2 * time.Second); !waiting(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the second Begin never waited on the original")
		}
	}
	c.Finish(tk, Response{Status: 503}, false)
	r := <-ch
	if r.replay || r.tk.Handle == nil {
		t.Fatal("after the original was forgotten, the waiter must handle the request itself")
	}
	c.Finish(r.tk, Response{Status: 200}, true)
}

func BenchmarkBeginFinish(b *testing.B) {
	c := New(time.Minute, 1<<16)
	var keys [1024]Key
	for i := range keys {
		keys[i] = KeyOf([]byte{byte(i), byte(i >> 8)})
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		k := keys[i%len(keys)]
		k[31] = byte(i >> 10)
		k[30] = byte(i >> 18)
		_, replay, tk, _ := c.BeginAt(context.Background(), k, time.Now(), time.Time{})
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
	c := New(time.Hour, n)
	for i := 0; i < n; i++ {
		var k Key
		k[0], k[1], k[2] = byte(i), byte(i>>8), byte(i>>16)
		_, _, tk, _ := c.BeginAt(context.Background(), k, time.Now(), time.Time{})
		// Each entry keeps its call id (a UUID, for the replay's log line).
		c.Finish(tk, Response{Status: 200, Body: shared, CallID: fmt.Sprintf("%08x-0000-4000-8000-000000000000", i), Type: "speech-update"}, true)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.0f bytes per entry", per)
	if per > 300 || c.Len() != n {
		t.Fatalf("%.0f bytes per entry (len %d), want at most 300", per, c.Len())
	}
	runtime.KeepAlive(c)
}

var shared = []byte("{}")

// TestExpiredEntryBehindLongLivedHeadIsIgnored: an entry that outlives its
// window keeps later entries in the ring, but they are no longer answered.
func TestExpiredEntryBehindLongLivedHeadIsIgnored(t *testing.T) {
	ck := &clock{t: time.Unix(1e9, 0)}
	c := New(10*time.Second, 10)
	_, _, tk, _ := c.BeginAt(context.Background(), KeyOf([]byte("long")), ck.now(), ck.now().Add(time.Minute))
	c.Finish(tk, Response{Status: 200}, true)
	k := KeyOf([]byte("short"))
	_, _, tk, _ = c.BeginAt(context.Background(), k, ck.now(), time.Time{})
	c.Finish(tk, Response{Status: 200}, true)
	ck.add(11 * time.Second)
	if _, replay, tk, _ := c.BeginAt(context.Background(), k, ck.now(), time.Time{}); replay {
		t.Fatal("an expired entry was answered as a replay")
	} else {
		c.Finish(tk, Response{Status: 200}, true)
	}
}
