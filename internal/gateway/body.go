package gateway

import (
	"errors"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Reading request bodies before authentication.
//
// Threat: a client that announces a large Content-Length and then sends
// nothing must not make the server reserve that memory. Buffers grow only as
// bytes arrive (doubling through pooled size classes), and every byte held
// by bodies in flight is counted against one global budget: a request that
// would exceed it is refused with 503 and Retry-After, before its body is
// read when possible.

// A client that holds budget must keep sending: each buffer it is given must
// fill within bodyGrace plus its size at bodyMinRate (a 256 KiB buffer:
// 3 s; a client sending 128 KiB/s always keeps up), or the read fails with a
// timeout (408). Without this, clients that
// trickle bodies could hold the budget for the whole read timeout with a
// fraction of its size in bytes sent, and refuse every webhook meanwhile.
const (
	bodyGrace   = 2 * time.Second
	bodyMinRate = 256 << 10 // bytes per second
)

// errOverBudget means the body budget is exhausted.
var errOverBudget = errors.New("body memory budget exhausted")

// bodyClasses are the pooled buffer sizes; larger bodies get exact buffers
// that are not pooled.
var bodyClasses = [...]int{4 << 10, 8 << 10, 16 << 10, 32 << 10, 64 << 10, 128 << 10, 256 << 10}

// firstRead is the size of the first read, done into a small pooled buffer
// so that a client that sends only headers holds at most 512 bytes (and none
// of the budget); a body that fits stays in it.
const firstRead = 512

// bodyReader reads bodies under a global byte budget.
type bodyReader struct {
	limit    int64
	held     atomic.Int64 // bytes of buffers held by requests in flight
	inFlight atomic.Int64 // requests reading or holding a body
	pools    [len(bodyClasses)]sync.Pool
	small    sync.Pool // *[firstRead]byte
}

func newBodyReader(limit int64) *bodyReader {
	br := &bodyReader{limit: limit}
	for i, n := range bodyClasses {
		br.pools[i].New = func() any { b := make([]byte, n); return &b }
	}
	br.small.New = func() any { return new([firstRead]byte) }
	return br
}

// pacer sets the connection's read deadline while a body holds budget (see
// bodyMinRate). Its zero value, or a nil *pacer, does nothing.
type pacer struct {
	w     http.ResponseWriter
	now   func() time.Time
	limit time.Time // never later than this: the server's own read deadline
	set   bool
}

// pace gives the client until bodyGrace plus size at bodyMinRate from now
// to fill its current buffer of size bytes (at most the server's own read
// deadline). A client sustaining about half of bodyMinRate always keeps up:
// a grown buffer is half full already.
func (p *pacer) pace(size int) {
	if p == nil || p.w == nil {
		return
	}
	d := p.now().Add(bodyGrace + time.Duration(int64(size)*int64(time.Second)/bodyMinRate))
	if d.After(p.limit) {
		d = p.limit
	}
	// A writer that cannot set deadlines (ErrNotSupported) is read under
	// the server's read timeout alone.
	if http.NewResponseController(p.w).SetReadDeadline(d) == nil {
		p.set = true
	}
}

// done takes the pace off the connection. After a complete body it clears
// the read deadline, as net/http itself does when it starts watching the
// connection for a client that goes away while the handler runs: a deadline
// left there would cancel the request (and the connection's later requests)
// when it passes. After an error it sets the server's read deadline, which
// bounds net/http's discarding of the unread rest.
func (p *pacer) done(complete bool) {
	if p == nil || !p.set {
		return
	}
	d := p.limit
	if complete {
		d = time.Time{}
	}
	http.NewResponseController(p.w).SetReadDeadline(d)
	p.set = false
}

// body is a request body read under the budget; release returns its buffer.
type body struct {
	buf   *[]byte          // nil for an empty or small body, or an unpooled buffer
	small *[firstRead]byte // a small body's buffer
	b     []byte
	n     int64 // bytes reserved
}

// reserve takes n bytes of the budget, or reports that it cannot.
func (br *bodyReader) reserve(n int64) bool {
	if br.held.Add(n) > br.limit {
		br.held.Add(-n)
		return false
	}
	return true
}

// admit reports whether a body of the announced length (unknown: -1) could
// be read now; it reserves nothing, so headers alone cost no budget.
func (br *bodyReader) admit(announced, max int64) bool {
	need := int64(firstRead)
	if announced > 0 {
		need = min(announced, max)
	}
	return br.held.Load()+need <= br.limit
}

// read reads r's body into out, at most max bytes (more is
// *http.MaxBytesError), pacing the client with p once it holds budget (a
// read past the pace fails with a timeout, os.ErrDeadlineExceeded). The
// caller must release out, whatever the error.
func (br *bodyReader) read(r *http.Request, max int64, out *body, p *pacer) error {
	br.inFlight.Add(1)
	err := br.readBody(r, max, out, p)
	p.done(err == nil)
	return err
}

func (br *bodyReader) readBody(r *http.Request, max int64, out *body, p *pacer) error {
	if r.ContentLength > max {
		return &http.MaxBytesError{Limit: max}
	}
	if !br.admit(r.ContentLength, max) {
		return errOverBudget
	}
	// limit is the most the body may hold: its announced length, or max+1
	// for a chunked body so that an oversize one is detected.
	limit := max + 1
	if r.ContentLength >= 0 {
		limit = r.ContentLength
	}
	if limit == 0 {
		return nil
	}
	first := br.small.Get().(*[firstRead]byte)
	n, err := fill(r.Body, first[:min(int64(firstRead), limit)])
	if err == io.EOF && r.ContentLength >= 0 {
		// net/http reports a body cut short of its Content-Length as
		// io.ErrUnexpectedEOF; never take a short one as complete.
		err = io.ErrUnexpectedEOF
	}
	if n == 0 {
		br.small.Put(first)
		if err == io.EOF {
			err = nil
		}
		return err
	}
	if err == nil && int64(n) == limit && r.ContentLength >= 0 {
		// Small body, complete: it stays in the small buffer.
		if !br.reserve(firstRead) {
			br.small.Put(first)
			return errOverBudget
		}
		out.small, out.b, out.n = first, first[:n], firstRead
		return readEOF(r.Body, first[n:])
	}
	defer br.small.Put(first)
	if !br.grow(out, n, limit) {
		return errOverBudget
	}
	out.b = append(out.b[:0], first[:n]...)
	if err == io.EOF {
		return nil // a chunked body shorter than the first read
	}
	if err != nil {
		return err
	}
	p.pace(cap(out.b))
	for {
		if len(out.b) == cap(out.b) {
			if int64(len(out.b)) >= limit {
				if r.ContentLength >= 0 {
					return readEOF(r.Body, nil)
				}
				break
			}
			if !br.grow(out, len(out.b)+1, limit) {
				return errOverBudget
			}
			p.pace(cap(out.b))
		}
		m, err := r.Body.Read(out.b[len(out.b):cap(out.b)])
		out.b = out.b[:len(out.b)+m]
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if int64(len(out.b)) > max {
		return &http.MaxBytesError{Limit: max}
	}
	return nil
}

// grow gives b a buffer of at least need bytes (doubling, at most limit),
// keeping its contents, and accounts the difference against the budget.
func (br *bodyReader) grow(b *body, need int, limit int64) bool {
	size := int64(bodyClasses[0])
	if c := int64(cap(b.b)); c > 0 {
		size = 2 * c
	}
	for size < int64(need) {
		size *= 2
	}
	if size > limit {
		size = max(limit, int64(need))
	}
	class := -1
	for i, n := range bodyClasses {
		if int64(n) >= size {
			class, size = i, int64(n)
			break
		}
	}
	if !br.reserve(size - b.n) {
		return false
	}
	var nb *[]byte
	var buf []byte
	if class >= 0 {
		nb = br.pools[class].Get().(*[]byte)
		buf = (*nb)[:0]
	} else {
		buf = make([]byte, 0, size)
	}
	buf = append(buf, b.b...)
	br.put(b.buf)
	b.buf, b.b, b.n = nb, buf, size
	return true
}

func (br *bodyReader) put(p *[]byte) {
	if p == nil {
		return
	}
	for i, n := range bodyClasses {
		if cap(*p) == n {
			br.pools[i].Put(p)
			return
		}
	}
}

// release returns b's buffer and budget.
func (br *bodyReader) release(b *body) {
	br.put(b.buf)
	if b.small != nil {
		br.small.Put(b.small)
	}
	br.held.Add(-b.n)
	br.inFlight.Add(-1)
	*b = body{}
}

// fill reads into buf until it is full or the body ends. Unlike
// io.ReadFull it passes the body's own errors through unchanged (net/http's
// io.ErrUnexpectedEOF for a truncated body included) and returns io.EOF
// only for a body that ended cleanly before buf was full.
func fill(rd io.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := rd.Read(buf[n:])
		n += m
		if err == io.EOF && n == len(buf) {
			return n, nil // full, and the body ended with it
		}
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// readEOF reads the end of a body whose announced length has been read. It
// returns at once; net/http starts watching the connection for a client that
// goes away (cancelling the request's context) only once a handler has seen
// its body's EOF. It reads into spare when that has room, so as not to
// allocate.
func readEOF(rd io.Reader, spare []byte) error {
	if len(spare) == 0 {
		spare = make([]byte, 1)
	}
	n, err := rd.Read(spare[:1])
	if n > 0 {
		return errors.New("body longer than its Content-Length")
	}
	if err == io.EOF {
		return nil
	}
	return err
}
