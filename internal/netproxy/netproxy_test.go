package netproxy_test

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/netproxy"
)

// echoServer answers each line with the same line, on 127.0.0.1.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

// roundTrip writes a line and reads it back, with a generous deadline so a
// broken proxy fails instead of hanging (the test does not measure time).
func roundTrip(c net.Conn, r *bufio.Reader, line string) (string, error) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return "", err
	}
	got, err := r.ReadString('\n')
	return strings.TrimSuffix(got, "\n"), err
}

func dial(t *testing.T, p *netproxy.Proxy) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

func TestCutAndRestore(t *testing.T) {
	p, err := netproxy.New(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	addr := p.Addr()

	c, r := dial(t, p)
	if got, err := roundTrip(c, r, "one"); err != nil || got != "one" {
		t.Fatalf("forward: %q, %v", got, err)
	}

	p.Cut()
	if _, err := roundTrip(c, r, "two"); err == nil {
		t.Fatal("an open connection still carries bytes after Cut")
	}
	c2, r2 := dial(t, p) // accepted, then closed at once
	if _, err := roundTrip(c2, r2, "three"); err == nil {
		t.Fatal("a new connection carries bytes after Cut")
	}

	p.Restore()
	if p.Addr() != addr {
		t.Fatalf("address changed: %s, was %s", p.Addr(), addr)
	}
	c3, r3 := dial(t, p)
	if got, err := roundTrip(c3, r3, "four"); err != nil || got != "four" {
		t.Fatalf("after Restore: %q, %v", got, err)
	}
}

func TestStall(t *testing.T) {
	p, err := netproxy.New(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, r := dial(t, p)
	if got, err := roundTrip(c, r, "one"); err != nil || got != "one" {
		t.Fatalf("forward: %q, %v", got, err)
	}
	p.Stall()
	// A short deadline here only bounds the wait for bytes that must not come.
	c.SetDeadline(time.Now().Add(200 * time.Millisecond))
	io.WriteString(c, "two\n")
	_, err = r.ReadString('\n')
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("stalled connection: got %v, want a timeout (no bytes, not closed)", err)
	}
	p.Restore()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	got, err := r.ReadString('\n')
	if err != nil || got != "two\n" {
		t.Fatalf("after Restore the buffered line should arrive: %q, %v", got, err)
	}
}

func TestCloseEndsEverything(t *testing.T) {
	p, err := netproxy.New(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	c, r := dial(t, p)
	if _, err := roundTrip(c, r, "one"); err != nil {
		t.Fatal(err)
	}
	p.Stall()
	c2, _ := dial(t, p) // waits in the gate
	_ = c2
	if err := p.Close(); err != nil { // must not hang on the stalled goroutines
		t.Fatal(err)
	}
	if _, err := roundTrip(c, r, "two"); err == nil {
		t.Fatal("connection still open after Close")
	}
	if _, err := net.Dial("tcp", p.Addr()); err == nil {
		t.Fatal("still listening after Close")
	}
}
