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
	_, replay, tk, err := c.Begin(context.Background(), k, time.Time{})
	if err != nil || replay {
		t.Fatalf("first: replay=%v err=%v", replay, err)
	}
	c.Finish(tk, Response{Status: 200, Body: []byte(`{"results":[]}`)}, true)
	r, replay, _, err := c.Begin(context.Background(), k, time.Time{})
	if err != nil || !replay || r.Status != 200 || string(r.Body) != `{"results":[]}` {
		t.Fatalf("second: %+v replay=%v err=%v", r, replay, err)
	}
	if _, replay, _, _ := c.Begin(context.Background(), KeyOf([]byte("other")), time.Time{}); replay {
		t.Fatal("a different body is not a replay")
	}
	// After the window the key is forgotten.
	ck.add(time.Minute)
	if _, replay, tk, _ := c.Begin(context.Background(), k, time.Time{}); replay {
		t.Fatal("expired entry still answered")
	} else {
		c.Finish(tk, Response{}, true)
	}
}

func TestConcurrentReplayWaitsForOriginal(t *testing.T) {
	c := New(time.Minute, 10, time.Now)
	k := KeyOf([]byte("x"))
	_, _, tk, _ := c.Begin(context.Background(), k, time.Time{})
	var got atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 5; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, replay, _, err := c.Begin(context.Background(), k, time.Time{})
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
	c.Begin(context.Background(), k2, time.Time{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, _, _, err := c.Begin(ctx, k2, time.Time{}); err == nil {
		t.Fatal("want context error while the original is stuck")
	}
}

func TestForgottenEntryIsHandledAgain(t *testing.T) {
	c := New(time.Minute, 10, time.Now)
	k := KeyOf([]byte("x"))
	_, _, tk, _ := c.Begin(context.Background(), k, time.Time{})
	c.Finish(tk, Response{Status: 503}, false)
	_, replay, tk2, _ := c.Begin(context.Background(), k, time.Time{})
	if replay {
		t.Fatal("a failed request must be retryable, not answered from cache")
	}
	c.Finish(tk2, Response{Status: 200}, true)
	if r, replay, _, _ := c.Begin(context.Background(), k, time.Time{}); !replay || r.Status != 200 {
		t.Fatalf("retry's answer not remembered: %+v %v", r, replay)
	}
}

func TestCapacityEvictsOldest(t *testing.T) {
	c := New(time.Hour, 3, time.Now)
	for i := 0; i < 5; i++ {
		_, _, tk, _ := c.Begin(context.Background(), KeyOf([]byte{byte(i)}), time.Time{})
		c.Finish(tk, Response{Status: 200}, true)
	}
	if c.Len() != 3 || c.EarlyEvictions() != 2 {
		t.Fatalf("len %d, early evictions %d; want capacity 3 and 2 counted", c.Len(), c.EarlyEvictions())
	}
	if _, replay, tk, _ := c.Begin(context.Background(), KeyOf([]byte{0}), time.Time{}); replay {
		t.Fatal("oldest entry should have been evicted")
	} else {
		c.Finish(tk, Response{}, true)
	}
	if _, replay, _, _ := c.Begin(context.Background(), KeyOf([]byte{4}), time.Time{}); !replay {
		t.Fatal("newest entry should be kept")
	}
}

func TestWaiterSeesForgottenOriginalAndTakesOver(t *testing.T) {
	c := New(time.Minute, 10, time.Now)
	k := KeyOf([]byte("z"))
	_, _, tk, _ := c.Begin(context.Background(), k, time.Time{})
	type res struct {
		replay bool
		tk     Ticket
	}
	ch := make(chan res)
	go func() {
		_, replay, tk2, _ := c.Begin(context.Background(), k, time.Time{})
		ch <- res{replay, tk2}
	}()
	// Finish only once the second Begin is waiting on the original, so
	// that the test goes through the wait path, not around it.
	waiting := func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return tk.e.wait != nil
	}
	for deadline := time.Now().Add(2 * time.Second); !waiting(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the second Begin never waited on the original")
		}
	}
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
		_, replay, tk, _ := c.Begin(context.Background(), k, time.Time{})
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
		_, _, tk, _ := c.Begin(context.Background(), k, time.Time{})
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

// TestEntryOutlivesWindowWhileSignatureValid reproduces the replay gap: a
// request signed with a timestamp ahead of now stays verifiable after the
// replay window; its entry must stay until the signature can no longer pass.
func TestEntryOutlivesWindowWhileSignatureValid(t *testing.T) {
	ck := &clock{t: time.Unix(1e9, 0)}
	c := New(20*time.Second, 10, ck.now)
	k := KeyOf([]byte("signed ts=now+18s"))
	validUntil := ck.now().Add(18*time.Second + 20*time.Second) // ts + tolerance
	_, _, tk, _ := c.Begin(context.Background(), k, validUntil)
	c.Finish(tk, Response{Status: 200}, true)
	ck.add(22 * time.Second) // past the window, signature still valid
	if _, replay, tk, _ := c.Begin(context.Background(), k, validUntil); !replay {
		c.Finish(tk, Response{}, true)
		t.Fatal("a replay inside its signature's validity was processed again")
	}
	ck.add(17 * time.Second) // 39 s: the signature no longer verifies
	if _, replay, tk, _ := c.Begin(context.Background(), k, validUntil); replay {
		t.Fatal("entry kept after the signature expired")
	} else {
		c.Finish(tk, Response{}, true)
	}
}

// TestExpiredEntryBehindLongLivedHeadIsIgnored: an entry that outlives its
// window keeps later entries in the ring, but they are no longer answered.
func TestExpiredEntryBehindLongLivedHeadIsIgnored(t *testing.T) {
	ck := &clock{t: time.Unix(1e9, 0)}
	c := New(10*time.Second, 10, ck.now)
	_, _, tk, _ := c.Begin(context.Background(), KeyOf([]byte("long")), ck.now().Add(time.Minute))
	c.Finish(tk, Response{Status: 200}, true)
	k := KeyOf([]byte("short"))
	_, _, tk, _ = c.Begin(context.Background(), k, time.Time{})
	c.Finish(tk, Response{Status: 200}, true)
	ck.add(11 * time.Second)
	if _, replay, tk, _ := c.Begin(context.Background(), k, time.Time{}); replay {
		t.Fatal("an expired entry was answered as a replay")
	} else {
		c.Finish(tk, Response{Status: 200}, true)
	}
}

// TestFinishOnlyOnce: a deferred release after the answer was recorded does
// not forget it, and a ticket abandoned by a panic frees its key.
func TestFinishOnlyOnce(t *testing.T) {
	c := New(time.Minute, 10, time.Now)
	k := KeyOf([]byte("x"))
	_, _, tk, _ := c.Begin(context.Background(), k, time.Time{})
	c.Finish(tk, Response{Status: 200}, true)
	c.Finish(tk, Response{}, false)
	if _, replay, _, _ := c.Begin(context.Background(), k, time.Time{}); !replay {
		t.Fatal("a second Finish undid the recorded answer")
	}
	k2 := KeyOf([]byte("y"))
	func() {
		defer func() { recover() }()
		_, _, tk, _ := c.Begin(context.Background(), k2, time.Time{})
		defer c.Finish(tk, Response{}, false)
		panic("handler bug")
	}()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if _, replay, tk, err := c.Begin(ctx, k2, time.Time{}); err != nil || replay {
		t.Fatalf("after an abandoned ticket: replay=%v err=%v", replay, err)
	} else {
		c.Finish(tk, Response{}, true)
	}
}

// A lookup as of an earlier instant (a request whose body arrived slowly)
// still finds an entry that later requests would otherwise have evicted.
func TestGraceKeepsEntriesForEarlierLookups(t *testing.T) {
	now := time.Unix(1_795_000_000, 0)
	c := New(time.Second, 10, func() time.Time { return now })
	c.SetGrace(15 * time.Second)
	k := KeyOf([]byte("slow"))
	_, _, tk, _ := c.Begin(context.Background(), k, time.Time{})
	c.Finish(tk, Response{Status: 200, Body: []byte("first")}, true)
	checked := now.Add(900 * time.Millisecond) // credential checked inside the window
	now = now.Add(3 * time.Second)             // other traffic, past the entry's expiry
	_, _, other, _ := c.Begin(context.Background(), KeyOf([]byte("other")), time.Time{})
	c.Finish(other, Response{Status: 200}, true)
	resp, replay, _, _ := c.BeginAt(context.Background(), k, checked, time.Time{})
	if !replay || string(resp.Body) != "first" {
		t.Fatalf("lookup as of %s after other traffic: replay=%v %q; the entry was evicted", checked, replay, resp.Body)
	}
	// As of now, it has expired: a new request.
	if _, replay, _, _ := c.Begin(context.Background(), k, time.Time{}); replay {
		t.Fatal("an expired entry answered a lookup as of now")
	}
}
