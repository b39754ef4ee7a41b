package gateway_test

import (
	"context"
	"errors"
	"io"
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
	if e.metric(`voicegate_requests_total{outcome="replay",type="none"}`) != "1" {
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
	e.skew.Store(int64(gateway.AuthLogInterval + time.Second))
	e.post(body, bad) // the next failure closes the interval
	logs := e.logs.String()
	if !strings.Contains(logs, `"msg":"authentication failures","reason":"mismatch","source":"127.0.0.1","count":1999`) {
		t.Fatalf("no aggregated line with the count:\n%s", tail(logs, 2000))
	}
	if e.metric(`voicegate_auth_failures_total{reason="mismatch"}`) != strconv.Itoa(n+1) {
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
