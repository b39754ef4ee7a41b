package gateway_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/config"
)

// TestHeaderOnlyFloodHoldsNoMemory reproduces the pre-auth memory attack:
// unauthenticated clients send request headers announcing a 1 MiB body and
// then at most one byte. The server must not reserve memory sized by the
// announced length: memory held grows with the bytes that arrived.
func TestHeaderOnlyFloodHoldsNoMemory(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Vapi.MaxBodyBytes = 1 << 20 })
	host := strings.TrimPrefix(e.srv.URL, "http://")
	const conns = 200 // 200 MiB announced
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	for i := 0; i < conns; i++ {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		open = append(open, c)
		fmt.Fprintf(c, "POST /webhook/vapi HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n{", 1<<20)
	}
	// Wait until every request is inside the handler (each reads its body).
	deadline := time.Now().Add(10 * time.Second)
	for e.app.Gateway.BodiesInFlight() < conns && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := e.app.Gateway.BodiesInFlight(); n < conns {
		t.Fatalf("only %d of %d requests reached the handler", n, conns)
	}
	var now runtime.MemStats
	runtime.ReadMemStats(&now)
	grew := int64(now.HeapAlloc) - int64(base.HeapAlloc)
	// 200 connections announcing 1 MiB each: reserving by Content-Length
	// holds 200 MiB. Growing with arriving bytes holds a few KiB each.
	if grew > 40<<20 {
		t.Fatalf("heap grew by %d MiB for %d header-only requests: memory is reserved before the bytes arrive", grew>>20, conns)
	}
	if held := e.app.Gateway.BodyBytesHeld(); held > conns*8<<10 {
		t.Fatalf("%d bytes of body buffers held for %d one-byte bodies", held, conns)
	}
	t.Logf("heap grew %d KiB for %d header-only connections", grew>>10, conns)
}

// TestBodyBudgetSheds: once bodies in flight hold the global budget, a new
// request is refused with 503 and Retry-After before its body is read, and
// the budget is returned when requests finish.
func TestBodyBudgetSheds(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Vapi.MaxBodyBytes = 64 << 10
		c.Server.BodyMemoryBytes = 128 << 10
	})
	host := strings.TrimPrefix(e.srv.URL, "http://")
	// Two clients send 60 KiB of a 64 KiB body and stall: they hold the budget.
	var open []net.Conn
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		open = append(open, c)
		fmt.Fprintf(c, "POST /webhook/vapi HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", 64<<10, strings.Repeat(" ", 60<<10))
	}
	deadline := time.Now().Add(10 * time.Second)
	for e.app.Gateway.BodyBytesHeld() < 100<<10 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	body := msg("status-update", "budget-call", `"status":"in-progress"`)
	req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(body))
	req.Header = e.signed(body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the body budget: status %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if got := e.metric(`voicegate_requests_total{outcome="overloaded",source="vapi",type="none"}`); got == "" || got == "0" {
		t.Fatalf("shed request not counted: %q", got)
	}
	// The stalled clients finish their bodies (unsigned: 401) or leave; the
	// budget is returned and the next request passes.
	for _, c := range open {
		c.Write([]byte(strings.Repeat(" ", 4<<10)))
		bufio.NewReader(c).ReadString('\n')
		c.Close()
	}
	deadline = time.Now().Add(10 * time.Second)
	for e.app.Gateway.BodyBytesHeld() != 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if held := e.app.Gateway.BodyBytesHeld(); held != 0 {
		t.Fatalf("%d bytes still held after every request finished", held)
	}
	if status, resp := e.send(body); status != 200 {
		t.Fatalf("after the flood: %d %s", status, resp)
	}
}
