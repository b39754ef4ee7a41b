package cluster_test

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLinkProxy: the proxy forwards, Cut closes open connections and
// refuses new ones, Restore serves again on the same address.
func TestLinkProxy(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup // the echo server's goroutines
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					c.Write([]byte(sc.Text() + "\n"))
				}
			}()
		}
	}()
	p, err := newLinkProxy(echo.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	// The proxy closes its upstream connections, which ends the echo's.
	defer func() { p.Close(); echo.Close(); wg.Wait() }()
	roundTrip := func(c net.Conn, msg string) (string, error) {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write([]byte(msg + "\n")); err != nil {
			return "", err
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		return strings.TrimSpace(line), err
	}
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := roundTrip(c, "one"); err != nil || got != "one" {
		t.Fatalf("through the proxy: %q, %v", got, err)
	}
	p.Cut()
	if got, err := roundTrip(c, "two"); err == nil {
		t.Fatalf("an open connection still answered %q after Cut", got)
	}
	if c2, err := net.DialTimeout("tcp", p.addr, 2*time.Second); err == nil {
		c2.Close()
		t.Fatal("a new connection was accepted after Cut")
	}
	if err := p.Restore(); err != nil {
		t.Fatal(err)
	}
	c3, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatalf("after Restore: %v", err)
	}
	defer c3.Close()
	if got, err := roundTrip(c3, "three"); err != nil || got != "three" {
		t.Fatalf("after Restore: %q, %v", got, err)
	}
}
