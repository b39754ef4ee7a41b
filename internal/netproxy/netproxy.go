// Package netproxy is a small TCP proxy for tests that need a dependency
// (PostgreSQL, Redis, another replica) to become unreachable and come back
// while the code under test keeps running:
//
//	p, err := netproxy.New("127.0.0.1:5432") // listens on 127.0.0.1:0
//	defer p.Close()
//	dsn := "postgres://postgres@" + p.Addr() + "/test"
//	p.Cut()     // open connections are closed, new ones are closed at once
//	p.Stall()   // open and new connections stay open but carry nothing
//	p.Restore() // new connections are forwarded again
//
// The listener stays bound through Cut and Stall, so the address never
// changes and no other process can take the port in between. Cut is a
// refused or reset connection (the server went away); Stall is a black
// hole (a partition or a server that hangs), which only a client's own
// timeouts end. Restore does not revive connections Cut closed; stalled
// connections carry their buffered bytes on when Restore is called.
//
// It listens on the loopback interface only. Every goroutine it starts
// ends before Close returns.
package netproxy

import (
	"errors"
	"net"
	"sync"
)

// Mode is what the proxy does with traffic.
type Mode int

const (
	// Forward passes bytes both ways (the initial mode).
	Forward Mode = iota
	// Cut closes every connection.
	Cut
	// Stall holds every connection open without passing bytes.
	Stall
)

// Proxy forwards TCP connections from a loopback listener to a target.
// Its methods are safe for concurrent use.
type Proxy struct {
	target string
	ln     net.Listener

	mu      sync.Mutex
	mode    Mode
	changed chan struct{} // closed and replaced whenever mode changes
	conns   map[net.Conn]struct{}
	closed  bool
	wg      sync.WaitGroup
}

// New listens on 127.0.0.1 on a free port and forwards to target
// (host:port). It returns an error if it cannot listen.
func New(target string) (*Proxy, error) {
	return Listen("127.0.0.1:0", target)
}

// Listen is New on a chosen address, e.g. "[::1]:0".
func Listen(addr, target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		target:  target,
		ln:      ln,
		changed: make(chan struct{}),
		conns:   make(map[net.Conn]struct{}),
	}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the proxy's host:port, to dial instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut closes every open connection, and closes new ones as soon as they
// are accepted, until Restore.
func (p *Proxy) Cut() { p.setMode(Cut) }

// Stall stops passing bytes on every connection, open or new, without
// closing any, until Restore or Cut.
func (p *Proxy) Stall() { p.setMode(Stall) }

// Restore forwards again: new connections reach the target, and stalled
// connections resume.
func (p *Proxy) Restore() { p.setMode(Forward) }

// Mode returns the current mode.
func (p *Proxy) Mode() Mode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

func (p *Proxy) setMode(m Mode) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.mode = m
	close(p.changed)
	p.changed = make(chan struct{})
	if m == Cut {
		for c := range p.conns {
			c.Close()
		}
	}
}

// Close stops listening, closes every connection and waits for the
// proxy's goroutines to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.changed)
		for c := range p.conns {
			c.Close()
		}
	}
	p.mu.Unlock()
	err := p.ln.Close()
	p.wg.Wait()
	if errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

// track registers c; it returns false (and closes c) if the proxy is
// closed or cutting.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.mode == Cut {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.Close()
}

// gate waits while the proxy stalls; it reports whether bytes may pass.
func (p *Proxy) gate() bool {
	for {
		p.mu.Lock()
		mode, closed, changed := p.mode, p.closed, p.changed
		p.mu.Unlock()
		switch {
		case closed || mode == Cut:
			return false
		case mode == Forward:
			return true
		}
		<-changed
	}
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed (a loopback listener has no other failure worth retrying)
		}
		if !p.track(c) {
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	defer p.untrack(client)
	if !p.gate() {
		return
	}
	upstream, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	if !p.track(upstream) {
		return
	}
	defer p.untrack(upstream)
	done := make(chan struct{}, 2)
	p.wg.Add(2)
	go p.pipe(upstream, client, done)
	go p.pipe(client, upstream, done)
	<-done // either side ending ends both
	client.Close()
	upstream.Close()
	<-done
}

func (p *Proxy) pipe(dst, src net.Conn, done chan<- struct{}) {
	defer p.wg.Done()
	defer func() { done <- struct{}{} }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.gate() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or closed: serve closes both sides
		}
	}
}
