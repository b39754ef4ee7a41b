package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/voicegate/voicegate/internal/calls"
	"github.com/voicegate/voicegate/internal/config"
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
