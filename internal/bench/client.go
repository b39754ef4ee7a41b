package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// conn is a minimal HTTP/1.1 keep-alive client connection. It writes
// pre-rendered requests and reads just enough of the response to get the
// status and skip the body, so that the generator's own CPU cost stays far
// below the server's.
type conn struct {
	addr string
	c    net.Conn
	br   *bufio.Reader
	tmo  time.Duration
}

func newConn(addr string, timeout time.Duration) *conn {
	return &conn{addr: addr, tmo: timeout}
}

func (c *conn) dial() error {
	nc, err := net.DialTimeout("tcp", c.addr, c.tmo)
	if err != nil {
		return err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	c.c = nc
	if c.br == nil {
		c.br = bufio.NewReaderSize(nc, 16<<10)
	} else {
		c.br.Reset(nc)
	}
	return nil
}

func (c *conn) close() {
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

// do sends raw and returns the response status. A broken connection is
// redialled once.
func (c *conn) do(raw []byte) (int, error) {
	for attempt := 0; ; attempt++ {
		if c.c == nil {
			if err := c.dial(); err != nil {
				return 0, err
			}
		}
		c.c.SetDeadline(time.Now().Add(c.tmo))
		status, keep, err := c.roundTrip(raw)
		if err == nil {
			if !keep {
				c.close()
			}
			return status, nil
		}
		c.close()
		if attempt == 1 || !retryable(err) {
			return 0, err
		}
	}
}

func retryable(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

var (
	hContentLen   = []byte("content-length:")
	hConnection   = []byte("connection:")
	hTransferEnc  = []byte("transfer-encoding:")
	errChunked    = errors.New("chunked responses are not supported by the bench client")
	errBadStatus  = errors.New("malformed status line")
	errHeaderLine = errors.New("malformed header line")
)

func (c *conn) roundTrip(raw []byte) (status int, keep bool, err error) {
	if _, err = c.c.Write(raw); err != nil {
		return 0, false, err
	}
	line, err := c.br.ReadSlice('\n')
	if err != nil {
		return 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) {
		return 0, false, errBadStatus
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, errBadStatus
	}
	keep = true
	length := -1
	for {
		line, err = c.br.ReadSlice('\n')
		if err != nil {
			return 0, false, err
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return 0, false, errHeaderLine
		}
		name := line[:colon+1]
		val := bytes.TrimSpace(line[colon+1:])
		switch {
		case bytes.EqualFold(name, hContentLen):
			length, err = strconv.Atoi(string(val))
			if err != nil {
				return 0, false, fmt.Errorf("bad content-length")
			}
		case bytes.EqualFold(name, hConnection):
			if bytes.EqualFold(val, []byte("close")) {
				keep = false
			}
		case bytes.EqualFold(name, hTransferEnc):
			return 0, false, errChunked
		}
	}
	if length < 0 && (status == 204 || status == 304) {
		length = 0 // no body, and net/http sends no Content-Length
	}
	if length < 0 {
		return 0, false, fmt.Errorf("response without content-length")
	}
	if _, err = c.br.Discard(length); err != nil {
		return 0, false, err
	}
	return status, keep, nil
}
