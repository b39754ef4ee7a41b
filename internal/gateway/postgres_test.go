package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/config"
	"github.com/voicegate/voicegate/internal/netproxy"
	"github.com/voicegate/voicegate/internal/postgres/pgtest"
	"github.com/voicegate/voicegate/internal/storage"
)

// TestPostgresDriverServesACall: with storage.driver postgres the whole
// stack — routing, tools, the call record, readiness — runs on PostgreSQL.
func TestPostgresDriverServesACall(t *testing.T) {
	url := pgtest.URL(t)
	e := newEnv(t, func(c *config.Config) {
		c.Storage.Driver = storage.DriverPostgres
		c.Storage.PostgresURL = url
	})
	for _, m := range []string{
		msg("assistant-request", "PG1", `"phoneNumber":{"id":"pn-sales"}`),
		msg("status-update", "PG1", `"status":"in-progress"`),
		msg("tool-calls", "PG1", `"toolCallList":[{"id":"t1","name":"getAppointment","arguments":{}}]`),
		msg("end-of-call-report", "PG1", `"endedReason":"customer-ended-call","durationSeconds":9.5,"cost":0.01`),
	} {
		if s, b := e.send(m); s != 200 {
			t.Fatalf("%d %s", s, b)
		}
	}
	r, hist, err := e.app.Store.Call(context.Background(), "PG1")
	if err != nil || r.AssistantID != "asst-sales" || r.Status != "ended" || r.Duration == nil || *r.Duration != 9.5 || len(hist) != 1 {
		t.Fatalf("stored on PostgreSQL: %+v %v %v", r, hist, err)
	}
	resp, err := http.Get(e.srv.URL + "/readyz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("readyz on PostgreSQL: %v %v", resp, err)
	}
	resp.Body.Close()
	if v := e.metric("voicegate_ready"); v != "1" {
		t.Fatalf("voicegate_ready %q", v)
	}
}

// proxiedPostgres returns a fresh test database URL that goes through a
// netproxy the test can cut, and the proxy.
func proxiedPostgres(t *testing.T) (string, *netproxy.Proxy) {
	t.Helper()
	u, err := url.Parse(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	p, err := netproxy.New(u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	u.Host = p.Addr()
	return u.String(), p
}

// readyz returns /readyz's status code and body.
func (e *env) readyz() (int, readyzAnswer) {
	e.t.Helper()
	resp, err := http.Get(e.srv.URL + "/readyz")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var a readyzAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, a
}

type readyzAnswer struct {
	Status       string `json:"status"`
	Dependencies []struct {
		Name   string `json:"name"`
		Shared bool   `json:"shared"`
		Up     bool   `json:"up"`
	} `json:"dependencies"`
}

// postFull posts and returns the status, the Retry-After header and the body.
func (e *env) postFull(body string, h http.Header) (int, string, string) {
	e.t.Helper()
	resp, b := e.do(body, h)
	return resp.StatusCode, resp.Header.Get("Retry-After"), b
}

// TestPostgresOutage cuts the connection to PostgreSQL under a running
// stack: what needs no durable write is still answered 200; a tool call
// whose record cannot be written and an end-of-call report are answered
// 503 with Retry-After (so Vapi retries them), never 200; /readyz stays
// 200 but "degraded" (the database is shared by every replica: failing
// all of them would answer nothing at all); once the connection is back
// the same deliveries succeed, without a restart.
func TestPostgresOutage(t *testing.T) {
	dsn, proxy := proxiedPostgres(t)
	e := newEnv(t, func(c *config.Config) {
		c.Storage.Driver = storage.DriverPostgres
		c.Storage.PostgresURL = dsn
	})
	if s, b := e.send(msg("status-update", "OUT1", `"status":"in-progress"`)); s != 200 {
		t.Fatalf("before the outage: %d %s", s, b)
	}
	if s, a := e.readyz(); s != 200 || a.Status != "ready" || len(a.Dependencies) != 1 || a.Dependencies[0].Name != "postgres" || !a.Dependencies[0].Shared || !a.Dependencies[0].Up {
		t.Fatalf("readyz before the outage: %d %+v", s, a)
	}

	proxy.Cut()
	// Needs no durable write: answered.
	for _, m := range []string{
		msg("speech-update", "OUT1", `"status":"started","role":"user"`),
		msg("speech-update", "OUT-NEW", `"status":"started","role":"user"`), // a call never seen: its row is written later
	} {
		if s, b := e.send(m); s != 200 {
			t.Fatalf("speech-update during the outage: %d %s", s, b)
		}
	}
	// Needs one: refused, retryable.
	tool := msg("tool-calls", "OUT1", `"toolCallList":[{"id":"out-t1","name":"getAppointment","arguments":{}}]`)
	report := msg("end-of-call-report", "OUT1", `"endedReason":"customer-ended-call","durationSeconds":3`)
	toolH, reportH := e.signed(tool), e.signed(report)
	for name, d := range map[string]struct{ body string }{"tool-calls": {tool}, "end-of-call-report": {report}} {
		h := toolH
		if name == "end-of-call-report" {
			h = reportH
		}
		s, ra, b := e.postFull(d.body, h)
		if s != 503 || ra == "" || !strings.Contains(b, "retry") {
			t.Fatalf("%s during the outage: %d Retry-After=%q %s; want 503 with Retry-After", name, s, ra, b)
		}
	}
	s, a := e.readyz()
	if s != 200 || a.Status != "degraded" || len(a.Dependencies) != 1 || a.Dependencies[0].Up {
		t.Fatalf("readyz during the outage: %d %+v; want 200 degraded, postgres down", s, a)
	}
	if v := e.metric(`voicegate_dependency_up{dependency="postgres"}`); v != "0" {
		t.Fatalf("voicegate_dependency_up during the outage: %q", v)
	}
	if v := e.metric("voicegate_ready"); v != "1" {
		t.Fatalf("voicegate_ready during the outage: %q (degraded is ready)", v)
	}

	proxy.Restore()
	// Vapi's redeliveries: the same bodies and headers.
	if s, _, b := e.postFull(tool, toolH); s != 200 || !strings.Contains(b, "out-t1") {
		t.Fatalf("tool-calls redelivered after the outage: %d %s", s, b)
	}
	// The tool ran during the outage (its record could not be written):
	// the redelivery reuses its result instead of acting again.
	if n := e.hits.Load(); n != 1 {
		t.Fatalf("the internal API was called %d times for one tool call answered 503 then redelivered", n)
	}
	if s, _, b := e.postFull(report, reportH); s != 200 {
		t.Fatalf("end-of-call-report redelivered after the outage: %d %s", s, b)
	}
	// A write succeeded: the store is trusted again at once (not only a
	// window after the last failure).
	if s, a := e.readyz(); s != 200 || a.Status != "ready" || !a.Dependencies[0].Up {
		t.Fatalf("readyz after recovery: %d %+v", s, a)
	}
	r, _, err := e.app.Store.Call(context.Background(), "OUT1")
	if err != nil || r.Status != "ended" || r.Duration == nil || *r.Duration != 3 {
		t.Fatalf("after recovery: %+v %v", r, err)
	}
	if v := e.metric(`voicegate_dependency_up{dependency="postgres"}`); v != "1" {
		t.Fatalf("voicegate_dependency_up after recovery: %q", v)
	}
	if !strings.Contains(e.logs.String(), "dependency down") || !strings.Contains(e.logs.String(), "dependency recovered") {
		t.Fatal("the outage and the recovery are not logged")
	}
}
