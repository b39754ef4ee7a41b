package cluster_test

import (
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// linkProxy is a TCP proxy between voicegate and one of its dependencies
// (Redis, PostgreSQL) that the test can cut — every open connection closed,
// new ones refused (the listener is closed) — and restore on the same
// address. It stands in for a network partition.
type linkProxy struct {
	addr   string // the address voicegate dials
	target string

	mu     sync.Mutex
	ln     net.Listener // nil while cut
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup // the accept loops and the copiers
}

// newLinkProxy listens on a free loopback port and forwards to target.
func newLinkProxy(target string) (*linkProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &linkProxy{addr: ln.Addr().String(), target: target, conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	return p, nil
}

func (p *linkProxy) serve(ln net.Listener) {
	p.ln = ln
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.handle(c)
		}
	}()
}

func (p *linkProxy) handle(c net.Conn) {
	p.mu.Lock()
	if p.ln == nil || p.closed {
		p.mu.Unlock()
		c.Close()
		return
	}
	p.conns[c] = struct{}{}
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		defer p.forget(c)
		up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			return
		}
		if !p.track(up) {
			up.Close()
			return
		}
		defer p.forget(up)
		done := make(chan struct{}, 2)
		cp := func(dst, src net.Conn) {
			io.Copy(dst, src)
			// Half a connection gone is the whole of it gone: a
			// server or a client that closed is not waited for.
			dst.Close()
			src.Close()
			done <- struct{}{}
		}
		go cp(up, c)
		go cp(c, up)
		<-done
		<-done
	}()
}

func (p *linkProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil || p.closed {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *linkProxy) forget(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// Cut closes every connection and the listener: new connections are
// refused until Restore.
func (p *linkProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
}

// Restore listens again on the same address (retrying for a few seconds
// should the port be slow to free).
func (p *linkProxy) Restore() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil || p.closed {
		return nil
	}
	var err error
	for i := 0; i < 50; i++ {
		var ln net.Listener
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			p.serve(ln)
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("restore proxy on %s: %w", p.addr, err)
}

// Close cuts the link for good and waits for every goroutine it started.
func (p *linkProxy) Close() error {
	p.Cut()
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}
