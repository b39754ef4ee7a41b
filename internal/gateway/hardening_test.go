package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/app"
	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/gateway"
)

// TestReplayRefusedWhileSignatureVerifies reproduces the replay gap: signed
// with a timestamp 18 s ahead, window and tolerance 20 s, an identical
// request 22 s later still verifies and must not be processed again.
func TestReplayRefusedWhileSignatureVerifies(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Vapi.Replay.Window = config.Duration(20 * time.Second)
		c.Vapi.Auth[0].Tolerance = config.Duration(20 * time.Second)
	})
	body := msg("tool-calls", "replay-gap", `"toolCallList":[{"id":"t1","name":"getAppointment","arguments":{"date":"2026-12-01"}}]`)
	h := http.Header{}
	e.signer.Sign(h, http.MethodPost, e.url, []byte(body), time.Now().Add(18*time.Second))
	if status, resp := e.post(body, h); status != 200 || !strings.Contains(resp, "echo") {
		t.Fatalf("original: %d %s", status, resp)
	}
	e.skew.Store(int64(22 * time.Second)) // past the window; ts+tolerance is 38 s away from the start
	if status, _ := e.post(body, h); status != 200 {
		t.Fatalf("replay: %d", status)
	}
	if n := e.hits.Load(); n != 1 {
		t.Fatalf("the internal API was called %d times: a replay inside the signature's validity was processed again", n)
	}
	if e.metric(`voicegate_requests_total{outcome="replay",source="vapi",type="none"}`) != "1" {
		t.Fatal("replay not counted")
	}
}

// TestDroppedConnectionNeverPoisonsRetry: when the original request's client
// goes away during a tool call, the failure computed under its cancelled
// context is not stored; an identical retry runs the tool.
func TestDroppedConnectionNeverPoisonsRetry(t *testing.T) {
	e := newEnv(t, nil)
	body := msg("tool-calls", "dropped", `"toolCallList":[{"id":"t1","name":"getAppointment","arguments":{"date":"2026-12-01"}}]`)
	h := e.signed(body)
	e.apiDelay.Store(int64(5 * time.Second))
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.url, strings.NewReader(body))
	req.Header = h
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatal("the original request was expected to be cut off by its client")
	}
	// Wait for the server to finish the abandoned request.
	deadline := time.Now().Add(5 * time.Second)
	for e.app.Gateway.BodiesInFlight() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	e.apiDelay.Store(0)
	status, resp := e.post(body, h)
	if status != 200 || !strings.Contains(resp, `echo`) {
		t.Fatalf("retry after a dropped connection got %d %s: a failure computed under a cancelled request was stored as the answer", status, resp)
	}
	if n := e.hits.Load(); n != 2 {
		t.Fatalf("internal API called %d times, want 2 (the abandoned call and the retry)", n)
	}
}

// panicStore is the real SQLite store, made to panic on one call to reach
// the handler's panic path after the replay ticket is taken.
type panicStore struct {
	calls.Store
	armed bool
}

func (p *panicStore) CreateCall(ctx context.Context, r calls.Record) error {
	if p.armed {
		p.armed = false
		panic("injected")
	}
	return p.Store.CreateCall(ctx, r)
}

// TestPanicReleasesReplayTicket: a panic after the replay ticket is taken
// must not leave the key pending (identical retries would wait, then 503).
func TestPanicReleasesReplayTicket(t *testing.T) {
	e := newEnvWith(t, nil, func(s calls.Store) calls.Store { return &panicStore{Store: s, armed: true} })
	body := msg("status-update", "panicky", `"status":"in-progress"`)
	h := e.signed(body)
	if status, resp := e.post(body, h); status != 500 || resp != `{"error":"internal error"}` {
		t.Fatalf("panicking request: %d %s", status, resp)
	}
	if n := e.metric("voicegate_panics_total"); n != "1" {
		t.Fatalf("voicegate_panics_total = %q after one panic, want 1", n)
	}
	if n := e.metric(`voicegate_requests_total{outcome="error",source="vapi",type="none"}`); n != "1" {
		t.Fatalf("the panicked request is not counted as an error: %q", n)
	}
	client := &http.Client{Timeout: 3 * time.Second}
	req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(body))
	req.Header = h
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("retry after a panic: %v (the replay ticket was never released)", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("retry after a panic: %d", resp.StatusCode)
	}
}

