package gateway_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/voicegate/voicegate/internal/config"
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
