package callcontrol

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/confval"
)

// callID is the call in every test control URL: part of the capability,
// it must never reach a log or an error.
const callID = "7420f27a-30fd-4f49-a995-5549ae7cc00d"

// recorded is one request the control server received.
type recorded struct {
	method, path, contentType, auth string
	hasAuth                         bool
	body                            []byte
}

// controlServer stands in for Vapi's control endpoint (which is on the
// internet, outside the customer's network, at
// https://<region>-phone-call-websocket.vapi.ai/<call>/control): a local
// httptest server on 127.0.0.1 that records every request. The clients in
// these tests list its exact loopback address in allowed_hosts, which is
// the only way plain http is accepted.
type controlServer struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []recorded
	// handle answers request n (1-based); nil: 200 {}.
	handle func(n int, w http.ResponseWriter, r *http.Request)
}

func newControlServer(t testing.TB, handle func(n int, w http.ResponseWriter, r *http.Request)) *controlServer {
	t.Helper()
	s := &controlServer{handle: handle}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		auth, hasAuth := r.Header["Authorization"]
		rec := recorded{method: r.Method, path: r.URL.Path, contentType: r.Header.Get("Content-Type"), hasAuth: hasAuth, body: body}
		if hasAuth {
			rec.auth = auth[0]
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, rec)
		n := len(s.reqs)
		s.mu.Unlock()
		if s.handle != nil {
			s.handle(n, w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, "{}")
	}))
	t.Cleanup(s.Close)
	return s
}

// controlURL is the call's control URL on the local server.
func (s *controlServer) controlURL() string { return s.URL + "/" + callID + "/control" }

// hostPort is the server's address, as allowed_hosts lists it.
func (s *controlServer) hostPort() string { return s.Listener.Addr().String() }

func (s *controlServer) requests() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.reqs...)
}

// sleeps records the waits between attempts without waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// testConfig allows only the local server, with short waits.
func testConfig(s *controlServer) Config {
	c := Config{AllowedHosts: []string{s.hostPort()}, Timeout: confval.Duration(2 * time.Second), Backoff: confval.Duration(time.Millisecond)}
	c.Complete()
	return c
}

func mustNew(t testing.TB, cfg Config, deps Deps) *Client {
	t.Helper()
	c, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// must returns a message built for a test (which must be valid).
func must(m Message, err error) Message {
	if err != nil {
		panic(err)
	}
	return m
}

func ptr[T any](v T) *T { return &v }