// TestAuthFailureLogsAggregated: 2,000 unauthenticated requests used to
// write 2,000 WARN lines. Now one line per source and reason at once, then
// one line with the count when the interval closes.
func TestAuthFailureLogsAggregated(t *testing.T) {
	e := newEnv(t, nil)
	body := msg("status-update", "flood", `"status":"in-progress"`)
	bad := http.Header{"X-Signature": {strings.Repeat("0", 64)}, "X-Timestamp": {strconv.FormatInt(time.Now().Unix(), 10)}}
	const n = 2000
	for i := 0; i < n; i++ {
		if status, _ := e.post(body, bad); status != 401 {
			t.Fatalf("status %d", status)
		}
	}
	e.post(body, nil) // another reason: missing
	if got := strings.Count(e.logs.String(), `"msg":"authentication failed"`); got != 2 {
		t.Fatalf("%d individual auth-failure lines for %d bad requests, want 2 (one per source and reason)", got, n+1)
	}
	e.skew.Store(int64(gateway.RefusalLogInterval + time.Second))
	e.post(body, bad) // the next failure closes the interval
	logs := e.logs.String()
	if !strings.Contains(logs, `"msg":"authentication failures","reason":"mismatch","client":"127.0.0.1","count":1999`) {
		t.Fatalf("no aggregated line with the count:\n%s", tail(logs, 2000))
	}
	if e.metric(`voicegate_auth_failures_total{reason="mismatch",source="vapi"}`) != strconv.Itoa(n+1) {
		t.Fatal("every failure is still counted in the metric")
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// diskFullStore is the real SQLite store whose writes fail while full is
// set, as they do on a full disk, while it still answers Ping.
type diskFullStore struct {
	calls.Store
	full atomic.Bool
}

var errDiskFull = errors.New("database or disk is full (SQLITE_FULL)")

func (d *diskFullStore) RecordStatus(ctx context.Context, id string, c calls.StatusChange) error {
	if d.full.Load() {
		return errDiskFull
	}
	return d.Store.RecordStatus(ctx, id, c)
}

func (d *diskFullStore) CreateCall(ctx context.Context, r calls.Record) error {
	if d.full.Load() {
		return errDiskFull
	}
	return d.Store.CreateCall(ctx, r)
}

// TestReadyzFailsWhileWritesFail: with every write failing (503, retry) the
// old /readyz pinged the database and said ready. Now it fails while the
// last write failed recently and none has succeeded since, and recovers on
// its own: after a successful write, or once the window has passed.
func TestReadyzFailsWhileWritesFail(t *testing.T) {
	var store *diskFullStore
	e := newEnvWith(t, nil, func(s calls.Store) calls.Store { store = &diskFullStore{Store: s}; return store })
	ready := func() (int, string) {
		resp, err := http.Get(e.srv.URL + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if s, b := ready(); s != 200 {
		t.Fatalf("readyz before any failure: %d %s", s, b)
	}
	store.full.Store(true)
	if s, _ := e.send(msg("status-update", "full-1", `"status":"in-progress"`)); s != 503 {
		t.Fatalf("write on a full disk answered %d, want 503", s)
	}
	if s, b := ready(); s != 503 || !strings.Contains(b, "writes failing") {
		t.Fatalf("readyz while writes fail: %d %s, want 503 database writes failing", s, b)
	}
	if v := e.metric("voicegate_ready"); v != "0" {
		t.Fatalf("voicegate_ready while writes fail: %q, want 0", v)
	}
	// Recovers once the window has passed with no write since...
	e.skew.Store(int64(app.WriteFailureWindow + time.Second))
	if s, b := ready(); s != 200 {
		t.Fatalf("readyz a window after the last failure: %d %s", s, b)
	}
	// ...fails again on the next failed write, and recovers on a success.
	if s, _ := e.send(msg("status-update", "full-2", `"status":"in-progress"`)); s != 503 {
		t.Fatalf("write on a full disk answered %d, want 503", s)
	}
	if s, _ := ready(); s != 503 {
		t.Fatalf("readyz after a new failure: %d", s)
	}
	store.full.Store(false)
	if s, r := e.send(msg("status-update", "full-3", `"status":"in-progress"`)); s != 200 {
		t.Fatalf("write after the disk was freed: %d %s", s, r)
	}
	if s, b := ready(); s != 200 {
		t.Fatalf("readyz after a successful write: %d %s", s, b)
	}
	if v := e.metric("voicegate_ready"); v != "1" {
		t.Fatalf("voicegate_ready once ready again: %q, want 1", v)
	}
}

// The write-ahead log's size and restarts are exported, so that an operator
// can alert on a log that stops shrinking.
func TestWALMetricsExported(t *testing.T) {
	e := newEnv(t, nil)
	if s, _ := e.send(msg("status-update", "wal-1", `"status":"in-progress"`)); s != 200 {
		t.Fatalf("status %d", s)
	}
	for _, name := range []string{"voicegate_sqlite_wal_bytes", "voicegate_sqlite_wal_restarts_total", "voicegate_sqlite_wal_restarts_busy_total"} {
		if v := e.metric(name); v == "" {
			t.Errorf("%s missing from /metrics", name)
		}
	}
	if v := e.metric("voicegate_sqlite_wal_bytes"); v == "0" {
		t.Errorf("voicegate_sqlite_wal_bytes is 0 after a write: it does not read the log's size")
	}
}

// rawPost sends headers + first part of body, waits, then sends the rest, and returns the status line.
func rawPost(t *testing.T, host, path string, h http.Header, cl int, part1, part2 string, pause time.Duration, closeWrite bool) string {
	t.Helper()
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n", path)
	if cl >= 0 {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", cl)
	}
	for k, vs := range h {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	b.WriteString("\r\n")
	b.WriteString(part1)
	c.Write([]byte(b.String()))
	time.Sleep(pause)
	if part2 != "" {
		c.Write([]byte(part2))
	}
	if closeWrite {
		c.(*net.TCPConn).CloseWrite()
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	all, _ := io.ReadAll(bufio.NewReader(c))
	line := string(all)
	if i := strings.Index(line, "\r\n\r\n"); i >= 0 {
		line = line[:strings.Index(line, "\r\n")] + " | " + line[i+4:]
	}
	return strings.TrimSpace(line)
}

// TestSlowBodyReplayRefused: the signature was checked as of the request's
// start and the replay entry as of the end of its body. A replay started
// just before ts+tolerance whose body trickled in past the entry's expiry
// was processed again (internal API called twice). Both checks now use the
// same instant. Default config shape: window == tolerance.
func TestSlowBodyReplayRefused(t *testing.T) {
	e := newEnv(t, func(c *config.Config) {
		c.Vapi.Replay.Window = config.Duration(2 * time.Second)
		c.Vapi.Auth[0].Tolerance = config.Duration(2 * time.Second)
	})
	body := msg("tool-calls", "slow-replay", `"toolCallList":[{"id":"t1","name":"getAppointment","arguments":{"date":"2026-12-01"}}]`)
	h := e.signed(body)
	t0 := time.Now()
	if status, resp := e.post(body, h); status != 200 || !strings.Contains(resp, "echo") {
		t.Fatalf("original: %d %s", status, resp)
	}
	ts, _ := strconv.ParseInt(h.Get("X-Timestamp"), 10, 64)
	at := time.Unix(ts, 0)
	// Start the replay while the signature still verifies (at+1.5s) ...
	time.Sleep(time.Until(at.Add(1500 * time.Millisecond)))
	host := strings.TrimPrefix(e.srv.URL, "http://")
	// ... and finish its body after the entry expired (t0+2s and at+2s),
	// while other traffic arrives meanwhile (its lookups evict by time).
	go func() {
		time.Sleep(time.Until(t0.Add(2300 * time.Millisecond)))
		other := msg("status-update", "other-traffic", `"status":"in-progress"`)
		req, _ := http.NewRequest(http.MethodPost, e.url, strings.NewReader(other))
		req.Header = e.signed(other)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	pause := time.Until(t0.Add(2600 * time.Millisecond))
	line := rawPost(t, host, "/webhook/vapi", h, len(body), body[:10], body[10:], pause, false)
	t.Logf("replay answered %q; internal API hits=%d", line, e.hits.Load())
	if n := e.hits.Load(); n != 1 {
		t.Fatalf("internal API called %d times: a replay whose signature verified (checked at its start) was processed again", n)
	}
}

// TestTruncatedBodyRefused: a body shorter than its Content-Length (the
// client half-closes) was accepted as complete when cut inside the first
// 512 bytes.
func TestTruncatedBodyRefused(t *testing.T) {
	e := newEnv(t, nil)
	body := msg("status-update", "trunc", `"status":"in-progress"`)
	h := e.signed(body) // signature over the bytes actually sent
	host := strings.TrimPrefix(e.srv.URL, "http://")
	line := rawPost(t, host, "/webhook/vapi", h, len(body)+100, body, "", 0, true)
	t.Logf("Content-Length %d, sent %d then EOF: %q", len(body)+100, len(body), line)
	if !strings.HasPrefix(line, "HTTP/1.1 400 ") || !strings.Contains(line, "could not read request body") {
		t.Fatalf("a body cut short of its Content-Length got %q, want 400 could not read request body (it reached the dispatcher)", line)
	}
}

// TestStalledBodiesReleaseTheBudget: unauthenticated clients that send part
// of a large body and stall held the body budget for the whole read
// timeout, so that every signed webhook got 503 meanwhile (about 1.2 MB
// sent held a 4 MiB budget). Each buffer a client holds must now fill at a
// minimum rate: the stalled clients get 408 within seconds and the budget
// comes back.
func TestStalledBodiesReleaseTheBudget(t *testing.T) {
	const budget = 4 << 20
	e := newEnv(t, func(c *config.Config) { c.Vapi.MaxBodyBytes = 1 << 20; c.Server.BodyMemoryBytes = budget })
	host := strings.TrimPrefix(e.srv.URL, "http://")
	var hogs []net.Conn
	defer func() {
		for _, c := range hogs {
			c.Close()
		}
	}()
	for i := 0; i < 64 && e.app.Gateway.BodyBytesHeld() < budget-(128<<10); i++ {
		c, err := net.Dial("tcp", host)
		if err != nil {
			t.Fatal(err)
		}
		hogs = append(hogs, c)
		fmt.Fprintf(c, "POST /webhook/vapi HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", 1<<20, strings.Repeat(" ", 65537))
		time.Sleep(20 * time.Millisecond)
	}
	held := e.app.Gateway.BodyBytesHeld()
	if held < budget/2 {
		t.Fatalf("the stalled clients hold only %d of %d bytes: the test does not exhaust the budget", held, budget)
	}
	start := time.Now()
	for e.app.Gateway.BodyBytesHeld() > 0 && time.Since(start) < 10*time.Second {
		time.Sleep(50 * time.Millisecond)
	}
	if left := e.app.Gateway.BodyBytesHeld(); left != 0 {
		t.Fatalf("stalled clients still hold %d bytes of the budget %s later", left, time.Since(start).Round(time.Millisecond))
	}
	t.Logf("%d stalled clients held %d bytes; released after %s", len(hogs), held, time.Since(start).Round(time.Millisecond))
	hogs[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(hogs[0]).ReadString('\n')
	if !strings.HasPrefix(line, "HTTP/1.1 408 ") {
		t.Errorf("a stalled client got %q, want 408", line)
	}
	if status, resp := e.send(msg("status-update", "after-stall", `"status":"in-progress"`)); status != 200 {
		t.Fatalf("a signed webhook after the stalled clients: %d %s", status, resp)
	}
}

// TestSlowButSteadyBodyAccepted: the pace leaves room for a real client on
// a slow link: an 8 KiB body whose second half comes a second later.
func TestSlowButSteadyBodyAccepted(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Vapi.MaxBodyBytes = 1 << 20 })
	body := msg("transcript", "slow-link", `"role":"user","transcriptType":"partial","transcript":"`+strings.Repeat("slow ", 1600)+`"`)
	host := strings.TrimPrefix(e.srv.URL, "http://")
	half := len(body) / 2
	line := rawPost(t, host, "/webhook/vapi", e.signed(body), len(body), body[:half], body[half:], time.Second, false)
	if !strings.HasPrefix(line, "HTTP/1.1 200 ") {
		t.Fatalf("an %d-byte body sent in two halves a second apart got %q, want 200", len(body), line)
	}
}

// TestPacedBodyDoesNotCutLongHandlers: the body pace once left the server's
// read deadline on the connection after the body was read. net/http's
// watch for a client going away then timed out while a slow tool call ran,
// cancelling the request (the tool answered "unavailable") and every later
// request on the same keep-alive connection. Chunked and >512-byte bodies
// were affected; the deadline is now cleared once the body is complete.
func TestPacedBodyDoesNotCutLongHandlers(t *testing.T) {
	e := newEnv(t, func(c *config.Config) { c.Server.ReadTimeout = config.Duration(time.Second) })
	e.apiDelay.Store(int64(1500 * time.Millisecond)) // longer than the read timeout
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	do := func(body string, chunked bool) (int, string) {
		var rd io.Reader = strings.NewReader(body)
		if chunked {
			rd = io.MultiReader(rd) // unknown length: sent chunked
		}
		req, _ := http.NewRequest(http.MethodPost, e.url, rd)
		for k, v := range e.signed(body) {
			req.Header[k] = v
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	pad := strings.Repeat("x", 900)
	for i, chunked := range []bool{false, true} {
		body := msg("tool-calls", fmt.Sprintf("long-%d", i), `"toolCallList":[{"id":"t1","name":"getAppointment","arguments":{"date":"2026-12-01","note":"`+pad+`"}}]`)
		if s, r := do(body, chunked); s != 200 || !strings.Contains(r, `echo`) {
			t.Fatalf("chunked=%v: a tool call longer than the read timeout got %d %s", chunked, s, r)
		}
		// The next request on the same connection is not born cancelled.
		if s, r := do(msg("status-update", fmt.Sprintf("after-%d", i), `"status":"in-progress"`), false); s != 200 {
			t.Fatalf("chunked=%v: the next request on the connection got %d %s", chunked, s, r)
		}
	}
}

// TestMetricsNotPublicByDefault: /metrics (tool names, authentication
// failures, call volumes) was served to anyone on the public listener. It
// is now on the admin listener; on the public one only with a bearer token.
func TestMetricsNotPublicByDefault(t *testing.T) {
	const token = "m7Qx2Lp9Zr4Tw8Kv3Nb6"
	e := newEnv(t, func(c *config.Config) { c.Admin.PublicMetricsToken = token })
	get := func(auth string) int {
		req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, auth := range []string{"", "Bearer wrong-token-000", "Bearer " + token + "x", token, "bearer " + token} {
		if s := get(auth); s != 401 {
			t.Errorf("/metrics with Authorization %q: %d, want 401", auth, s)
		}
	}
	if s := get("Bearer " + token); s != 200 {
		t.Errorf("/metrics with the token: %d, want 200", s)
	}
	if s, _ := http.Get(newEnv(t, nil).srv.URL + "/metrics"); s.StatusCode != 404 {
		t.Errorf("/metrics on the public listener without a token configured: %d, want 404", s.StatusCode)
	}
}
