package ratelimit

import (
	"fmt"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func TestBucketBurstThenRate(t *testing.T) {
	b := NewBucket(Rate{PerSecond: 10, Burst: 3})
	for i := range 3 {
		if ok, _ := b.Allow(t0); !ok {
			t.Fatalf("request %d of the burst refused", i)
		}
	}
	ok, wait := b.Allow(t0)
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("past the burst: ok=%v wait=%v, want a refusal with 100ms", ok, wait)
	}
	// A refusal takes no token: 100 ms later one is there.
	if ok, _ := b.Allow(t0.Add(100 * time.Millisecond)); !ok {
		t.Fatal("a token refilled at 10/s was not there after 100ms")
	}
	if ok, _ := b.Allow(t0.Add(100 * time.Millisecond)); ok {
		t.Fatal("two tokens after 100ms at 10/s")
	}
	var off *Bucket = NewBucket(Rate{})
	for range 1000 {
		if ok, _ := off.Allow(t0); !ok {
			t.Fatal("a bucket that is off refused")
		}
	}
}

func TestPerAddressIsolatesClients(t *testing.T) {
	p := NewPerAddress(Rate{PerSecond: 1, Burst: 2}, 1000)
	a, b := netip.MustParseAddr("203.0.113.7"), netip.MustParseAddr("203.0.113.8")
	for range 2 {
		if ok, _ := p.Allow(a, t0); !ok {
			t.Fatal("a's burst refused")
		}
	}
	if ok, wait := p.Allow(a, t0); ok || RetryAfterSeconds(wait) != 1 {
		t.Fatalf("a past its burst: %v %v", ok, wait)
	}
	if ok, _ := p.Allow(b, t0); !ok {
		t.Fatal("b refused because of a")
	}
	// The IPv4-mapped form is the same client.
	if ok, _ := p.Allow(netip.MustParseAddr("::ffff:203.0.113.7"), t0); ok {
		t.Fatal("a, written as an IPv4-mapped IPv6 address, got a fresh bucket")
	}
	// IPv6: one /64 is one client; another /64 is another.
	h1, h2, other := netip.MustParseAddr("2001:db8:1:2::1"), netip.MustParseAddr("2001:db8:1:2:ffff::9"), netip.MustParseAddr("2001:db8:1:3::1")
	p.Allow(h1, t0)
	p.Allow(h2, t0)
	if ok, _ := p.Allow(h1, t0); ok {
		t.Fatal("two addresses of one /64 have separate buckets")
	}
	if ok, _ := p.Allow(other, t0); !ok {
		t.Fatal("another /64 shares the bucket")
	}
}

// TestFloodOfDistinctAddressesIsBounded: 100,000 distinct addresses in one
// second track at most max buckets; beyond it they share one bucket (so the
// flood as a whole is limited too), and once their buckets are full again
// a sweep frees them.
func TestFloodOfDistinctAddressesIsBounded(t *testing.T) {
	const maxAddrs = 4096
	p := NewPerAddress(Rate{PerSecond: 5, Burst: 10}, maxAddrs)
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	allowed := 0
	for i := range 100_000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		if ok, _ := p.Allow(a, t0.Add(time.Duration(i)*10*time.Microsecond)); ok {
			allowed++
		}
	}
	if n := p.Len(); n > maxAddrs {
		t.Fatalf("%d addresses tracked, want at most %d", n, maxAddrs)
	}
	// Each tracked address got its one request; the shared bucket let its
	// burst and about a second of refill through (5/s) — not 100,000.
	if allowed > p.Len()+10+10 {
		t.Fatalf("%d of the flood allowed with %d tracked", allowed, p.Len())
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grew := int64(after.HeapAlloc) - int64(before.HeapAlloc); grew > 4<<20 {
		t.Fatalf("the heap grew by %d bytes for %d tracked addresses", grew, p.Len())
	}
	// Two seconds on (the refill of a burst of 10 at 5/s), every bucket is
	// full again: a sweep forgets them all.
	p.Sweep(t0.Add(time.Second + 2*time.Second))
	if n := p.Len(); n != 0 {
		t.Fatalf("%d buckets left after they were all full again", n)
	}
	// And a full table makes room by itself for a new address once old
	// buckets are full again.
	for i := range maxAddrs * 2 {
		p.Allow(netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}), t0.Add(10*time.Second))
	}
	if n := p.Len(); n != maxAddrs {
		t.Fatalf("%d tracked, want the table full (%d)", n, maxAddrs)
	}
	late := netip.MustParseAddr("192.0.2.1")
	p.Allow(late, t0.Add(20*time.Second))
	tracked := false
	for i := range p.shards {
		tracked = tracked || p.shards[i].m[late] != nil
	}
	if !tracked || p.Len() > maxAddrs {
		t.Fatalf("a new address after the old buckets filled up: tracked=%v, %d tracked", tracked, p.Len())
	}
}

func TestPerAddressConcurrent(t *testing.T) {
	p := NewPerAddress(Rate{PerSecond: 1000, Burst: 100}, 256)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := map[string]int{}
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				a := netip.AddrFrom4([4]byte{192, 0, 2, byte(i % 4)})
				if ok, _ := p.Allow(a, t0); ok {
					mu.Lock()
					allowed[a.String()]++
					mu.Unlock()
				}
				_ = g
			}
		})
	}
	wg.Wait()
	for a, n := range allowed {
		if n != 100 {
			t.Errorf("%s: %d allowed at one instant, want its burst of 100", a, n)
		}
	}
	if len(allowed) != 4 {
		t.Fatal(fmt.Sprint(allowed))
	}
}

func TestConfigValidate(t *testing.T) {
	if probs := DefaultConfig().Validate(); len(probs) != 0 {
		t.Fatal(probs)
	}
	for _, c := range []struct {
		mut  func(*Config)
		want string
	}{
		{func(c *Config) { c.PerSource.Burst = 0 }, "per_source: burst must be at least 1"},
		{func(c *Config) { c.PerRoute = Rate{PerSecond: -1, Burst: 1} }, "per_route: per_second and burst must not be negative"},
		{func(c *Config) { c.PerRoute = Rate{Burst: 5} }, "per_route: burst without per_second"},
		{func(c *Config) { c.MaxSources = 1 }, "max_sources: 1 is outside"},
		{func(c *Config) { c.MaxInFlight = -1 }, "max_in_flight: must not be negative"},
	} {
		cfg := DefaultConfig()
		c.mut(&cfg)
		probs := cfg.Validate()
		if len(probs) != 1 || probs[0][:len(c.want)] != c.want {
			t.Errorf("problems %q, want %q", probs, c.want)
		}
	}
}

func BenchmarkPerAddressAllow(b *testing.B) {
	p := NewPerAddress(DefaultConfig().PerSource, DefaultConfig().MaxSources)
	addrs := make([]netip.Addr, 64)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
	}
	now := t0
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p.Allow(addrs[i%len(addrs)], now)
		i++
		now = now.Add(time.Millisecond)
	}
}

// TestMemoryPerAddress reports what a tracked address costs (the figure in
// the README's limits section) and fails if it grows past 256 bytes.
func TestMemoryPerAddress(t *testing.T) {
	const n = 50_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	p := NewPerAddress(Rate{PerSecond: 1, Burst: 1}, 1<<20)
	for i := range n {
		p.Allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), t0)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	t.Logf("%.0f bytes per tracked address (%d tracked)", per, p.Len())
	if per > 256 {
		t.Fatalf("%.0f bytes per tracked address", per)
	}
	runtime.KeepAlive(p)
}

// TestShare: a bucket shared by n replicas takes a nth of the rate and
// burst, and gets it all back when it is alone again; buckets made after
// the share get the share too.
func TestShare(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	count := func(allow func() bool) int {
		n := 0
		for range 100 {
			if allow() {
				n++
			}
		}
		return n
	}
	b := NewBucket(Rate{PerSecond: 10, Burst: 30})
	b.Share(3)
	if n := count(func() bool { ok, _ := b.Allow(now); return ok }); n != 10 {
		t.Fatalf("a third of a burst of 30: %d allowed, want 10", n)
	}
	p := NewPerAddress(Rate{PerSecond: 10, Burst: 30}, 100)
	a1, a2 := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	p.Allow(a1, now) // a bucket made before the share
	p.Share(3)
	if n := count(func() bool { ok, _ := p.Allow(a1, now); return ok }); n != 10 {
		t.Fatalf("existing address bucket shared by 3: %d allowed, want 10", n)
	}
	if n := count(func() bool { ok, _ := p.Allow(a2, now); return ok }); n != 10 {
		t.Fatalf("new address bucket shared by 3: %d allowed, want 10", n)
	}
	b.Share(0) // alone (n < 1 counts as 1)
	later := now.Add(10 * time.Second)
	if n := count(func() bool { ok, _ := b.Allow(later); return ok }); n != 30 {
		t.Fatalf("alone again: %d allowed, want the whole burst of 30", n)
	}
}
